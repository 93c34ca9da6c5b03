/**
 * The webhook inbox through the real app (`codex-cloud serve`, a child process) and the GitHub
 * stand-in: a mention is answered 2xx while the permission check is still running, and an app killed
 * after the answer but before the processing finished handles the mention once after its restart.
 */
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';

const REPO = 'acme/calc';
const DONE = /✅ \*\*Done\*\*/;
const PERMISSION = { method: 'GET', path: /\/collaborators\/[^/]+\/permission$/ };
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  await h?.close();
});

const eyes = (commentId: number) => h.github.reactions(REPO, { commentId }).filter((r) => r.content === 'eyes');

function inboxRows(): Array<{ delivery_id: string; attempts: number; processed_at: number | null; failed_at: number | null }> {
  const db = new DatabaseSync(path.join(h.dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    return db.prepare('SELECT delivery_id, attempts, processed_at, failed_at FROM webhook_inbox ORDER BY seq').all() as never;
  } finally {
    db.close();
  }
}

test('a mention is answered 200 before the permission check has been answered; the 👀 and the task follow', async () => {
  h.model.push(...fixTurns());
  h.github.delayNext(PERMISSION, 2_000);
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex please fix the failing add test');
  const commentId = (delivery.payload as { comment: { id: number } }).comment.id;

  expect(await h.deliver(delivery)).toBe(200);
  // At the answer, the permission check has not been answered (status 0 until the stand-in serves it).
  expect(h.github.requestsTo(PERMISSION).filter((r) => r.status !== 0)).toEqual([]);
  expect(eyes(commentId)).toHaveLength(0);

  await waitFor('the 👀', () => eyes(commentId).length === 1, 20_000);
  await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => DONE.test(c.body)), 90_000);
  expect(h.task(number)?.state).toBe('succeeded');
  expect(inboxRows().find((r) => r.delivery_id === delivery.id)).toMatchObject({ attempts: 1, processed_at: expect.any(Number), failed_at: null });
});

test('an app killed after the 200 but before processing the mention processes it once after its restart', async () => {
  h.model.push(...fixTurns());
  h.github.delayNext(PERMISSION, 10_000);
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex please fix the failing add test');
  const commentId = (delivery.payload as { comment: { id: number } }).comment.id;
  const permissionChecks = h.github.requestsTo(PERMISSION).length;

  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the permission check to reach the stand-in', () => h.github.requestsTo(PERMISSION).length > permissionChecks);
  await h.stopApp('SIGKILL');
  expect(h.task(number)).toBeUndefined();
  expect(eyes(commentId)).toHaveLength(0);

  await h.startApp();
  await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => DONE.test(c.body)), 90_000);
  // Once: one task, one 👀, one bot comment, one pull request for the issue.
  expect(h.task(number)?.state).toBe('succeeded');
  expect(eyes(commentId)).toHaveLength(1);
  expect(h.botComments(REPO, number)).toHaveLength(1);
  const pulls = (await h.github.pulls(REPO)) as Array<{ body: string }>;
  expect(pulls.filter((p) => (p.body ?? '').includes(`Closes #${number}`))).toHaveLength(1);
  // The interrupted attempt was counted; the second one processed it.
  expect(inboxRows().find((r) => r.delivery_id === delivery.id)).toMatchObject({ attempts: 2, processed_at: expect.any(Number) });
  // A redelivery after that is answered and changes nothing.
  expect(await h.deliver(delivery)).toBe(200);
  await new Promise((r) => setTimeout(r, 500));
  expect(h.botComments(REPO, number)).toHaveLength(1);
  expect(eyes(commentId)).toHaveLength(1);
});
