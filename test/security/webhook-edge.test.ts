/**
 * Regression tests of the webhook edge attacks (issue 7, item 4), end to end through the real app
 * process against the GitHub stand-in: a nested-list body from a read-only commenter, an oversized
 * unsigned body, malformed signed payloads.
 */
import { request } from 'node:http';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';
import { createDelivery, issueCommentCreated, type Delivery, type Json } from '../support/webhooks.ts';

const REPO = 'acme/edge';
const DONE = /✅ \*\*Done\*\*/;
/** Planted in every payload body these tests send: it must never reach a log line. */
const MARKER = 'PAYLOAD-MARKER-7f3a';
let h: AppHarness;

function newIssue(): number {
  return h.github.addIssue(REPO, { title: 'edge', body: 'an issue', user: 'maintainer' }).number as number;
}

/** 20 KB of list markers nested on one line, the mention at the bottom (the attack's shape: 50 s in micromark). */
function nestedListBody(): string {
  return `${'- '.repeat(10_000)}@codex fix it`;
}

/** 20 KB of ordered list markers nested on one line: micromark's quadratic case (8.6 s for 16 KB). */
function nestedOrderedListBody(): string {
  return `${'1. '.repeat(6_800)}@codex fix it`;
}

/** Timed delivery: status and milliseconds until the answer. */
async function timedDeliver(delivery: Delivery): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const status = await h.deliver(delivery);
  return { status, ms: performance.now() - started };
}

/**
 * POSTs `size` bytes to the webhook path from a stream, unsigned, with or without Content-Length.
 * @returns the status of the answer (received even if the server then closes the upload).
 */
function postLarge(size: number, withLength: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-github-event': 'issue_comment',
      'x-github-delivery': 'large-1',
      'x-hub-signature-256': 'sha256=' + '0'.repeat(64),
    };
    if (withLength) headers['content-length'] = String(size);
    const req = request(`${h.url}/api/github/webhooks`, { method: 'POST', headers });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (error) => setTimeout(() => reject(error), 100));
    const chunk = Buffer.from(`{"pad":"${MARKER}${'x'.repeat(64 * 1024)}`.slice(0, 64 * 1024));
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

function expectCleanLogs(): void {
  const long = h.logs.split('\n').filter((line) => line.length > 10_000);
  expect(long.map((line) => line.slice(0, 200))).toEqual([]);
  expect(h.logs).not.toContain(MARKER);
}

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write', reader: 'read' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

describe('a nested-list body', () => {
  test('from a read-only commenter is answered within 1 s, starts no task, and the app stays responsive', async () => {
    const issue = newIssue();
    for (const body of [nestedListBody(), nestedOrderedListBody()]) {
      expect(body.length).toBeGreaterThan(20_000);
      const { status, ms } = await timedDeliver(h.mention(REPO, issue, body, 'reader'));
      expect(status).toBe(200);
      expect(ms).toBeLessThan(1_000);
    }
    // One refusal per comment.
    await waitFor('the refusals', () => h.botComments(REPO, issue).filter((c) => /write access/.test(c.body)).length === 2);
    expect(h.task(issue)).toBeUndefined();
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);

    // A writer's ordinary mention right after works.
    h.model.push(...fixTurns());
    const next = newIssue();
    expect(await h.deliver(h.mention(REPO, next, '@codex please fix the failing add test'))).toBe(200);
    await waitFor('the task', () => h.task(next));
    await waitFor('the final reply', () => h.botComments(REPO, next).find((c) => DONE.test(c.body)), 60_000);
  });

  test('from a writer gets a clear reply quickly (too complex to parse), and no task', async () => {
    const issue = newIssue();
    for (const body of [nestedListBody(), nestedOrderedListBody()]) {
      const { status, ms } = await timedDeliver(h.mention(REPO, issue, body));
      expect(status).toBe(200);
      // The parser's budget is 1 s; generous for a loaded machine.
      expect(ms).toBeLessThan(5_000);
    }
    const replies = await waitFor('the replies', () => {
      const found = h.botComments(REPO, issue).filter((c) => /can't read this request/.test(c.body));
      return found.length === 2 ? found : undefined;
    });
    for (const reply of replies) {
      expect(reply.body).toMatch(/too complex/);
      expect(reply.body).toContain('@maintainer');
    }
    expect(h.task(issue)).toBeUndefined();
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
  });
});

