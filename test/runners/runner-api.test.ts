/** The runner API over real HTTP: claims once, task-token checks per task, validation, size limits. */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { Claims } from '../../src/runners/claims.ts';
import { createRunnerApi } from '../../src/runners/runner-api.ts';

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
