/** The runner's HTTP reporter against a local recording server: batching, order, retries, auth, URL checks. */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProgressEvent } from '../../src/contract.ts';
import { InsecureUrlError, isLoopbackHost, Reporter, requireSecureUrl } from '../../src/agent/reporter.ts';
import { failedResult } from '../../src/runners/backend.ts';

interface Received {
  path: string;
  authorization?: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arbitrary JSON
  body: any;
  status: number;
}

let server: http.Server;
let base: string;
const received: Received[] = [];
/** Statuses to answer next, in order (then 200). */
const plan: number[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = plan.shift() ?? 200;
      received.push({ path: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"ok":true}' : '{"error":{"code":"x","message":"nope"}}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runner/v1/tasks/task_1`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received.length = 0;
  plan.length = 0;
});

const msg = (i: number): ProgressEvent => ({ type: 'message', at: '2025-01-01T00:00:00.000Z', text: `m${i}` });
const result = failedResult({ id: 'task_1', repository: { baseSha: 'a'.repeat(40) } } as never, 'agent', 'boom');

function reporter(extra: Partial<ConstructorParameters<typeof Reporter>[0]> = {}, logs: string[] = []): Reporter {
  return new Reporter({ url: base, token: 'cct_token', batchMs: 10_000, resultMinDelayMs: 1, eventRetryDelayMs: 1, log: (m) => logs.push(m), ...extra });
}

describe('Reporter', () => {
  test('batches events in order with the task token; full batches go at once; result events are not sent as events', async () => {
    const r = reporter({ batchSize: 50 });
    for (let i = 0; i < 120; i++) r.event(msg(i));
    r.event({ type: 'result', at: 'x', result });
    await r.flush();
    expect(received.map((x) => [x.path, x.body.events.length])).toEqual([
      ['/runner/v1/tasks/task_1/events', 50],
      ['/runner/v1/tasks/task_1/events', 50],
      ['/runner/v1/tasks/task_1/events', 20],
    ]);
    expect(received.flatMap((x) => x.body.events.map((e: { text: string }) => e.text))).toEqual(Array.from({ length: 120 }, (_, i) => `m${i}`));
    expect(received.every((x) => x.authorization === 'Bearer cct_token')).toBe(true);
    r.close();
  });

  test('a partial batch is sent after batchMs without a flush', async () => {
    const r = reporter({ batchMs: 20 });
    r.event(msg(1));
    r.event(msg(2));
    while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(received[0]!.body.events.map((e: { text: string }) => e.text)).toEqual(['m1', 'm2']);
    r.close();
  });

  test('an events batch is retried a couple of times, then dropped with a line on stderr; later batches still go', async () => {
    const logs: string[] = [];
    const r = reporter({ eventRetries: 2 }, logs);
    plan.push(503, 200);
    r.event(msg(1));
    await r.flush();
    expect(received.map((x) => x.status)).toEqual([503, 200]);
    received.length = 0;
    plan.push(503, 503, 503);
    r.event(msg(2));
    await r.flush();
    expect(received).toHaveLength(3);
    expect(logs).toEqual([expect.stringMatching(/^1 progress events could not be sent: HTTP 503/)]);
    r.event(msg(3));
    await r.flush();
    expect(received.at(-1)!.body.events[0].text).toBe('m3');
    r.close();
  });

  test('the result is retried on 5xx until accepted, after the pending events', async () => {
    const logs: string[] = [];
    const r = reporter({}, logs);
    r.event(msg(1));
    plan.push(200, 502, 503);
    expect(await r.sendResult(result)).toBe(true);
    expect(received.map((x) => [x.path.split('/').at(-1), x.status])).toEqual([
      ['events', 200],
      ['result', 502],
      ['result', 503],
      ['result', 200],
    ]);
    expect(received.at(-1)!.body).toEqual(result);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(/^sending the result failed \(attempt 1: HTTP 502/);
    expect(logs.join('\n')).not.toContain('cct_token');
  });

  test('the result is not retried on 401/403 and reported undeliverable; an unreachable app gives up after the retry time', async () => {
    const logs: string[] = [];
    plan.push(401);
    expect(await reporter({}, logs).sendResult(result)).toBe(false);
    expect(received).toHaveLength(1);
    expect(logs).toEqual([expect.stringMatching(/^the result could not be delivered to the app: HTTP 401/)]);
    const closed = new Reporter({ url: 'http://127.0.0.1:9/runner/v1/tasks/task_1', token: 't', resultMaxRetryTimeMs: 50, resultMinDelayMs: 5, log: () => undefined });
    expect(await closed.sendResult(result)).toBe(false);
  });
});

describe('URL checks', () => {
  test('https always; http only for loopback or with CODEX_ALLOW_INSECURE_APP_URL=1', () => {
    expect(requireSecureUrl('https://codex.example.com', {}).host).toBe('codex.example.com');
    for (const ok of ['http://127.0.0.1:3000', 'http://localhost:1', 'http://[::1]:8080', 'http://127.1.2.3']) expect(() => requireSecureUrl(ok, {})).not.toThrow();
    for (const bad of ['http://codex.example.com', 'http://10.0.0.5', 'http://128.0.0.1', 'ftp://127.0.0.1', 'not a url']) {
      expect(() => requireSecureUrl(bad, {})).toThrow(InsecureUrlError);
    }
    expect(() => requireSecureUrl('http://app.internal:3000', { CODEX_ALLOW_INSECURE_APP_URL: '1' })).not.toThrow();
    expect(() => requireSecureUrl('http://app.internal:3000', { CODEX_ALLOW_INSECURE_APP_URL: 'true' })).toThrow(/https is required/);
    expect(isLoopbackHost('LOCALHOST')).toBe(true);
    expect(isLoopbackHost('[::ffff:127.0.0.1]')).toBe(true);
    expect(isLoopbackHost('example.com')).toBe(false);
    expect(() => new Reporter({ url: 'http://codex.example.com/runner/v1/tasks/x', token: 't' })).toThrow(InsecureUrlError);
  });
});
