/**
 * Restart safety of the task service, end to end: the queue position shown while waiting, and an app
 * killed while one task runs and another waits. After the restart, the waiting task still runs to
 * a pull request and the interrupted one gets a failure reply; no request is left unanswered.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';
import { issueCommentCreated } from '../support/webhooks.ts';

const REPO = 'acme/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_CONCURRENCY: '1', CODEX_MODEL_RETRY_BASE_MS: '10', CODEX_MODEL_RETRIES: '1' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  await h?.close();
});

function mention(body: string) {
  const issue = h.github.addIssue(REPO, { title: 'add() is broken', body: 'add(2, 3) returns -1', user: 'maintainer' });
  const number = issue.number as number;
  const comment = h.github.addComment(REPO, number, { body, user: 'maintainer' });
  return {
    number,
    delivery: issueCommentCreated({ repo: h.github.repository(REPO), issue: h.github.issue(REPO, number), issueNumber: number, commentId: comment.id, body, user: 'maintainer', installationId: 1 }),
  };
}

function progress(issueNumber: number) {
  return h.github.comments(REPO, issueNumber).find((c) => (c.user as { login: string }).login === h.github.botLogin);
}

function task(issueNumber: number): { state: string; external_id: string | null; phase: string | null } | undefined {
  const db = new DatabaseSync(path.join(h.dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    return db.prepare('SELECT state, external_id, phase FROM tasks WHERE issue_number = ?').get(issueNumber) as never;
  } finally {
    db.close();
  }
}

test('a waiting task shows its queue position, survives an app crash and still becomes a pull request', async () => {
  // The first task hangs in its first model request; the second waits for the only runner slot.
  h.model.push({ fault: 'delay', ms: 60_000, then: [{ type: 'message', text: 'too late' }] });
  const first = mention('@codex fix add');
  const second = mention('@codex fix add as well');
  expect(await h.deliver(first.delivery)).toBe(200);
  await waitFor('the first task to ask the model', () => h.model.requests.length > 0);
  await waitFor('the first task to reach the agent', () => task(first.number)?.phase === 'agent');
  expect(await h.deliver(second.delivery)).toBe(200);
  const queued = await waitFor('the queued progress comment', () => progress(second.number));
  expect(queued.body).toMatch(/position 1 in the queue/i);

  // Crash the app (and the orphaned runner with it, as a machine restart would).
  const runnerPid = Number(task(first.number)!.external_id);
  await h.stopApp('SIGKILL');
  process.kill(runnerPid, 'SIGKILL');
  expect(task(second.number)?.state).toBe('queued');

  h.model.push(...fixTurns());
  await h.startApp();

  const failed = await waitFor('the interrupted task to fail', () => (/❌ \*\*Failed\*\*/.test(progress(first.number)?.body ?? '') ? progress(first.number) : undefined), 30_000);
  expect(failed.body).toMatch(/restarted/);
  expect(failed.body).toMatch(/@codex retry|retry/);
  const done = await waitFor('the queued task to finish', () => (/✅ \*\*Done\*\*/.test(progress(second.number)?.body ?? '') ? progress(second.number) : undefined), 60_000);
  expect(done.body).toMatch(/Opened/);
  expect(task(first.number)?.state).toBe('failed');
  expect(task(second.number)?.state).toBe('succeeded');
  // Still one progress comment per request, edited in place across the restart.
  expect(h.github.comments(REPO, second.number).filter((c) => (c.user as { login: string }).login === h.github.botLogin)).toHaveLength(1);
  expect(h.model.pendingTurns).toBe(0);
});