describe('an oversized unsigned body', () => {
  test.each([
    ['with Content-Length', true],
    ['chunked', false],
  ])('of 30 MB (%s) gets 413 and none of it is logged', async (_name, withLength) => {
    const requestsBefore = h.github.requests.length;
    // (That the refusal comes before the body is read is shown in test/server/webhook-edge.test.ts.)
    expect(await postLarge(30_000_000, withLength)).toBe(413);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expect(h.github.requests.length).toBe(requestsBefore);
    const refusals = () => h.logLines().filter((l) => l.msg === 'webhook refused: payload too large' && l.status === 413).length;
    await waitFor('the refusal log line', () => refusals() === (withLength ? 1 : 2), 5_000);
    expectCleanLogs();
  });

  test("Probot's own webhook route is unreachable", async () => {
    const res = await fetch(`${h.url}/%20probot%20webhook%20middleware%20disabled`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'p', 'x-hub-signature-256': 'sha256=00' },
      body: '{}',
    });
    expect(res.status).toBe(404);
  });

  test('other methods on the webhook path get 405, a form body 415, missing headers 400', async () => {
    expect((await fetch(`${h.url}/api/github/webhooks`)).status).toBe(405);
    const headers = { 'x-github-event': 'ping', 'x-github-delivery': 'p', 'x-hub-signature-256': 'sha256=00' };
    expect((await fetch(`${h.url}/api/github/webhooks`, { method: 'POST', headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' }, body: 'payload=%7B%7D' })).status).toBe(415);
    expect((await fetch(`${h.url}/api/github/webhooks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(400);
  });
});

describe('malformed signed payloads', () => {
  /** A valid `issue_comment.created` delivery from `reader` mentioning the app, as a fresh object. */
  function base(): Json {
    const issue = newIssue();
    return issueCommentCreated({
      repo: h.github.repository(REPO),
      issue: h.github.issue(REPO, issue),
      issueNumber: issue,
      commentId: 900_000 + issue,
      body: `@codex ${MARKER}`,
      user: 'reader',
      installationId: 1,
    }).payload;
  }

  const mutations: Array<[string, (p: Json) => unknown]> = [
    ['no comment', (p) => (delete p.comment, p)],
    ['comment null', (p) => ({ ...p, comment: null })],
    ['comment.user and sender null', (p) => ({ ...p, comment: { ...(p.comment as Json), user: null }, sender: null })],
    ['sender missing', (p) => (delete p.sender, p)],
    ['sender.login a number', (p) => ({ ...p, sender: { ...(p.sender as Json), login: 42 } })],
    ['installation null', (p) => ({ ...p, installation: null })],
    ['installation.id a string', (p) => ({ ...p, installation: { id: '1' } })],
    ['repository.owner null', (p) => ({ ...p, repository: { ...(p.repository as Json), owner: null } })],
    ['issue.number a string', (p) => ({ ...p, issue: { ...(p.issue as Json), number: '1' } })],
    ['comment.body an object', (p) => ({ ...p, comment: { ...(p.comment as Json), body: { text: MARKER } } })],
    ['action a number', (p) => ({ ...p, action: 1 })],
    ['a login with markdown', (p) => ({ ...p, sender: { ...(p.sender as Json), login: `[x](http://${MARKER})` } })],
    ['an array', () => [MARKER]],
    ['a string', () => MARKER],
    ['null', () => null],
    ['an empty object', () => ({})],
  ];

  test.each(mutations)('%s: no 5xx, nothing logged of it, no task', async (_name, mutate) => {
    const payload = mutate(base());
    const delivery: Delivery = { ...createDelivery('issue_comment', {}), body: JSON.stringify(payload) };
    const status = await h.deliver(delivery);
    expect(status).toBeGreaterThanOrEqual(200);
    expect(status).toBeLessThan(300);
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    expectCleanLogs();
  });

  test('a signed body that is not JSON gets 400', async () => {
    const delivery: Delivery = { ...createDelivery('issue_comment', {}), body: `{"x": "${MARKER}"` };
    expect(await h.deliver(delivery)).toBe(400);
    expectCleanLogs();
  });

  test('a bad signature gets 400 and the body is not logged', async () => {
    const delivery: Delivery = { ...createDelivery('issue_comment', {}), body: JSON.stringify({ action: 'created', marker: MARKER }) };
    expect(await h.deliver(delivery, 'sha256=' + '1'.repeat(64))).toBe(400);
    // The app's output reaches the harness through a pipe: wait for the line, then check them all.
    await waitFor('the refusal log line', () => h.logLines().some((l) => l.reason === 'signature does not match the payload and secret'), 5_000);
    expectCleanLogs();
  });

  test('no task came out of any of them, and no log line (however late) holds any of them', async () => {
    await new Promise((r) => setTimeout(r, 300));
    expectCleanLogs();
    // Only the writer's mention in the first describe block made a task.
    const db = new DatabaseSync(`${h.dataDir}/codex-cloud.db`, { readOnly: true });
    try {
      expect((db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n).toBe(1);
    } finally {
      db.close();
    }
  });
});
