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
 *
 * Environments (DESIGN.md, "Environments"): with an {@link EcsEnvironmentPlanner}, a task whose
 * environment is not cached runs as two Fargate tasks of the same task definition, one after the
 * other, each started with RunTask and each claiming its own spec with its own one-time ticket:
 * 1. the **setup task** (`runner --claim --phase setup` as the container's command override) in
 *    `setupSecurityGroups` (HTTPS egress): checkout, setup, save the environment (e.g. a presigned
 *    PUT URL in its spec); it reports events only, and its exit code 0 means the environment is
 *    saved (any other stop fails the task at the phase the runner reported, or with the stop reason);
 * 2. then the **agent task** (`runner --claim`, the task definition's own command) in
 *    `securityGroups` (no internet on the stack's agent group): restore, agent, result.
 * A cached environment makes one RunTask, the agent task's. Neither RunTask carries a secret.
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

/** The setup task's command (container override): the runner stops after the setup phase. */
export const SETUP_PHASE_COMMAND = ['runner', '--claim', '--phase', 'setup'] as const;

/** The specs of one task's runner tasks, as an {@link EcsEnvironmentPlanner} plans them. */
export interface EcsEnvironmentPlan {
  /**
   * The setup task's spec on a cache miss (it saves the environment, e.g. to a presigned PUT URL its
   * spec carries); undefined on a hit.
   */
  setup?: TaskSpec;
  /**
   * The agent task's spec (it restores the environment, e.g. from a presigned GET URL its spec
   * carries). On a miss, {@link EcsEnvironmentPlanner.afterSetup} may replace it once setup is done.
   */
  agent: TaskSpec;
}

/**
 * The environment cache as the ECS backend sees it: decides per task whether a setup task is needed
 * and what each runner task's spec says about the archive (an S3 implementation mints presigned
 * URLs under the environment bucket's prefix). The backend only sequences the runner tasks.
 */
export interface EcsEnvironmentPlanner {
  /**
   * Plans the runner tasks of `spec` (the service's spec: `id` and the repository must stay).
   * @throws Error when no plan can be made (e.g. S3 unreachable): the task then fails to start.
   */
  plan(spec: TaskSpec): Promise<EcsEnvironmentPlan>;
  /**
   * Called once the setup task exited 0, before the agent task starts: returns the agent task's
   * spec (default `plan.agent`), e.g. with a GET URL minted now, so that its minutes of validity
   * start now, after checking that the archive was saved.
   * @throws Error when the agent task cannot run (e.g. the archive is missing): the task fails
   *   with "the agent task could not be started: …".
   */
  afterSetup?(plan: EcsEnvironmentPlan): Promise<TaskSpec>;
}

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
  /** Security group IDs of the agent task, or of the only task without a planner (empty: the VPC's default group). */
  securityGroups: string[];
  /** Security group IDs of the setup task (default: `securityGroups`). */
  setupSecurityGroups?: string[];
  /** The environment cache; without it every task is one runner task that runs its own setup. */
  environments?: EcsEnvironmentPlanner;
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
  /**
   * Which runner task `arn` is: the setup task (then `agentSpec` waits for it), the agent task, or
   * `between` while the agent task is being started.
   */
  stage: 'setup' | 'between' | 'agent';
  agentSpec?: TaskSpec;
  plan?: EcsEnvironmentPlan;
  /** The setup task's failed phase, from its events. */
  setupFailure?: { phase: Phase; reason: string };
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

/** Whether a task is a setup task: its container override runs {@link SETUP_PHASE_COMMAND}. */
function isSetupTask(task: Task, containerName: string): boolean {
  const overrides = task.overrides?.containerOverrides ?? [];
  const command = (overrides.find((o) => o.name === containerName) ?? overrides[0])?.command;
  return JSON.stringify(command) === JSON.stringify(SETUP_PHASE_COMMAND);
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
   * Plans the task's runner tasks (with an environment planner: a setup task first on a cache miss),
   * issues a claim ticket and starts the first runner task with RunTask, retrying capacity
   * shortages, `failures[]` entries and throttling with backoff; each retry is reported to
   * `job.onEvent` as a `log` event at `warn` level. Resolves once ECS accepted the task
   * (`externalId` is its ARN: the setup task's on a cache miss). The agent task follows the setup
   * task's exit 0 by itself.
   * @throws Error when the planner fails, or RunTask keeps failing or fails in a way a retry cannot
   *   fix (bad parameters, access denied, a missing task definition).
   */
  async start(job: RunnerJob): Promise<RunnerExecution> {
    const spec = job.spec;
    const plan: EcsEnvironmentPlan = this.#o.environments ? await this.#o.environments.plan(spec) : { agent: spec };
    for (const planned of [plan.setup, plan.agent]) {
      if (planned && planned.id !== spec.id) throw new Error(`the environment plan is for task ${planned.id}, not ${spec.id}`);
    }
    const stage = plan.setup ? 'setup' : 'agent';
    const first = plan.setup ?? plan.agent;
    const ticket = this.#o.claims.issue(this.claimSpec(first), this.#o.claimTtlMs);
    const watch = this.#watch(spec.id, spec.repository.headSha ?? spec.repository.baseSha, job.onEvent);
    watch.stage = stage;
    watch.plan = plan;
    if (plan.setup) watch.agentSpec = plan.agent;
    let arn: string;
    try {
      arn = await this.#runTask(first, ticket, job.onEvent, stage);
    } catch (error) {
      this.#o.claims.revoke(spec.id);
      this.#watches.delete(spec.id);
      watch.abort.abort();
      throw error;
    }
    watch.arn = arn;
    watch.lastStatus = 'PROVISIONING';
    this.#emit(watch, 'info', stage === 'setup' ? 'ECS setup task started (provisioning): the environment is not cached' : 'ECS task started (provisioning)');
    this.#log?.info({ taskId: spec.id, taskArn: arn, stage }, 'runner task started');
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
      if (task && isSetupTask(task, this.#o.containerName)) {
        // The agent task's spec lived in the earlier process: this task cannot go on. Fail it
        // (a retry plans it again) and stop the setup task if it still runs.
        watch.lastPhase ??= 'setup';
        if (task.lastStatus !== 'STOPPED') await this.#stopTask(watch, 'codex-cloud: the app restarted during the setup task');
        watch.settle(this.#failed(watch, 'the app restarted while the setup task ran; retry the task'));
        this.#log?.warn({ taskId, taskArn: externalId, lastStatus: task.lastStatus }, 'setup task found on resume; the task fails');
        return this.#execution(watch);
      }
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
      stage: 'agent',
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
      if (watch.stage === 'between') continue; // the agent task is being started
      const arn = watch.arn!;
      let task: Task | undefined;
      try {
        task = await this.#describe(arn);
      } catch (error) {
        this.#log?.warn({ taskId: watch.taskId, taskArn: arn, err: errorText(error) }, 'DescribeTasks failed; will retry');
        continue;
      }
      if (watch.settled) return;
      if (watch.arn !== arn) continue;
      const status = task?.lastStatus ?? 'MISSING';
      if (status !== watch.lastStatus) {
        watch.lastStatus = status;
        // Short poll intervals again while the task moves.
        delay = minMs;
        if (status !== 'STOPPED' && status !== 'MISSING') {
          this.#emit(watch, 'info', `ECS task ${status.toLowerCase()}`);
        }
      }
      if ((status === 'STOPPED' || status === 'MISSING') && watch.stage === 'setup') {
        await this.#setupStopped(watch, task);
        if (watch.settled) return;
        delay = minMs;
        continue;
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

  /**
   * The setup task stopped: exit code 0 (and no failed phase) starts the agent task; anything else
   * settles the task as failed at the phase the runner reported, or with the stop reason.
   */
  async #setupStopped(watch: Watch, task: Task | undefined): Promise<void> {
    if (watch.stop) {
      watch.settle(this.#failed(watch, watch.stop.reason, watch.stop.status));
      return;
    }
    const container = task?.containers?.find((c) => c.name === this.#o.containerName) ?? task?.containers?.[0];
    if (task?.lastStatus === 'STOPPED' && container?.exitCode === 0 && !watch.setupFailure) {
      this.#log?.info({ taskId: watch.taskId, taskArn: watch.arn }, 'setup task finished; starting the agent task');
      await this.#startAgent(watch);
      return;
    }
    const failure = watch.setupFailure;
    if (failure) watch.lastPhase = failure.phase;
    else watch.lastPhase ??= 'setup';
    const reason = failure
      ? failure.reason
      : `the setup task stopped: ${task ? describeStoppedTask(task, this.#o.containerName) : 'it disappeared from ECS'}`;
    this.#log?.warn({ taskId: watch.taskId, taskArn: watch.arn, exitCode: container?.exitCode, reason }, 'setup task failed');
    watch.settle(this.#failed(watch, reason));
  }

  /** Issues the agent task's ticket and starts it, after the setup task saved the environment. */
  async #startAgent(watch: Watch): Promise<void> {
    watch.stage = 'between';
    try {
      const agent = (await this.#o.environments?.afterSetup?.(watch.plan!)) ?? watch.agentSpec!;
      if (agent.id !== watch.taskId) throw new Error(`the agent spec is for task ${agent.id}, not ${watch.taskId}`);
      if (watch.settled) return;
      if (watch.stop) {
        watch.settle(this.#failed(watch, watch.stop.reason, watch.stop.status));
        return;
      }
      const ticket = this.#o.claims.issue(this.claimSpec(agent), this.#o.claimTtlMs);
      const arn = await this.#runTask(agent, ticket, watch.onEvent, 'agent');
      watch.arn = arn;
      // (Re-read: a timeout or a cancel may have come while RunTask ran.)
      const stop = (watch as Watch).stop;
      if (watch.settled || stop) {
        // Stop the new task as well.
        await this.#stopTask(watch, `codex-cloud: ${stop?.reason ?? 'the task ended before its agent task started'}`);
        if (stop && !watch.settled) watch.settle(this.#failed(watch, stop.reason, stop.status));
        return;
      }
      watch.stage = 'agent';
      watch.lastStatus = 'PROVISIONING';
      this.#emit(watch, 'info', 'ECS agent task started (provisioning)');
      this.#log?.info({ taskId: watch.taskId, taskArn: arn, stage: 'agent' }, 'runner task started');
    } catch (error) {
      this.#o.claims.revoke(watch.taskId);
      watch.settle(this.#failed(watch, `the agent task could not be started: ${error instanceof Error ? error.message : String(error)}`));
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
      if (event.type === 'phase' && event.status === 'failed' && watch.stage === 'setup') {
        watch.setupFailure = { phase: event.phase, reason: event.reason ?? `the ${event.phase} phase failed` };
      }
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
    if (watch.stage !== 'agent') {
      // The setup task reports with its exit code, never a result: this one is not the task's.
      this.#log?.warn({ taskId, stage: watch.stage }, 'a result posted before the agent task started was ignored');
      return;
    }
    watch.resolvePosted(result);
    if (watch.stop?.status === 'failed') return; // timed out: the timeout result stands
    watch.settle(result);
  }

  #runTaskInput(spec: TaskSpec, ticket: string, attempt: number, stage: 'setup' | 'agent'): RunTaskCommandInput {
    const o = this.#o;
    const securityGroups = stage === 'setup' ? (o.setupSecurityGroups ?? o.securityGroups) : o.securityGroups;
    return {
      cluster: o.cluster,
      taskDefinition: o.taskDefinition,
      launchType: 'FARGATE',
      count: 1,
      startedBy: STARTED_BY,
      // Idempotency of one attempt (the SDK's own retries reuse it); 64 characters at most.
      clientToken: createHash('sha256')
        .update(stage === 'setup' ? `${spec.id}\nsetup\n${attempt}` : `${spec.id}\n${attempt}`)
        .digest('hex')
        .slice(0, 64),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: o.subnets,
          ...(securityGroups.length ? { securityGroups } : {}),
          assignPublicIp: o.assignPublicIp ? 'ENABLED' : 'DISABLED',
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: o.containerName,
            // The setup task stops after setup; the agent task runs the task definition's command.
            ...(stage === 'setup' ? { command: [...SETUP_PHASE_COMMAND] } : {}),
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

  async #runTask(spec: TaskSpec, ticket: string, onEvent: (event: ProgressEvent) => void, stage: 'setup' | 'agent'): Promise<string> {
    const r = this.#o.runTaskRetry ?? {};
    return pRetry(
      async (attempt) => {
        let out;
        try {
          out = await this.#o.client.send(new RunTaskCommand(this.#runTaskInput(spec, ticket, attempt, stage)));
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
