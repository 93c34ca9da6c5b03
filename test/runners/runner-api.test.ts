/** The runner API over real HTTP: claims once, task-token checks per task, validation, size limits, event caps. */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { Claims } from '../../src/runners/claims.ts';
import {
  createRunnerApi,
  DEFAULT_MAX_CLAIM_BYTES,
  DEFAULT_MAX_EVENTS_BYTES,
  DEFAULT_MAX_RESULT_BYTES,
} from '../../src/runners/runner-api.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';

function spec(id: string, token: string): TaskSpec {
  return TaskSpec.parse({
    id,
    kind: 'task',
    repository: { cloneUrl: 'https://github.com/acme/calc.git', fullName: 'acme/calc', token: 'ghs_clone', baseRef: 'main', baseSha: 'b'.repeat(40) },
    instruction: 'fix it',
    model: { apiKey: token, name: 'gpt-test' },
    report: { url: `http://127.0.0.1/runner/v1/tasks/${id}`, token },
  });
}

let now = Date.now();
const tokens = new TaskTokens();
const claims = new Claims({ now: () => now });
const received: Array<{ taskId: string; events?: ProgressEvent[]; result?: TaskResult }> = [];
const logs: Array<{ level: string; obj: object; msg?: string }> = [];
const handler = createRunnerApi({
  claims,
  tokens,
  onEvents: (taskId, events) => received.push({ taskId, events }),
  onResult: (taskId, result) => received.push({ taskId, result }),
  log: { info: (obj, msg) => logs.push({ level: 'info', obj, msg }), warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }) },
  maxEventsBytes: 64 * 1024,
});
let server: http.Server;
let base: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not the runner API');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received.length = 0;
  logs.length = 0;
  now = Date.now();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary answer fields
async function post(path: string, body: unknown, token?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

const phase: ProgressEvent = { type: 'phase', at: '2025-01-01T00:00:00.000Z', phase: 'checkout', status: 'started' };

describe('POST /runner/v1/claim', () => {
  test('the first use returns the TaskSpec; a second use is 403 with a JSON error, and logged', async () => {
    const token = tokens.issue('task_c1', { budgetTokens: 1000, ttlMs: 60_000 });
    const ticket = claims.issue(spec('task_c1', token));
    const first = await post('/runner/v1/claim', { taskId: 'task_c1', ticket });
    expect(first.status).toBe(200);
    expect(TaskSpec.parse(first.json)).toEqual(spec('task_c1', token));
    const second = await post('/runner/v1/claim', { taskId: 'task_c1', ticket });
    expect(second.status).toBe(403);
    expect(second.json).toEqual({ error: { code: 'claim_refused', message: 'claim refused: already used' } });
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'runner claim refused', obj: expect.objectContaining({ taskId: 'task_c1', reason: 'already used' }) }));
    expect(JSON.stringify(logs)).not.toContain(ticket);
  });

  test('an expired ticket and a ticket for another task are 403', async () => {
    const a = claims.issue(spec('task_c2', 'cct_a'));
    claims.issue(spec('task_c3', 'cct_b'));
    expect((await post('/runner/v1/claim', { taskId: 'task_c3', ticket: a })).json.error.message).toBe('claim refused: wrong ticket');
    expect((await post('/runner/v1/claim', { taskId: 'task_zz', ticket: a })).status).toBe(403);
    now += 16 * 60_000;
    const expired = await post('/runner/v1/claim', { taskId: 'task_c2', ticket: a });
    expect(expired.status).toBe(403);
    expect(expired.json.error.message).toBe('claim refused: expired');
  });

  test('bad JSON and bad shapes are 400; other methods 405; unknown routes 404; other paths are not handled', async () => {
    const bad = await post('/runner/v1/claim', '{nope');
    expect(bad).toEqual({ status: 400, json: { error: { code: 'invalid_json', message: 'the body is not valid JSON' } } });
    const shape = await post('/runner/v1/claim', { taskId: 'x' });
    expect(shape.status).toBe(400);
    expect(shape.json.error.message).toContain('ticket');
    expect((await fetch(`${base}/runner/v1/claim`)).status).toBe(405);
    expect((await post('/runner/v1/nope', {})).status).toBe(404);
    const other = await fetch(`${base}/v1/responses`, { method: 'POST' });
    expect(other.status).toBe(404);
    expect(await other.text()).toBe('not the runner API');
  });
});

