/**
 * End to end with the ECS backend: the real app process (`codex-cloud serve`, CODEX_RUNNER_BACKEND=ecs)
 * reaches the ECS stand-in through AWS_ENDPOINT_URL_ECS; the stand-in starts the real
 * `codex-cloud runner --claim` for each RunTask, which claims its TaskSpec from the app, talks to the
 * model through the app's gateway and reports back over HTTP. An issue mention becomes a pull
 * request, and a task survives an app crash in the middle of its agent phase.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppHarness, UPSTREAM_KEY, waitFor } from '../support/app-harness.ts';
import { EcsStandIn } from '../support/ecs-stand-in.ts';
import { buggyNodeRepo, FIXED_MATH, fixTurns } from '../support/fixtures.ts';

const REPO = 'acme/calc';
const DONE = /✅ \*\*Done\*\*/;
const ENDED = /✅ \*\*Done\*\*|❌ \*\*Failed\*\*|⏹️ \*\*Cancelled\*\*/;
/** Token-shaped strings at a token boundary (`task-id` has `sk-` inside a word). */
const TOKEN_SHAPED = /(?<![A-Za-z0-9])(ghs_|sk-|cct_)/;

let h: AppHarness;
let ecs: EcsStandIn;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ecs-app-'));
  await mkdir(path.join(tmp, 'runner-tmp'));
  ecs = await EcsStandIn.start({ extraEnv: { TMPDIR: path.join(tmp, 'runner-tmp') } });
  h = await AppHarness.start({
    env: {
      ...ecs.env(),
      CODEX_RUNNER_BACKEND: 'ecs',
      CODEX_ECS_CLUSTER: 'codex',
      CODEX_ECS_TASK_DEFINITION: 'codex-cloud-runner',
      CODEX_ECS_CONTAINER_NAME: 'runner',
      CODEX_ECS_SUBNETS: 'subnet-1,subnet-2',
      CODEX_ECS_SECURITY_GROUPS: 'sg-runner',
      // Long enough for the runner's model requests to outlast an app restart.
      CODEX_MODEL_RETRY_BASE_MS: '300',
    },
  });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
  await ecs?.close();
  await rm(tmp, { recursive: true, force: true });
});




