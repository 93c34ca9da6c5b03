/**
 * The ECS backend end to end, without AWS: the unmodified ECS SDK talks to the ECS stand-in through
 * `AWS_ENDPOINT_URL_ECS`; RunTask starts the real `codex-cloud runner --claim` process, which claims
 * its TaskSpec from the backend's runner API (plain HTTP on 127.0.0.1), clones from a local git smart-
 * HTTP server, talks to a scripted Responses API model and reports events and its result over HTTP.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ECSClient } from '@aws-sdk/client-ecs';
import pino from 'pino';
import { TaskSpec, type ProgressEvent } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { Claims } from '../../src/runners/claims.ts';
import { EcsRunnerBackend } from '../../src/runners/ecs.ts';
import { createEcsBackend } from '../../src/runners/ecs-factory.ts';
import type { RunnerApiHandler } from '../../src/runners/runner-api.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import { EcsStandIn } from '../support/ecs-stand-in.ts';
import { buggyNodeRepo, FIXED_MATH, fixTurns } from '../support/fixtures.ts';
import { createBareRepo, GitHttpServer } from '../support/git-http.ts';
import { ScriptedModel, type ScriptedTurn } from '../support/scripted-model.ts';

const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
/** Token-shaped strings at a token boundary (`task-id` has `sk-` inside a word). */
const TOKEN_SHAPED = /(?<![A-Za-z0-9])(ghs_|sk-|cct_)/;

let dir: string;
let git: GitHttpServer;
let baseSha: string;
let ecs: EcsStandIn;
let store: SqliteTaskStore;
let api: http.Server;
let appUrl: string;
/** The runner API the "app" serves at the moment (undefined: the app is down, 503). */
let mounted: RunnerApiHandler | undefined;
const savedEnv: Record<string, string | undefined> = {};
const log = pino({ level: 'silent' });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ecs-e2e-'));
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
    subnets: ['subnet-1', 'subnet-2'],
    securityGroups: ['sg-runner'],
    assignPublicIp: false,
  },
});
const timings = { poll: { minMs: 50, maxMs: 250 }, runTaskRetry: { minDelayMs: 10, maxDelayMs: 20 }, resultGraceMs: 200 };

function spec(id: string, model: ScriptedModel, taskToken: string): TaskSpec {
  return TaskSpec.parse({
    id,
    kind: 'task',
    repository: { cloneUrl: git.cloneUrl('acme/calc'), fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha },
    instruction: 'The add test fails. Fix it.',
    model: { baseUrl: model.baseUrl, apiKey: taskToken, name: 'gpt-test', retryBaseMs: 10 },
  });
}

