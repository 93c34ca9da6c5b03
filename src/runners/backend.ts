/**
 * How the control plane starts runners. A backend only decides how the runner process starts and how
 * the contract travels (DESIGN.md, "Runner contract"); the runner program is the same everywhere.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Phase, ProgressEvent, TaskResult, TaskSpec } from '../contract.ts';

/** One runner job handed to a backend. */
export interface RunnerJob {
  /** The full TaskSpec, secrets included (read-only clone token, task token for the gateway). */
  spec: TaskSpec;
  /** Progress events as the runner reports them, in order. */
  onEvent: (event: ProgressEvent) => void;
  /**
   * Hard limit for the whole execution, ms, after which the backend kills the runner and resolves
   * with a failed result (the runner enforces `spec.limits.wallTimeMs` itself; this is the backstop).
   */
  timeoutMs: number;
}

/** A started runner. */
export interface RunnerExecution {
  /** Backend-specific id persisted with the task: a pid locally, a task ARN on ECS. */
  readonly externalId: string;
  /**
   * Settles with the runner's TaskResult. Never rejects for runner-level failures: a crash, a kill,
   * a timeout or a missing result become a `failed` TaskResult naming the last phase seen and a
   * readable reason (see {@link failedResult}).
   */
  readonly result: Promise<TaskResult>;
  /** Asks the runner to stop (`@codex stop`); `result` then settles with status `cancelled`. */
  cancel(reason: string): Promise<void>;
}

/** Starts runners. */
export interface RunnerBackend {
  readonly name: 'local' | 'ecs';
  /**
   * Starts a runner for `job`. Resolves once it is launched.
   * @throws Error when the runner cannot be launched at all (after the backend's own retries).
   */
  start(job: RunnerJob): Promise<RunnerExecution>;
  /**
   * Re-attaches to a runner started by a previous process of the app (restart safety). Returns
   * undefined when the backend cannot (local processes die with the app) or the runner is gone,
   * in which case the task fails with a reply saying so.
   */
  resume?(
    taskId: string,
    externalId: string,
    hooks: { onEvent: (event: ProgressEvent) => void; lastPhase?: Phase; timeoutMs: number },
  ): Promise<RunnerExecution | undefined>;
  /** Stops background work (pollers); running tasks are not killed. */
  close?(): Promise<void>;
  /**
   * HTTP routes the backend's runners call on the app (ECS: claim, progress, result); the app
   * mounts them when present. Returns false for paths that are not its own.
   */
  readonly httpHandler?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

/**
 * Builds the TaskResult of a runner that ended without producing one (crash, kill, timeout).
 * @param lastPhase the last phase the runner reported, or `checkout` if none.
 */
export function failedResult(
  spec: Pick<TaskSpec, 'id' | 'repository'>,
  lastPhase: Phase | undefined,
  reason: string,
  status: 'failed' | 'cancelled' = 'failed',
): TaskResult {
  const phase = lastPhase ?? 'checkout';
  return {
    version: 1,
    id: spec.id,
    status,
    stopReason: status === 'cancelled' ? 'cancelled' : 'error',
    ...(status === 'failed' ? { failure: { phase, reason } } : {}),
    // The commit a result is against: the head for pull request work (see TaskResult.baseSha).
    baseSha: spec.repository.headSha ?? spec.repository.baseSha,
    summary: status === 'cancelled' ? 'The task was cancelled.' : `The task failed at the ${phase} phase: ${reason}`,
    changes: [],
    commitMessage: '',
    pullRequest: { title: '', body: '' },
    commands: [],
    findings: [],
    plan: [],
    usage: {
      inputTokens: 0,
      cachedInputTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
      turns: 0,
      phaseMs: {},
      modelMs: 0,
      commandMs: 0,
      totalMs: 0,
    },
  };
}
