import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Script, createContext } from 'node:vm';
import { TaskResult, type ProgressEvent } from '../../src/contract.ts';
import {
  createTaskPageHandler,
  newTaskKey,
  taskPageUrl,
} from '../../src/web/task-page.ts';
import type { TaskEventSource, TaskPageRecord, TaskStreamMessage } from '../../src/web/task-page.ts';

/** An in-memory task store, as the real one behaves: append, then notify. */
class MemorySource implements TaskEventSource {
  readonly tasks = new Map<string, TaskPageRecord>();
  readBaseFile?: TaskEventSource['readBaseFile'];
  readonly listeners = new Map<string, Set<(m: TaskStreamMessage) => void>>();

  get(taskId: string): TaskPageRecord | undefined {
    return this.tasks.get(taskId);
  }

  subscribe(taskId: string, listener: (m: TaskStreamMessage) => void): () => void {
    const set = this.listeners.get(taskId) ?? new Set();
    this.listeners.set(taskId, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  listenerCount(taskId: string): number {
    return this.listeners.get(taskId)?.size ?? 0;
  }

  push(taskId: string, event: ProgressEvent): void {
    this.tasks.get(taskId)!.events.push(event);
    for (const l of this.listeners.get(taskId) ?? []) l(event);
  }

  setState(taskId: string, state: string): void {
    this.tasks.get(taskId)!.state = state;
    for (const l of this.listeners.get(taskId) ?? []) l({ type: 'state', state });
  }
}

const HOSTILE = '<img src=x onerror=alert(1)></script><script>alert(2)</script>';
const at = '2026-01-01T00:00:00.000Z';

let server: Server;
let base: string;
let source: MemorySource;
let key: string;

beforeEach(async () => {
  source = new MemorySource();
  key = newTaskKey();
  source.tasks.set('t1', {
    key,
    title: `Raise the limit ${HOSTILE}`,
    repository: 'octo/app',
    state: 'running',
    events: [
      { type: 'phase', at, phase: 'checkout', status: 'started' },
      { type: 'command_begin', at, phase: 'agent', command: ['bash', '-lc', `echo '${HOSTILE}'`], workdir: '.' },
      { type: 'message', at, text: `Working on it ${HOSTILE}` },
    ],
  });
  const handler = createTaskPageHandler({ source, heartbeatMs: 25 });
  server = createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end('not mine');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Reads a text/event-stream response into frames until `stop` says so or the stream ends. */
async function readStream(
  response: Response,
  stop: (frames: string[]) => boolean = () => false,
): Promise<{ frames: string[]; ended: boolean; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const frames: string[] = [];
  let buffer = '';
  for (;;) {
    if (stop(frames)) return { frames, ended: false, reader };
    const { value, done } = await reader.read();
    if (done) return { frames, ended: true, reader };
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      frames.push(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

/** The JSON messages (with their ids) among SSE frames. */
function messages(frames: string[]): Array<{ id?: string; data: { type: string; [k: string]: unknown } }> {
  return frames.flatMap((frame) => {
    const data = /^data: (.*)$/m.exec(frame)?.[1];
    if (data === undefined) return [];
    const id = /^id: (.*)$/m.exec(frame)?.[1];
    return [{ ...(id === undefined ? {} : { id }), data: JSON.parse(data) }];
  });
}


/** Just enough of a DOM to run the page's script: elements with text, classes and children. */
class FakeElement {
  readonly tagName: string;
  children: Array<FakeElement | string> = [];
  className = '';
  hidden = false;
  dataset: Record<string, string> = {};
  readonly classList = {
    toggle: (name: string, on: boolean): void => {
      const names = new Set(this.className.split(' ').filter(Boolean));
      if (on) names.add(name);
      else names.delete(name);
      this.className = [...names].join(' ');
    },
  };
  constructor(tagName: string) {
    this.tagName = tagName;
  }
  get textContent(): string {
    return this.children.map((c) => (typeof c === 'string' ? c : c.textContent)).join('');
  }
  set textContent(text: string) {
    this.children = text === '' ? [] : [String(text)];
  }
  append(...nodes: Array<FakeElement | string>): void {
    this.children.push(...nodes);
  }
  replaceChildren(...nodes: Array<FakeElement | string>): void {
    this.children = nodes;
  }
  /** Elements only (what `children` is in a real DOM), for assertions. */
  get elements(): FakeElement[] {
    return this.children.filter((c): c is FakeElement => typeof c !== 'string');
  }
}

/** Runs the page's inline script against a fake DOM built from the page's ids; returns the stream. */
function runPageScript(html: string, pageUrl: string) {
  const byId = new Map<string, FakeElement>();
  for (const m of html.matchAll(/<(\w+)[^>]*\bid="([^"]+)"/g)) byId.set(m[2]!, new FakeElement(m[1]!));
  const phases = byId.get('phases')!;
  for (const m of html.matchAll(/<li data-phase="(\w+)">/g)) {
    const li = new FakeElement('li');
    li.dataset.phase = m[1]!;
    phases.append(li);
  }
  const errors: unknown[] = [];
  const fetched: string[] = [];
  const streams: FakeEventSource[] = [];
  class FakeEventSource {
    readonly url: string;
    closed = false;
    onopen: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onmessage: ((m: { data: string }) => void) | null = null;
    constructor(url: string) {
      this.url = url;
      streams.push(this);
    }
    close(): void {
      this.closed = true;
    }
  }
  const url = new URL(pageUrl);
  const window = { innerHeight: 800, scrollY: 0, scrollTo: () => {} };
  const document = {
    getElementById: (id: string) => byId.get(id) ?? null,
    createElement: (tag: string) => new FakeElement(tag),
    body: { scrollHeight: 1000 },
  };
  const script = /<script\b[^>]*>([\s\S]*?)<\/script>/.exec(html)![1]!;
  new Script(script).runInContext(
    createContext({
      window,
      document,
      location: { pathname: url.pathname, search: url.search, href: url.href },
      EventSource: FakeEventSource,
      // The result refresh: answered 503 here (the browser test covers the swap).
      fetch: async (href: string) => {
        fetched.push(href);
        return { ok: false };
      },
      console: { error: (e: unknown) => errors.push(e), log: () => {} },
    }),
  );
  return { byId, errors, fetched, stream: streams[0]! };
}

describe('task page', () => {
  it('answers 404 for a wrong, missing or other task key, the same as for an unknown task', async () => {
    const unknown = await fetch(`${base}/tasks/nope?key=${key}`);
    const unknownBody = await unknown.text();
    expect(unknown.status).toBe(404);
    for (const path of ['', '/events', '/events.json', '/result.html']) {
      for (const query of ['', '?key=', `?key=${key.slice(0, -1)}`, `?key=${key}x`, '?key=undefined']) {
        const res = await fetch(`${base}/tasks/t1${path}${query}`);
        expect(res.status).toBe(404);
        expect(await res.text()).toBe(unknownBody);
        expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      }
    }
    // A task stored without a key is never reachable.
    source.tasks.set('t2', { ...source.tasks.get('t1')!, key: '' });
    expect((await fetch(`${base}/tasks/t2?key=`)).status).toBe(404);
    // Other paths are not the handler's.
    expect((await fetch(`${base}/other`)).status).toBe(418);
    expect((await fetch(`${base}/tasksx/t1`)).status).toBe(418);
    expect((await fetch(`${base}/tasks/t1?key=${key}`, { method: 'POST' })).status).toBe(405);
  });

  it('serves a self-contained page with a strict nonce CSP and escaped text', async () => {
    const res = await fetch(`${base}/tasks/t1?key=${encodeURIComponent(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const csp = res.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain('unsafe');

    const html = await res.text();
    // Only our own script, with the nonce; its code parses.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]![1]).toBe(` nonce="${nonce}"`);
    expect(() => new Script(scripts[0]![2]!)).not.toThrow();
    expect(html).toContain('EventSource');
    expect(html.match(/<style\b[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    // No external assets.
    expect(html).not.toMatch(/\b(src|href)="(https?:)?\/\//);
    // The title is escaped; event text is not in the HTML at all (the script adds it with textContent).
    expect(html).toContain('Raise the limit &#60;img src=x onerror=alert(1)&#62;&#60;/script&#62;');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('Working on it');
    expect(html).toContain('octo/app');
    expect(scripts[0]![2]).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    // A fresh nonce per response.
    const again = await fetch(`${base}/tasks/t1?key=${encodeURIComponent(key)}`);
    expect(again.headers.get('content-security-policy')).not.toBe(csp);
  });

  it('streams stored events, then live ones, and ends on a final state', async () => {
    const res = await fetch(`${base}/tasks/t1/events?key=${encodeURIComponent(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');

    const first = await readStream(res, (f) => messages(f).some((m) => m.data.type === 'state'));
    expect(messages(first.frames)).toEqual([
      { id: '0', data: source.tasks.get('t1')!.events[0] },
      { id: '1', data: source.tasks.get('t1')!.events[1] },
      { id: '2', data: source.tasks.get('t1')!.events[2] },
      { data: { type: 'state', state: 'running' } },
    ]);
    expect(source.listenerCount('t1')).toBe(1);

    const live: ProgressEvent = {
      type: 'command_end',
      at,
      phase: 'agent',
      command: ['npm', 'test'],
      workdir: '.',
      exitCode: 1,
      durationMs: 1234,
      timedOut: false,
    };
    source.push('t1', live);
    source.setState('t1', 'publishing');
    source.setState('t1', 'succeeded');
    source.setState('t1', 'ignored after the end');

    const reader = first.reader;
    const decoder = new TextDecoder();
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
    }
    const frames = rest.split('\n\n').filter(Boolean);
    expect(messages(frames)).toEqual([
      { id: '3', data: live },
      { data: { type: 'state', state: 'publishing' } },
      { data: { type: 'state', state: 'succeeded' } },
    ]);
    expect(source.listenerCount('t1')).toBe(0);
  });

  it('sends heartbeats, resumes after Last-Event-ID, and unsubscribes when the client leaves', async () => {
    const controller = new AbortController();
    const res = await fetch(`${base}/tasks/t1/events?key=${encodeURIComponent(key)}`, {
      headers: { 'Last-Event-ID': '1' },
      signal: controller.signal,
    });
    const { frames } = await readStream(res, (f) => f.includes(': heartbeat'));
    expect(messages(frames).map((m) => m.id)).toEqual(['2', undefined]);
    expect(source.listenerCount('t1')).toBe(1);
    controller.abort();
    for (let i = 0; i < 200 && source.listenerCount('t1') > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(source.listenerCount('t1')).toBe(0);
  });

  it('replays and ends at once for a finished task', async () => {
    source.setState('t1', 'failed');
    const res = await fetch(`${base}/tasks/t1/events?key=${encodeURIComponent(key)}`);
    const { frames, ended } = await readStream(res);
    expect(ended).toBe(true);
    expect(messages(frames).map((m) => m.data.type)).toEqual(['phase', 'command_begin', 'message', 'state']);
    expect(source.listenerCount('t1')).toBe(0);
  });


  it("the page's script renders every kind of event from the real stream as text", async () => {
    const events: ProgressEvent[] = [
      { type: 'phase', at, phase: 'checkout', status: 'completed', durationMs: 800 },
      { type: 'plan', at, explanation: HOSTILE, plan: [{ step: `Fix ${HOSTILE}`, status: 'in_progress' }] },
      { type: 'model_request', at, turn: 1, status: 'started' },
      { type: 'model_request', at, turn: 1, status: 'completed', usage: { inputTokens: 12000, cachedInputTokens: 9000, outputTokens: 300 } },
      { type: 'model_request', at, turn: 2, status: 'retrying', reason: 'HTTP 429' },
      { type: 'command_end', at, phase: 'agent', command: ['bash', '-lc', `echo '${HOSTILE}'`], workdir: '.', exitCode: 1, durationMs: 1234, timedOut: false },
      { type: 'patch', at, ok: true, files: [{ path: 'src/<b>.ts', kind: 'update' }] },
      { type: 'patch', at, ok: false, files: [], error: 'context not found' },
      { type: 'log', at, level: 'warn', message: HOSTILE },
      { type: 'phase', at, phase: 'setup', status: 'failed', reason: HOSTILE },
    ];
    for (const event of events) source.push('t1', event);
    source.setState('t1', 'failed');
    const pageUrl = `${base}/tasks/t1?key=${encodeURIComponent(key)}`;
    const html = await (await fetch(pageUrl)).text();
    const page = runPageScript(html, pageUrl);
    expect(page.stream.url).toBe(`/tasks/t1/events?key=${encodeURIComponent(key)}`);

    const res = await fetch(new URL(page.stream.url, base));
    const { frames } = await readStream(res);
    page.stream.onopen?.();
    for (const frame of frames) {
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (data !== undefined) page.stream.onmessage?.({ data });
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(page.errors).toEqual([]);
    expect(page.stream.closed).toBe(true);
    // Reaching a final state, the page fetched its result section once to show the stored result.
    expect(page.fetched).toEqual([`/tasks/t1/result.html?key=${encodeURIComponent(key)}`]);
    expect(page.byId.get('state')!.textContent).toBe('failed');
    expect(page.byId.get('state')!.className).toBe('state state-failed');
    const phaseClasses = page.byId.get('phases')!.elements.map((li) => `${li.dataset.phase}:${li.className}`);
    expect(phaseClasses).toEqual(['checkout:completed', 'setup:failed', 'agent:', 'result:', 'publishing:']);
    expect(page.byId.get('plan')!.elements.map((li) => [li.className, li.textContent])).toEqual([
      ['in_progress', `Fix ${HOSTILE}`],
    ]);
    expect(page.byId.get('plan-section')!.hidden).toBe(false);
    // A finished task's plan shows no step in progress.
    expect(page.byId.get('plan-section')!.className).toBe('finished');
    const log = page.byId.get('log')!.elements.map((li) => li.textContent);
    expect(log).toEqual([
      expect.stringContaining('checkout started'),
      expect.stringMatching(/\$echo '<img src=x onerror=alert\(1\)><\/script><script>alert\(2\)<\/script>' exit 1 · 1\.2 s$/),
      expect.stringContaining(`Working on it ${HOSTILE}`),
      expect.stringContaining('checkout completed800 ms'),
      expect.stringContaining('plan'),
      expect.stringContaining('model turn 112.0k in (9.0k cached) · 300 out'),
      expect.stringContaining('HTTP 429'),
      // (the command_end completed the command_begin entry above)
      expect.stringContaining('update src/<b>.ts'),
      expect.stringContaining('context not found'),
      expect.stringContaining(HOSTILE),
      expect.stringContaining(`setup failed${HOSTILE}`),
    ]);
  });

  it('serves the stored events as JSON', async () => {
    const res = await fetch(`${base}/tasks/t1/events.json?key=${encodeURIComponent(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({
      taskId: 't1',
      title: `Raise the limit ${HOSTILE}`,
      repository: 'octo/app',
      state: 'running',
      events: source.tasks.get('t1')!.events,
    });
    expect(JSON.stringify(body)).not.toContain(key);
  });

  it('renders the stored result on the server: links, summary, the diff from base files read once, and a result fragment', async () => {
    const reads: string[][] = [];
    source.readBaseFile = async (taskId, baseSha, path) => {
      reads.push([taskId, baseSha, path]);
      return path === 'src/a.ts' ? Buffer.from('const a = 1;\n') : null;
    };
    const task = source.tasks.get('t1')!;
    Object.assign(task, {
      state: 'succeeded',
      model: 'gpt-x',
      links: { thread: 'https://github.com/octo/app/issues/1', pullRequest: { number: 2, url: 'https://github.com/octo/app/pull/2', title: 'Raise it' } },
      result: TaskResult.parse({
        id: 't1',
        status: 'succeeded',
        stopReason: 'completed',
        baseSha: 'b'.repeat(40),
        summary: `Raised **the limit** ${HOSTILE}`,
        changes: [{ action: 'modify', path: 'src/a.ts', mode: '100644', contentBase64: Buffer.from('const a = 2;\n').toString('base64') }],
        commitMessage: 'Raise it',
        pullRequest: { title: 'Raise it', body: '' },
        commands: [{ phase: 'agent', command: ['npm', 'test'], workdir: '.', exitCode: 0, durationMs: 1200 }],
        usage: { inputTokens: 1000, cachedInputTokens: 0, outputTokens: 10, turns: 1, phaseMs: { agent: 1500 }, totalMs: 2000 },
      }),
    });
    const res = await fetch(`${base}/tasks/t1?key=${encodeURIComponent(key)}`);
    const html = await res.text();
    expect(html).toContain('<section id="result-section"><h2>Result</h2>');
    expect(html).toContain('<a href="https://github.com/octo/app/pull/2" rel="noopener noreferrer">#2 Raise it</a>');
    expect(html).toContain('<a href="https://github.com/octo/app/issues/1" rel="noopener noreferrer">thread</a>');
    expect(html).toContain('<p>Raised <strong>the limit</strong> ');
    expect(html).toContain('<span class="line del">-const a = 1;</span><span class="line add">+const a = 2;</span>');
    expect(html).not.toContain('<img');
    // The fragment the script swaps in: the same section, no script or style, its own strict CSP.
    const fragment = await fetch(`${base}/tasks/t1/result.html?key=${encodeURIComponent(key)}`);
    expect(fragment.headers.get('content-security-policy')).toBe("default-src 'none'");
    const section = await fragment.text();
    expect(section.startsWith('<section id="result-section"><h2>Result</h2>')).toBe(true);
    expect(section).not.toMatch(/<script|<style/);
    expect(html).toContain(section.trim());
    // A finished task's diff is computed once.
    expect(reads).toEqual([['t1', 'b'.repeat(40), 'src/a.ts']]);
  });

  it('builds page links and keys', () => {
    const k = newTaskKey();
    expect(k).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newTaskKey()).not.toBe(k);
    expect(taskPageUrl('https://codex.example.com/app/', 'a b/c', 'k+/=')).toBe(
      'https://codex.example.com/app/tasks/a%20b%2Fc?key=k%2B%2F%3D',
    );
  });

  it('routes percent-encoded task ids and a custom prefix', async () => {
    source.tasks.set('a b/c', { ...source.tasks.get('t1')!, state: 'succeeded' });
    const handler = createTaskPageHandler({ source, pathPrefix: '/logs/' });
    const other = createServer((req, res) => {
      void handler(req, res).then((handled) => {
        if (!handled) {
          res.writeHead(418);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      const url = new URL(taskPageUrl(origin, 'a b/c', key, '/logs'));
      expect((await fetch(url)).status).toBe(200);
      expect((await fetch(`${origin}/logs/a%20b%2Fc/events.json${url.search}`)).status).toBe(200);
      expect((await fetch(`${origin}/tasks/t1?key=${key}`)).status).toBe(418);
      expect((await fetch(`${origin}/logs/%E0%A4%A?key=${key}`)).status).toBe(404);
    } finally {
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