async function until(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('start(job) runs a real task through RunTask → claim → runner → result over HTTP, and no secret reaches ECS', async () => {
  const backend = createEcsBackend(ecsConfig(), store, log, timings);
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_e2e_fix', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: fixTurns(), requireAuth: taskToken });
  try {
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: spec('task_e2e_fix', model, taskToken), onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    expect(execution.externalId).toMatch(/^arn:aws:ecs:us-east-1:123456789012:task\/codex\/[0-9a-f]{32}$/);
    const result = await execution.result;
    const task = ecs.tasks.get(execution.externalId)!;
    expect({ status: result.status, failure: result.failure, logs: result.status === 'succeeded' ? '' : task.logs.slice(-3000) }).toEqual({ status: 'succeeded', failure: undefined, logs: '' });
    expect(result.changes).toEqual([{ action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: Buffer.from(FIXED_MATH).toString('base64') }]);

    // Progress came over HTTP, in order, after the backend's own status lines.
    const phases = events.filter((e) => e.type === 'phase' && e.status === 'started').map((e) => (e as { phase: string }).phase);
    expect(phases).toEqual(['checkout', 'setup', 'agent', 'result']);
    expect(events[0]).toMatchObject({ type: 'log', level: 'info', message: 'ECS task started (provisioning)' });
    expect(events.filter((e) => e.type === 'command_end').map((e) => (e as { exitCode: number }).exitCode)).toEqual([1, 0]);

    // The RunTask request: the stand-in saw the runner family, FARGATE, the network, startedBy, tags.
    const runTasks = ecs.requestsOf('RunTask');
    expect(runTasks).toHaveLength(1);
    expect(runTasks[0]!.headers['x-amz-target']).toBe('AmazonEC2ContainerServiceV20141113.RunTask');
    expect(runTasks[0]!.body).toMatchObject({
      cluster: 'codex',
      taskDefinition: 'codex-cloud-runner',
      launchType: 'FARGATE',
      startedBy: 'codex-cloud',
      networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-1', 'subnet-2'], securityGroups: ['sg-runner'], assignPublicIp: 'DISABLED' } },
      tags: [
        { key: 'codex-cloud:task-id', value: 'task_e2e_fix' },
        { key: 'codex-cloud:repository', value: 'acme/calc' },
      ],
    });
    // No secret in anything sent to ECS: neither the clone token nor the task token nor anything token-shaped.
    for (const request of ecs.requests) {
      expect(request.raw).not.toContain(CLONE_TOKEN);
      expect(request.raw).not.toContain(taskToken);
      expect(request.raw).not.toMatch(TOKEN_SHAPED);
    }
    // The runner process got only the task definition's and the overrides' variables (+ PATH, HOME, TMPDIR).
    expect(Object.keys(task.env).sort()).toEqual(['CODEX_APP_URL', 'CODEX_CLAIM_TICKET', 'CODEX_TASK_ID', 'HOME', 'PATH', 'TMPDIR']);
    // The result arrives before the process exits; then the task stops on its own.
    await task.stopped;
    expect(task).toMatchObject({ lastStatus: 'STOPPED', exitCode: 0, stopCode: 'EssentialContainerExited' });
    // Its stdout (CloudWatch) still has the JSON lines, ending with the result.
    expect(JSON.parse(task.logs.trim().split('\n').at(-1)!)).toMatchObject({ type: 'result', result: { status: 'succeeded' } });

    // The ticket was used once: a replay is refused.
    const replay = await fetch(`${appUrl}/runner/v1/claim`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ taskId: 'task_e2e_fix', ticket: task.env.CODEX_CLAIM_TICKET }),
    });
    expect(replay.status).toBe(403);
    expect(await replay.json()).toEqual({ error: { code: 'claim_refused', message: 'claim refused: already used' } });
    // The model saw the task token only; the clone used the clone token.
    expect(model.requests.every((r) => r.headers.authorization === `Bearer ${taskToken}`)).toBe(true);
    expect(git.requests.some((r) => r.token === CLONE_TOKEN && r.status === 200)).toBe(true);
  } finally {
    await model.close();
    await backend.close();
  }
});

test('StopTask stops a busy runner; the result is cancelled with the reason', async () => {
  const backend = createEcsBackend(ecsConfig(), store, log, timings);
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_e2e_stop', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: [{ fault: 'delay', ms: 120_000, then: [{ type: 'message', text: 'too late' }] }], requireAuth: taskToken });
  try {
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: spec('task_e2e_stop', model, taskToken), onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    await until('the model request', () => model.requests.length > 0 && events.some((e) => e.type === 'phase' && e.phase === 'agent'));
    await execution.cancel('cancelled by @octocat');
    const result = await execution.result;
    expect(result.status).toBe('cancelled');
    expect(result.stopReason).toBe('cancelled');
    const stops = ecs.requestsOf('StopTask');
    expect(stops.map((r) => r.body)).toEqual([{ cluster: 'codex', task: execution.externalId, reason: 'codex-cloud: cancelled by @octocat' }]);
    const task = await ecs.waitForStatus(execution.externalId, 'STOPPED');
    await task.stopped;
    expect(task).toMatchObject({ stopCode: 'UserInitiated', stoppedReason: 'codex-cloud: cancelled by @octocat', exitCode: 1 });
  } finally {
    await model.close();
    await backend.close();
  }
});

