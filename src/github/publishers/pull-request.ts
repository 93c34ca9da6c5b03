/**
 * The publisher for issue work: the runner's changes become one commit on a new `codex/` branch
 * and a pull request that closes the issue (DESIGN.md, "The three jobs").
 *
 * Idempotent across crashes: each step stores what it made before the next step depends on it
 * (through `save`), and a second run with the stored {@link PublishCheckpoint} reuses it:
 * 1. the branch name is chosen and stored before the branch is created;
 * 2. the commit (parent: the base SHA the app dispatched, never one the runner reports) is created
 *    and its SHA stored before any ref points at it;
 * 3. the branch is created at the commit, or reused when it already points at it (or still at the
 *    dispatched base, then moved forward); a branch of the same name holding other work is left alone
 *    and the next name (`…-2`, `…-3`) is stored and tried;
 * 4. the pull request is opened, or the open one for that head reused.
 * Validate the changes (validate-result.ts) first: nothing here re-checks paths.
 */
import type { TaskResult } from '../../contract.ts';
import { statusOf, type Octokit } from '../client.ts';
import { branchName, createCommit, openPullRequest, updateBranch, type CoAuthor } from '../publish.ts';
import { pullRequestBody } from '../pull-request-body.ts';

/** Branch names tried before giving up (`name`, `name-2`, … `name-10`). */
export const MAX_BRANCH_NAMES = 10;

/** What a previous run of {@link publishPullRequest} for the same task made (both optional). */
export interface PublishCheckpoint {
  /** The branch name chosen (maybe not created yet). */
  branch?: string;
  /** The commit created (maybe no ref points at it yet). */
  commitSha?: string;
}

/** One task's work to publish. */
export interface PullRequestWork {
  owner: string;
  repo: string;
  issueNumber: number;
  issueTitle: string;
  /** Who asked, credited with a `Co-authored-by` trailer (absent for automatic work). */
  requester?: CoAuthor;
  /** The branch the task was dispatched from: the pull request's base. */
  baseRef: string;
  /** The commit the task was dispatched on: the only parent of the new commit. */
  baseSha: string;
  /** The runner's result, its changes validated. */
  result: TaskResult;
  /** The agent stopped early (a limit): the pull request is a draft titled `[partial] …`. */
  partial: boolean;
  /** The repository asks for draft pull requests. */
  draft: boolean;
  /** Model name, for the pull request body. */
  model: string;
  /** The task log link, for the pull request body. */
  taskUrl: string;
}

/**
 * The title of the work: the runner's pull request title (from the agent's final message, see
 * agent/final-message.ts), else the issue's title; never the requester's instruction.
 */
export function workTitle(result: Pick<TaskResult, 'pullRequest'>, issueTitle: string): string {
  return result.pullRequest.title.trim() || issueTitle;
}

/**
 * The commit message of the work: the runner's (title, blank line, summary), else `title` (from
 * {@link workTitle}) as the subject with the pull request body as the commit body.
 */
export function workCommitMessage(result: Pick<TaskResult, 'commitMessage' | 'pullRequest'>, title: string): string {
  if (result.commitMessage.trim()) return result.commitMessage;
  const body = result.pullRequest.body.trim();
  return body ? `${title}\n\n${body}` : title;
}

/**
 * The name after `current` in the sequence `base`, `base-2`, `base-3`, …
 * (e.g. `nextBranchName('codex/1-x', 'codex/1-x-2')` → `codex/1-x-3`).
 */
export function nextBranchName(base: string, current: string): string {
  if (current === base) return `${base}-2`;
  const suffix = current.startsWith(`${base}-`) ? Number(current.slice(base.length + 1)) : NaN;
  return Number.isSafeInteger(suffix) && suffix >= 2 ? `${base}-${suffix + 1}` : `${base}-2`;
}

/**
 * What to do with the branch name given where the branch points now (undefined: it does not exist):
 * `create` it; `reuse` it (it points at our commit); `fast-forward` it to our commit (it still points
 * at the dispatched base); or leave it (`taken`: someone else's work) and try the next name.
 */
export function branchDecision(currentSha: string | undefined, ours: { commitSha: string; baseSha: string }): 'create' | 'reuse' | 'fast-forward' | 'taken' {
  if (currentSha === undefined) return 'create';
  if (currentSha === ours.commitSha) return 'reuse';
  if (currentSha === ours.baseSha) return 'fast-forward';
  return 'taken';
}

/** Where `refs/heads/<branch>` points, or undefined when it does not exist. @throws RequestError other than 404. */
async function branchSha(octokit: Octokit, owner: string, repo: string, branch: string): Promise<string | undefined> {
  try {
    return (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw error;
  }
}

/**
 * Publishes `work` as a pull request, resuming from `checkpoint`; calls `save` with each new
 * checkpoint value before the step that depends on it.
 * @returns the pull request (number, web URL, the work's title) and whether this run opened it.
 * @throws Error when {@link MAX_BRANCH_NAMES} names are all taken by other work; Octokit
 *   RequestError on API errors (the checkpoint saved so far stays valid for a retry).
 */
export async function publishPullRequest(
  octokit: Octokit,
  work: PullRequestWork,
  checkpoint: PublishCheckpoint,
  save: (patch: PublishCheckpoint) => void,
): Promise<{ number: number; url: string; title: string; created: boolean }> {
  const { owner, repo, result } = work;
  const title = workTitle(result, work.issueTitle);
  const firstName = branchName(work.issueNumber, title);
  let branch = checkpoint.branch;
  if (!branch) {
    branch = firstName;
    save({ branch });
  }

  let commitSha = checkpoint.commitSha;
  if (!commitSha) {
    commitSha = (
      await createCommit(octokit, {
        owner,
        repo,
        baseSha: work.baseSha,
        changes: result.changes,
        message: workCommitMessage(result, title),
        coAuthors: work.requester ? [work.requester] : [],
      })
    ).commitSha;
    save({ commitSha });
  }

  for (let tries = 0; ; tries++) {
    if (tries >= MAX_BRANCH_NAMES * 2) throw new Error(`could not create a branch for ${firstName} in ${owner}/${repo}: the names up to ${branch} are taken`);
    const decision = branchDecision(await branchSha(octokit, owner, repo, branch), { commitSha, baseSha: work.baseSha });
    if (decision === 'reuse') break;
    if (decision === 'fast-forward') {
      await updateBranch(octokit, { owner, repo, branch, sha: commitSha });
      break;
    }
    if (decision === 'create') {
      try {
        await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha: commitSha });
        break;
      } catch (error) {
        // 422: created meanwhile (look again); anything else is an error.
        if (statusOf(error) !== 422) throw error;
        continue;
      }
    }
    const next = nextBranchName(firstName, branch);
    if (next === `${firstName}-${MAX_BRANCH_NAMES + 1}`) {
      throw new Error(`could not create a branch: ${firstName} and ${firstName}-2 … ${firstName}-${MAX_BRANCH_NAMES} all hold other work in ${owner}/${repo}`);
    }
    branch = next;
    save({ branch });
  }

  const body = pullRequestBody({
    summary: result.pullRequest.body || result.summary,
    issueNumber: work.issueNumber,
    commands: result.commands,
    setup: result.setup,
    model: work.model,
    usage: result.usage,
    taskUrl: work.taskUrl,
    requester: work.requester?.login,
  });
  const pr = await openPullRequest(octokit, {
    owner,
    repo,
    head: branch,
    base: work.baseRef,
    title: work.partial ? `[partial] ${title}` : title,
    body,
    draft: work.partial || work.draft,
  });
  return { number: pr.number, url: pr.url, title, created: pr.created };
}
