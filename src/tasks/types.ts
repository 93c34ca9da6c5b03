/** Types of the task service: what a trigger asks for and what the store keeps. */
import type { ContextItem, Phase, TaskResult } from '../contract.ts';
import type { FailingChecksSummary } from '../github/check-logs.ts';

/** Task states, in lifecycle order; the last four are final. */
export const TASK_STATES = ['queued', 'running', 'publishing', 'succeeded', 'no_changes', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** States after which nothing more happens to a task. */
export const FINAL_STATES: ReadonlySet<TaskState> = new Set(['succeeded', 'no_changes', 'failed', 'cancelled']);

/** Settings from the repository's `.github/codex.yml` and the app's defaults, resolved at trigger time. */
export interface TaskSettings {
  model: string;
  reasoningEffort?: 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';
  setupScript?: string;
  autoInstall: boolean;
  maxTurns?: number;
  /** Wall-clock limit of the runner, ms. */
  timeoutMs: number;
  /** Time limit of the setup phase, ms (`setup_timeout_minutes`); the runner's default (10 minutes) when absent. */
  setupTimeoutMs?: number;
  /** `maintenance` of the repository's config: run (with network) after a cached environment is restored. */
  maintenance?: string;
  /** `agent_network.allow` of the repository's config; absent: the agent's commands have no network. */
  agentNetworkAllow?: string[];
  maxTokens: number;
  allowWorkflowChanges: boolean;
  draftPullRequests: boolean;
}

/**
 * What a task works on (DESIGN.md, "Thread targets"): an issue (the agent starts from the default
 * branch; the result is a new pull request) or a pull request (the agent starts from its head; the
 * result is a commit on its branch, or a new pull request when the head is in a fork). The pull
 * request fields are those of the event that triggered the task; the app reads the pull request
 * again when it dispatches the task, and the SHAs it dispatched are stored on the task.
 */
export type TaskTarget =
  | { type: 'issue'; number: number; title: string }
  | {
      type: 'pull_request';
      number: number;
      title: string;
      /** The base branch (`base.ref`) and its commit (`base.sha`) at trigger time. */
      baseRef: string;
      baseSha: string;
      /** The head branch (`head.ref`, in `headRepo`) and its commit (`head.sha`) at trigger time. */
      headRef: string;
      headSha: string;
      /** `owner/name` of the repository holding the head branch (`head.repo.full_name`). */
      headRepo: string;
      /** The head is in another repository (a fork): the app cannot push to it. */
      fork: boolean;
      /** GitHub's `maintainer_can_modify` (informational: an App cannot push to a fork either way). */
      maintainerCanModify: boolean;
      /** GitHub's `commits` (the pull request's number of commits), to size the runner's fetch. */
      commits?: number;
    };

/**
 * What triggered the task, where 👀 goes: an issue comment (also on a pull request's conversation),
 * an inline review comment, a review, or the body of a new issue or pull request (`id`: the GitHub id
 * of the comment, review, issue or pull request). Absent for automatic work.
 */
export type TaskOrigin = { type: 'comment' | 'review_comment' | 'review' | 'issue' | 'pull_request'; id: number };

/**
 * What a `review` request adds (resolved at trigger time from `.github/codex.yml` and the request);
 * the earlier findings are read at dispatch.
 */
export interface ReviewRequest {
  /** `review.min_priority` as a number: 0 (P0) … 3 (P3). */
  minPriority: 0 | 1 | 2 | 3;
  /** `review.paths_ignore` glob patterns. */
  pathsIgnore: string[];
  /** `review.focus`: the maintainers' standing instructions. */
  standingFocus?: string;
  /** The text after `@codex review`, its author, and whether that author may instruct. */
  focus?: { text: string; requester: string; trust: 'instruction' | 'data' };
  /** For an incremental review after a push: the head of the last review of this pull request. */
  sinceSha?: string;
  /** An automatic review (`review.auto`), as opposed to one somebody asked for. */
  automatic: boolean;
  /** The app's bot login (`<slug>[bot]`): its own review comments are the earlier findings. */
  botLogin: string;
}

/** A request to run a task, built by a trigger after the gate. */
export interface TaskRequest {
  /**
   * Identifies the request itself (e.g. `issue_comment:<comment id>`, `issues:<issue id>`): one
   * request, one task, whatever the number of deliveries.
   */
  triggerKey: string;
  /** `X-GitHub-Delivery` of the webhook that carried it. */
  deliveryId: string;
  kind: 'task' | 'review' | 'fix';
  installationId: number;
  owner: string;
  repo: string;
  /** The issue or pull request the task works on; its number is the thread the task reports to. */
  target: TaskTarget;
  /** What triggered it (👀 goes there); absent for automatic work. */
  origin?: TaskOrigin;
  /** Who asked (credited as co-author); absent for automatic work. */
  requester?: { login: string; id: number };
  /** The instruction after the mention ('' = resolve the issue / address the pull request thread). */
  instruction: string;
  /** Thread context for the model (issue or pull request, comments, review threads), with `trust`. */
  context: ContextItem[];
  settings: TaskSettings;
  /** For `kind: 'review'`: what the review needs beyond a task's request. */
  review?: ReviewRequest;
  /** For kind `fix`: what failed, read by the app when the fix was triggered. */
  fix?: FixRequest;
  /** `@codex retry --fresh`: rebuild the environment instead of restoring the cached one. */
  fresh?: boolean;
}

/**
 * What a fix task (kind `fix`) is about (DESIGN.md, "Fix"): the failing checks of the pull request's
 * head `headSha` as the app read them (for the commit message and the reply), the person's own words
 * when asked, and for automatic work the attempt the autofix gate recorded.
 */
export interface FixRequest {
  /** The head commit whose checks failed: the fix is dispatched on it, and its commit's parent is it. */
  headSha: string;
  summary: FailingChecksSummary;
  /** The instruction after the mention as the person wrote it (requested fixes; '' when none). */
  request?: string;
  /** Automatic fixes: the gate's attempt id, this attempt's number and the cap (`autofix.max_attempts`). */
  automatic?: { attemptId: string; number: number; max: number };
}

/**
 * A request as stored before targets existed (store versions up to 2): `issueNumber`, `issueTitle`
 * and `reactTo` instead of `target` and `origin`.
 */
export interface LegacyTaskRequest extends Omit<TaskRequest, 'target' | 'origin'> {
  issueNumber: number;
  issueTitle: string;
  reactTo?: { type: 'comment'; id: number } | { type: 'issue' };
}

/**
 * Converts a stored request of any version to the current shape: a legacy request becomes an issue
 * target; its `reactTo` becomes the origin (a comment, or the issue, whose id is read from the
 * `issues:<id>` trigger key, 0 when unknown). A current request is returned as is.
 */
export function upgradeRequest(stored: TaskRequest | LegacyTaskRequest): TaskRequest {
  if ('target' in stored && stored.target) return stored as TaskRequest;
  const { issueNumber, issueTitle, reactTo, ...rest } = stored as LegacyTaskRequest;
  const issueId = /^issues:(\d+)$/.exec(rest.triggerKey)?.[1];
  const origin: TaskOrigin | undefined =
    reactTo?.type === 'comment' ? { type: 'comment', id: reactTo.id } : reactTo?.type === 'issue' ? { type: 'issue', id: issueId ? Number(issueId) : 0 } : undefined;
  return { ...rest, target: { type: 'issue', number: issueNumber, title: issueTitle }, ...(origin ? { origin } : {}) };
}

/** A task as stored. Times are epoch ms. */
export interface TaskRecord {
  id: string;
  triggerKey: string;
  deliveryId: string;
  state: TaskState;
  request: TaskRequest;
  /** Secret part of the task log link. */
  logKey: string;
  progressCommentId?: number;
  phase?: Phase;
  backend?: string;
  externalId?: string;
  result?: TaskResult;
  failure?: { phase: string; reason: string };
  pullRequest?: { number: number; url: string; title: string };
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** The commit the app dispatched the runner on: the parent of anything published for the task. */
  baseSha?: string;
  /** The branch `baseSha` was read from (the pull request's base for issue work). */
  baseRef?: string;
  /** For pull request work: the head commit the app dispatched. */
  headSha?: string;
  /** The branch chosen for publishing (stored before it is created). */
  branch?: string;
  /** The commit created for publishing (stored before a ref points at it). */
  commitSha?: string;
}
