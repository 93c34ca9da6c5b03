/**
 * When a mention on a pull request is a request to fix its failing checks (DESIGN.md, "Fix"), and
 * the fix task's instruction and context. The rule, cheapest test first:
 * 1. the target is a pull request;
 * 2. the instruction is about the checks: it names CI, a check, the build, a workflow or a pipeline,
 *    or failing tests (see {@link isAboutChecks}): `@codex fix ci`, `@codex fix the failing checks`,
 *    `@codex fix the build`, `@codex why are the tests failing?`;
 * 3. at least one check run of the head commit (the App's own excluded) failed (`failure` or
 *    `timed_out`).
 * Otherwise the mention is an ordinary task. On a pull request from a fork the agent gets the same
 * instruction and context, but the task stays an ordinary one (kind `task`, no {@link FixRequest}):
 * it follows the fork rule of pull request work (a new pull request on top of the fork's head, as the
 * app cannot push to the fork). The app reads the checks with its installation token
 * (`checks: read`, `actions: read`); the runner never does.
 */
import type { ContextItem } from '../contract.ts';
import { failingCheckNames, failingChecksContext } from '../github/check-logs.ts';
import type { Octokit } from '../github/client.ts';
import { fixInstruction } from '../github/fix-instruction.ts';
import type { FixRequest, TaskTarget } from '../tasks/types.ts';

const ABOUT_CHECKS = /\b(?:ci|checks?|builds?|workflows?|pipelines?)\b|\bfailing\s+(?:unit\s+)?tests?\b|\btests?\s+(?:are\s+|is\s+)?(?:failing|fails?|broken|red)\b|\btest\s+failures?\b/i;

/**
 * Whether an instruction is about the pull request's checks: it names `ci`, `check(s)`, `build(s)`,
 * `workflow(s)` or `pipeline(s)` as a word, or failing tests (`failing tests`, `tests are failing`,
 * `test failures`). Case-insensitive. `fix the failing add test` is not (a test named in the request
 * is an ordinary task).
 */
export function isAboutChecks(instruction: string): boolean {
  return ABOUT_CHECKS.test(instruction);
}

/** A requested fix: the task's instruction, the context to add to the thread's, and what failed. */
export interface RequestedFix {
  instruction: string;
  /** The failing checks' output, annotations, cut logs and workflow files (`trust: 'data'`). */
  items: ContextItem[];
  /** What the fix task publishes about; absent on a fork's pull request (an ordinary task, see the module doc). */
  fix?: FixRequest;
}

/**
 * The fix a mention asks for, or undefined when it is not one (see the module doc for the rule).
 * @param appId this App's id (its own check runs are neither read nor counted).
 * @throws Octokit RequestError when the check runs cannot be listed.
 */
export async function requestedFix(
  octokit: Octokit,
  opts: { owner: string; repo: string; target: TaskTarget; instruction: string; appId: number },
): Promise<RequestedFix | undefined> {
  const { owner, repo, target, instruction, appId } = opts;
  if (target.type !== 'pull_request' || !isAboutChecks(instruction)) return undefined;
  const headSha = target.headSha;
  if (!(await failingCheckNames(octokit, { owner, repo, headSha, appId })).length) return undefined;
  const { items, summary } = await failingChecksContext(octokit, { owner, repo, headSha, appId });
  if (!summary.checks.length) return undefined;
  return { instruction: fixInstruction(summary, instruction), items, ...(target.fork ? {} : { fix: { headSha, summary, request: instruction } }) };
}
