/**
 * The ECS backend's two task kinds end to end, without AWS (DESIGN.md, "Environments"): the
 * unmodified ECS SDK talks to the ECS stand-in, whose RunTask starts the real `codex-cloud runner`
 * processes. With an environment planner, a cache miss makes two RunTask calls (the setup task with
 * the setup security groups and `runner --claim --phase setup`, then the agent task with the agent
 * security groups), a cache hit one; each claims its own spec with its own ticket; neither RunTask
 * carries a secret.
 *
 * The planner here is a trivial in-memory one (the environment "archive" is the fact that setup ran
 * once for the repository and script): it tests the sequencing, not the archive, which the S3
 * planner (presigned PUT/GET URLs in the specs) plugs in through the same interface.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { TaskSpec, type ProgressEvent } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { SETUP_PHASE_COMMAND, type EcsEnvironmentPlan, type EcsEnvironmentPlanner } from '../../src/runners/ecs.ts';
import { createEcsBackend } from '../../src/runners/ecs-factory.ts';
import type { RunnerApiHandler } from '../../src/runners/runner-api.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import { EcsStandIn, type RecordedEcsRequest } from '../support/ecs-stand-in.ts';
import { buggyNodeRepo, FIXED_MATH, fixTurns } from '../support/fixtures.ts';
import { createBareRepo, GitHttpServer } from '../support/git-http.ts';
import { ScriptedModel } from '../support/scripted-model.ts';

const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
const TOKEN_SHAPED = /(?<![A-Za-z0-9])(ghs_|sk-|cct_)/;
const SETUP_SCRIPT = 'echo "installing dependencies"\nmkdir -p node_modules/left-pad\n';

let dir: string;
let git: GitHttpServer;
let baseSha: string;
let ecs: EcsStandIn;
let store: SqliteTaskStore;
let api: http.Server;
let appUrl: string;
let mounted: RunnerApiHandler | undefined;
const savedEnv: Record<string, string | undefined> = {};
const log = pino({ level: 'silent' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ecs-env-'));
  await mkdir(path.join(dir, 'tmp'));
  const repo = await createBareRepo(path.join(dir, 'repos'), 'acme/calc', buggyNodeRepo());
  baseSha = repo.headSha;
  git = await GitHttpServer.start({ root: path.join(dir, 'repos'), tokens: new Map([[CLONE_TOKEN, { repos: ['acme/calc'], write: false }]]) });
  ecs = await EcsStandIn.start({ extraEnv: { TMPDIR: path.join(dir, 'tmp') }, stopGraceMs: 5000 });
  for (const [key, value] of Object.entries(ecs.env())) {
    savedEnv[key] = process.env[key];
    process.env[key] = value;
  }
  store = new SqliteTaskStore(path.join(dir, 'app.db'));
  api = http.createServer((req, res) => {
    if (!mounted) {
      req.resume();
      res.writeHead(503).end();
      return;
    }
    void mounted(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  appUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await ecs?.close();
  await git?.close();
  await new Promise((resolve) => api?.close(resolve));
  store?.close();
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await rm(dir, { recursive: true, force: true });
});

const ecsConfig = () => ({
  publicUrl: appUrl,
  runner: {
    backend: 'ecs' as const,
    cluster: 'codex',
    taskDefinition: 'codex-cloud-runner',
    containerName: 'runner',
    subnets: ['subnet-1'],
    securityGroups: ['sg-agent'],
    setupSecurityGroups: ['sg-setup'],
    assignPublicIp: false,
  },
});
const timings = { poll: { minMs: 50, maxMs: 250 }, runTaskRetry: { minDelayMs: 10, maxDelayMs: 20 }, resultGraceMs: 200 };

/**
 * The trivial planner: an environment is "cached" once a setup task of the same repository and
 * setup script exited 0. The agent spec of a planned task has no setup script (it would restore).
 */
