/**
 * The texts a fix task (kind `fix`, DESIGN.md "Fix") publishes, chosen from its outcome: the commit
 * message of the fix commit pushed to the pull request's branch, and the final reply (the pushed
 * commit with what failed, the logs read and the commands run, or why nothing was pushed). Pure: the
 * service publishes them (service.ts); the texts themselves are in github/publishers/fix-message.ts.
 */
import type { TaskResult } from '../contract.ts';
import { fixCommitMessage, fixReply, notFixedReply } from '../github/publishers/fix-message.ts';
import type { FixRequest } from './types.ts';

/** The commit message of a fix commit: `Fix failing checks: <names>`, what failed, what changed, the agent's body. */
export function fixCommitMessageOf(fix: FixRequest, result: Pick<TaskResult, 'changes' | 'commitMessage'>): string {
  return fixCommitMessage({ checks: fix.summary.checks, changes: result.changes, ...(result.commitMessage ? { agentMessage: result.commitMessage } : {}) });
}

/** How a fix task ended, as far as its reply is concerned. */
export type FixEnd =
  | { state: 'succeeded' | 'failed'; pushed: { sha: string; url: string } }
  | { state: 'no_changes' }
  | { state: 'failed' | 'cancelled'; reason: string };

/**
 * The final reply of a fix task: {@link fixReply} when a commit was pushed (also for a partial fix,
 * whose failure the agent's summary explains), {@link notFixedReply} otherwise (no commit).
 * @param result the runner's result, when there is one (its summary and commands are shown).
 */
export function fixFinalReply(fix: FixRequest, end: FixEnd, result: TaskResult | undefined): string {
  const agentSummary = result ? result.pullRequest.body || result.summary : '';
  const commands = result?.commands ?? [];
  if ('pushed' in end) {
    return fixReply({
      summary: fix.summary,
      commit: end.pushed,
      agentSummary,
      commands,
      ...(fix.automatic ? { attempt: { number: fix.automatic.number, max: fix.automatic.max } } : {}),
    });
  }
  if (end.state === 'no_changes') return notFixedReply({ summary: fix.summary, agentSummary, commands, outcome: 'no_changes' });
  return notFixedReply({ summary: fix.summary, agentSummary, commands, outcome: 'failed', reason: end.reason });
}
