/**
 * EcsRunnerBackend against a mocked ECS client (aws-sdk-client-mock): the exact RunTask parameters (no
 * secret in them), retries of failures[] and throttling, DescribeTasks following, stop reasons,
 * StopTask on cancel and timeout, resume after a restart. Runner reports go through the backend's
 * real runner API on a local HTTP server.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DescribeTasksCommand,
  ECSClient,
  ECSServiceException,
  ListTasksCommand,
  RunTaskCommand,
  StopTaskCommand,
  type Task,
} from '@aws-sdk/client-ecs';
import { mockClient } from 'aws-sdk-client-mock';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { Claims } from '../../src/runners/claims.ts';
import { describeStoppedTask, EcsRunnerBackend, SETUP_PHASE_COMMAND, type EcsRunnerOptions } from '../../src/runners/ecs.ts';

const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
const ARN = 'arn:aws:ecs:us-east-1:123456789012:task/codex/0123456789abcdef0123456789abcdef';
const BASE_SHA = 'c'.repeat(40);

interface Harness {
  backend: EcsRunnerBackend;
  mock: ReturnType<typeof mockClient>;
  claims: Claims;
  tokens: TaskTokens;
  events: ProgressEvent[];
  /** Sets what DescribeTasks answers from now on. */
  describe(task: Partial<Task> | undefined): void;
  spec(id?: string): TaskSpec;
  /** POSTs to the backend's runner API. */
  post(path: string, body: unknown, token: string): Promise<number>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
});