class MemoryPlanner implements EcsEnvironmentPlanner {
  readonly cached = new Set<string>();
  readonly events: string[] = [];
  plan(spec: TaskSpec): Promise<EcsEnvironmentPlan> {
    const key = `${spec.repository.fullName}\n${spec.setup.script ?? ''}`;
    const agent: TaskSpec = { ...spec, setup: { autoInstall: false } };
    this.events.push(`plan ${spec.id}: ${this.cached.has(key) ? 'hit' : 'miss'}`);
    return Promise.resolve(this.cached.has(key) ? { agent } : { setup: spec, agent });
  }
  afterSetup(plan: EcsEnvironmentPlan): Promise<TaskSpec> {
    this.events.push(`saved ${plan.agent.id} (RunTask calls so far: ${ecs.requestsOf('RunTask').length})`);
    this.cached.add(`${plan.setup!.repository.fullName}\n${plan.setup!.setup.script ?? ''}`);
    return Promise.resolve(plan.agent);
  }
}

function spec(id: string, model: ScriptedModel, taskToken: string, script = SETUP_SCRIPT): TaskSpec {
  return TaskSpec.parse({
    id,
    kind: 'task',
    repository: { cloneUrl: git.cloneUrl('acme/calc'), fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha },
    instruction: 'The add test fails. Fix it.',
    model: { baseUrl: model.baseUrl, apiKey: taskToken, name: 'gpt-test', retryBaseMs: 10 },
    setup: { script, autoInstall: false },
  });
}

/** The RunTask calls of one task, as the stand-in recorded them. */
function runTasksOf(taskId: string): RecordedEcsRequest[] {
  return ecs
    .requestsOf('RunTask')
    .filter((r) => r.body.overrides.containerOverrides[0].environment.some((e: { name: string; value: string }) => e.name === 'CODEX_TASK_ID' && e.value === taskId));
}

function expectNoSecrets(taskToken: string): void {
  for (const request of ecs.requests) {
    expect(request.raw).not.toContain(CLONE_TOKEN);
    expect(request.raw).not.toContain(taskToken);
    expect(request.raw).not.toMatch(TOKEN_SHAPED);
  }
}

const startedPhases = (events: ProgressEvent[]) =>
  events.filter((e) => e.type === 'phase' && e.status === 'started').map((e) => (e as { phase: string }).phase);
const setupCommands = (events: ProgressEvent[]) =>
  events.filter((e) => e.type === 'command_begin' && (e as { phase?: string }).phase === 'setup');

