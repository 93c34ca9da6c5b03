/**
 * An Amazon ECS stand-in for tests: an HTTP server on 127.0.0.1 that speaks the ECS JSON protocol
 * (AWS JSON 1.1: `POST /` with `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Operation>`, JSON
 * bodies, timestamps as epoch seconds, errors as HTTP 4xx/5xx with `{ "__type", "message" }`), so the
 * unmodified `@aws-sdk/client-ecs` reaches it through `AWS_ENDPOINT_URL_ECS` (see {@link EcsStandIn.env}).
 *
 * Operations: RunTask, DescribeTasks, StopTask, ListTasks, RegisterTaskDefinition. RunTask starts the
 * task definition's container command as a local process with ONLY the task definition's environment,
 * the overrides' environment and PATH/HOME (plus {@link EcsStandInOptions.extraEnv}); its status goes
 * PROVISIONING → PENDING → RUNNING → STOPPED with the exit code, `stopCode` and `stoppedReason` as ECS
 * reports them. StopTask sends SIGTERM, then SIGKILL to the process group after the grace.
 *
 * Formats: https://docs.aws.amazon.com/AmazonECS/latest/APIReference/Welcome.html (RunTask,
 * DescribeTasks, StopTask, ListTasks), the JSON protocol
 * https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html, stop codes
 * https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { constants as osConstants } from 'node:os';

/** The JSON protocol's target prefix of ECS. */
export const ECS_TARGET_PREFIX = 'AmazonEC2ContainerServiceV20141113.';

/** One container of a stand-in task definition. */
export interface StandInContainer {
  name: string;
  /**
   * The full argv the container runs (image entrypoint + command, as one list), or, with
   * `entryPoint`, the command only.
   */
  command: string[];
  /**
   * The image's entrypoint. When set, a RunTask container override's `command` replaces `command`
   * (as ECS does: the entrypoint stays); without it, overrides' commands are refused.
   */
  entryPoint?: string[];
  /** The task definition's environment. */
  environment?: Record<string, string>;
}

/** A task definition the stand-in knows (revision 1 when registered through the options). */
export interface StandInTaskDefinition {
  family: string;
  containers: StandInContainer[];
}

/** Options of {@link EcsStandIn.start}. */
export interface EcsStandInOptions {
  /** Working directory of task processes (default: the current directory, the repository root in tests). */
  cwd?: string;
  /**
   * Task definitions (default: family `codex-cloud-runner`, container `runner` with the entrypoint
   * `[process.execPath, 'src/cli.ts']` and the command `['runner', '--claim']`, no environment of
   * its own, as infra/ defines it).
   */
  taskDefinitions?: StandInTaskDefinition[];
  /** Variables added to every task process (e.g. `TMPDIR`); the ECS agent adds a few of its own too. */
  extraEnv?: Record<string, string>;
  /** Time in PROVISIONING and in PENDING each, ms (default 20). */
  provisioningMs?: number;
  /** Grace between SIGTERM and SIGKILL on StopTask, ms (ECS's `stopTimeout`; default 2000). */
  stopGraceMs?: number;
  region?: string;
  accountId?: string;
}

/** One request the stand-in received. */
export interface RecordedEcsRequest {
  /** Operation name, e.g. `RunTask`. */
  operation: string;
  /** Parsed JSON body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary fields
  body: any;
  /** The raw body text, for scans. */
  raw: string;
  headers: http.IncomingHttpHeaders;
}

/** A fault for the next RunTask calls. */
export type RunTaskFault =
  /** RunTask answers 200 with no task and one `failures[]` entry (e.g. `RESOURCE:MEMORY`, `AGENT`). */
  | { kind: 'failure'; reason: string; detail?: string }
  /** RunTask answers an error, e.g. `{ type: 'ThrottlingException', message: 'Rate exceeded' }` (status 400). */
  | { kind: 'error'; type: string; message: string; status?: number };

/** A stand-in task. */
export interface StandInTask {
  taskArn: string;
  clusterArn: string;
  taskDefinitionArn: string;
  family: string;
  containerName: string;
  startedBy?: string;
  group?: string;
  lastStatus: 'PROVISIONING' | 'PENDING' | 'RUNNING' | 'STOPPED';
  desiredStatus: 'RUNNING' | 'STOPPED';
  createdAt: number;
  startedAt?: number;
  stoppedAt?: number;
  stopCode?: string;
  stoppedReason?: string;
  exitCode?: number;
  containerReason?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- echoed as given
  overrides: any;
  tags: Array<{ key: string; value: string }>;
  /** The environment the process got. */
  env: Record<string, string>;
  /** stdout and stderr of the process, interleaved (the CloudWatch log stream), capped at 4 MiB. */
  logs: string;
  process?: ChildProcess;
  /** Resolves when the task reaches STOPPED. */
  stopped: Promise<void>;
}

