/**
 * End to end: the app is killed while a pull request task runs and another waits. After the restart,
 * each request gets exactly one final reply: the interrupted task a failure, the waiting one its
 * commit on the pull request's branch.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { openPullRequest, patchTurns, pullRequestRepo, X_TS_PATCH, X_TS_PR } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_CONCURRENCY: '1', CODEX_MODEL_RETRY_BASE_MS: '10', CODEX_MODEL_RETRIES: '1' } });
  await h.github.addRepo(REPO, pullRequestRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

const finals = (number: number) => h.botComments(REPO, number).filter((c) => /✅ \*\*Done\*\*|❌ \*\*Failed\*\*/.test(c.body));

test('an app restart in the middle: one final reply per pull request task', async () => {
  const first = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  const second = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  h.model.push({ fault: 'delay', ms: 60_000, then: [{ type: 'message', text: 'too late' }] });
  expect(await h.deliver(h.mention(REPO, first.number, '@codex use a constant'))).toBe(200);
  await waitFor('the first task to reach the agent', () => h.task(first.number)?.phase === 'agent' && h.model.requests.length > 0);
  expect(await h.deliver(h.mention(REPO, second.number, '@codex use a constant'))).toBe(200);
  await waitFor('the second progress comment', () => h.botComments(REPO, second.number)[0]);

  const runnerPid = Number(h.task(first.number)!.external_id);
  await h.stopApp('SIGKILL');
  process.kill(runnerPid, 'SIGKILL');
  expect(h.task(second.number)?.state).toBe('queued');

  h.model.push(...patchTurns(X_TS_PATCH));
  await h.startApp();
  await waitFor('both final replies', () => finals(first.number).length === 1 && finals(second.number).length === 1, 60_000);
  expect(finals(first.number)[0]!.body).toMatch(/❌ \*\*Failed\*\*/);
  expect(finals(second.number)[0]!.body).toMatch(/✅ \*\*Done\*\*/);
  const head = (await h.github.git(REPO, 'rev-parse', `refs/heads/${second.branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${head}^`)).trim()).toBe(second.headSha);
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${first.branch}`)).trim()).toBe(first.headSha);
  // Give a late duplicate the chance to appear: still one comment of the app per thread.
  await new Promise((r) => setTimeout(r, 1000));
  expect(h.botComments(REPO, first.number)).toHaveLength(1);
  expect(h.botComments(REPO, second.number)).toHaveLength(1);
  expect(h.model.pendingTurns).toBe(0);
});