test('a cache miss runs a setup task (setup groups, --phase setup), then the agent task (agent groups); a hit runs the agent task only', async () => {
  const planner = new MemoryPlanner();
  const backend = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: planner });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const missToken = tokens.issue('task_env_miss', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const hitToken = tokens.issue('task_env_hit', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: [...fixTurns(), ...fixTurns()] });
  try {
    // ── Miss ──
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: spec('task_env_miss', model, missToken), onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    const result = await execution.result;
    const calls = runTasksOf('task_env_miss');
    const tasks = calls.map((c) => [...ecs.tasks.values()].find((t) => t.env.CODEX_CLAIM_TICKET === c.body.overrides.containerOverrides[0].environment.find((e: { name: string }) => e.name === 'CODEX_CLAIM_TICKET').value)!);
    expect({ status: result.status, failure: result.failure, logs: result.status === 'succeeded' ? '' : tasks.map((t) => t.logs.slice(-2000)) }).toEqual({
      status: 'succeeded',
      failure: undefined,
      logs: '',
    });
    expect(result.changes).toEqual([{ action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: Buffer.from(FIXED_MATH).toString('base64') }]);
    expect(calls).toHaveLength(2);
    const [setupCall, agentCall] = calls.map((c) => c.body);
    // The setup task: the setup groups and the setup command; the agent task: the agent groups and the task definition's command.
    expect(setupCall.networkConfiguration.awsvpcConfiguration).toEqual({ subnets: ['subnet-1'], securityGroups: ['sg-setup'], assignPublicIp: 'DISABLED' });
    expect(setupCall.overrides.containerOverrides[0].command).toEqual([...SETUP_PHASE_COMMAND]);
    expect(agentCall.networkConfiguration.awsvpcConfiguration).toEqual({ subnets: ['subnet-1'], securityGroups: ['sg-agent'], assignPublicIp: 'DISABLED' });
    expect(agentCall.overrides.containerOverrides[0].command).toBeUndefined();
    expect(execution.externalId).toBe(tasks[0]!.taskArn);
    // One ticket per RunTask, each used once; only the three non-secret variables in each.
    const ticketOf = (call: { overrides: { containerOverrides: { environment: { name: string; value: string }[] }[] } }) =>
      call.overrides.containerOverrides[0]!.environment.find((e) => e.name === 'CODEX_CLAIM_TICKET')!.value;
    expect(ticketOf(setupCall)).not.toBe(ticketOf(agentCall));
    for (const call of [setupCall, agentCall]) {
      expect(call.overrides.containerOverrides[0].environment.map((e: { name: string }) => e.name).sort()).toEqual(['CODEX_APP_URL', 'CODEX_CLAIM_TICKET', 'CODEX_TASK_ID']);
      const replay = await fetch(`${appUrl}/runner/v1/claim`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ taskId: 'task_env_miss', ticket: ticketOf(call) }),
      });
      expect(replay.status).toBe(403);
    }
    // The setup task exited 0 before the agent task was started; the planner heard of it in between.
    expect(tasks[0]).toMatchObject({ lastStatus: 'STOPPED', exitCode: 0 });
    expect(planner.events).toEqual(['plan task_env_miss: miss', 'saved task_env_miss (RunTask calls so far: 1)']);
    // The setup script ran once, in the setup task; the agent task ran no setup command.
    expect(setupCommands(events)).toHaveLength(1);
    expect(tasks[0]!.logs).toContain('installing dependencies');
    expect(tasks[1]!.logs).not.toContain('installing dependencies');
    expect(startedPhases(events)).toEqual(['checkout', 'setup', 'checkout', 'setup', 'agent', 'result']);
    expect(events.filter((e) => e.type === 'log' && e.level === 'info' && /^ECS .*task started/.test(e.message)).map((e) => (e as { message: string }).message)).toEqual([
      'ECS setup task started (provisioning): the environment is not cached',
      'ECS agent task started (provisioning)',
    ]);

    // ── Hit ──
    const hitEvents: ProgressEvent[] = [];
    const hit = await backend.start({ spec: spec('task_env_hit', model, hitToken), onEvent: (e) => hitEvents.push(e), timeoutMs: 120_000 });
    const hitResult = await hit.result;
    expect(hitResult.status).toBe('succeeded');
    const hitCalls = runTasksOf('task_env_hit');
    expect(hitCalls).toHaveLength(1);
    expect(hitCalls[0]!.body.networkConfiguration.awsvpcConfiguration.securityGroups).toEqual(['sg-agent']);
    expect(hitCalls[0]!.body.overrides.containerOverrides[0].command).toBeUndefined();
    expect(setupCommands(hitEvents)).toHaveLength(0);
    expect(planner.events.at(-1)).toBe('plan task_env_hit: hit');

    expectNoSecrets(missToken);
    expectNoSecrets(hitToken);
  } finally {
    await model.close();
    await backend.close();
  }
}, 180_000);

test('a failing setup task fails the task at the setup phase with the runner\'s reason; no agent task starts', async () => {
  const planner = new MemoryPlanner();
  const backend = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: planner });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_env_broken', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: fixTurns() });
  try {
    const execution = await backend.start({
      spec: spec('task_env_broken', model, taskToken, 'echo "no such registry" >&2\nexit 7\n'),
      onEvent: () => {},
      timeoutMs: 120_000,
    });
    const result = await execution.result;
    expect(result.status).toBe('failed');
    expect(result.failure?.phase).toBe('setup');
    expect(result.failure?.reason).toContain('no such registry');
    expect(runTasksOf('task_env_broken')).toHaveLength(1);
    expect(planner.events).toEqual(['plan task_env_broken: miss']);
    expect(model.requests).toHaveLength(0);
    expectNoSecrets(taskToken);
  } finally {
    await model.close();
    await backend.close();
  }
}, 120_000);