class EcsError extends Error {
  readonly type: string;
  readonly status: number;
  constructor(type: string, message: string, status = 400) {
    super(message);
    this.type = type;
    this.status = status;
  }
}

/** Seconds since the epoch, as the JSON protocol sends timestamps. */
function epoch(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

/** The stand-in server. */
export class EcsStandIn {
  /** Every request, in arrival order. */
  readonly requests: RecordedEcsRequest[] = [];
  /** Tasks by ARN, in creation order. */
  readonly tasks = new Map<string, StandInTask>();
  readonly #server: http.Server;
  readonly #opts: Required<Omit<EcsStandInOptions, 'taskDefinitions' | 'extraEnv'>> & { extraEnv: Record<string, string> };
  readonly #defs = new Map<string, StandInTaskDefinition & { revision: number }>();
  readonly #runTaskFaults: RunTaskFault[] = [];
  #startFaults: string[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #markStopped = new WeakMap<StandInTask, () => void>();

  private constructor(server: http.Server, opts: EcsStandInOptions) {
    this.#server = server;
    this.#opts = {
      cwd: opts.cwd ?? process.cwd(),
      provisioningMs: opts.provisioningMs ?? 20,
      stopGraceMs: opts.stopGraceMs ?? 2000,
      region: opts.region ?? 'us-east-1',
      accountId: opts.accountId ?? '123456789012',
      extraEnv: opts.extraEnv ?? {},
    };
    const defs = opts.taskDefinitions ?? [
      {
        family: 'codex-cloud-runner',
        containers: [{ name: 'runner', entryPoint: [process.execPath, 'src/cli.ts'], command: ['runner', '--claim'], environment: {} }],
      },
    ];
    for (const def of defs) this.registerTaskDefinition(def);
  }

  /** Starts the stand-in on 127.0.0.1 (a free port). */
  static async start(opts: EcsStandInOptions = {}): Promise<EcsStandIn> {
    const holder: { standIn?: EcsStandIn } = {};
    const server = http.createServer((req, res) => void holder.standIn!.#handle(req, res));
    const standIn = (holder.standIn = new EcsStandIn(server, opts));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return standIn;
  }

  /** `http://127.0.0.1:PORT`. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Variables that point the AWS SDK at the stand-in (endpoint, region, dummy credentials). */
  env(): Record<string, string> {
    return {
      AWS_ENDPOINT_URL_ECS: this.endpoint,
      AWS_REGION: this.#opts.region,
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    };
  }

  /** Requests of one operation. */
  requestsOf(operation: string): RecordedEcsRequest[] {
    return this.requests.filter((r) => r.operation === operation);
  }

  /** Registers (or replaces with a new revision) a task definition. @returns its ARN. */
  registerTaskDefinition(def: StandInTaskDefinition): string {
    const revision = (this.#defs.get(def.family)?.revision ?? 0) + 1;
    this.#defs.set(def.family, { ...def, revision });
    return this.#defArn(def.family, revision);
  }

  /** The next `count` RunTask calls fail with `fault`. */
  failNextRunTask(count: number, fault: RunTaskFault): void {
    for (let i = 0; i < count; i++) this.#runTaskFaults.push(fault);
  }

  /**
   * The next task started fails to start: PENDING → STOPPED with stop code `TaskFailedToStart` and
   * this reason (default a `CannotPullContainerError`), without running its process.
   */
  failNextStart(reason = 'CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref example.com/codex-runner:latest: not found'): void {
    this.#startFaults.push(reason);
  }

  /** Resolves when the task reaches `status` (or STOPPED, which ends every wait). */
  async waitForStatus(taskArn: string, status: StandInTask['lastStatus'], timeoutMs = 30_000): Promise<StandInTask> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const task = this.tasks.get(taskArn);
      if (task && (task.lastStatus === status || task.lastStatus === 'STOPPED')) return task;
      if (Date.now() > deadline) throw new Error(`task ${taskArn} did not reach ${status} (now ${task?.lastStatus})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Stops every process (SIGKILL) and the server. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    for (const task of this.tasks.values()) this.#killGroup(task, 'SIGKILL');
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #defArn(family: string, revision: number): string {
    return `arn:aws:ecs:${this.#opts.region}:${this.#opts.accountId}:task-definition/${family}:${revision}`;
  }

  #clusterName(cluster: string | undefined): string {
    if (!cluster) return 'default';
    const match = /:cluster\/(.+)$/.exec(cluster);
    return match ? match[1]! : cluster;
  }

  #clusterArn(name: string): string {
    return `arn:aws:ecs:${this.#opts.region}:${this.#opts.accountId}:cluster/${name}`;
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(ECS_TARGET_PREFIX) ? target.slice(ECS_TARGET_PREFIX.length) : '';
    const requestId = randomUUID();
    const reply = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary request JSON
    let body: any;
    try {
      if (req.method !== 'POST') throw new EcsError('UnknownOperationException', 'only POST / is supported', 404);
      body = raw ? JSON.parse(raw) : {};
    } catch (error) {
      reply(error instanceof EcsError ? error.status : 400, { __type: error instanceof EcsError ? error.type : 'SerializationException', message: (error as Error).message });
      return;
    }
    this.requests.push({ operation, body, raw, headers: req.headers });
    try {
      switch (operation) {
        case 'RunTask':
          return reply(200, this.#runTask(body));
        case 'DescribeTasks':
          return reply(200, this.#describeTasks(body));
        case 'StopTask':
          return reply(200, this.#stopTask(body));
        case 'ListTasks':
          return reply(200, this.#listTasks(body));
        case 'RegisterTaskDefinition':
          return reply(200, this.#register(body));
        default:
          throw new EcsError('UnknownOperationException', `operation ${JSON.stringify(target)} is not supported by the stand-in`);
      }
    } catch (error) {
      const e = error instanceof EcsError ? error : new EcsError('ServerException', (error as Error).message, 500);
      reply(e.status, { __type: e.type, message: e.message });
    }
  }

  #resolveDef(ref: string | undefined): StandInTaskDefinition & { revision: number } {
    if (!ref) throw new EcsError('InvalidParameterException', 'taskDefinition can not be blank.');
    const name = ref.includes(':task-definition/') ? ref.split(':task-definition/')[1]! : ref;
    const [family, revision] = name.split(':');
    const def = this.#defs.get(family!);
    if (!def || (revision !== undefined && Number(revision) !== def.revision)) throw new EcsError('ClientException', 'TaskDefinition not found.');
    return def;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request JSON
  #register(body: any): unknown {
    const containers: StandInContainer[] = (body.containerDefinitions ?? []).map(
      (c: { name: string; command?: string[]; entryPoint?: string[]; environment?: Array<{ name: string; value: string }> }) => ({
        name: c.name,
        ...(c.entryPoint ? { entryPoint: c.entryPoint } : {}),
        command: c.command ?? [],
        environment: Object.fromEntries((c.environment ?? []).map((e) => [e.name, e.value])),
      }),
    );
    const arn = this.registerTaskDefinition({ family: body.family, containers });
    return { taskDefinition: { taskDefinitionArn: arn, family: body.family, revision: this.#defs.get(body.family)!.revision, status: 'ACTIVE' } };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request JSON
  #runTask(body: any): unknown {
    const def = this.#resolveDef(body.taskDefinition);
    if (body.launchType === 'FARGATE' && !body.networkConfiguration?.awsvpcConfiguration?.subnets?.length) {
      throw new EcsError('InvalidParameterException', "Network Configuration must be provided when networkMode 'awsvpc' is specified.");
    }
    if (body.startedBy !== undefined && String(body.startedBy).length > 36) throw new EcsError('InvalidParameterException', 'startedBy must be at most 36 characters.');
    for (const override of body.overrides?.containerOverrides ?? []) {
      if (!def.containers.some((c) => c.name === override.name)) {
        throw new EcsError('InvalidParameterException', `Override for container named ${override.name} is not a container in the TaskDefinition.`);
      }
    }
    const fault = this.#runTaskFaults.shift();
    if (fault?.kind === 'error') throw new EcsError(fault.type, fault.message, fault.status ?? 400);
    if (fault?.kind === 'failure') {
      return { tasks: [], failures: [{ arn: this.#clusterArn(this.#clusterName(body.cluster)), reason: fault.reason, ...(fault.detail ? { detail: fault.detail } : {}) }] };
    }
    const clusterName = this.#clusterName(body.cluster);
    const container = def.containers[0]!;
    const taskArn = `arn:aws:ecs:${this.#opts.region}:${this.#opts.accountId}:task/${clusterName}/${randomBytes(16).toString('hex')}`;
    const override = (body.overrides?.containerOverrides ?? []).find((o: { name: string }) => o.name === container.name);
    if (override?.command !== undefined && (!Array.isArray(override.command) || !override.command.every((a: unknown) => typeof a === 'string'))) {
      throw new EcsError('InvalidParameterException', 'Container override command must be a list of strings.');
    }
    if (override?.command && !container.entryPoint) {
      throw new EcsError('InvalidParameterException', 'This stand-in task definition has no entryPoint: a command override cannot be applied.');
    }
    const argv = [...(container.entryPoint ?? []), ...(override?.command ?? container.command)];
    const env: Record<string, string> = {};
    for (const key of ['PATH', 'HOME']) if (process.env[key] !== undefined) env[key] = process.env[key]!;
    Object.assign(env, this.#opts.extraEnv, container.environment ?? {});
    for (const e of override?.environment ?? []) env[e.name] = e.value;
    let markStopped!: () => void;
    const task: StandInTask = {
      taskArn,
      clusterArn: this.#clusterArn(clusterName),
      taskDefinitionArn: this.#defArn(def.family, def.revision),
      family: def.family,
      containerName: container.name,
      startedBy: body.startedBy,
      group: body.group ?? `family:${def.family}`,
      lastStatus: 'PROVISIONING',
      desiredStatus: 'RUNNING',
      createdAt: Date.now(),
      overrides: body.overrides ?? { containerOverrides: [] },
      tags: body.tags ?? [],
      env,
      logs: '',
      stopped: new Promise<void>((resolve) => (markStopped = resolve)),
    };
    this.#markStopped.set(task, markStopped);
    this.tasks.set(taskArn, task);
    const startFault = this.#startFaults.shift();
    this.#later(this.#opts.provisioningMs, () => {
      if (task.lastStatus === 'STOPPED') return;
      task.lastStatus = 'PENDING';
      this.#later(this.#opts.provisioningMs, () => {
        if (task.lastStatus === 'STOPPED') return;
        if (startFault) {
          this.#stop(task, { stopCode: 'TaskFailedToStart', stoppedReason: startFault, containerReason: startFault });
          return;
        }
        this.#spawn(task, argv);
      });
    });
    return { tasks: [this.#view(task, false)], failures: [] };
  }

  #spawn(task: StandInTask, argv: string[]): void {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: this.#opts.cwd, env: task.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    task.process = child;
    const append = (chunk: Buffer) => {
      task.logs = (task.logs + chunk.toString('utf8')).slice(-4 * 1024 * 1024);
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    child.once('spawn', () => {
      if (task.lastStatus === 'STOPPED') return;
      task.lastStatus = 'RUNNING';
      task.startedAt = Date.now();
    });
    child.once('error', (error) => {
      this.#stop(task, { stopCode: 'TaskFailedToStart', stoppedReason: `CannotStartContainerError: ${error.message}`, containerReason: `CannotStartContainerError: ${error.message}` });
    });
    child.once('close', (code, signal) => {
      const exitCode = code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : undefined);
      if (task.desiredStatus === 'STOPPED') {
        this.#stop(task, { exitCode, stopCode: 'UserInitiated', stoppedReason: task.stoppedReason ?? 'Task stopped by user' });
      } else {
        this.#stop(task, { exitCode, stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited' });
      }
    });
  }

  #stop(task: StandInTask, how: { exitCode?: number; stopCode: string; stoppedReason: string; containerReason?: string }): void {
    if (task.lastStatus === 'STOPPED') return;
    task.lastStatus = 'STOPPED';
    task.desiredStatus = 'STOPPED';
    task.stoppedAt = Date.now();
    task.stopCode = how.stopCode;
    task.stoppedReason = how.stoppedReason;
    if (how.exitCode !== undefined) task.exitCode = how.exitCode;
    if (how.containerReason) task.containerReason = how.containerReason;
    this.#markStopped.get(task)?.();
  }

  #killGroup(task: StandInTask, signal: NodeJS.Signals): void {
    const pid = task.process?.pid;
    if (!pid || task.process!.exitCode !== null || task.process!.signalCode !== null) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  #find(cluster: string | undefined, ref: string): StandInTask | undefined {
    const clusterName = this.#clusterName(cluster);
    for (const task of this.tasks.values()) {
      if (task.clusterArn !== this.#clusterArn(clusterName)) continue;
      if (task.taskArn === ref || task.taskArn.endsWith(`/${ref}`)) return task;
    }
    return undefined;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request JSON
  #stopTask(body: any): unknown {
    const task = this.#find(body.cluster, String(body.task ?? ''));
    if (!task) throw new EcsError('InvalidParameterException', 'The referenced task was not found.');
    if (task.desiredStatus !== 'STOPPED') {
      task.desiredStatus = 'STOPPED';
      const reason: string = body.reason || 'Task stopped by user';
      task.stoppedReason = reason;
      const child = task.process;
      if (!child) {
        this.#stop(task, { stopCode: 'UserInitiated', stoppedReason: reason });
      } else {
        // Like Docker: SIGTERM to the container's main process, SIGKILL to everything after the grace.
        child.kill('SIGTERM');
        this.#later(this.#opts.stopGraceMs, () => this.#killGroup(task, 'SIGKILL'));
      }
    }
    return { task: this.#view(task, false) };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request JSON
  #describeTasks(body: any): unknown {
    const tags = Array.isArray(body.include) && body.include.includes('TAGS');
    const tasks: unknown[] = [];
    const failures: unknown[] = [];
    for (const ref of body.tasks ?? []) {
      const task = this.#find(body.cluster, String(ref));
      if (task) tasks.push(this.#view(task, tags));
      else failures.push({ arn: String(ref), reason: 'MISSING' });
    }
    return { tasks, failures };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request JSON
  #listTasks(body: any): unknown {
    const clusterArn = this.#clusterArn(this.#clusterName(body.cluster));
    const desired = body.desiredStatus ?? 'RUNNING';
    const arns = [...this.tasks.values()]
      .filter((t) => t.clusterArn === clusterArn)
      .filter((t) => (desired === 'STOPPED' ? t.desiredStatus === 'STOPPED' : t.desiredStatus === 'RUNNING'))
      .filter((t) => body.startedBy === undefined || t.startedBy === body.startedBy)
      .filter((t) => body.family === undefined || t.family === body.family)
      .map((t) => t.taskArn);
    const start = body.nextToken ? Number(Buffer.from(String(body.nextToken), 'base64').toString('utf8')) : 0;
    const size = body.maxResults ?? 100;
    const page = arns.slice(start, start + size);
    const next = start + size < arns.length ? Buffer.from(String(start + size)).toString('base64') : undefined;
    return { taskArns: page, ...(next ? { nextToken: next } : {}) };
  }

  #view(task: StandInTask, withTags: boolean): unknown {
    const containerStatus = task.lastStatus === 'PROVISIONING' ? 'PENDING' : task.lastStatus;
    return {
      taskArn: task.taskArn,
      clusterArn: task.clusterArn,
      taskDefinitionArn: task.taskDefinitionArn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: 'FARGATE',
      platformVersion: '1.4.0',
      cpu: '2048',
      memory: '8192',
      group: task.group,
      ...(task.startedBy ? { startedBy: task.startedBy } : {}),
      createdAt: epoch(task.createdAt),
      ...(task.startedAt ? { startedAt: epoch(task.startedAt) } : {}),
      ...(task.stoppedAt ? { stoppedAt: epoch(task.stoppedAt), stoppingAt: epoch(task.stoppedAt), executionStoppedAt: epoch(task.stoppedAt) } : {}),
      ...(task.stopCode ? { stopCode: task.stopCode } : {}),
      ...(task.stoppedReason && task.lastStatus === 'STOPPED' ? { stoppedReason: task.stoppedReason } : {}),
      overrides: task.overrides,
      containers: [
        {
          containerArn: `${task.taskArn.replace(':task/', ':container/')}/${task.containerName}`,
          taskArn: task.taskArn,
          name: task.containerName,
          lastStatus: containerStatus,
          ...(task.exitCode !== undefined ? { exitCode: task.exitCode } : {}),
          ...(task.containerReason ? { reason: task.containerReason } : {}),
        },
      ],
      ...(withTags ? { tags: task.tags } : {}),
    };
  }
}
