/**
 * The app's logger: one `name` per line (a child's replaces its parent's), URL query strings and
 * `key=`/`token=` values redacted in every line; then the same through the real app's access log
 * (Probot's pino-http logger), where the task page's key used to be written.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createLogger, redactUrls } from '../../src/server/logger.ts';
import { AppHarness, waitFor } from '../support/app-harness.ts';

function capture(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, sink };
}

const names = (line: string) => line.match(/"name":/g)?.length ?? 0;

describe('createLogger', () => {
  test('a named child prints its own name once, its children keep it, the root keeps its own', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    log.info('root');
    const http = log.child({ name: 'http' });
    http.info('child');
    http.child({ reqId: 'r1' }).child({ name: 'inner', extra: 1 }).info('grandchild');
    log.child({ component: 'x' }).info('unnamed child');
    expect(lines.map(names)).toEqual([1, 1, 1, 1]);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ name: 'codex-cloud', msg: 'root' }),
      expect.objectContaining({ name: 'http', msg: 'child' }),
      expect.objectContaining({ name: 'inner', reqId: 'r1', extra: 1, msg: 'grandchild' }),
      expect.objectContaining({ name: 'codex-cloud', component: 'x', msg: 'unnamed child' }),
    ]);
  });

  test('query strings of URLs and key=/token= values are redacted in the message and in fields', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink).child({ name: 'http' });
    log.child({ req: { method: 'GET', url: '/tasks/task_1?key=PAGE-KEY-SECRET' } }).info('GET /tasks/task_1?key=PAGE-KEY-SECRET 200 - 3ms');
    log.info({ link: 'https://example.test/tasks/t/events?a=1&key=OTHER-SECRET#top' }, 'see access_token=TOKEN-SECRET and "/quoted?x=\\"QUOTED-SECRET\\""');
    const text = lines.join('\n');
    for (const secret of ['PAGE-KEY-SECRET', 'OTHER-SECRET', 'TOKEN-SECRET', 'QUOTED-SECRET']) expect(text).not.toContain(secret);
    const [access, other] = lines.map((l) => JSON.parse(l) as { msg: string; req?: { url: string }; link?: string });
    expect(access!.msg).toBe('GET /tasks/task_1?[redacted] 200 - 3ms');
    expect(access!.req!.url).toBe('/tasks/task_1?[redacted]');
    expect(other!.link).toBe('https://example.test/tasks/t/events?[redacted]#top');
    expect(other!.msg).toContain('access_token=[redacted]');
  });

  test('redactUrls leaves lines without a query alone and keeps JSON valid around escapes', () => {
    const plain = '{"msg":"GET /healthz 200 - 1ms","what":"a? b"}';
    expect(redactUrls(plain)).toBe(plain);
    const escaped = JSON.stringify({ url: '/a?x=1\\"},"y":"z', after: 'kept' });
    const out = JSON.parse(redactUrls(escaped)) as Record<string, string>;
    expect(out).toEqual({ url: '/a?[redacted]', after: 'kept' });
  });
});

describe('the real app', () => {
  let h: AppHarness;
  beforeAll(async () => {
    h = await AppHarness.start();
  });
  afterAll(async () => {
    await h?.close();
  });

  test("the access log shows no task page key or token, and its lines carry one name ('http')", async () => {
    expect((await fetch(`${h.url}/tasks/task_abc?key=PAGE-KEY-0123456789`)).status).toBe(404);
    expect((await fetch(`${h.url}/healthz?token=TOKEN-0123456789`)).status).toBe(200);
    const access = await waitFor('the access log lines', () => {
      const found = h.logs.split('\n').filter((l) => l.includes('"name":"http"') && /\/(tasks\/task_abc|healthz)\?/.test(l));
      return found.length === 2 ? found : undefined;
    });
    expect(h.logs).not.toContain('PAGE-KEY-0123456789');
    expect(h.logs).not.toContain('TOKEN-0123456789');
    for (const line of access) {
      expect(names(line)).toBe(1);
      expect(line).toContain('?[redacted]');
    }
    expect(h.logs).not.toMatch(/"name":"codex-cloud","name":/);
  });
});
