/**
 * The TaskSpec a runner receives for a task (DESIGN.md, "Runner contract"): the request as the
 * trigger stored it, the repository and base commit the app resolved at dispatch, and the two
 * short-lived credentials. Pure: no I/O.
 */
import { TaskSpec, type EarlierFinding, type EnvironmentSpec } from '../contract.ts';
import type { TaskRequest } from './types.ts';

/** The pull request a task works on, as dispatched (read from GitHub when the task started). */
export interface DispatchedPullRequest {
  number: number;
  /** The head branch (in the head repository) and the head commit the runner checks out. */
  headRef: string;
  headSha: string;
  /** The head is in a fork: the runner fetches it as `refs/pull/<number>/head` of this repository. */
  fork: boolean;
  /** The pull request's number of commits (GitHub's `commits`). */
  commits?: number;
}

/** What {@link buildTaskSpec} combines. */
export interface TaskSpecSources {
  /** The agent's network (TaskSpec `network`): the proxy URL with the task's credentials and the allowlist. */
  network?: { proxyUrl: string; allow: string[] };
  taskId: string;
  request: Pick<TaskRequest, 'kind' | 'owner' | 'repo' | 'instruction' | 'context' | 'requester' | 'settings' | 'review'>;
  /** For a review: the app's open earlier findings on the pull request (read at dispatch). */
  earlierFindings?: EarlierFinding[];
  /**
   * The repository as dispatched: clone URL (no credentials), the base branch and its commit (the
   * default branch for issue work, the pull request's base for pull request work).
   */
  repository: { cloneUrl: string; baseRef: string; baseSha: string };
  /** For pull request work: the pull request as dispatched; the runner starts from its head. */
  pullRequest?: DispatchedPullRequest;
  /**
   * AGENTS.md guidance read by the app (fork pull requests: from the base commit); the runner then
   * does not read the checkout's own. Absent: the runner reads the checkout's.
   */
  agentsDocs?: Array<{ path: string; content: string }>;
  /** Read-only installation token for the clone (`contents: read`, this repository only). */
  cloneToken: string;
  /** Task token for the model gateway. */
  taskToken: string;
  /** Base URL of the model gateway as the runner reaches it, e.g. `http://127.0.0.1:3000/v1`. */
  gatewayUrl: string;
  /** Retry policy of the runner's model requests (`baseMs`: first delay, ms). */
  modelRetry?: { retries: number; baseMs: number };
  /** The task's cached environment (issue 12; the backend fills `restore`/`save`); absent: setup always runs. */
  environment?: EnvironmentSpec;
}

/**
 * Builds and validates the TaskSpec of a task.
 * @returns the spec with the contract's defaults applied.
 * @throws ZodError when a part is invalid (e.g. a base SHA that is not 40 hex digits).
 */
export function buildTaskSpec(s: TaskSpecSources): TaskSpec {
  const { request } = s;
  const { settings } = request;
  return TaskSpec.parse({
    id: s.taskId,
    ...(s.network ? { network: s.network } : {}),
    kind: request.kind,
    repository: {
      cloneUrl: s.repository.cloneUrl,
      fullName: `${request.owner}/${request.repo}`,
      token: s.cloneToken,
      baseRef: s.repository.baseRef,
      baseSha: s.repository.baseSha,
      ...(s.pullRequest
        ? {
            headRef: s.pullRequest.headRef,
            headSha: s.pullRequest.headSha,
            // A fork's head is reachable in this repository only through the pull request's ref.
            fetchRef: s.pullRequest.fork ? `refs/pull/${s.pullRequest.number}/head` : `refs/heads/${s.pullRequest.headRef}`,
            ...(s.pullRequest.commits ? { prCommits: s.pullRequest.commits } : {}),
          }
        : {}),
    },
    ...(s.agentsDocs ? { agentsDocs: s.agentsDocs } : {}),
    instruction: request.instruction,
    context: request.context,
    ...(request.requester ? { requester: request.requester.login } : {}),
    model: {
      baseUrl: s.gatewayUrl,
      apiKey: s.taskToken,
      name: settings.model,
      ...(s.modelRetry ? { maxRetries: s.modelRetry.retries, retryBaseMs: s.modelRetry.baseMs } : {}),
      ...(settings.reasoningEffort ? { reasoningEffort: settings.reasoningEffort } : {}),
    },
    limits: {
      wallTimeMs: settings.timeoutMs,
      maxTokens: settings.maxTokens,
      ...(settings.setupTimeoutMs ? { setupTimeoutMs: settings.setupTimeoutMs } : {}),
      ...(settings.maxTurns ? { maxTurns: settings.maxTurns } : {}),
    },
    ...(request.kind === 'review' && request.review && s.pullRequest
      ? {
          review: {
            pullNumber: s.pullRequest.number,
            ...(request.review.sinceSha && request.review.sinceSha !== s.pullRequest.headSha ? { sinceSha: request.review.sinceSha } : {}),
            ...(request.review.focus ? { focus: request.review.focus } : {}),
            ...(request.review.standingFocus ? { standingFocus: request.review.standingFocus } : {}),
            pathsIgnore: request.review.pathsIgnore,
            earlierFindings: s.earlierFindings ?? [],
          },
        }
      : {}),
    setup: {
      ...(settings.setupScript ? { script: settings.setupScript } : {}),
      autoInstall: settings.autoInstall,
      ...(s.environment && settings.maintenance ? { maintenance: settings.maintenance } : {}),
    },
    ...(s.environment ? { environment: s.environment } : {}),
  });
}
