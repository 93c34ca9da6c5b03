/**
 * The ECS runner backend: one Fargate task per coding task (DESIGN.md, "Runner contract", "Trust
 * boundary"). The app calls `RunTask` with only three non-secret variables as container overrides
 * (`CODEX_TASK_ID`, `CODEX_APP_URL`, `CODEX_CLAIM_TICKET`); the runner (`codex-cloud runner --claim`)
 * exchanges the one-time ticket for its TaskSpec over HTTPS and reports progress and its TaskResult
 * back to the app's runner API with its task token (runner-api.ts). Meanwhile the backend follows the
 * task with `DescribeTasks` (PROVISIONING → PENDING → RUNNING → … → STOPPED) so that a task that
 * stops without a result becomes a failed TaskResult with a readable reason.
 *
 * AWS API: RunTask https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html,
 * DescribeTasks …/API_DescribeTasks.html, StopTask …/API_StopTask.html, ListTasks
 * …/API_ListTasks.html; stop codes and reasons
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html.
 * The endpoint follows the SDK's own configuration (`AWS_ENDPOINT_URL_ECS`, `AWS_REGION`, …).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DescribeTasksCommand,
  paginateListTasks,
  RunTaskCommand,
  StopTaskCommand,
  type ECSClient,
  type RunTaskCommandInput,
  type Task,
} from '@aws-sdk/client-ecs';
import pRetry, { AbortError } from 'p-retry';
import type { Phase, ProgressEvent, TaskResult, TaskSpec } from '../contract.ts';
import { CLAIM_ENV, CLAIM_FAILED_EXIT_CODE, RESULT_UNDELIVERED_EXIT_CODE } from '../contract.ts';
import type { TaskTokens } from '../gateway/task-tokens.ts';
import { failedResult, type RunnerBackend, type RunnerExecution, type RunnerJob } from './backend.ts';
import type { Claims } from './claims.ts';
import { createRunnerApi, RUNNER_API_PREFIX, type RunnerApiHandler } from './runner-api.ts';

/** `startedBy` of every task the backend starts (ListTasks filters on it). */
export const STARTED_BY = 'codex-cloud';

/** Tag keys put on runner tasks (when tagging is on). */
export const TASK_TAGS = { taskId: 'codex-cloud:task-id', repository: 'codex-cloud:repository' } as const;

/** The subset of a pino logger the backend uses. */
export interface EcsLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of {@link EcsRunnerBackend}. Times in ms. */
export interface EcsRunnerOptions {
  /** An ECS client (region, credentials and endpoint from the SDK's usual configuration). */
  client: ECSClient;
  /** Cluster name or ARN. */
  cluster: string;
  /** Runner task definition: family, `family:revision` or ARN. */
  taskDefinition: string;
  /** Name of the runner container (the overrides target it). */
  containerName: string;
  /** Subnet IDs of the task's awsvpc network configuration (at least one). */
  subnets: string[];
  /** Security group IDs (empty: the VPC's default group). */
  securityGroups: string[];
  /** `assignPublicIp: ENABLED` (public subnets without NAT); default false (DISABLED). */
  assignPublicIp?: boolean;
  /** Public base URL of the app, as runners reach it (`CODEX_APP_URL`; https in production). */
  appUrl: string;
  /** Claim tickets and posted results. */
  claims: Claims;
  /** Task tokens, to authenticate the runner API's report routes. */
  tokens: TaskTokens;
  log?: EcsLogger;
  /**
   * Tag tasks with the task id and the repository (needs `ecs:TagResource` with
   * `ecs:CreateAction: RunTask`); default true. When RunTask is denied for the tags, the backend
   * retries once without them and stops tagging.
   */
  tags?: boolean;
  /** Retries of RunTask for capacity, throttling and server errors. Defaults: 8 retries, 2 s doubling to 30 s, at most 5 minutes. */
  runTaskRetry?: { retries?: number; minDelayMs?: number; maxDelayMs?: number; maxRetryTimeMs?: number };
  /** DescribeTasks polling: first interval, growing ×1.5 to the maximum. Defaults 2 s and 15 s. */
  poll?: { minMs?: number; maxMs?: number };
  /** After a STOPPED status, how long to wait for a result still in flight; default 3 s. */
  resultGraceMs?: number;
  /** After a cancel, how long to wait for the runner's own `cancelled` result or the stop; default 90 s. */
  cancelGraceMs?: number;
  /** Claim ticket lifetime, ms (default: the Claims' own, 15 minutes). */
  claimTtlMs?: number;
}

