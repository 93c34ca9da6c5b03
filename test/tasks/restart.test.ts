/**
 * Restart safety of the task service, end to end: the queue position shown while waiting, and an app
 * killed while one task runs and another waits. After the restart, the waiting task still runs to
 * a pull request and the interrupted one gets a failure reply; no request is left unanswered.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';

const REPO = 'acme/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_CONCURRENCY: '1', CODEX_MODEL_RETRY_BASE_MS: '10', CODEX_MODEL_RETRIES: '1' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  await h?.close();
});




test('a waiting task shows its queue position, survives an app crash and still becomes a pull request', async () => {
  // The first task hangs in its first model request; the second waits for the only runner slot.
  h.model.push({ fault: 'delay', ms: 60_000, then: [{ type: 'message', text: 'too late' }] });
  const first = h.mentionOnNewIssue(REPO, '@codex fix add');
  const second = h.mentionOnNewIssue(REPO, '@codex fix add as well');
  expect(await h.deliver(first.delivery)).toBe(200);
  await waitFor('the first task to ask the model', () => h.model.requests.length > 0);
  await waitFor('the first task to reach the agent', () => h.task(first.number)?.phase === 'agent');
  expect(await h.deliver(second.delivery)).toBe(200);
  const queued = await waitFor('the queued progress comment', () => h.botComments(REPO, second.number)[0]);
  expect(queued.body).toMatch(/position 1 in the queue/i);

  // Crash the app (and the orphaned runner with it, as a machine restart would).
  const runnerPid = Number(h.task(first.number)!.external_id);
  await h.stopApp('SIGKILL');
  process.kill(runnerPid, 'SIGKILL');
  expect(h.task(second.number)?.state).toBe('queued');

  h.model.push(...fixTurns());
  await h.startApp();

  const failed = await waitFor('the interrupted task to fail', () => (/❌ \*\*Failed\*\*/.test(h.botComments(REPO, first.number)[0]?.body ?? '') ? h.botComments(REPO, first.number)[0] : undefined), 30_000);
  expect(failed.body).toMatch(/restarted/);
  expect(failed.body).toMatch(/@codex retry|retry/);
  const done = await waitFor('the queued task to finish', () => (/✅ \*\*Done\*\*/.test(h.botComments(REPO, second.number)[0]?.body ?? '') ? h.botComments(REPO, second.number)[0] : undefined), 60_000);
  expect(done.body).toMatch(/Opened/);
  expect(h.task(first.number)?.state).toBe('failed');
  expect(h.task(second.number)?.state).toBe('succeeded');
  // Still one progress comment per request, edited in place across the restart.
  expect(h.github.comments(REPO, second.number).filter((c) => (c.user as { login: string }).login === h.github.botLogin)).toHaveLength(1);
  expect(h.model.pendingTurns).toBe(0);
});