test('a setup task that cannot start fails the task with the stop reason; the agent RunTask failing after setup fails it too', async () => {
  const planner = new MemoryPlanner();
  const backend = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: planner });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const model = await ScriptedModel.start({ turns: fixTurns() });
  try {
    // The setup task's image cannot be pulled.
    ecs.failNextStart();
    const pullToken = tokens.issue('task_env_pull', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
    const pull = await backend.start({ spec: spec('task_env_pull', model, pullToken, 'echo pull'), onEvent: () => {}, timeoutMs: 120_000 });
    const pulled = await pull.result;
    expect(pulled.status).toBe('failed');
    expect(pulled.failure).toEqual({ phase: 'setup', reason: expect.stringMatching(/^the setup task stopped: the runner image could not be pulled \(CannotPullContainerError/) });
    expect(runTasksOf('task_env_pull')).toHaveLength(1);

    // Setup succeeds, then RunTask of the agent task is denied.
    const deniedPlanner = new MemoryPlanner();
    deniedPlanner.afterSetup = (plan) => {
      ecs.failNextRunTask(1, { kind: 'error', type: 'AccessDeniedException', message: 'not authorized to perform: ecs:RunTask' });
      return MemoryPlanner.prototype.afterSetup.call(deniedPlanner, plan);
    };
    await backend.close();
    const denied = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: deniedPlanner });
    mounted = denied.httpHandler;
    try {
      const token = tokens.issue('task_env_denied', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
      const execution = await denied.start({ spec: spec('task_env_denied', model, token, 'echo ok'), onEvent: () => {}, timeoutMs: 120_000 });
      const result = await execution.result;
      expect(result.status).toBe('failed');
      expect(result.failure?.reason).toMatch(/^the agent task could not be started: .*AccessDeniedException/);
      // The second RunTask was made (and refused); no agent process ran, no model request.
      expect(runTasksOf('task_env_denied')).toHaveLength(2);
      expect([...ecs.tasks.values()].filter((t) => t.env.CODEX_TASK_ID === 'task_env_denied')).toHaveLength(1);
      expect(model.requests).toHaveLength(0);
    } finally {
      await denied.close();
    }
  } finally {
    await model.close();
    await backend.close();
  }
}, 120_000);

test('cancel during the setup task stops it and starts no agent task', async () => {
  const planner = new MemoryPlanner();
  const backend = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: planner });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_env_cancel', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: fixTurns() });
  try {
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: spec('task_env_cancel', model, taskToken, 'sleep 60\n'), onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.type === 'command_begin')) {
      if (Date.now() > deadline) throw new Error('the setup command did not start');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await execution.cancel('cancelled by @octocat');
    const result = await execution.result;
    expect(result.status).toBe('cancelled');
    expect(ecs.requestsOf('StopTask').filter((r) => r.body.task === execution.externalId)).toHaveLength(1);
    // Give a wrongly started agent task the time to show up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(runTasksOf('task_env_cancel')).toHaveLength(1);
    expect(planner.events).toEqual(['plan task_env_cancel: miss']);
  } finally {
    await model.close();
    await backend.close();
  }
}, 120_000);

test('when the planner finds no archive after setup, the task fails before any agent task', async () => {
  const planner = new MemoryPlanner();
  planner.afterSetup = () => Promise.reject(new Error('the environment archive was not saved (HeadObject: 404)'));
  const backend = createEcsBackend(ecsConfig(), store, log, { ...timings, environments: planner });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_env_unsaved', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: fixTurns() });
  try {
    const execution = await backend.start({ spec: spec('task_env_unsaved', model, taskToken, 'echo ok'), onEvent: () => {}, timeoutMs: 120_000 });
    const result = await execution.result;
    expect(result.status).toBe('failed');
    expect(result.failure?.reason).toBe('the agent task could not be started: the environment archive was not saved (HeadObject: 404)');
    expect(runTasksOf('task_env_unsaved')).toHaveLength(1);
    expect(model.requests).toHaveLength(0);
  } finally {
    await model.close();
    await backend.close();
  }
}, 120_000);