async function harness(opts: Partial<EcsRunnerOptions> = {}): Promise<Harness> {
  const client = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  const mock = mockClient(client);
  const claims = new Claims();
  const tokens = new TaskTokens();
  const backend = new EcsRunnerBackend({
    client,
    cluster: 'codex',
    taskDefinition: 'codex-cloud-runner',
    containerName: 'runner',
    subnets: ['subnet-a', 'subnet-b'],
    securityGroups: ['sg-runner'],
    appUrl: 'https://codex.example.com/',
    claims,
    tokens,
    poll: { minMs: 5, maxMs: 20 },
    resultGraceMs: 20,
    runTaskRetry: { minDelayMs: 5, maxDelayMs: 10 },
    ...opts,
  });
  const server = http.createServer((req, res) => {
    void backend.httpHandler(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(() => backend.close(), () => new Promise<void>((resolve) => server.close(() => resolve())));
  let described: Partial<Task> | undefined = { taskArn: ARN, lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' };
  mock.on(RunTaskCommand).resolves({ tasks: [{ taskArn: ARN, lastStatus: 'PROVISIONING' }], failures: [] });
  mock.on(DescribeTasksCommand).callsFake(() => (described ? { tasks: [{ taskArn: ARN, ...described }], failures: [] } : { tasks: [], failures: [{ arn: ARN, reason: 'MISSING' }] }));
  mock.on(StopTaskCommand).resolves({ task: { taskArn: ARN } });
  const events: ProgressEvent[] = [];
  return {
    backend,
    mock,
    claims,
    tokens,
    events,
    describe: (task) => {
      described = task ? { taskArn: ARN, ...task } : undefined;
    },
    spec: (id = 'task_abc') =>
      TaskSpec.parse({
        id,
        kind: 'task',
        repository: { cloneUrl: 'https://github.com/acme/calc.git', fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha: BASE_SHA },
        instruction: 'fix it',
        model: { baseUrl: 'https://codex.example.com/v1', apiKey: tokens.issue(id, { budgetTokens: 1000, ttlMs: 3_600_000 }), name: 'gpt-test' },
      }),
    post: async (path, body, token) => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
      await res.text();
      return res.status;
    },
  };
}

function succeeded(id: string): TaskResult {
  return { ...failedResult({ id, repository: { baseSha: BASE_SHA } } as TaskSpec, 'result', 'x'), status: 'succeeded', stopReason: 'completed', failure: undefined, summary: 'done' };
}

/** Waits until `cond` holds (checked every 5 ms; the test's own timeout bounds it). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5));
}

const logMessages = (events: ProgressEvent[]) => events.filter((e) => e.type === 'log').map((e) => (e as { message: string }).message);

const job = (h: Harness, spec: TaskSpec, timeoutMs = 60_000) => ({ spec, onEvent: (e: ProgressEvent) => h.events.push(e), timeoutMs });

describe('start', () => {
  test('RunTask gets exactly the configured parameters and no secret; the ticket claims the spec with sandbox and report', async () => {
    const h = await harness();
    const spec = h.spec();
    const execution = await h.backend.start(job(h, spec));
    expect(execution.externalId).toBe(ARN);
    const calls = h.mock.commandCalls(RunTaskCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    const ticket = input.overrides!.containerOverrides![0]!.environment!.find((e) => e.name === 'CODEX_CLAIM_TICKET')!.value!;
    expect(ticket).toMatch(/^ccl_/);
    expect(input).toEqual({
      cluster: 'codex',
      taskDefinition: 'codex-cloud-runner',
      launchType: 'FARGATE',
      count: 1,
      startedBy: 'codex-cloud',
      clientToken: expect.stringMatching(/^[0-9a-f]{64}$/),
      networkConfiguration: { awsvpcConfiguration: { subnets: ['subnet-a', 'subnet-b'], securityGroups: ['sg-runner'], assignPublicIp: 'DISABLED' } },
      overrides: {
        containerOverrides: [
          {
            name: 'runner',
            environment: [
              { name: 'CODEX_TASK_ID', value: 'task_abc' },
              { name: 'CODEX_APP_URL', value: 'https://codex.example.com' },
              { name: 'CODEX_CLAIM_TICKET', value: ticket },
            ],
          },
        ],
      },
      tags: [
        { key: 'codex-cloud:task-id', value: 'task_abc' },
        { key: 'codex-cloud:repository', value: 'acme/calc' },
      ],
    });
    const text = JSON.stringify(input);
    expect(text).not.toContain(CLONE_TOKEN);
    expect(text).not.toContain(spec.model.apiKey!);
    // Token-shaped strings at a token boundary (the tag key `task-id` contains `sk-` mid-word).
    expect(text).not.toMatch(/(?<![A-Za-z0-9])(ghs_|sk-|cct_)/);
    const claimed = h.claims.claim('task_abc', ticket);
    expect(claimed).toEqual({
      ok: true,
      spec: { ...spec, sandbox: 'container', report: { url: 'https://codex.example.com/runner/v1/tasks/task_abc', token: spec.model.apiKey } },
    });
    // The runner's result settles the execution although ECS still says RUNNING.
    h.describe({ lastStatus: 'RUNNING' });
    expect(await h.post('/runner/v1/tasks/task_abc/events', { events: [{ type: 'phase', at: 'now', phase: 'agent', status: 'started' }] }, spec.model.apiKey!)).toBe(200);
    expect(await h.post('/runner/v1/tasks/task_abc/result', succeeded('task_abc'), spec.model.apiKey!)).toBe(200);
    expect(await execution.result).toEqual(succeeded('task_abc'));
    expect(h.events).toContainEqual({ type: 'phase', at: 'now', phase: 'agent', status: 'started' });
    expect(h.mock.commandCalls(StopTaskCommand)).toHaveLength(0);
  });

  test('assignPublicIp and an empty security group list follow the configuration; tagging can be off', async () => {
    const h = await harness({ assignPublicIp: true, securityGroups: [], tags: false });
    await h.backend.start(job(h, h.spec()));
    const input = h.mock.commandCalls(RunTaskCommand)[0]!.args[0].input;
    expect(input.networkConfiguration).toEqual({ awsvpcConfiguration: { subnets: ['subnet-a', 'subnet-b'], assignPublicIp: 'ENABLED' } });
    expect(input.tags).toBeUndefined();
  });

  test('failures[] entries and throttling are retried, each retry reported as a warning event', async () => {
    const h = await harness();
    h.mock
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ arn: 'arn:aws:ecs:us-east-1:123456789012:cluster/codex', reason: 'RESOURCE:MEMORY' }] })
      .rejectsOnce(new ECSServiceException({ name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'Rate exceeded' }))
      .resolvesOnce({ tasks: [], failures: [{ reason: 'AGENT' }] })
      .resolves({ tasks: [{ taskArn: ARN }], failures: [] });
    const execution = await h.backend.start(job(h, h.spec()));
    expect(execution.externalId).toBe(ARN);
    const calls = h.mock.commandCalls(RunTaskCommand);
    expect(calls).toHaveLength(4);
    // Each attempt has its own idempotency token.
    expect(new Set(calls.map((c) => c.args[0].input.clientToken)).size).toBe(4);
    const warnings = h.events.filter((e) => e.type === 'log' && e.level === 'warn').map((e) => (e as { message: string }).message);
    expect(warnings).toEqual([
      expect.stringMatching(/^RunTask failed \(RESOURCE:MEMORY\); retrying in \d+ ms$/),
      expect.stringMatching(/^RunTask failed \(ThrottlingException: Rate exceeded\); retrying in \d+ ms$/),
      expect.stringMatching(/^RunTask failed \(AGENT\); retrying in \d+ ms$/),
    ]);
    for (const e of h.events) expect(typeof e.at).toBe('string');
  });

  test('errors a retry cannot fix fail at once and revoke the ticket; retries run out with a clear error', async () => {
    const h = await harness();
    h.mock.on(RunTaskCommand).rejects(new ECSServiceException({ name: 'InvalidParameterException', $fault: 'client', $metadata: { httpStatusCode: 400 }, message: 'subnet-a not found' }));
    await expect(h.backend.start(job(h, h.spec('task_p')))).rejects.toThrow('RunTask failed: InvalidParameterException: subnet-a not found');
    expect(h.mock.commandCalls(RunTaskCommand)).toHaveLength(1);
    const ticket = h.mock.commandCalls(RunTaskCommand)[0]!.args[0].input.overrides!.containerOverrides![0]!.environment![2]!.value!;
    expect(h.claims.claim('task_p', ticket)).toEqual({ ok: false, reason: 'revoked' });

    h.mock.reset();
    h.mock.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: 'MISSING', detail: 'task definition not found' }] });
    await expect(h.backend.start(job(h, h.spec('task_q')))).rejects.toThrow('RunTask failed: MISSING: task definition not found');
    expect(h.mock.commandCalls(RunTaskCommand)).toHaveLength(1);

    const few = await harness({ runTaskRetry: { retries: 2, minDelayMs: 1, maxDelayMs: 2 } });
    few.mock.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: 'RESOURCE:CPU' }] });
    await expect(few.backend.start(job(few, few.spec()))).rejects.toThrow('RunTask failed: RESOURCE:CPU');
    expect(few.mock.commandCalls(RunTaskCommand)).toHaveLength(3);
  });

  test('when RunTask may not tag, the task runs untagged', async () => {
    const h = await harness();
    h.mock
      .on(RunTaskCommand)
      .rejectsOnce(
        new ECSServiceException({
          name: 'AccessDeniedException',
          $fault: 'client',
          $metadata: { httpStatusCode: 400 },
          message: 'User: arn:aws:sts::123456789012:assumed-role/app is not authorized to perform: ecs:TagResource on resource: arn:aws:ecs:…',
        }),
      )
      .resolves({ tasks: [{ taskArn: ARN }], failures: [] });
    await h.backend.start(job(h, h.spec()));
    const calls = h.mock.commandCalls(RunTaskCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0]!.args[0].input.tags).toHaveLength(2);
    expect(calls[1]!.args[0].input.tags).toBeUndefined();
  });
});

describe('following the task', () => {
  test('STOPPED with exit code 137 and no result → failed, naming the last phase and the memory shortage', async () => {
    const h = await harness();
    const spec = h.spec();
    const execution = await h.backend.start(job(h, spec));
    h.describe({ lastStatus: 'RUNNING' });
    await until(() => logMessages(h.events).includes('ECS task running'));
    expect(await h.post('/runner/v1/tasks/task_abc/events', { events: [{ type: 'phase', at: 'now', phase: 'setup', status: 'started' }] }, spec.model.apiKey!)).toBe(200);
    h.describe({
      lastStatus: 'STOPPED',
      stopCode: 'EssentialContainerExited',
      stoppedReason: 'Essential container in task exited',
      containers: [{ name: 'runner', exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' }],
    });
    const result = await execution.result;
    expect(result.status).toBe('failed');
    expect(result.failure?.phase).toBe('setup');
    expect(result.failure?.reason).toMatch(/^the runner ran out of memory \(exit code 137, Essential container in task exited; OutOfMemoryError: Container killed due to memory usage\); give the runner task more memory$/);
    expect(result.summary).toContain('setup phase');
    // The status changes were reported.
    expect(logMessages(h.events)).toEqual(['ECS task started (provisioning)', 'ECS task running']);
  });

  test('cancel → StopTask with the reason; the task stopping without a result gives a cancelled result', async () => {
    const h = await harness();
    const execution = await h.backend.start(job(h, h.spec()));
    h.describe({ lastStatus: 'RUNNING' });
    await execution.cancel('cancelled by @octocat');
    expect(h.mock.commandCalls(StopTaskCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: 'codex', task: ARN, reason: 'codex-cloud: cancelled by @octocat' },
    ]);
    h.describe({ lastStatus: 'STOPPED', stopCode: 'UserInitiated', stoppedReason: 'codex-cloud: cancelled by @octocat', containers: [{ name: 'runner', exitCode: 143 }] });
    const result = await execution.result;
    expect(result.status).toBe('cancelled');
    expect(result.stopReason).toBe('cancelled');
  });

  test('cancel → the runner\'s own cancelled result (with partial work) wins', async () => {
    const h = await harness();
    const spec = h.spec();
    const execution = await h.backend.start(job(h, spec));
    h.describe({ lastStatus: 'RUNNING' });
    await execution.cancel('cancelled by @octocat');
    const own = { ...succeeded('task_abc'), status: 'cancelled' as const, stopReason: 'cancelled' as const, summary: 'partial' };
    expect(await h.post('/runner/v1/tasks/task_abc/result', own, spec.model.apiKey!)).toBe(200);
    expect(await execution.result).toEqual(own);
  });

  test('timeout → StopTask and a failed result saying so', async () => {
    const h = await harness();
    const execution = await h.backend.start(job(h, h.spec(), 50));
    h.describe({ lastStatus: 'RUNNING' });
    const result = await execution.result;
    expect(result.status).toBe('failed');
    expect(result.failure?.reason).toMatch(/timed out after \d+ minutes and was stopped/);
    expect(h.mock.commandCalls(StopTaskCommand)).toHaveLength(1);
    expect(h.mock.commandCalls(StopTaskCommand)[0]!.args[0].input.reason).toMatch(/^codex-cloud: the runner timed out/);
  });

  test('DescribeTasks errors are tolerated; a task that fails to start gives a readable reason', async () => {
    const h = await harness();
    h.mock
      .on(DescribeTasksCommand)
      .rejectsOnce(new Error('socket hang up'))
      .resolves({
        tasks: [
          {
            taskArn: ARN,
            lastStatus: 'STOPPED',
            stopCode: 'TaskFailedToStart',
            stoppedReason: 'CannotPullContainerError: pull image manifest has been retried 5 time(s)',
            containers: [{ name: 'runner', reason: 'CannotPullContainerError: pull image manifest has been retried 5 time(s)' }],
          },
        ],
      });
    const execution = await h.backend.start(job(h, h.spec()));
    const result = await execution.result;
    expect(result.failure).toEqual({ phase: 'checkout', reason: 'the runner image could not be pulled (CannotPullContainerError: pull image manifest has been retried 5 time(s))' });
  });
});

describe('resume', () => {
  test('a result posted while nobody waited is returned', async () => {
    const h = await harness();
    const spec = h.spec('task_res');
    // Posted before this process attached (e.g. during an app restart).
    expect(await h.post('/runner/v1/tasks/task_res/result', succeeded('task_res'), spec.model.apiKey!)).toBe(200);
    const execution = await h.backend.resume('task_res', ARN, { onEvent: () => undefined, timeoutMs: 60_000 });
    expect(await execution!.result).toEqual(succeeded('task_res'));
    expect(execution!.externalId).toBe(ARN);
  });

  test('a running task is re-attached: events and the result arrive through the runner API', async () => {
    const h = await harness();
    const spec = h.spec('task_run');
    h.describe({ lastStatus: 'RUNNING', createdAt: new Date() });
    const events: ProgressEvent[] = [];
    const execution = await h.backend.resume('task_run', ARN, { onEvent: (e) => events.push(e), lastPhase: 'agent', timeoutMs: 60_000 });
    expect(execution).toBeDefined();
    expect(await h.post('/runner/v1/tasks/task_run/events', { events: [{ type: 'message', at: 'now', text: 'still here' }] }, spec.model.apiKey!)).toBe(200);
    expect(events).toEqual([{ type: 'message', at: 'now', text: 'still here' }]);
    expect(await h.post('/runner/v1/tasks/task_run/result', succeeded('task_run'), spec.model.apiKey!)).toBe(200);
    expect(await execution!.result).toEqual(succeeded('task_run'));
  });

  test('a task that stopped without a result, or that ECS no longer knows, gives a failed result with the reason', async () => {
    const h = await harness();
    h.claims.issue(h.spec('task_gone'));
    h.describe({ lastStatus: 'STOPPED', stopCode: 'SpotInterruption', stoppedReason: 'Your Spot Task was interrupted.', containers: [{ name: 'runner', exitCode: 143 }] });
    const stopped = await h.backend.resume('task_gone', ARN, { onEvent: () => undefined, lastPhase: 'agent', timeoutMs: 60_000 });
    const result = await stopped!.result;
    expect(result.failure).toEqual({ phase: 'agent', reason: 'the runner task was stopped by AWS (SpotInterruption: Your Spot Task was interrupted.)' });
    expect(result.baseSha).toBe(BASE_SHA);
    h.describe(undefined);
    const missing = await h.backend.resume('task_gone', ARN, { onEvent: () => undefined, timeoutMs: 60_000 });
    expect((await missing!.result).failure?.reason).toMatch(/unknown to ECS/);
  });

  test('a setup task found on resume is stopped and the task fails at setup (the agent spec is gone)', async () => {
    const h = await harness();
    h.claims.issue(h.spec('task_setup'));
    h.describe({
      lastStatus: 'RUNNING',
      createdAt: new Date(),
      overrides: { containerOverrides: [{ name: 'runner', command: [...SETUP_PHASE_COMMAND], environment: [{ name: 'CODEX_TASK_ID', value: 'task_setup' }] }] },
    });
    h.mock.on(StopTaskCommand).resolves({});
    const execution = await h.backend.resume('task_setup', ARN, { onEvent: () => undefined, timeoutMs: 60_000 });
    const result = await execution!.result;
    expect(result.failure).toEqual({ phase: 'setup', reason: 'the app restarted while the setup task ran; retry the task' });
    expect(h.mock.commandCalls(StopTaskCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: 'codex', task: ARN, reason: 'codex-cloud: the app restarted during the setup task' },
    ]);
  });
});

test('listOurTasks pages through ListTasks by startedBy and reads the task ids from the overrides', async () => {
  const h = await harness();
  const arn2 = ARN.replace(/.{4}$/, 'ffff');
  h.mock.on(ListTasksCommand).resolvesOnce({ taskArns: [ARN], nextToken: 'page2' }).resolvesOnce({ taskArns: [arn2] });
  h.mock.on(DescribeTasksCommand).resolves({
    tasks: [
      { taskArn: ARN, lastStatus: 'RUNNING', overrides: { containerOverrides: [{ name: 'runner', environment: [{ name: 'CODEX_TASK_ID', value: 'task_1' }] }] } },
      { taskArn: arn2, lastStatus: 'PENDING', overrides: { containerOverrides: [] } },
    ],
  });
  const tasks = await h.backend.listOurTasks();
  expect(tasks.map((t) => [t.taskArn, t.taskId, t.lastStatus])).toEqual([
    [ARN, 'task_1', 'RUNNING'],
    [arn2, undefined, 'PENDING'],
  ]);
  const listed = h.mock.commandCalls(ListTasksCommand);
  expect(listed).toHaveLength(2);
  for (const call of listed) expect(call.args[0].input).toMatchObject({ cluster: 'codex', startedBy: 'codex-cloud', desiredStatus: 'RUNNING' });
  expect(h.mock.commandCalls(DescribeTasksCommand)[0]!.args[0].input).toEqual({ cluster: 'codex', tasks: [ARN, arn2] });
});

test('describeStoppedTask explains the usual stop reasons', () => {
  const d = (task: Partial<Task>) => describeStoppedTask({ lastStatus: 'STOPPED', ...task } as Task, 'runner');
  expect(d({ stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited', containers: [{ name: 'runner', exitCode: 3 }] })).toMatch(/could not claim its task \(exit code 3\)/);
  expect(d({ stopCode: 'EssentialContainerExited', containers: [{ name: 'runner', exitCode: 4 }] })).toMatch(/could not deliver its result/);
  expect(d({ stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited', containers: [{ name: 'runner', exitCode: 1 }] })).toBe(
    'the runner exited with code 1 without sending a result (Essential container in task exited)',
  );
  expect(d({ stopCode: 'UserInitiated', stoppedReason: 'Task stopped by user', containers: [{ name: 'runner', exitCode: 137 }] })).toBe('the runner task was stopped (Task stopped by user)');
  expect(d({ stopCode: 'TaskFailedToStart', stoppedReason: 'ResourceInitializationError: unable to pull secrets or registry auth' })).toMatch(/could not be initialised .*execution role/);
  expect(d({ stopCode: 'TaskFailedToStart', stoppedReason: 'Timeout waiting for network interface provisioning to complete.' })).toBe(
    'the runner task failed to start (Timeout waiting for network interface provisioning to complete.)',
  );
});
