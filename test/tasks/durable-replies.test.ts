/**
 * Durable replies and idempotent publishing, end to end: the real app process (local runner, scripted
 * model) against the GitHub stand-in, with GitHub faults and app crashes (SIGKILL of the app process)
 * at points the stand-in and the store make observable. Each case ends with exactly one final reply.
 */
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';
import { createDelivery } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const FINAL = 'codex-cloud:final=';
const EDITS = { method: 'PATCH', path: /^\/repos\/acme\/calc\/issues\/comments\/\d+$/ };
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write', reader: 'read' } });
});

afterEach(() => {
  h.github.clearFaults();
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

/** Reads the app's store (read-only): the task of an issue and its outbox entry. */
function stored(issueNumber: number): { state: string; branch: string | null; delivered: number | null; pending: number } | undefined {
  const db = new DatabaseSync(path.join(h.dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    return db
      .prepare(
        `SELECT t.state, t.branch, o.delivered_at AS delivered, (o.task_id IS NOT NULL AND o.delivered_at IS NULL) AS pending
         FROM tasks t LEFT JOIN outbox o ON o.task_id = t.id WHERE t.issue_number = ? ORDER BY t.created_at DESC LIMIT 1`,
      )
      .get(issueNumber) as never;
  } finally {
    db.close();
  }
}

const finalReplies = (issue: number) => h.botComments(REPO, issue).filter((c) => c.body.includes(FINAL));
const codexBranches = async (issue: number) =>
  (await h.github.git(REPO, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/codex/')).split('\n').filter((b) => b.startsWith(`codex/${issue}-`));
const pullsFor = async (issue: number) => (await h.github.pulls(REPO)).filter((p) => (p.head as { ref: string }).ref.startsWith(`codex/${issue}-`));

test('502 on every edit of the progress comment: exactly one final reply, as a new comment', async () => {
  h.github.failNext(EDITS, { status: 502, times: 100_000 });
  h.model.push(...fixTurns());
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  expect(await h.deliver(delivery)).toBe(200);
  const reply = await waitFor('the final reply', () => finalReplies(number)[0], 90_000);
  expect(reply.body).toMatch(/✅ \*\*Done\*\*/);
  expect(reply.body).toContain(`#${((await pullsFor(number))[0] as { number: number }).number}`);
  const mine = h.botComments(REPO, number);
  expect(mine).toHaveLength(2); // the progress comment (never edited) and the final reply
  expect(mine[0]!.history).toHaveLength(1);
  await new Promise((r) => setTimeout(r, 500));
  expect(finalReplies(number)).toHaveLength(1);
  expect(stored(number)).toMatchObject({ state: 'succeeded', pending: 0 });
});

test('a crash right after the task is marked finished: after the restart, one final reply', async () => {
  h.model.push(...fixTurns());
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the progress comment', () => h.botComments(REPO, number)[0]);
  // From now on GitHub refuses every comment write in this thread: the final reply cannot leave.
  h.github.failNext(EDITS, { status: 502, times: 100_000 });
  h.github.failNext({ method: 'POST', path: `/repos/acme/calc/issues/${number}/comments` }, { status: 502, times: 100_000 });
  await waitFor('the task to be finished with its reply pending', () => {
    const row = stored(number);
    return row?.state === 'succeeded' && row.pending === 1;
  }, 90_000);
  await h.stopApp('SIGKILL');
  expect(finalReplies(number)).toHaveLength(0);
  expect(h.botComments(REPO, number)[0]!.body).not.toMatch(/Done/);

  h.github.clearFaults();
  await h.startApp();
  const reply = await waitFor('the final reply after the restart', () => finalReplies(number)[0], 30_000);
  expect(reply.body).toMatch(/✅ \*\*Done\*\*/);
  await waitFor('the delivery to be recorded', () => stored(number)?.pending === 0);
  expect(finalReplies(number)).toHaveLength(1);
  expect(await pullsFor(number)).toHaveLength(1);
});

test('a crash while publishing, after the branch and before the pull request: one branch, one pull request', async () => {
  h.model.push(...fixTurns());
  h.github.failNext('POST /repos/{owner}/{repo}/pulls', { status: 502, times: 100_000 });
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  const refsBefore = h.github.requestsTo('POST /repos/{owner}/{repo}/git/refs').length;
  const pullsBefore = h.github.requestsTo('POST /repos/{owner}/{repo}/pulls').length;
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the branch to be created', () => h.github.requestsTo('POST /repos/{owner}/{repo}/git/refs').slice(refsBefore).some((r) => r.status === 201), 90_000);
  await waitFor('the pull request to be attempted', () => h.github.requestsTo('POST /repos/{owner}/{repo}/pulls').length > pullsBefore);
  expect(stored(number)?.state).toBe('publishing');
  await h.stopApp('SIGKILL');
  expect(await codexBranches(number)).toHaveLength(1);
  expect(await pullsFor(number)).toHaveLength(0);

  h.github.clearFaults();
  await h.startApp();
  const reply = await waitFor('the final reply after the restart', () => finalReplies(number)[0], 30_000);
  expect(reply.body).toMatch(/✅ \*\*Done\*\*/);
  expect(await codexBranches(number)).toEqual([stored(number)!.branch]);
  expect(await pullsFor(number)).toHaveLength(1);
  expect(finalReplies(number)).toHaveLength(1);
  expect(h.botComments(REPO, number)).toHaveLength(1); // the progress comment, edited into the final reply
});

test('a refusal is not repeated when the webhook is redelivered after a restart', async () => {
  const issue = h.github.addIssue(REPO, { title: 'x', body: 'y', user: 'maintainer' }).number as number;
  const delivery = h.mention(REPO, issue, '@codex do it', 'reader');
  const refused = () => h.logLines().filter((l) => l.msg === 'mention refused' && l.deliveryId === delivery.id).length;
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the refusal', () => h.botComments(REPO, issue).find((c) => /write access/.test(c.body)));
  await h.stopApp('SIGKILL');
  await h.startApp();
  // The same delivery again is kept out by the webhook inbox (one row per delivery id); the same
  // event under a new delivery id (GitHub sending it twice) passes the gate again, and the stored
  // reply key keeps its refusal from being posted twice.
  expect(await h.deliver(delivery)).toBe(200);
  const again = createDelivery(delivery.event, delivery.payload);
  expect(await h.deliver(again)).toBe(200);
  await waitFor('the second delivery to be gated', () => h.logLines().some((l) => l.msg === 'mention refused' && l.deliveryId === again.id));
  expect(refused()).toBe(1);
  await new Promise((r) => setTimeout(r, 500));
  expect(h.botComments(REPO, issue)).toHaveLength(1);
});