/** One of our tasks as {@link EcsRunnerBackend.listOurTasks} reports it. */
export interface EcsTaskSummary {
  taskArn: string;
  /** Our task id (from the `CODEX_TASK_ID` override), if present. */
  taskId?: string;
  lastStatus?: string;
  desiredStatus?: string;
  createdAt?: Date;
  startedAt?: Date;
  stoppedReason?: string;
}

interface Watch {
  taskId: string;
  baseSha: string;
  arn?: string;
  onEvent: (event: ProgressEvent) => void;
  lastPhase?: Phase;
  lastStatus?: string;
  stop?: { status: 'failed' | 'cancelled'; reason: string };
  settled: boolean;
  settle: (result: TaskResult) => void;
  /** Settles once with the execution's result. */
  result: Promise<TaskResult>;
  /** Resolves when a result arrives from the runner. */
  posted: Promise<TaskResult>;
  resolvePosted: (result: TaskResult) => void;
  abort: AbortController;
  timer?: NodeJS.Timeout;
}

function errorName(error: unknown): string {
  const e = error as { name?: string; Code?: string; __type?: string };
  return e.name ?? e.Code ?? 'Error';
}

function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const name = errorName(error);
  return message && message !== name ? `${name}: ${message}` : name;
}

/** AWS errors worth retrying: throttling, server-side errors, capacity shortages. */
export function isRetryableAwsError(error: unknown): boolean {
  const e = error as { name?: string; message?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (e.$retryable) return true;
  const name = e.name ?? '';
  if (/Throttl|TooManyRequests|RequestLimitExceeded|ServerException|ServiceUnavailable|InternalFailure|LimitExceeded/i.test(name)) return true;
  if ((e.$metadata?.httpStatusCode ?? 0) >= 500) return true;
  if (/capacity|try again|rate exceeded/i.test(e.message ?? '')) return true;
  // Network errors from the HTTP handler (no HTTP answer at all).
  if (!e.$metadata && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|socket hang up|TimeoutError/i.test(`${name} ${e.message ?? ''}`)) return true;
  return false;
}

/** RunTask `failures[]` reasons that a retry cannot fix (the task definition or cluster is wrong). */
const FINAL_FAILURE = /^(MISSING|INACTIVE|ATTRIBUTE)/i;

/** Shortens a text for StopTask's `reason` (shown in the console; up to 255 characters here). */
function clip(text: string, max = 255): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Explains why a runner task stopped without a result, from `DescribeTasks`: the stop code, the
 * stopped reason and the runner container's exit code and reason. Examples: `TaskFailedToStart` with
 * `CannotPullContainerError` → the image could not be pulled; exit code 137 or `OutOfMemoryError` →
 * out of memory; exit code 3 → the claim failed; `SpotInterruption` → stopped by AWS.
 */
export function describeStoppedTask(task: Task, containerName: string): string {
  const container = task.containers?.find((c) => c.name === containerName) ?? task.containers?.[0];
  const exit = container?.exitCode;
  const containerReason = container?.reason;
  const stopped = task.stoppedReason;
  const details = [stopped, containerReason].filter((s, i, all): s is string => !!s && all.indexOf(s) === i).join('; ');
  const code = task.stopCode;
  if (code === 'TaskFailedToStart' || (exit === undefined && /CannotPull|ResourceInitialization/i.test(details))) {
    if (/CannotPull/i.test(details)) return `the runner image could not be pulled (${details})`;
    if (/ResourceInitialization/i.test(details)) {
      return `the runner task could not be initialised (${details}); check the execution role and the network path to ECR, Secrets Manager and CloudWatch Logs`;
    }
    return `the runner task failed to start (${details || 'no reason given'})`;
  }
  if (/OutOfMemory/i.test(containerReason ?? '') || (exit === 137 && code !== 'UserInitiated')) {
    return `the runner ran out of memory (exit code ${exit ?? 137}${details ? `, ${details}` : ''}); give the runner task more memory`;
  }
  if (code === 'UserInitiated') return `the runner task was stopped (${details || 'by a user'})`;
  if (code === 'SpotInterruption' || code === 'TerminationNotice' || code === 'ServiceSchedulerInitiated' || code === 'InfrastructureHealth') {
    return `the runner task was stopped by AWS (${code}${details ? `: ${details}` : ''})`;
  }
  if (exit === CLAIM_FAILED_EXIT_CODE) {
    return `the runner could not claim its task (exit code ${exit}): its ticket was refused or the app was unreachable; see the runner's logs`;
  }
  if (exit === RESULT_UNDELIVERED_EXIT_CODE) {
    return `the runner finished but could not deliver its result to the app (exit code ${exit}); see the runner's logs`;
  }
  if (exit === 2) return 'the runner refused its TaskSpec as invalid (exit code 2); see the runner\'s logs';
  if (exit !== undefined && exit !== null) return `the runner exited with code ${exit} without sending a result${details ? ` (${details})` : ''}`;
  return `the runner task stopped without a result (${[code, details].filter(Boolean).join(': ') || 'no reason given'})`;
}

function taskIdOf(task: Task, containerName: string): string | undefined {
  const overrides = task.overrides?.containerOverrides ?? [];
  const override = overrides.find((o) => o.name === containerName) ?? overrides[0];
  return override?.environment?.find((e) => e.name === CLAIM_ENV.taskId)?.value;
}

/** Runs each task as one ECS Fargate task. */
export class EcsRunnerBackend implements RunnerBackend {
  readonly name = 'ecs' as const;
  /**
   * The runner API (`/runner/v1/…`, see runner-api.ts): mount it on the app's HTTP server, which
   * runners reach at `appUrl`.
   */
  readonly httpHandler: RunnerApiHandler;
  readonly #o: EcsRunnerOptions;
  readonly #watches = new Map<string, Watch>();
  readonly #log: EcsLogger | undefined;
  #tags: boolean;
  readonly #housekeeping: NodeJS.Timeout;

  constructor(opts: EcsRunnerOptions) {
    if (!opts.subnets.length) throw new Error('the ECS backend needs at least one subnet');
    this.#o = { ...opts, appUrl: opts.appUrl.replace(/\/+$/, '') };
    this.#log = opts.log;
    this.#tags = opts.tags ?? true;
    this.httpHandler = createRunnerApi({
      claims: opts.claims,
      tokens: opts.tokens,
      log: opts.log,
      onEvents: (taskId, events) => this.#deliverEvents(taskId, events),
      onResult: (taskId, result) => this.#deliverResult(taskId, result),
    });
    this.#housekeeping = setInterval(() => {
      try {
        opts.claims.purge();
      } catch (error) {
        this.#log?.warn({ err: errorText(error) }, 'could not purge old claim tickets');
      }
    }, 10 * 60_000);
    this.#housekeeping.unref();
  }

  /** The TaskSpec the runner claims: the service's, with `sandbox: 'container'` and `report` set. */
  claimSpec(spec: TaskSpec): TaskSpec {
    const token = spec.model.apiKey;
    if (!token) throw new Error('the ECS backend needs the task token (spec.model.apiKey) for the runner to report with');
    return {
      ...spec,
      sandbox: 'container',
      report: { url: `${this.#o.appUrl}${RUNNER_API_PREFIX}/tasks/${encodeURIComponent(spec.id)}`, token },
    };
  }

  /**
   * Issues a claim ticket and starts the runner task with RunTask, retrying capacity shortages,
   * `failures[]` entries and throttling with backoff; each retry is reported to `job.onEvent` as a
   * `log` event at `warn` level. Resolves once ECS accepted the task (`externalId` is its ARN).
   * @throws Error when RunTask keeps failing or fails in a way a retry cannot fix (bad parameters,
   *   access denied, a missing task definition).
   */
  async start(job: RunnerJob): Promise<RunnerExecution> {
    const spec = job.spec;
    const ticket = this.#o.claims.issue(this.claimSpec(spec), this.#o.claimTtlMs);
    const watch = this.#watch(spec.id, spec.repository.headSha ?? spec.repository.baseSha, job.onEvent);
    let arn: string;
    try {
      arn = await this.#runTask(spec, ticket, job.onEvent);
    } catch (error) {
      this.#o.claims.revoke(spec.id);
      this.#watches.delete(spec.id);
      watch.abort.abort();
      throw error;
    }
    watch.arn = arn;
    watch.lastStatus = 'PROVISIONING';
    this.#emit(watch, 'info', 'ECS task started (provisioning)');
    this.#log?.info({ taskId: spec.id, taskArn: arn }, 'runner task started');
    return this.#follow(watch, job.timeoutMs);
  }

  /**
   * Re-attaches to a runner task started by an earlier process of the app.
   * - A result the runner already posted (kept by the runner API) → an execution settled with it.
   * - The task still exists and has not stopped → re-attached: events and the result arrive through
   *   the runner API, and the task is followed with DescribeTasks as after {@link start}.
   * - The task stopped (or is unknown to ECS) without a result → an execution settled with a failed
   *   result naming the stop reason (rather than undefined, so the reply says what happened).
   * `hooks.timeoutMs` counts from the task's creation when ECS reports it.
   */
  async resume(
    taskId: string,
    externalId: string,
    hooks: { onEvent: (event: ProgressEvent) => void; lastPhase?: Phase; timeoutMs: number },
  ): Promise<RunnerExecution | undefined> {
    const baseSha = this.#o.claims.meta(taskId)?.baseSha ?? '';
    const watch = this.#watch(taskId, baseSha, hooks.onEvent);
    watch.arn = externalId;
    watch.lastPhase = hooks.lastPhase;
    const posted = this.#o.claims.result(taskId);
    if (posted) {
      watch.settle(posted);
      this.#log?.info({ taskId, taskArn: externalId }, 'runner result found on resume');
      return this.#execution(watch);
    }
    let timeoutMs = hooks.timeoutMs;
    try {
      const task = await this.#describe(externalId);
      if (task?.createdAt) timeoutMs = Math.max(1000, hooks.timeoutMs - (Date.now() - task.createdAt.getTime()));
      if (task) watch.lastStatus = task.lastStatus;
      if (!task || task.lastStatus === 'STOPPED') {
        // A result may still be in flight.
        const result = await this.#graceForResult(watch);
        if (!result) watch.settle(this.#failed(watch, task ? describeStoppedTask(task, this.#o.containerName) : 'the runner task is unknown to ECS (stopped long ago?)'));
        this.#log?.info({ taskId, taskArn: externalId, lastStatus: task?.lastStatus ?? 'MISSING' }, 'runner task found stopped on resume');
        return this.#execution(watch);
      }
    } catch (error) {
      this.#log?.warn({ taskId, taskArn: externalId, err: errorText(error) }, 'DescribeTasks failed on resume; following the task anyway');
    }
    this.#log?.info({ taskId, taskArn: externalId, lastStatus: watch.lastStatus }, 'runner task re-attached');
    return this.#follow(watch, timeoutMs);
  }

  /**
   * Our tasks on the cluster (`ListTasks` with `startedBy`, then `DescribeTasks` in chunks of 100),
   * for start-up reconciliation logging.
   * @param desiredStatus `RUNNING` (default: tasks not asked to stop) or `STOPPED`.
   */
  async listOurTasks(desiredStatus: 'RUNNING' | 'STOPPED' = 'RUNNING'): Promise<EcsTaskSummary[]> {
    const arns: string[] = [];
    for await (const page of paginateListTasks({ client: this.#o.client }, { cluster: this.#o.cluster, startedBy: STARTED_BY, desiredStatus })) {
      arns.push(...(page.taskArns ?? []));
    }
    const summaries: EcsTaskSummary[] = [];
    for (let i = 0; i < arns.length; i += 100) {
      const { tasks = [] } = await this.#o.client.send(new DescribeTasksCommand({ cluster: this.#o.cluster, tasks: arns.slice(i, i + 100) }));
      for (const task of tasks) {
        summaries.push({
          taskArn: task.taskArn ?? '',
          taskId: taskIdOf(task, this.#o.containerName),
          lastStatus: task.lastStatus,
          desiredStatus: task.desiredStatus,
          createdAt: task.createdAt,
          startedAt: task.startedAt,
          stoppedReason: task.stoppedReason,
        });
      }
    }
    return summaries;
  }

  /** Stops polling and housekeeping; running tasks keep running (and can be resumed). */
  async close(): Promise<void> {
    clearInterval(this.#housekeeping);
    for (const watch of this.#watches.values()) {
      watch.abort.abort();
      clearTimeout(watch.timer);
    }
    this.#watches.clear();
  }

  #watch(taskId: string, baseSha: string, onEvent: (event: ProgressEvent) => void): Watch {
    this.#watches.get(taskId)?.abort.abort();
    let resolveSettled!: (result: TaskResult) => void;
    let resolvePosted!: (result: TaskResult) => void;
    const settledPromise = new Promise<TaskResult>((resolve) => (resolveSettled = resolve));
    const posted = new Promise<TaskResult>((resolve) => (resolvePosted = resolve));
    const watch: Watch = {
      taskId,
      baseSha,
      onEvent,
      settled: false,
      result: settledPromise,
      posted,
      resolvePosted,
      abort: new AbortController(),
      settle: (result) => {
        if (watch.settled) return;
        watch.settled = true;
        clearTimeout(watch.timer);
        watch.abort.abort();
        if (this.#watches.get(taskId) === watch) this.#watches.delete(taskId);
        this.#o.claims.revoke(taskId);
        resolveSettled(result);
      },
    };
    this.#watches.set(taskId, watch);
    return watch;
  }

  #execution(watch: Watch): RunnerExecution {
    return {
      externalId: watch.arn ?? '',
      result: watch.result,
      cancel: async (reason: string) => {
        if (watch.settled) return;
        watch.stop ??= { status: 'cancelled', reason };
        await this.#stopTask(watch, `codex-cloud: ${reason}`);
        // The runner answers SIGTERM with its own `cancelled` result (partial work); the poller
        // settles when the task stops. Do not wait for ever.
        const grace = setTimeout(() => watch.settle(this.#failed(watch, reason, 'cancelled')), this.#o.cancelGraceMs ?? 90_000);
        grace.unref();
        void watch.result.then(() => clearTimeout(grace));
      },
    };
  }

  #follow(watch: Watch, timeoutMs: number): RunnerExecution {
    watch.timer = setTimeout(() => {
      const reason = `the runner timed out after ${Math.round(timeoutMs / 60_000)} minutes and was stopped`;
      watch.stop = { status: 'failed', reason };
      void this.#stopTask(watch, `codex-cloud: ${reason}`);
      watch.settle(this.#failed(watch, reason));
    }, timeoutMs);
    watch.timer.unref();
    void this.#poll(watch);
    return this.#execution(watch);
  }

  #failed(watch: Watch, reason: string, status: 'failed' | 'cancelled' = 'failed'): TaskResult {
    return failedResult({ id: watch.taskId, repository: { baseSha: watch.baseSha } } as Pick<TaskSpec, 'id' | 'repository'>, watch.lastPhase, reason, status);
  }

  async #poll(watch: Watch): Promise<void> {
    const minMs = this.#o.poll?.minMs ?? 2000;
    const maxMs = this.#o.poll?.maxMs ?? 15_000;
    let delay = minMs;
    const signal = watch.abort.signal;
    while (!watch.settled) {
      try {
        await sleep(delay, undefined, { signal, ref: false });
      } catch {
        return; // settled or closed
      }
      delay = Math.min(maxMs, Math.round(delay * 1.5));
      let task: Task | undefined;
      try {
        task = await this.#describe(watch.arn!);
      } catch (error) {
        this.#log?.warn({ taskId: watch.taskId, taskArn: watch.arn, err: errorText(error) }, 'DescribeTasks failed; will retry');
        continue;
      }
      if (watch.settled) return;
      const status = task?.lastStatus ?? 'MISSING';
      if (status !== watch.lastStatus) {
        watch.lastStatus = status;
        // Short poll intervals again while the task moves.
        delay = minMs;
        if (status !== 'STOPPED' && status !== 'MISSING') {
          this.#emit(watch, 'info', `ECS task ${status.toLowerCase()}`);
        }
      }
      if (status === 'STOPPED' || status === 'MISSING') {
        const result = await this.#graceForResult(watch);
        if (result || watch.settled) return;
        if (watch.stop?.status === 'cancelled') {
          watch.settle(this.#failed(watch, watch.stop.reason, 'cancelled'));
          return;
        }
        const reason = task ? describeStoppedTask(task, this.#o.containerName) : 'the runner task disappeared from ECS';
        this.#log?.warn(
          { taskId: watch.taskId, taskArn: watch.arn, stopCode: task?.stopCode, stoppedReason: task?.stoppedReason, exitCode: task?.containers?.[0]?.exitCode },
          'runner task stopped without a result',
        );
        watch.settle(this.#failed(watch, reason));
        return;
      }
    }
  }

  /** Waits up to `resultGraceMs` for a posted result; settles the watch with it. */
  async #graceForResult(watch: Watch): Promise<TaskResult | undefined> {
    const stored = this.#o.claims.result(watch.taskId);
    if (stored) {
      watch.settle(stored);
      return stored;
    }
    const timeout = sleep(this.#o.resultGraceMs ?? 3000, undefined, { ref: false }).then(() => undefined);
    const result = await Promise.race([watch.posted, timeout]);
    if (result) watch.settle(result);
    return result;
  }

  async #describe(arn: string): Promise<Task | undefined> {
    const out = await this.#o.client.send(new DescribeTasksCommand({ cluster: this.#o.cluster, tasks: [arn] }));
    return out.tasks?.find((t) => t.taskArn === arn) ?? out.tasks?.[0];
  }

  #emit(watch: Watch, level: 'info' | 'warn' | 'error', message: string): void {
    this.#emitTo(watch.onEvent, level, message);
  }

  #emitTo(onEvent: (event: ProgressEvent) => void, level: 'info' | 'warn' | 'error', message: string): void {
    try {
      onEvent({ type: 'log', level, message, at: new Date().toISOString() });
    } catch (error) {
      this.#log?.warn({ err: errorText(error) }, 'progress listener failed');
    }
  }

  #deliverEvents(taskId: string, events: ProgressEvent[]): void {
    const watch = this.#watches.get(taskId);
    if (!watch || watch.settled) return; // nobody follows the task in this process (yet)
    for (const event of events) {
      if (event.type === 'phase') watch.lastPhase = event.phase;
      try {
        watch.onEvent(event);
      } catch (error) {
        this.#log?.warn({ taskId, err: errorText(error) }, 'progress listener failed');
      }
    }
  }

  #deliverResult(taskId: string, result: TaskResult): void {
    const watch = this.#watches.get(taskId);
    if (!watch) {
      // After an app restart before `resume`, or for a task that already ended here (timeout).
      this.#log?.info({ taskId }, 'runner result kept for a task nobody follows in this process');
      return;
    }
    watch.resolvePosted(result);
    if (watch.stop?.status === 'failed') return; // timed out: the timeout result stands
    watch.settle(result);
  }

  #runTaskInput(spec: TaskSpec, ticket: string, attempt: number): RunTaskCommandInput {
    const o = this.#o;
    return {
      cluster: o.cluster,
      taskDefinition: o.taskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: STARTED_BY,
      // Idempotency of one attempt (the SDK's own retries reuse it); 64 characters at most.
      clientToken: createHash('sha256').update(`${spec.id}\n${attempt}`).digest('hex').slice(0, 64),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: o.subnets,
          ...(o.securityGroups.length ? { securityGroups: o.securityGroups } : {}),
          assignPublicIp: o.assignPublicIp ? 'ENABLED' : 'DISABLED',
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: o.containerName,
            environment: [
              { name: CLAIM_ENV.taskId, value: spec.id },
              { name: CLAIM_ENV.appUrl, value: o.appUrl },
              { name: CLAIM_ENV.ticket, value: ticket },
            ],
          },
        ],
      },
      ...(this.#tags
        ? {
            tags: [
              { key: TASK_TAGS.taskId, value: spec.id },
              { key: TASK_TAGS.repository, value: spec.repository.fullName },
            ],
          }
        : {}),
    };
  }

  async #runTask(spec: TaskSpec, ticket: string, onEvent: (event: ProgressEvent) => void): Promise<string> {
    const r = this.#o.runTaskRetry ?? {};
    return pRetry(
      async (attempt) => {
        let out;
        try {
          out = await this.#o.client.send(new RunTaskCommand(this.#runTaskInput(spec, ticket, attempt)));
        } catch (error) {
          const denied = /AccessDenied/i.test(errorName(error)) || /not authorized/i.test((error as Error).message ?? '');
          if (this.#tags && denied && /TagResource/i.test((error as Error).message ?? '')) {
            // Tagging on creation needs ecs:TagResource; run untagged rather than not at all.
            this.#tags = false;
            this.#log?.warn({ taskId: spec.id, err: errorText(error) }, 'RunTask may not tag tasks; running runner tasks untagged');
            throw new Error('RunTask was denied the tags; retrying without them', { cause: error });
          }
          if (!isRetryableAwsError(error)) throw new AbortError(new Error(`RunTask failed: ${errorText(error)}`, { cause: error }));
          throw new Error(errorText(error), { cause: error });
        }
        const arn = out.tasks?.[0]?.taskArn;
        if (arn) return arn;
        const failures = (out.failures ?? []).map((f) => [f.reason, f.detail].filter(Boolean).join(': ')).filter(Boolean);
        const text = failures.join('; ') || 'no task and no failure returned';
        if (failures.length && failures.every((f) => FINAL_FAILURE.test(f))) throw new AbortError(new Error(`RunTask failed: ${text}`));
        throw new Error(text);
      },
      {
        retries: r.retries ?? 8,
        minTimeout: r.minDelayMs ?? 2000,
        maxTimeout: r.maxDelayMs ?? 30_000,
        maxRetryTime: r.maxRetryTimeMs ?? 5 * 60_000,
        factor: 2,
        randomize: true,
        onFailedAttempt: ({ error, retryDelay, retriesLeft, attemptNumber }) => {
          this.#log?.warn({ taskId: spec.id, attempt: attemptNumber, retriesLeft, err: error.message }, 'RunTask failed');
          if (retryDelay > 0 && retriesLeft > 0) {
            const seconds = retryDelay >= 1000 ? `${Math.round(retryDelay / 1000)} s` : `${retryDelay} ms`;
            this.#emitTo(onEvent, 'warn', `RunTask failed (${error.message}); retrying in ${seconds}`);
          }
        },
      },
    ).catch((error: unknown) => {
      const message = (error as Error).message ?? String(error);
      throw new Error(message.startsWith('RunTask failed') ? message : `RunTask failed: ${message}`);
    });
  }

  async #stopTask(watch: Watch, reason: string): Promise<void> {
    if (!watch.arn) return;
    try {
      await pRetry(
        async () => {
          try {
            await this.#o.client.send(new StopTaskCommand({ cluster: this.#o.cluster, task: watch.arn, reason: clip(reason) }));
          } catch (error) {
            if (!isRetryableAwsError(error)) throw new AbortError(error as Error);
            throw error;
          }
        },
        { retries: 4, minTimeout: 1000, factor: 2 },
      );
      this.#log?.info({ taskId: watch.taskId, taskArn: watch.arn }, 'runner task stop requested');
    } catch (error) {
      this.#log?.error({ taskId: watch.taskId, taskArn: watch.arn, err: errorText(error) }, 'StopTask failed');
    }
  }
}