describe('POST /runner/v1/tasks/:id/events and /result', () => {
  test('events need a live task token of that very task', async () => {
    const mine = tokens.issue('task_e1', { budgetTokens: 1000, ttlMs: 60_000 });
    const other = tokens.issue('task_e2', { budgetTokens: 1000, ttlMs: 60_000 });
    expect((await post('/runner/v1/tasks/task_e1/events', { events: [phase] })).status).toBe(401);
    expect((await post('/runner/v1/tasks/task_e1/events', { events: [phase] }, 'cct_forged')).status).toBe(401);
    const wrong = await post('/runner/v1/tasks/task_e1/events', { events: [phase] }, other);
    expect(wrong.status).toBe(403);
    expect(wrong.json.error.code).toBe('wrong_task');
    expect(received).toEqual([]);
    const ok = await post('/runner/v1/tasks/task_e1/events', { events: [phase, { type: 'message', at: phase.at, text: 'hi' }] }, mine);
    expect(ok).toEqual({ status: 200, json: { accepted: 2 } });
    expect(received).toEqual([{ taskId: 'task_e1', events: [phase, { type: 'message', at: phase.at, text: 'hi' }] }]);
    tokens.revoke('task_e1');
    expect((await post('/runner/v1/tasks/task_e1/events', { events: [phase] }, mine)).status).toBe(401);
  });

  test('invalid events are 400 naming the field; bad JSON 400; too large 413', async () => {
    const token = tokens.issue('task_e3', { budgetTokens: 1000, ttlMs: 60_000 });
    const invalid = await post('/runner/v1/tasks/task_e3/events', { events: [{ type: 'phase', at: 'x', phase: 'nope', status: 'started' }] }, token);
    expect(invalid.status).toBe(400);
    expect(invalid.json.error.message).toContain('events.0');
    expect((await post('/runner/v1/tasks/task_e3/events', 'not json', token)).status).toBe(400);
    const big = await post('/runner/v1/tasks/task_e3/events', { events: [{ type: 'message', at: phase.at, text: 'x'.repeat(100 * 1024) }] }, token);
    expect(big.status).toBe(413);
    expect(received).toEqual([]);
  });

  test('a result is validated, must be for the task, is kept and handed on', async () => {
    const token = tokens.issue('task_r1', { budgetTokens: 1000, ttlMs: 60_000 });
    const result = failedResult(spec('task_r1', token), 'agent', 'boom');
    const otherId = await post('/runner/v1/tasks/task_r1/result', { ...result, id: 'task_r2' }, token);
    expect(otherId.status).toBe(400);
    expect((await post('/runner/v1/tasks/task_r1/result', { ...result, status: 'great' }, token)).status).toBe(400);
    expect(received).toEqual([]);
    const ok = await post('/runner/v1/tasks/task_r1/result', result, token);
    expect(ok).toEqual({ status: 200, json: { ok: true } });
    expect(received).toEqual([{ taskId: 'task_r1', result }]);
    expect(claims.result('task_r1')).toEqual(result);
    const other = tokens.issue('task_r3', { budgetTokens: 1000, ttlMs: 60_000 });
    expect((await post('/runner/v1/tasks/task_r1/result', result, other)).status).toBe(403);
  });
});

/** A runner API on its own server, with its own options; closed after the test file. */
async function startApi(options: Partial<Parameters<typeof createRunnerApi>[0]>): Promise<{ url: string; received: typeof received }> {
  const got: typeof received = [];
  const api = createRunnerApi({
    claims,
    tokens,
    onEvents: (taskId, events) => got.push({ taskId, events }),
    onResult: (taskId, result) => got.push({ taskId, result }),
    ...options,
  });
  const srv = http.createServer((req, res) => {
    void api(req, res);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  extraServers.push(srv);
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, received: got };
}
const extraServers: http.Server[] = [];
afterAll(async () => {
  for (const srv of extraServers) {
    srv.closeAllConnections();
    await new Promise((resolve) => srv.close(resolve));
  }
});

/**
 * POSTs a body of `totalBytes` in `chunkBytes` chunks (chunked transfer encoding unless
 * `contentLength` is given), writing only as fast as the server reads, and stops writing once an
 * answer arrives. Resolves with the answer, how many bytes had been handed to the socket by then and
 * whether the whole body had been sent.
 */
function pushBody(
  url: string,
  opts: { token?: string; totalBytes: number; chunkBytes: number; contentLength?: number },
): Promise<{ status: number; body: string; sentWhenAnswered: number; finished: boolean }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.contentLength !== undefined) headers['content-length'] = String(opts.contentLength);
    const req = http.request(url, { method: 'POST', headers });
    const chunk = Buffer.alloc(opts.chunkBytes, 0x61);
    let sent = 0;
    let answered = false;
    let finished = false;
    req.on('response', (res) => {
      answered = true;
      const sentWhenAnswered = sent;
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), sentWhenAnswered, finished }));
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error); // after an answer, EPIPE/ECONNRESET from the closed socket are expected
    });
    const pump = (): void => {
      while (!answered && !req.destroyed && sent < opts.totalBytes) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered && sent >= opts.totalBytes) {
        finished = true;
        req.end();
      }
    };
    pump();
  });
}