test('an issue mention becomes a pull request through one ECS task, and nothing secret goes to ECS', async () => {
  h.model.push(...fixTurns());
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex please fix the failing add test');
  expect(await h.deliver(delivery)).toBe(200);
  const done = await waitFor('the final reply', () => (ENDED.test(h.botComments(REPO, number)[0]?.body ?? '') ? h.botComments(REPO, number)[0] : undefined), 90_000);
  expect({ body: done.body, runner: DONE.test(done.body) ? '' : [...ecs.tasks.values()].at(-1)?.logs.slice(-2000) }).toEqual({ body: expect.stringMatching(DONE), runner: '' });
  const row = h.task(number)!;
  expect(row).toMatchObject({ state: 'succeeded', backend: 'ecs' });
  expect(row.external_id).toMatch(/^arn:aws:ecs:us-east-1:123456789012:task\/codex\/[0-9a-f]{32}$/);

  const pulls = (await h.github.pulls(REPO)) as Array<{ number: number; head: { ref: string } }>;
  expect(pulls).toHaveLength(1);
  expect(done.body).toContain(`#${pulls[0]!.number}`);
  expect(await h.github.git(REPO, 'show', `${pulls[0]!.head.ref}:src/math.js`)).toBe(FIXED_MATH);

  // One RunTask, for that task, with only the three variables; the task ran the runner to exit 0.
  const runTasks = ecs.requestsOf('RunTask');
  expect(runTasks).toHaveLength(1);
  expect(runTasks[0]!.body.overrides.containerOverrides[0].environment.map((e: { name: string }) => e.name)).toEqual([
    'CODEX_TASK_ID',
    'CODEX_APP_URL',
    'CODEX_CLAIM_TICKET',
  ]);
  const task = ecs.tasks.get(row.external_id!)!;
  await task.stopped;
  expect(task).toMatchObject({ lastStatus: 'STOPPED', exitCode: 0 });
  expect(task.env.CODEX_TASK_ID).toBe(row.id);
  expect(task.env.CODEX_APP_URL).toBe(h.url);

  // Nothing sent to ECS holds a secret: no installation token, task token or OpenAI key.
  const cloneTokens = h.github.tokens.map((t) => t.token);
  expect(cloneTokens.length).toBeGreaterThan(0);
  for (const request of ecs.requests) {
    for (const token of cloneTokens) expect(request.raw).not.toContain(token);
    expect(request.raw).not.toContain(UPSTREAM_KEY);
    expect(request.raw).not.toMatch(TOKEN_SHAPED);
  }
  // The model was reached through the app's gateway only.
  for (const req of h.model.requests) expect(req.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  expect(h.model.pendingTurns).toBe(0);
});

test('a task survives an app crash in the middle of its agent phase: the runner keeps going and the new process resumes it', async () => {
  const before = ecs.requestsOf('RunTask').length;
  // The first turn runs a 5-second command; the app is killed and restarted meanwhile.
  h.model.push([{ type: 'function_call', name: 'shell', arguments: { command: ['node', '-e', 'setTimeout(() => {}, 5000)'], timeout_ms: 60_000 } }], ...fixTurns());
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add please');
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the first model request', () => h.model.requests.length > 5);
  await waitFor('the agent phase', () => h.task(number)?.phase === 'agent');
  const arn = h.task(number)!.external_id!;

  await h.stopApp('SIGKILL');
  expect(ecs.tasks.get(arn)!.lastStatus).toBe('RUNNING');
  await h.startApp();

  const done = await waitFor('the final reply after the restart', () => (ENDED.test(h.botComments(REPO, number)[0]?.body ?? '') ? h.botComments(REPO, number)[0] : undefined), 90_000);
  expect(done.body).toMatch(DONE);
  expect(h.task(number)).toMatchObject({ state: 'succeeded', external_id: arn });
  // The new process re-attached to the running task (rather than failing it).
  expect(h.logLines().filter((l) => l.msg === 'runner task re-attached').map((l) => l.taskArn)).toEqual([arn]);
  // The same ECS task did the work: no second RunTask, no StopTask.
  expect(ecs.requestsOf('RunTask').length - before).toBe(1);
  expect(ecs.requestsOf('StopTask')).toHaveLength(0);
  await ecs.tasks.get(arn)!.stopped;
  expect(ecs.tasks.get(arn)!.exitCode).toBe(0);
  const pulls = (await h.github.pulls(REPO)) as Array<{ number: number }>;
  expect(done.body).toContain(`#${pulls.at(-1)!.number}`);
  // One progress comment, edited in place across the restart.
  expect(h.github.comments(REPO, number).filter((c) => (c.user as { login: string }).login === h.github.botLogin)).toHaveLength(1);
  expect(h.model.pendingTurns).toBe(0);
});

test('@codex stop stops the ECS task (StopTask) and the reply says it was cancelled', async () => {
  const requests = h.model.requests.length;
  h.model.push({ fault: 'delay', ms: 60_000, then: [{ type: 'message', text: 'too late' }] });
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the runner to ask the model', () => h.model.requests.length > requests, 60_000);
  const arn = await waitFor('the task ARN', () => h.task(number)?.external_id);
  expect(await h.deliver(h.mention(REPO, number, '@codex stop'))).toBe(200);
  const reply = await waitFor('the cancelled reply', () => (/⏹️ \*\*Cancelled\*\*/.test(h.botComments(REPO, number)[0]?.body ?? '') ? h.botComments(REPO, number)[0] : undefined), 90_000);
  expect(reply.body).toMatch(/cancelled by @\S*maintainer/);
  expect(ecs.requestsOf('StopTask').map((r) => (r.body as { task: string }).task)).toContain(arn);
  await ecs.tasks.get(arn)!.stopped;
  expect(h.task(number)?.state).toBe('cancelled');
});

test('a RunTask capacity failure is retried with backoff and shown in the progress comment', async () => {
  const before = ecs.requestsOf('RunTask').length;
  ecs.failNextRunTask(1, { kind: 'failure', reason: 'RESOURCE:MEMORY' });
  h.model.push(...fixTurns());
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  expect(await h.deliver(delivery)).toBe(200);
  const done = await waitFor('the final reply', () => (ENDED.test(h.botComments(REPO, number)[0]?.body ?? '') ? h.botComments(REPO, number)[0] : undefined), 90_000);
  expect(done.body).toMatch(DONE);
  expect(done.history.some((body) => /RunTask failed \(RESOURCE:MEMORY\)/.test(body))).toBe(true);
  expect(ecs.requestsOf('RunTask').length - before).toBe(2);
  expect(h.model.pendingTurns).toBe(0);
});
