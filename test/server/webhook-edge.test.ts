/**
 * The webhook edge on a real HTTP server with @octokit/webhooks' real `Webhooks` (the object Probot
 * hands the edge as `app.webhooks`) and the real inbox and its worker on a SQLite file, with small
 * limits so that each bound can be hit exactly.
 * The end-to-end attacks through the app are in test/security/webhook-edge.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, test } from '@jest/globals';
import { Webhooks } from '@octokit/webhooks';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { sign } from '@octokit/webhooks-methods';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SqliteWebhookInbox } from '../../src/server/inbox.ts';
import { WebhookInboxWorker } from '../../src/server/inbox-worker.ts';
import { createWebhookEdge, WEBHOOK_PATH, type WebhookEdgeOptions } from '../../src/server/webhook-edge.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import { waitFor } from '../support/app-harness.ts';

const SECRET = 'edge-secret';
const MARKER = 'EDGE-PAYLOAD-MARKER';

interface Running {
  url: string;
  webhooks: Webhooks;
  logs: string[];
  server: Server;
  worker: WebhookInboxWorker;
  inbox: SqliteWebhookInbox;
  dir: string;
}

let running: Running | undefined;

async function start(options: Partial<WebhookEdgeOptions> = {}): Promise<Running> {
  const webhooks = new Webhooks({ secret: SECRET });
  const dir = mkdtempSync(path.join(tmpdir(), 'edge-'));
  const file = path.join(dir, 'app.db');
  new SqliteTaskStore(file).close();
  const inbox = SqliteWebhookInbox.open(file);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const worker = new WebhookInboxWorker({ inbox, dispatcher: webhooks, log, retryBaseMs: 10 });
  worker.start();
  const edge = createWebhookEdge({ receiver: webhooks, queue: worker, log, ...options });
  const server = createServer((req, res) => {
    void Promise.resolve(edge(req, res)).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  running = { url: `http://127.0.0.1:${port}${WEBHOOK_PATH}`, webhooks, logs, server, worker, inbox, dir };
  return running;
}

afterEach(async () => {
  running?.server.closeAllConnections();
  await new Promise((resolve) => running?.server.close(resolve));
  await running?.worker.stop();
  running?.inbox.close();
  if (running) rmSync(running.dir, { recursive: true, force: true });
  running = undefined;
});

function headers(event = 'issues', id = 'd-1'): Record<string, string> {
  return { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': id };
}

async function post(r: Running, body: string, signature?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(r.url, { method: 'POST', headers: { ...headers(), 'x-hub-signature-256': signature ?? (await sign(SECRET, body)) }, body });
  return { status: res.status, text: await res.text() };
}

/** A JSON body of exactly `bytes` bytes. */
function bodyOf(bytes: number): string {
  const head = `{"action":"opened","pad":"${MARKER}`;
  return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
}

/** Starts a POST and writes `first` of `body`; `finish()` sends the rest. */
function startUpload(url: string, body: string, first: number, signature: string) {
  const req = request(url, { method: 'POST', headers: { ...headers('issues', `u-${first}`), 'x-hub-signature-256': signature, 'content-length': String(Buffer.byteLength(body)) } });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.write(body.slice(0, first));
  return { status, finish: () => req.end(body.slice(first)) };
}

describe('body size limit', () => {
  test('a body of exactly the limit is handled; one byte more gets 413, declared or streamed', async () => {
    const r = await start({ maxBodyBytes: 2048 });
    const seen: string[] = [];
    r.webhooks.on('issues.opened', ({ id }) => void seen.push(id));
    expect((await post(r, bodyOf(2048))).status).toBe(200);
    await waitFor('the handler', () => seen.length === 1);
    expect((await post(r, bodyOf(2049))).status).toBe(413);

    // Chunked, no Content-Length: refused once the stream passes the limit.
    const big = bodyOf(10_000);
    const req = request(r.url, { method: 'POST', headers: { ...headers(), 'x-hub-signature-256': await sign(SECRET, big), 'transfer-encoding': 'chunked' } });
    const status = new Promise<number>((resolve) => req.on('response', (res) => resolve(res.statusCode ?? 0)));
    for (let i = 0; i < big.length; i += 1000) req.write(big.slice(i, i + 1000));
    req.end();
    expect(await status).toBe(413);
    expect(seen).toHaveLength(1);
    expect(r.logs.join('\n')).not.toContain(MARKER);
  });

  test('the refusal comes while the upload is still open: before the body for a declared size, at the limit for a stream', async () => {
    const r = await start({ maxBodyBytes: 2048 });
    const declared = bodyOf(4096);
    const early = startUpload(r.url, declared, 10, await sign(SECRET, declared));
    expect(await early.status).toBe(413);
    early.finish();

    const req = request(r.url, { method: 'POST', headers: { ...headers(), 'x-hub-signature-256': 'sha256=00', 'transfer-encoding': 'chunked' } });
    const status = new Promise<number>((resolve) => req.on('response', (res) => resolve(res.statusCode ?? 0)));
    req.write('x'.repeat(2049));
    expect(await status).toBe(413);
    req.destroy();
  });

  test('concurrent uploads share a buffer budget: past it a request gets 503, the others go on', async () => {
    const r = await start({ maxBodyBytes: 2048, maxBufferedBytes: 3000 });
    const seen: string[] = [];
    r.webhooks.on('issues.opened', ({ id }) => void seen.push(id));
    const a = bodyOf(2000);
    const b = bodyOf(2001);
    const first = startUpload(r.url, a, 1800, await sign(SECRET, a));
    await sleep(300);
    const second = startUpload(r.url, b, 1800, await sign(SECRET, b));
    expect(await second.status).toBe(503);
    first.finish();
    expect(await first.status).toBe(200);
    second.finish();
    await waitFor('the handler', () => seen.length === 1);
    expect(seen).toEqual(['u-1800']);
    // The budget is given back: a new request fits again.
    expect((await post(r, bodyOf(2000))).status).toBe(200);
  });
});