describe('body limits (explicit, checked while the body is read)', () => {
  test('the defaults are 16 KiB for a claim, 1 MiB for events, 96 MiB for a result', () => {
    expect(DEFAULT_MAX_CLAIM_BYTES).toBe(16 * 1024);
    expect(DEFAULT_MAX_EVENTS_BYTES).toBe(1024 * 1024);
    expect(DEFAULT_MAX_RESULT_BYTES).toBe(96 * 1024 * 1024);
  });

  test('a claim body over 16 KiB is 413 as it streams in, without a content-length', async () => {
    const answer = await pushBody(`${base}/runner/v1/claim`, { totalBytes: 4 * 1024 * 1024, chunkBytes: 4 * 1024 });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'body_too_large', message: `the body exceeds ${16 * 1024} bytes` } });
    expect(answer.finished).toBe(false);
  });

  test('a 200 MiB result is cut at the limit: 413 before the runner finished sending, nothing buffered or parsed past it', async () => {
    const api = await startApi({ maxResultBytes: 8 * 1024 * 1024 });
    const token = tokens.issue('task_big', { budgetTokens: 1000, ttlMs: 60_000 });
    const answer = await pushBody(`${api.url}/runner/v1/tasks/task_big/result`, { token, totalBytes: 200 * 1024 * 1024, chunkBytes: 1024 * 1024 });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'body_too_large', message: `the body exceeds ${8 * 1024 * 1024} bytes` } });
    expect(answer.finished).toBe(false);
    // The server stopped reading at the limit: only what socket buffers hold went out beyond it.
    expect(answer.sentWhenAnswered).toBeLessThan(64 * 1024 * 1024);
    expect(api.received).toEqual([]);
    expect(claims.result('task_big')).toBeUndefined();
  }, 30_000);

  test('a declared content-length over the limit is 413 before any of the body is read', async () => {
    const api = await startApi({ maxResultBytes: 8 * 1024 * 1024 });
    const token = tokens.issue('task_big2', { budgetTokens: 1000, ttlMs: 60_000 });
    const answer = await pushBody(`${api.url}/runner/v1/tasks/task_big2/result`, {
      token, totalBytes: 200 * 1024 * 1024, chunkBytes: 1024 * 1024, contentLength: 200 * 1024 * 1024,
    });
    expect(answer.status).toBe(413);
    expect(answer.finished).toBe(false);
  }, 30_000);
});

describe('event caps per task', () => {
  const message = (i: number): ProgressEvent => ({ type: 'message', at: phase.at, text: `${i} ${'x'.repeat(1000)}` });

  test('a flood of events is stored up to the cap, then refused with 413 and one warning event', async () => {
    const store = new SqliteTaskStore(':memory:');
    const api = await startApi({
      maxEventsPerTask: 120,
      onEvents: (taskId, events) => {
        for (const event of events) store.appendEvent(taskId, event);
      },
    });
    const token = tokens.issue('task_flood', { budgetTokens: 1000, ttlMs: 60_000 });
    const answers: Array<{ status: number; code?: string }> = [];
    for (let batch = 0; batch < 10; batch++) {
      const res = await fetch(`${api.url}/runner/v1/tasks/task_flood/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events: Array.from({ length: 50 }, (_, i) => message(batch * 50 + i)) }),
      });
      const json = (await res.json()) as { error?: { code: string } };
      answers.push({ status: res.status, ...(json.error ? { code: json.error.code } : {}) });
    }
    expect(answers.slice(0, 2)).toEqual([{ status: 200 }, { status: 200 }]);
    expect(answers.slice(2)).toEqual(Array(8).fill({ status: 413, code: 'event_cap_exceeded' }));

    const stored = store.events('task_flood');
    expect(stored).toHaveLength(121); // the cap, then the one warning
    expect(stored.slice(0, 120)).toEqual(Array.from({ length: 120 }, (_, i) => message(i)));
    const warnings = stored.filter((e) => e.type === 'log');
    expect(warnings).toEqual([expect.objectContaining({ type: 'log', level: 'warn', message: expect.stringContaining('later events of this task are dropped') })]);

    // Once capped, a batch is refused before its body is read (this one is not even JSON).
    const unread = await fetch(`${api.url}/runner/v1/tasks/task_flood/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: 'not json at all',
    });
    expect(unread.status).toBe(413);
    expect(store.events('task_flood')).toHaveLength(121);
    // Another task is not affected.
    const other = tokens.issue('task_calm', { budgetTokens: 1000, ttlMs: 60_000 });
    const calm = await fetch(`${api.url}/runner/v1/tasks/task_calm/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [phase] }),
    });
    expect(calm.status).toBe(200);
    store.close();
  });

  test('the byte cap counts the events\' JSON', async () => {
    const api = await startApi({ maxEventBytesPerTask: 10 * 1024 });
    const token = tokens.issue('task_bytes', { budgetTokens: 1000, ttlMs: 60_000 });
    const events = Array.from({ length: 20 }, (_, i) => message(i)); // about 1 KiB each
    const res = await fetch(`${api.url}/runner/v1/tasks/task_bytes/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('(11 of this batch dropped)');
    const handed = api.received.flatMap((r) => r.events ?? []);
    expect(handed.slice(0, -1)).toEqual(events.slice(0, 9));
    expect(handed.slice(0, -1).reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0)).toBeLessThanOrEqual(10 * 1024);
    expect(handed.at(-1)).toMatchObject({ type: 'log', level: 'warn' });
  });
});
