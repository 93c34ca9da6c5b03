/** Types of the task service: what a trigger asks for and what the store keeps. */
import type { ContextItem, Phase, TaskResult } from '../contract.ts';

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
  maxTokens: number;
  allowWorkflowChanges: boolean;
  draftPullRequests: boolean;
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
  issueNumber: number;
  issueTitle: string;
  /** Who asked (credited as co-author); absent for automatic work. */
  requester?: { login: string; id: number };
  /** The instruction after the mention ('' = resolve the issue). */
  instruction: string;
  /** Untrusted thread context for the model (issue body, earlier comments). */
  context: ContextItem[];
  /** What to react 👀 to. */
  reactTo: { type: 'comment'; id: number } | { type: 'issue' };
  settings: TaskSettings;
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