test('RunTask failures and throttling are retried and reported; a task whose image cannot be pulled fails with that reason', async () => {
  const backend = new EcsRunnerBackend({
    ...ecsConfig().runner,
    ...timings,
    client: new ECSClient({ maxAttempts: 1 }), // our own retries only, so each one is visible
    appUrl,
    claims: new Claims({ store: store.claims }),
    tokens: new TaskTokens({ persistence: store.tokens }),
  });
  mounted = backend.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_e2e_pull', { budgetTokens: 1000, ttlMs: 3_600_000 });
  const model = await ScriptedModel.start({ turns: [] });
  try {
    const before = ecs.requestsOf('RunTask').length;
    ecs.failNextRunTask(1, { kind: 'failure', reason: 'RESOURCE:MEMORY' });
    ecs.failNextRunTask(1, { kind: 'error', type: 'ThrottlingException', message: 'Rate exceeded' });
    ecs.failNextStart();
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: spec('task_e2e_pull', model, taskToken), onEvent: (e) => events.push(e), timeoutMs: 60_000 });
    expect(ecs.requestsOf('RunTask').length - before).toBe(3);
    const warnings = events.filter((e) => e.type === 'log' && e.level === 'warn').map((e) => (e as { message: string }).message);
    expect(warnings).toEqual([
      expect.stringMatching(/^RunTask failed \(RESOURCE:MEMORY\); retrying in \d+ ms$/),
      expect.stringMatching(/^RunTask failed \(ThrottlingException: Rate exceeded\); retrying in \d+ ms$/),
    ]);
    const result = await execution.result;
    expect(result.status).toBe('failed');
    expect(result.failure?.reason).toMatch(/^the runner image could not be pulled \(CannotPullContainerError: /);
    expect(model.requests).toHaveLength(0);
  } finally {
    await model.close();
    await backend.close();
  }
});

test('after an app restart, a result posted while nobody waited is picked up by resume', async () => {
  const first = createEcsBackend(ecsConfig(), store, log, timings);
  mounted = first.httpHandler;
  const tokens = new TaskTokens({ persistence: store.tokens });
  const taskToken = tokens.issue('task_e2e_restart', { budgetTokens: 1_000_000, ttlMs: 3_600_000 });
  const [firstTurn, ...rest] = fixTurns() as [ScriptedTurn, ...ScriptedTurn[]];
  // The first model turn is slow, so the "restart" happens while the runner works.
  const model = await ScriptedModel.start({ turns: [{ fault: 'delay', ms: 500, then: firstTurn as never }, ...rest], requireAuth: taskToken });
  try {
    const events: ProgressEvent[] = [];
    const execution = await first.start({ spec: spec('task_e2e_restart', model, taskToken), onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    await until('the agent phase', () => events.some((e) => e.type === 'phase' && e.phase === 'agent'));
    // The app stops (its pollers with it) and a new process starts on the same SQLite file.
    mounted = undefined;
    await first.close();
    const second = createEcsBackend(ecsConfig(), store, log, timings);
    mounted = second.httpHandler;
    try {
      // The runner finishes and posts its result before the new process resumes the task.
      const task = await ecs.waitForStatus(execution.externalId, 'STOPPED', 60_000);
      await task.stopped;
      expect(task.exitCode).toBe(0);
      const resumed = await second.resume('task_e2e_restart', execution.externalId, { onEvent: () => undefined, lastPhase: 'agent', timeoutMs: 60_000 });
      const result = await resumed!.result;
      expect(result.status).toBe('succeeded');
      expect(result.changes.map((c) => c.path)).toEqual(['src/math.js']);
    } finally {
      await second.close();
    }
  } finally {
    await model.close();
  }
});
