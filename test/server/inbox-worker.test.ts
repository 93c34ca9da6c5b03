/**
 * The inbox worker with @octokit/webhooks' real `Webhooks` (Probot's `app.webhooks`) as dispatcher
 * and the real inbox on a SQLite file: arrival order under bounded concurrency, what a restart
 * finds pending, retries, failure marking (logged without the payload), stop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { Webhooks } from '@octokit/webhooks';
import { pino } from 'pino';
import { AcknowledgementsFirst } from '../../src/server/acknowledgements-first.ts';
import { SqliteWebhookInbox } from '../../src/server/inbox.ts';
import { WebhookInboxWorker, type InboxWorkerOptions } from '../../src/server/inbox-worker.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import { waitFor } from '../support/app-harness.ts';

const MARKER = 'WORKER-PAYLOAD-MARKER';

let dir: string;
let file: string;
let inbox: SqliteWebhookInbox;
let webhooks: Webhooks;
let logs: string[];
const workers: WebhookInboxWorker[] = [];

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'inbox-worker-'));
  file = path.join(dir, 'codex-cloud.db');
  new SqliteTaskStore(file).close();
  inbox = SqliteWebhookInbox.open(file);
  webhooks = new Webhooks({ secret: 'unused' });
  logs = [];
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  inbox.close();
  rmSync(dir, { recursive: true, force: true });
});

function worker(opts: Partial<InboxWorkerOptions> = {}): WebhookInboxWorker {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const w = new WebhookInboxWorker({ inbox, dispatcher: webhooks, log: pino({ level: 'debug' }, sink), retryBaseMs: 10, ...opts });
  workers.push(w);
  return w;
}

const payload = (n: number) => JSON.stringify({ action: 'opened', issue: { number: n }, marker: MARKER });

test('deliveries start in order of arrival, at most `concurrency` at a time, each once', async () => {
  const started: string[] = [];
  let active = 0;
  let most = 0;
  webhooks.on('issues.opened', async ({ id }) => {
    started.push(id);
    most = Math.max(most, ++active);
    await sleep(30);
    active--;
  });
  const w = worker({ concurrency: 2 });
  w.start();
  const ids = Array.from({ length: 8 }, (_, i) => `d-${i}`);
  for (const [i, id] of ids.entries()) expect(w.accept({ id, name: 'issues', payload: payload(i) })).toBe('queued');
  await waitFor('every delivery', () => started.length === ids.length && active === 0);
  expect(started).toEqual(ids);
  expect(most).toBe(2);
  expect(inbox.due(Date.now() + 1, 100)).toEqual([]);
  expect(w.accept({ id: 'd-0', name: 'issues', payload: payload(0) })).toBe('duplicate');
  await sleep(100);
  expect(started).toHaveLength(ids.length);
});

test('with acknowledgements: an acknowledged delivery frees its slot; the work that can wait goes after every pending acknowledgement', async () => {
  const acknowledgements = new AcknowledgementsFirst();
  const order: string[] = [];
  let inFlight = 0;
  let most = 0;
  webhooks.on('issues.opened', async ({ id }) => {
    most = Math.max(most, ++inFlight);
    await sleep(5); // the 👀 request
    order.push(`👀 ${id}`);
    acknowledgements.done(id);
    await acknowledgements.othersDone(id);
    order.push(`rest ${id}`);
    await sleep(20);
    inFlight--;
  });
  const w = worker({ concurrency: 2, maxInFlight: 6, acknowledgements });
  w.start();
  const ids = Array.from({ length: 6 }, (_, i) => `a-${i}`);
  for (const [i, id] of ids.entries()) {
    expect(w.accept({ id, name: 'issues', payload: payload(i) })).toBe('queued');
    expect(acknowledgements.isWaiting(id)).toBe(true);
  }
  await waitFor('every delivery processed', () => inbox.due(Date.now() + 1, 100).length === 0 && inFlight === 0);
  // Two waiting for their 👀 at a time, but more than two in flight: acknowledged ones freed their slots.
  expect(most).toBeGreaterThan(2);
  expect(most).toBeLessThanOrEqual(6);
  // Every 👀 came before any work that can wait.
  expect(order.slice(0, 6)).toEqual(ids.map((id) => `👀 ${id}`));
  expect(order.slice(6).sort()).toEqual(ids.map((id) => `rest ${id}`).sort());
  expect(acknowledgements.waiting).toBe(0);
});

test('with acknowledgements: a delivery whose handler never says it is acknowledged is done when it ends; othersDone waits at most its maximum', async () => {
  const acknowledgements = new AcknowledgementsFirst(100);
  webhooks.on('issues.opened', async () => {
    await sleep(10);
  });
  const w = worker({ concurrency: 1, acknowledgements });
  w.start();
  w.accept({ id: 'silent', name: 'issues', payload: payload(1) });
  await waitFor('the delivery processed', () => inbox.due(Date.now() + 1, 100).length === 0 && acknowledgements.waiting === 0);
  acknowledgements.begin('stuck');
  const started = Date.now();
  await acknowledgements.othersDone('other');
  expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  await acknowledgements.othersDone('stuck'); // only itself: at once
  acknowledgements.done('stuck');
});

test('acceptGrouped stores the deliveries of one event-loop turn together, then processes them in order', async () => {
  const started: string[] = [];
  webhooks.on('issues.opened', ({ id }) => {
    started.push(id);
  });
  const acknowledgements = new AcknowledgementsFirst();
  const w = worker({ acknowledgements });
  w.start();
  const pending = ['g-0', 'g-1', 'g-2'].map((id, i) => w.acceptGrouped({ id, name: 'issues', payload: payload(i) }));
  // Not stored before the turn ends.
  expect(inbox.due(Date.now() + 1, 10)).toEqual([]);
  expect(await Promise.all(pending)).toEqual(['queued', 'queued', 'queued']);
  expect(await w.acceptGrouped({ id: 'g-1', name: 'issues', payload: payload(1) })).toBe('duplicate');
  await waitFor('all processed', () => started.length === 3 && acknowledgements.waiting === 0);
  expect(started).toEqual(['g-0', 'g-1', 'g-2']);
});

test('on start, what a crash left pending is processed (in order), then new deliveries', async () => {
  // Stored by the app before it died: one never started, one started (its attempt counted).
  inbox.add({ id: 'left-1', name: 'issues', payload: payload(1), receivedAt: Date.now() - 2_000 });
  inbox.add({ id: 'left-2', name: 'issues', payload: payload(2), receivedAt: Date.now() - 1_000 });
  inbox.begin('left-1');
  const seen: string[] = [];
  webhooks.on('issues.opened', ({ id }) => void seen.push(id));
  const w = worker({ concurrency: 1 });
  w.accept({ id: 'new', name: 'issues', payload: payload(3) });
  await sleep(50);
  // Not started yet: nothing runs before start().
  expect(seen).toEqual([]);
  w.start();
  await waitFor('the three deliveries', () => seen.length === 3);
  expect(seen).toEqual(['left-1', 'left-2', 'new']);
});

test('a delivery whose handler fails is tried again, then marked failed after maxAttempts: logged without the payload', async () => {
  let calls = 0;
  webhooks.on('issues.opened', () => {
    calls++;
    throw new TypeError("Cannot read properties of null (reading 'login')");
  });
  const w = worker({ maxAttempts: 3 });
  w.start();
  w.accept({ id: 'bad', name: 'issues', payload: payload(1) });
  await waitFor('the failure mark', () => logs.some((l) => l.includes('marked failed')));
  expect(calls).toBe(3);
  const retries = logs.filter((l) => l.includes('will try again'));
  expect(retries).toHaveLength(2);
  const failed = logs.filter((l) => l.includes('marked failed'));
  expect(failed).toHaveLength(1);
  expect(JSON.parse(failed[0]!)).toMatchObject({ level: 50, deliveryId: 'bad', eventName: 'issues', attempts: 3, err: expect.stringContaining("reading 'login'") });
  expect(logs.join('\n')).not.toContain(MARKER);
  await sleep(100);
  expect(calls).toBe(3);
  expect(inbox.nextDueAt()).toBeUndefined();
});

test('a handler that fails once succeeds on its retry and is processed once', async () => {
  let calls = 0;
  const done: string[] = [];
  webhooks.on('issues.opened', ({ id }) => {
    if (++calls === 1) throw new Error('GitHub answered 502');
    done.push(id);
  });
  const w = worker();
  w.start();
  w.accept({ id: 'flaky', name: 'issues', payload: payload(1) });
  await waitFor('the retry', () => done.length === 1);
  await sleep(100);
  expect([calls, done]).toEqual([2, ['flaky']]);
  expect(inbox.nextDueAt()).toBeUndefined();
});

test('stop waits for the deliveries being processed and starts no other; the rest stays pending for the next start', async () => {
  let finished = 0;
  webhooks.on('issues.opened', async () => {
    await sleep(150);
    finished++;
  });
  const w = worker({ concurrency: 1 });
  w.start();
  w.accept({ id: 'first', name: 'issues', payload: payload(1) });
  w.accept({ id: 'second', name: 'issues', payload: payload(2) });
  await sleep(30);
  await w.stop();
  expect(finished).toBe(1);
  expect(inbox.due(Date.now(), 10).map((d) => d.id)).toEqual(['second']);

  const next = worker();
  next.start();
  await waitFor('the second delivery after the restart', () => finished === 2);
});

test('a handler that hangs frees its slot after handlerTimeoutMs: the attempt fails, the next delivery goes on', async () => {
  const seen: string[] = [];
  webhooks.on('issues.opened', async ({ id }) => {
    seen.push(id);
    if (id === 'hangs') await new Promise(() => undefined);
  });
  const w = worker({ concurrency: 1, maxAttempts: 1, handlerTimeoutMs: 100 });
  w.start();
  w.accept({ id: 'hangs', name: 'issues', payload: payload(1) });
  w.accept({ id: 'next', name: 'issues', payload: payload(2) });
  await waitFor('the next delivery', () => seen.includes('next'));
  const failed = logs.find((l) => l.includes('marked failed'));
  expect(JSON.parse(failed!)).toMatchObject({ deliveryId: 'hangs', err: expect.stringContaining('longer than 100 ms') });
});