describe('order and answers', () => {
  test('the signature is checked before the body is parsed: a bad one gets 400 and reaches no handler', async () => {
    const r = await start();
    let called = false;
    r.webhooks.onAny(() => void (called = true));
    expect((await post(r, '{not json', 'sha256=' + '0'.repeat(64))).status).toBe(400);
    expect((await post(r, JSON.stringify({ action: 'opened', x: MARKER }), 'sha256=' + '0'.repeat(64))).status).toBe(400);
    expect(called).toBe(false);
    expect(r.logs.some((l) => l.includes('signature does not match'))).toBe(true);
    expect(r.logs.join('\n')).not.toContain(MARKER);
    // Signed but not JSON: 400 too.
    expect((await post(r, `{"x":"${MARKER}"`)).status).toBe(400);
  });

  test.each([['[1]'], ['"text"'], ['null'], ['{"action":7}'], ['{"installation":{"id":"1"}}'], ['{"installation":null}']])(
    'a signed %s is not dispatched: 202',
    async (body) => {
      const r = await start();
      let called = false;
      r.webhooks.onAny(() => void (called = true));
      expect((await post(r, body)).status).toBe(202);
      expect(called).toBe(false);
    },
  );

  test('a delivery is answered 200 once stored, before its handler runs; a slow handler holds nothing', async () => {
    const r = await start();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let finished = 0;
    r.webhooks.on('issues.opened', async () => {
      await gate;
      finished++;
    });
    const { status, text } = await post(r, bodyOf(300));
    expect(status).toBe(200);
    expect(JSON.parse(text)).toEqual({ ok: 'queued' });
    expect(finished).toBe(0);
    release();
    await waitFor('the handler', () => finished === 1);
  });

  test('a redelivery (same X-GitHub-Delivery) is answered 200 and not handled again', async () => {
    const r = await start();
    const seen: string[] = [];
    r.webhooks.on('issues.opened', ({ id }) => void seen.push(id));
    const body = bodyOf(400);
    expect((await post(r, body)).status).toBe(200);
    await waitFor('the handler', () => seen.length === 1);
    const again = await post(r, body);
    expect([again.status, JSON.parse(again.text)]).toEqual([200, { ok: 'duplicate' }]);
    await sleep(200);
    expect(seen).toEqual(['d-1']);
  });

  test('a delivery that cannot be stored gets 503 (GitHub shows it failed, to redeliver), one line without the payload', async () => {
    const r = await start();
    r.inbox.close();
    const { status } = await post(r, bodyOf(500));
    expect(status).toBe(503);
    expect(r.logs.filter((l) => l.includes('webhook not stored'))).toHaveLength(1);
    expect(r.logs.join('\n')).not.toContain(MARKER);
    // The inbox is closed here: reopen one, so that the clean-up can close it.
    r.inbox = SqliteWebhookInbox.open(path.join(r.dir, 'app.db'));
  });

  test("every one of GitHub's example payloads (@octokit/webhooks-examples) is dispatched", async () => {
    const r = await start();
    const seen = new Set<string>();
    r.webhooks.onAny(({ id }) => void seen.add(id));
    const definitions = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];
    let n = 0;
    for (const definition of definitions) {
      for (const example of definition.examples) {
        const body = JSON.stringify(example);
        const id = `example-${n++}`;
        const res = await fetch(r.url, { method: 'POST', headers: { ...headers(definition.name, id), 'x-hub-signature-256': await sign(SECRET, body) }, body });
        expect([definition.name, res.status]).toEqual([definition.name, 200]);
      }
    }
    expect(n).toBeGreaterThan(300);
    await waitFor('every example handled', () => seen.size === n);
  });

  test('other paths pass through; other methods get 405', async () => {
    const r = await start();
    expect((await fetch(r.url.replace(WEBHOOK_PATH, '/elsewhere'), { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await fetch(r.url)).status).toBe(405);
    expect((await fetch(`${r.url}/`, { method: 'PUT' })).status).toBe(405);
  });
});
