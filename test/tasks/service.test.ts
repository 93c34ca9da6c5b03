/**
 * The task service with a fake runner backend (a result the test hands in), an in-memory SQLite store
 * and the GitHub stand-in over a real socket.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import type { GitHubAccess, Octokit } from '../../src/github/client.ts';
import { finalReplyMarker } from '../../src/github/thread-reporter.ts';
import { blockedHostEvent } from '../../src/proxy/blocked-hosts.ts';
import { ProxyGrants } from '../../src/proxy/grants.ts';
import { TaskService } from '../../src/tasks/service.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import type { TaskRequest } from '../../src/tasks/types.ts';
import { waitFor } from '../support/app-harness.ts';
import { FakeBackend, resultFor } from '../support/fake-backend.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../support/github-stand-in.ts';

const REPO = 'acme/svc';
const log = pino({ level: 'silent' });

let gh: GitHubStandIn;
let github: GitHubAccess;
let mainSha: string;
let otherSha: string;
const open: Array<{ service: TaskService; store: SqliteTaskStore }> = [];

beforeAll(async () => {
  gh = await GitHubStandIn.start();
  ({ headSha: mainSha } = await gh.addRepo(REPO, { 'src/a.js': 'a\n' }, { permissions: { maintainer: 'write' } }));
  otherSha = await gh.commitFiles(REPO, 'attacker', { '.github/workflows/x.yml': 'on: push\n' }, { from: mainSha });
  github = {
    forInstallation: async () => new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl }) as unknown as Octokit,
    asApp: async () => new ProbotOctokitForTests({ auth: { token: gh.createAppJwt() }, baseUrl: gh.apiUrl }) as unknown as Octokit,
  };
});

afterEach(async () => {
  gh.clearFaults();
  for (const { service, store } of open.splice(0)) {
    service.close();
    await service.idle();
    store.close();
  }
});

const dataDir = mkdtempSync(path.join(tmpdir(), 'service-test-'));

afterAll(async () => {
  await gh?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function setup(store = new SqliteTaskStore(':memory:'), agentProxy?: { grants: ProxyGrants; url: string }) {
  const backend = new FakeBackend();
  const tokens = new TaskTokens({ persistence: store.tokens });
  const service = new TaskService({
    ...(agentProxy ? { agentProxy } : {}),
    store,
    backend,
    tokens,
    github,
    log,
    publicUrl: 'http://127.0.0.1:9',
    gatewayUrl: 'http://127.0.0.1:9/v1',
    concurrency: 1,
    mention: '@codex',
    progressIntervalMs: 0,
    replyDelivery: { baseMs: 20, maxMs: 100, editAttempts: 3 },
  });
  open.push({ service, store });
  return { service, store, backend, tokens };
}

function request(): TaskRequest {
  const issueNumber = gh.addIssue(REPO, { title: 'a is wrong', body: 'fix a', user: 'maintainer' }).number as number;
  return {
    triggerKey: `issues:${issueNumber}`,
    deliveryId: `d-${issueNumber}`,
    kind: 'task',
    installationId: 1,
    owner: 'acme',
    repo: 'svc',
    target: { type: 'issue', number: issueNumber, title: 'a is wrong' },
    requester: { login: 'maintainer', id: Number(gh.addUser('maintainer').id) },
    instruction: 'fix a',
    context: [],
    origin: { type: 'issue', id: issueNumber },
    settings: { model: 'm', autoInstall: true, timeoutMs: 60_000, maxTokens: 100, allowWorkflowChanges: false, draftPullRequests: false },
  };
}

const mine = (issueNumber: number) => gh.comments(REPO, issueNumber).filter((c) => (c.user as { login: string }).login === gh.botLogin);
const replied = (store: SqliteTaskStore, taskId: string) =>
  waitFor('the final reply', () => store.get(taskId)?.finishedAt !== undefined && !store.outbox.pending().some((r) => r.taskId === taskId), 10_000);

describe('TaskService', () => {
  test('dispatches on the default branch head, stores it, publishes on it and replies once', async () => {
    const { service, store, backend } = setup();
    const req = request();
    const task = (await service.submit(req))!;
    expect(await service.submit(req)).toBeUndefined(); // a redelivery
    await waitFor('the runner to start', () => backend.jobs[0]);
    const { job } = backend.jobs[0]!;
    expect(job.spec.repository).toMatchObject({ baseRef: 'main', baseSha: mainSha });
    expect(store.get(task.id)).toMatchObject({ state: 'running', baseSha: mainSha, baseRef: 'main' });
    backend.jobs[0]!.finish(resultFor(job));
    await replied(store, task.id);
    const done = store.get(task.id)!;
    expect(done.state).toBe('succeeded');
    expect(done.branch).toBe(`codex/${req.target.number}-fix-a`);
    expect((await gh.git(REPO, 'rev-parse', `${done.commitSha}^`)).trim()).toBe(mainSha);
    expect(mine(req.target.number)).toHaveLength(1);
    expect(mine(req.target.number)[0]!.body).toContain(`#${done.pullRequest!.number}`);
    expect(mine(req.target.number)[0]!.body).toContain(finalReplyMarker(task.id));
  });

  test("the final reply carries the app's Checks run section and calls out a summary that claims passing tests", async () => {
    const { service, store, backend } = setup();
    const req = request();
    const task = (await service.submit(req))!;
    await waitFor('the runner to start', () => backend.jobs[0]);
    const run = (exitCode: number) => ({ phase: 'agent' as const, command: ['npm', 'test'], workdir: '.', exitCode, durationMs: 1200, timedOut: false });
    backend.jobs[0]!.finish(
      resultFor(backend.jobs[0]!.job, {
        summary: '## Summary\nFixed a. All tests pass.',
        pullRequest: { title: 'Fix a', body: 'Fixed a. All tests pass.' },
        commands: [run(0), run(1)],
        setup: { status: 'failed', reason: 'npm (package-lock.json) exited with 1' },
      }),
    );
    await replied(store, task.id);
    const body = mine(req.target.number)[0]!.body as string;
    expect(body).toContain('Checks run');
    expect(body).toMatch(/`npm test` · ❌ exit 1/);
    expect(body).toMatch(/Setup[^\n]*failed[^\n]*npm \(package-lock\.json\) exited with 1/);
    expect(body).toMatch(/last run of `npm test` exited 1; the summary's claim that tests pass is not supported/);
  });

  test('agent_network: the spec carries the proxy URL with credentials for this task only; refused hosts are listed in the reply; the credentials die with the task', async () => {
    const grants = new ProxyGrants();
    const { service, store, backend } = setup(undefined, { grants, url: 'http://127.0.0.1:3128' });
    const req = { ...request(), settings: { ...request().settings, agentNetworkAllow: ['registry.npmjs.org'] } };
    const task = (await service.submit(req))!;
    await waitFor('the runner to start', () => backend.jobs[0]);
    const { network } = backend.jobs[0]!.job.spec;
    expect(network?.allow).toEqual(['registry.npmjs.org']);
    const url = new URL(network!.proxyUrl);
    expect(url.username).toBe(task.id);
    expect(grants.verify(task.id, decodeURIComponent(url.password))).toBeDefined();
    store.appendEvent(task.id, blockedHostEvent('evil.example.com', 'not_allowed'));
    // The runner cannot put a host of its own in the app's account.
    backend.jobs[0]!.job.onEvent(blockedHostEvent('forged.example.net', 'not_allowed'));
    backend.jobs[0]!.finish(resultFor(backend.jobs[0]!.job));
    await replied(store, task.id);
    expect(grants.verify(task.id, decodeURIComponent(url.password))).toBeUndefined();
    expect(mine(req.target.number)[0]!.body).toMatch(/Blocked network requests[^\n]*`evil\.example\.com`/);
    expect(mine(req.target.number)[0]!.body).not.toContain('forged.example.net');
  });

  test('a result on another base commit is refused: failure reply, nothing published', async () => {
    const { service, store, backend } = setup();
    const req = request();
    const task = (await service.submit(req))!;
    await waitFor('the runner to start', () => backend.jobs[0]);
    const commits = gh.requestsTo('POST /repos/{owner}/{repo}/git/commits').length;
    backend.jobs[0]!.finish(resultFor(backend.jobs[0]!.job, { baseSha: otherSha }));
    await replied(store, task.id);
    expect(store.get(task.id)).toMatchObject({ state: 'failed', failure: { phase: 'result' } });
    expect(store.get(task.id)!.failure!.reason).toBe(`the runner's result is based on ${otherSha}, not the dispatched ${mainSha}; nothing was published`);
    expect(mine(req.target.number)[0]!.body).toMatch(/Failed/);
    expect(mine(req.target.number)[0]!.body).toContain(otherSha);
    expect(gh.requestsTo('POST /repos/{owner}/{repo}/git/commits')).toHaveLength(commits);
    expect(store.get(task.id)!.branch).toBeUndefined();
  });

  test('the final state and its reply are one transaction: with GitHub down the reply waits in the outbox', async () => {
    const { service, store, backend } = setup();
    const req = request();
    const task = (await service.submit(req))!;
    await waitFor('the runner to start', () => backend.jobs[0]);
    gh.failNext({ method: 'PATCH', path: /\/issues\/comments\/\d+$/ }, { times: 1000 });
    gh.failNext({ method: 'POST', path: `/repos/acme/svc/issues/${req.target.number}/comments` }, { times: 1000 });
    backend.jobs[0]!.finish(resultFor(backend.jobs[0]!.job, { status: 'no_changes', changes: [], summary: 'It is configured in a.js.' }));
    await waitFor('the final state', () => store.get(task.id)!.state === 'no_changes');
    const pending = store.outbox.pending().find((r) => r.taskId === task.id);
    expect(pending?.body).toContain('It is configured in a.js.');
    gh.clearFaults();
    await replied(store, task.id);
    // Edited in place or posted anew (depending on how many edits failed meanwhile): one final reply.
    expect(mine(req.target.number).filter((c) => c.body.includes(finalReplyMarker(task.id)))).toHaveLength(1);
  });

  test('abort stops a running task, revokes its token and ends it failed with the reason', async () => {
    const { service, store, backend, tokens } = setup();
    const req = request();
    const task = (await service.submit(req))!;
    await waitFor('the runner to start', () => backend.jobs[0]);
    const token = backend.jobs[0]!.job.spec.model.apiKey!;
    expect(tokens.verify(token)).toBeDefined();
    await service.abort(task.id, 'the token budget was overshot (1,200 of 1,000 tokens)');
    expect(tokens.verify(token)).toBeUndefined();
    expect(backend.jobs[0]!.cancelled).toBe('the token budget was overshot (1,200 of 1,000 tokens)');
    await replied(store, task.id);
    expect(store.get(task.id)).toMatchObject({ state: 'failed', failure: { reason: 'the token budget was overshot (1,200 of 1,000 tokens)' } });
    expect(mine(req.target.number)[0]!.body).toContain('the token budget was overshot');
    await service.abort(task.id, 'again'); // ended: no-op
    await service.abort('task_unknown', 'x');
  });

  test('abort of a queued task fails it without running it', async () => {
    const { service, store, backend } = setup();
    const first = (await service.submit(request()))!;
    await waitFor('the first runner', () => backend.jobs[0]);
    const second = (await service.submit(request()))!;
    await service.abort(second.id, 'budget');
    expect(store.get(second.id)).toMatchObject({ state: 'failed', failure: { phase: 'starting', reason: 'budget' } });
    backend.jobs[0]!.finish(resultFor(backend.jobs[0]!.job, { status: 'no_changes', changes: [] }));
    await replied(store, first.id);
    await service.idle();
    expect(backend.jobs).toHaveLength(1);
  });

  test('a restart while publishing reuses the stored branch and commit: one branch, one pull request', async () => {
    const file = path.join(dataDir, 'restart.db');
    const a = setup(new SqliteTaskStore(file));
    const req = request();
    const task = (await a.service.submit(req))!;
    await waitFor('the runner to start', () => a.backend.jobs[0]);
    gh.failNext('POST /repos/{owner}/{repo}/pulls', { times: 1000 });
    a.backend.jobs[0]!.finish(resultFor(a.backend.jobs[0]!.job));
    await waitFor('the branch', () => gh.requestsTo('POST /repos/{owner}/{repo}/pulls').length > 0);
    await waitFor('the failure', () => a.store.get(task.id)!.state === 'failed');
    // Simulate the crash: put the task back in `publishing`, as a process killed at that point leaves it.
    const stored = a.store.get(task.id)!;
    a.service.close();
    a.store.update(task.id, {}, 'publishing');
    gh.clearFaults();
    const b = setup(new SqliteTaskStore(file));
    // The first process's outbox entry is delivered by b; drop it to watch only the republished reply.
    b.store.outbox.delivered(task.id, 0);
    await b.service.reconcile();
    await waitFor('the pull request', () => b.store.get(task.id)!.state === 'succeeded', 10_000);
    const again = b.store.get(task.id)!;
    expect(again.branch).toBe(stored.branch);
    expect(again.commitSha).toBe(stored.commitSha);
    const pulls = (await gh.pulls(REPO)).filter((p) => (p.head as { ref: string }).ref.startsWith(`codex/${req.target.number}-`));
    expect(pulls).toHaveLength(1);
  });
});
