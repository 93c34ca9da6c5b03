/**
 * The task log page: what a task did, live, for whoever holds the unguessable link in the progress
 * comment (`/tasks/<id>?key=<secret>`). Routes (all GET):
 * - `<prefix>/<id>?key=` — a self-contained HTML page (inline CSS and JS under a nonce CSP) that shows
 *   the repository, the state, the phases, the plan and the event log, fed by the stream below;
 * - `<prefix>/<id>/events?key=` — `text/event-stream` (https://html.spec.whatwg.org/multipage/server-sent-events.html):
 *   the stored events (each with `id:` = its index, so a reconnect with `Last-Event-ID` resumes), then
 *   live ones, a `: heartbeat` comment every 15 s, and `{"type":"state"}` messages; it ends once the
 *   task is in a final state;
 * - `<prefix>/<id>/events.json?key=` — the stored events as JSON, for scripts;
 * - `<prefix>/<id>/result.html?key=` — the page's result section alone (the page's script swaps it in).
 * A wrong or missing key answers 404 exactly like an unknown task, so the page never confirms that a
 * task exists. Event text is only ever put into the page with `textContent`. The result (status,
 * links, summary, diff, commands, usage) is rendered on the server from the stored TaskResult
 * (escaped, markdown sanitised: see task-result.ts); when the task reaches `publishing` or a final
 * state, the script fetches the page again and swaps in its result section.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProgressEvent, TaskResult } from '../contract.ts';
import { diffChanges, type FileDiff } from './diff.ts';
import { renderResultHtml, webUrl, type TaskLinks, type TokenPrices } from './task-result.ts';

/** A message of the live stream: a progress event, or the task's new state. */
export type TaskStreamMessage = ProgressEvent | { type: 'state'; state: string };

/** States after which a task changes no more; the event stream ends on them. */
export const FINAL_TASK_STATES: readonly string[] = ['succeeded', 'no_changes', 'failed', 'cancelled'];

/** A stored task as the page sees it. */
export interface TaskPageRecord {
  /** The secret of the task's page link (compare only with {@link createTaskPageHandler}'s check). */
  key: string;
  title: string;
  /** `owner/name`. */
  repository: string;
  /** The task's state (`queued`, `running`, `publishing`, or one of {@link FINAL_TASK_STATES}). */
  state: string;
  /** The progress events stored so far, oldest first. */
  events: ProgressEvent[];
  /** The runner's result, once stored (the page renders it; it does not rely on the `result` event). */
  result?: TaskResult;
  /** Why the task failed, as the app recorded it. */
  failure?: { phase: string; reason: string };
  /** Thread, pull request, commit and review links. */
  links?: TaskLinks;
  /** The model's name (for token prices). */
  model?: string;
}

/**
 * Where the page reads tasks from (the task store). Contract: when a new event is stored, it is
 * appended to `events` no later than listeners are called, and listeners are called in order; the
 * handler calls `get` and `subscribe` in the same tick, so no event is lost or doubled between the
 * replay and the live stream.
 */
export interface TaskEventSource {
  get(taskId: string): TaskPageRecord | undefined;
  /** Calls `listener` for each new event and state change of the task; returns the unsubscriber. */
  subscribe(taskId: string, listener: (event: TaskStreamMessage) => void): () => void;
  /**
   * Reads a file of the task's base commit (`result.baseSha`) for the diff. Absent: the diff shows
   * added files only and notes that the base is not available.
   * @returns the file's bytes, or null when the base has no such file.
   * @throws when the base cannot be read (the diff notes it for that file).
   */
  readBaseFile?(taskId: string, baseSha: string, path: string): Promise<Uint8Array | null>;
}

/** Options of {@link createTaskPageHandler}. */
export interface TaskPageOptions {
  source: TaskEventSource;
  /** Path the routes live under, without a trailing slash; default `/tasks`. */
  pathPrefix?: string;
  /** Interval of the `: heartbeat` comments on the event stream, ms; default 15000. */
  heartbeatMs?: number;
  /** Receives errors thrown by the source (the client gets a 500). */
  log?: { error(obj: object, msg: string): void };
  /** Token prices per model name, for an estimated cost; no cost is shown without them. */
  prices?: Readonly<Record<string, TokenPrices>>;
}

/** A Node `http` request handler: resolves false when the request is not for its paths. */
export type TaskPageHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** A new page key: 32 random bytes, base64url (43 characters). */
export function newTaskKey(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The page link for the progress comment: `<baseUrl><pathPrefix>/<id>?key=<key>`.
 * @param baseUrl the app's public origin, e.g. `https://codex.example.com` (a path in it is kept).
 */
export function taskPageUrl(baseUrl: string, taskId: string, key: string, pathPrefix = '/tasks'): string {
  const url = new URL(baseUrl);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${pathPrefix}/${encodeURIComponent(taskId)}`;
  url.search = new URLSearchParams({ key }).toString();
  url.hash = '';
  return url.href;
}

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
} as const;

/** Compares keys in constant time (hashing first, so lengths do not leak either). */
function keyMatches(expected: string | undefined, given: string | null): boolean {
  const a = createHash('sha256').update(expected ?? '').digest();
  const b = createHash('sha256').update(given ?? '').digest();
  return timingSafeEqual(a, b) && !!expected && given !== null;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'",
    ...extra,
  });
  res.end(`${text}\n`);
}

/**
 * Creates the handler for the task page routes (see the module comment). Never throws: source errors
 * become a 500 (logged to `opts.log`).
 */
export function createTaskPageHandler(opts: TaskPageOptions): TaskPageHandler {
  const prefix = (opts.pathPrefix ?? '/tasks').replace(/\/+$/, '');
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  // Diffs of finished tasks (their results no longer change), newest last; at most DIFF_CACHE_SIZE.
  const diffs = new Map<string, Promise<FileDiff[]>>();
  const diffOf = (taskId: string, task: TaskPageRecord): Promise<FileDiff[]> | undefined => {
    const result = task.result;
    if (!result?.changes.length) return undefined;
    const cached = diffs.get(taskId);
    if (cached) return cached;
    const read = opts.source.readBaseFile?.bind(opts.source);
    const diff = diffChanges(result.changes, read && ((path) => read(taskId, result.baseSha, path)));
    if (FINAL_TASK_STATES.includes(task.state)) {
      diffs.set(taskId, diff);
      if (diffs.size > DIFF_CACHE_SIZE) diffs.delete(diffs.keys().next().value!);
    }
    return diff;
  };

  return async (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return false;
    }
    if (!url.pathname.startsWith(`${prefix}/`)) return false;
    const parts = url.pathname.slice(prefix.length + 1).split('/');
    const route = parts.length === 1 ? 'page' : parts.length === 2 ? parts[1] : undefined;
    let taskId: string;
    try {
      taskId = decodeURIComponent(parts[0]!);
    } catch {
      taskId = '';
    }
    if (!taskId || (route !== 'page' && route !== 'events' && route !== 'events.json' && route !== 'result.html')) {
      plain(res, 404, 'Not found');
      return true;
    }
    if (req.method !== 'GET') {
      plain(res, 405, 'Method not allowed', { Allow: 'GET' });
      return true;
    }
    try {
      const task = opts.source.get(taskId);
      if (!task || !keyMatches(task.key, url.searchParams.get('key'))) {
        plain(res, 404, 'Not found');
        return true;
      }
      if (route === 'page' || route === 'result.html') {
        const diff = await diffOf(taskId, task);
        const resultHtml = renderResultHtml({ ...task, ...(diff ? { diff } : {}), ...(opts.prices ? { prices: opts.prices } : {}) });
        if (route === 'page') sendPage(res, taskId, task, resultHtml);
        else sendResultFragment(res, resultHtml);
      }
      else if (route === 'events.json') sendJson(res, taskId, task);
      else streamEvents(req, res, taskId, task, opts.source, heartbeatMs);
    } catch (error) {
      opts.log?.error({ err: error instanceof Error ? error.message : String(error), taskId }, 'task page failed');
      if (!res.headersSent) plain(res, 500, 'Internal error');
      else res.destroy();
    }
    return true;
  };
}

/** Finished tasks whose diff the handler keeps. */
const DIFF_CACHE_SIZE = 50;

function resultSection(resultHtml: string): string {
  return `<section id="result-section"${resultHtml ? '' : ' hidden'}><h2>Result</h2><div id="result">${resultHtml}</div></section>`;
}

/** The result section alone (no style, no script), which the page's script swaps in. */
function sendResultFragment(res: ServerResponse, resultHtml: string): void {
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'",
  });
  res.end(resultSection(resultHtml));
}

function sendJson(res: ServerResponse, taskId: string, task: TaskPageRecord): void {
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'",
  });
  res.end(
    JSON.stringify({ taskId, title: task.title, repository: task.repository, state: task.state, events: task.events }),
  );
}

function streamEvents(
  req: IncomingMessage,
  res: ServerResponse,
  taskId: string,
  task: TaskPageRecord,
  source: TaskEventSource,
  heartbeatMs: number,
): void {
  const lastId = Number(req.headers['last-event-id']);
  const skip = Number.isSafeInteger(lastId) && lastId >= 0 ? lastId + 1 : 0;
  let nextId = task.events.length;
  let ended = false;
  let unsubscribe: () => void = () => {};

  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Content-Security-Policy': "default-src 'none'",
    'X-Accel-Buffering': 'no',
    Connection: 'keep-alive',
  });
  // JSON.stringify escapes CR and LF, so each message is one `data:` line.
  const send = (message: TaskStreamMessage, id?: number): void => {
    res.write(`${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(message)}\n\n`);
  };
  const final = FINAL_TASK_STATES.includes(task.state);
  const heartbeat = final ? undefined : setInterval(() => res.write(': heartbeat\n\n'), heartbeatMs);
  const finish = (): void => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };

  // Subscribed in the same tick as `get` (see TaskEventSource): nothing falls between replay and live.
  if (!final) {
    try {
      unsubscribe = source.subscribe(taskId, (message) => {
        if (ended) return;
        if (message.type === 'state') {
          send(message);
          if (FINAL_TASK_STATES.includes(message.state)) finish();
        } else {
          send(message, nextId++);
        }
      });
    } catch (error) {
      clearInterval(heartbeat);
      throw error;
    }
  }
  res.write('retry: 3000\n\n');
  task.events.forEach((event, index) => {
    if (index >= skip) send(event, index);
  });
  send({ type: 'state', state: task.state });
  if (final) {
    finish();
    return;
  }
  res.on('close', finish);
}

function sendPage(res: ServerResponse, taskId: string, task: TaskPageRecord, resultHtml: string): void {
  const nonce = randomBytes(18).toString('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  res.writeHead(200, {
    ...COMMON_HEADERS,
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': csp,
    'X-Frame-Options': 'DENY',
  });
  res.end(renderPage(nonce, taskId, task, resultHtml));
}

const PHASES = ['checkout', 'setup', 'agent', 'result', 'publishing'];

function renderPage(nonce: string, taskId: string, task: TaskPageRecord, resultHtml: string): string {
  const title = escapeHtml(task.title);
  const repository = escapeHtml(task.repository);
  const state = escapeHtml(task.state);
  const phases = PHASES.map((p) => `<li data-phase="${p}">${p}</li>`).join('');
  const threadUrl = webUrl(task.links?.thread);
  const thread = threadUrl ? ` · <a href="${escapeHtml(threadUrl)}" rel="noopener noreferrer">thread</a>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · ${repository}</title>
<style nonce="${nonce}">${PAGE_CSS}</style>
</head>
<body>
<header>
<h1>${title}</h1>
<p class="meta"><span class="repo">${repository}</span>${thread} · task <code>${escapeHtml(taskId)}</code> · <span id="state" class="state state-${state}">${state}</span> <span id="conn" class="conn"></span></p>
<ol id="phases" class="phases">${phases}</ol>
</header>
<main>
${resultSection(resultHtml)}
<section id="plan-section" hidden><h2>Plan</h2><p id="plan-explanation" class="explanation"></p><ul id="plan" class="plan"></ul></section>
<section><h2>Events</h2><ol id="log" class="log"></ol><p id="empty" class="muted">No events yet.</p></section>
</main>
<noscript><p>This page needs JavaScript to show the events live; here are <a href="${escapeHtml(
    `${encodeURIComponent(taskId)}/events.json?${new URLSearchParams({ key: task.key }).toString()}`,
  )}">the events as JSON</a>.</p></noscript>
<script nonce="${nonce}">${PAGE_JS}</script>
</body>
</html>
`;
}

const PAGE_CSS = `
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --bg: #fff; --line: #d1d9e0; --ok: #1a7f37; --bad: #cf222e; --run: #9a6700; --code: #f6f8fa; --link: #0969da; --add-bg: #dafbe1; --del-bg: #ffebe9; --hunk-bg: #ddf4ff; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --bg: #0d1117; --line: #3d444d; --ok: #3fb950; --bad: #f85149; --run: #d29922; --code: #151b23; --link: #4493f8; --add-bg: #12261e; --del-bg: #25171c; --hunk-bg: #121d2f; } }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; font: 14px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
code, pre, .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
pre { background: var(--code); padding: .5rem .75rem; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; margin: .25rem 0; }
.meta, .muted, time, .conn { color: var(--muted); }
.state { font-weight: 600; }
.state-succeeded, .state-no_changes { color: var(--ok); } .state-failed { color: var(--bad); } .state-running, .state-publishing { color: var(--run); }
.phases { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; }
.phases li { border: 1px solid var(--line); border-radius: 999px; padding: .1rem .7rem; color: var(--muted); }
.phases li.started { color: var(--run); border-color: var(--run); font-weight: 600; }
.phases li.completed { color: var(--ok); border-color: var(--ok); }
.phases li.failed { color: var(--bad); border-color: var(--bad); font-weight: 600; }
.plan { list-style: none; padding-left: 0; } .plan li::before { content: "○ "; } .plan li.completed::before { content: "✓ "; color: var(--ok); }
.plan li.in_progress { font-weight: 600; } .plan li.in_progress::before { content: "▸ "; color: var(--run); }
.finished .plan li.in_progress { font-weight: normal; } .finished .plan li.in_progress::before { content: "○ "; color: inherit; }
.log { list-style: none; padding: 0; margin: 0; }
.log li { border-bottom: 1px solid var(--line); padding: .35rem 0; display: grid; grid-template-columns: 6.5rem 1fr; gap: .5rem; }
.log li > div { min-width: 0; overflow-wrap: anywhere; }
.tag { font-weight: 600; margin-right: .4rem; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .run { color: var(--run); }
.cmd { background: var(--code); padding: .05rem .3rem; border-radius: 4px; white-space: pre-wrap; }
a { color: var(--link); }
h3 { font-size: .95rem; margin: 1.25rem 0 .5rem; }
#result-section { margin-bottom: 1.5rem; }
.status-line { display: flex; flex-wrap: wrap; align-items: center; gap: .6rem; }
.badge { font-weight: 600; border-radius: 999px; padding: .1rem .75rem; color: #fff; }
.badge-ok { background: var(--ok); } .badge-bad { background: var(--bad); } .badge-run { background: var(--run); }
.links { margin-left: auto; }
.failure pre { border-left: 3px solid var(--bad); }
.markdown { border: 1px solid var(--line); border-radius: 6px; padding: .25rem 1rem; overflow-wrap: anywhere; }
.markdown pre { white-space: pre; overflow-x: auto; }
.markdown h1, .markdown h2, .markdown h3 { font-size: 1rem; border: 0; margin: .75rem 0 .25rem; }
.markdown table, table.usage { border-collapse: collapse; margin: .5rem 0; }
.markdown th, .markdown td, table.usage th, table.usage td { border: 1px solid var(--line); padding: .25rem .6rem; }
.markdown td[align=right], .markdown th[align=right] { text-align: right; } .markdown td[align=center], .markdown th[align=center] { text-align: center; }
table.usage td { text-align: right; font-variant-numeric: tabular-nums; } table.usage th[scope=row] { text-align: left; font-weight: 500; }
table.usage thead th, table.usage tfoot { background: var(--code); }
details.file, details.command { border: 1px solid var(--line); border-radius: 6px; margin: .5rem 0; }
details.file > summary, details.command > summary { cursor: pointer; padding: .35rem .75rem; background: var(--code); border-radius: 6px; overflow-wrap: anywhere; }
details[open].file > summary, details[open].command > summary { border-bottom: 1px solid var(--line); border-radius: 6px 6px 0 0; }
details.file > p, details.command > p { margin: .4rem .75rem; }
pre.diff { margin: 0; padding: .25rem 0; border-radius: 0 0 6px 6px; white-space: pre; overflow-x: auto; background: var(--bg); }
pre.diff .line { display: block; padding: 0 .75rem; min-height: 1.5em; }
.line.add { background: var(--add-bg); } .line.del { background: var(--del-bg); } .line.hunk { color: var(--muted); background: var(--hunk-bg); } .line.meta { color: var(--muted); }
span.add { color: var(--ok); font-weight: 600; } span.del { color: var(--bad); font-weight: 600; }
.action { font-weight: 600; } .action-add { color: var(--ok); } .action-delete { color: var(--bad); } .action-modify { color: var(--run); }
.phase-tag { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
pre.output { margin: 0; border-radius: 0 0 6px 6px; max-height: 24rem; overflow: auto; }
.omitted { color: var(--muted); font-style: italic; }
.log details { margin-top: .25rem; } .log details > summary { cursor: pointer; color: var(--muted); }
`;

// Runs in the browser. Data from events is only ever set with textContent / className from fixed
// strings; the stream URL is derived from the page's own location (no data in the script).
const PAGE_JS = `
(() => {
  'use strict';
  const FINAL = new Set(['succeeded', 'no_changes', 'failed', 'cancelled']);
  const byId = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  };
  const phaseItems = new Map();
  for (const li of byId('phases').children) phaseItems.set(li.dataset.phase, li);
  const log = byId('log');
  const clock = (at) => { const d = new Date(at); return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString(); };
  const secs = (ms) => (typeof ms !== 'number' ? '' : ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(1) + ' s');
  const quote = (a) => (/^[\\w@%+=:,./-]+$/.test(a) ? a : "'" + String(a).replace(/'/g, "'\\\\''") + "'");
  const commandText = (argv) => {
    if (!Array.isArray(argv)) return '';
    if (argv.length === 3 && /^(ba)?sh$/.test(argv[0]) && /^-l?c$/.test(argv[1])) return String(argv[2]);
    return argv.map(quote).join(' ');
  };
  const tokens = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e3 ? (n / 1e3).toFixed(1) + 'k' : String(n));
  const pendingCommands = new Map();
  const pendingTurns = new Map();

  const entry = (ev, tagText, tagCls) => {
    const li = el('li');
    li.append(el('time', null, clock(ev.at)));
    const body = el('div');
    body.append(el('span', 'tag ' + (tagCls || ''), tagText));
    li.append(body);
    const stick = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    log.append(li);
    byId('empty').hidden = true;
    if (stick) window.scrollTo(0, document.body.scrollHeight);
    return body;
  };

  const setState = (state) => {
    const s = byId('state');
    if (state !== s.textContent && (state === 'publishing' || FINAL.has(state))) refreshResult();
    byId('plan-section').classList.toggle('finished', FINAL.has(state));
    s.textContent = state;
    s.className = 'state state-' + String(state).replace(/[^a-z_]/g, '');
    const pub = phaseItems.get('publishing');
    if (state === 'publishing') pub.className = 'started';
    else if (state === 'succeeded' || state === 'no_changes') pub.className = 'completed';
  };

  const showPlan = (ev) => {
    const list = byId('plan');
    list.replaceChildren(...(ev.plan || []).map((s) => el('li', s.status === 'completed' || s.status === 'in_progress' ? s.status : 'pending', s.step)));
    byId('plan-explanation').textContent = ev.explanation || '';
    byId('plan-section').hidden = !(ev.plan && ev.plan.length);
    const done = (ev.plan || []).filter((s) => s.status === 'completed').length;
    entry(ev, 'plan').append(el('span', null, 'updated: ' + done + '/' + (ev.plan || []).length + ' steps done'));
  };

  const commandOutcome = (span, ev) => {
    const ok = ev.exitCode === 0;
    span.className = ok ? 'ok' : 'bad';
    span.textContent = (ev.timedOut ? 'timed out' : ev.exitCode === null ? 'killed' : 'exit ' + ev.exitCode) + ' · ' + secs(ev.durationMs);
  };

  // The result section is rendered by the server (escaped and sanitised there): fetch it again and
  // swap it in. DOMParser never runs scripts; one refresh at a time, the last one wins.
  const resultUrl = location.pathname.replace(/\\/+$/, '') + '/result.html' + location.search;
  let refreshing = Promise.resolve();
  const refreshResult = () => {
    refreshing = refreshing.then(async () => {
      const res = await fetch(resultUrl, { cache: 'no-store', credentials: 'same-origin' });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      const fresh = doc.getElementById('result-section');
      if (fresh) byId('result-section').replaceWith(document.adoptNode(fresh));
    }).catch((error) => console.error(error));
  };

  const showResult = (ev) => {
    const r = ev.result || {};
    entry(ev, 'result', r.status === 'failed' ? 'bad' : 'ok').append(el('span', null, String(r.status)));
    refreshResult();
  };

  const showOutput = (body, output) => {
    if (!output || (!output.head && !output.tail)) return;
    const details = el('details');
    details.append(el('summary', null, 'output'));
    details.append(el('pre', null, output.head + (output.tail ? '\\n…\\n' + output.tail : '')));
    body.append(details);
  };

  const handle = (ev) => {
    switch (ev.type) {
      case 'state': setState(ev.state); break;
      case 'phase': {
        const li = phaseItems.get(ev.phase);
        if (li) li.className = ev.status;
        const b = entry(ev, ev.phase + ' ' + ev.status, ev.status === 'failed' ? 'bad' : ev.status === 'completed' ? 'ok' : 'run');
        if (ev.durationMs !== undefined) b.append(el('span', 'muted', secs(ev.durationMs)));
        if (ev.reason) b.append(el('pre', null, ev.reason));
        break;
      }
      case 'plan': showPlan(ev); break;
      case 'command_begin': {
        const b = entry(ev, ev.phase === 'agent' ? '$' : ev.phase + ' $');
        b.append(el('span', 'cmd', commandText(ev.command)), ' ');
        if (ev.workdir && ev.workdir !== '.') b.append(el('span', 'muted', 'in ' + ev.workdir + ' '));
        const status = el('span', 'run', 'running…');
        b.append(status);
        const key = JSON.stringify([ev.command, ev.workdir]);
        if (!pendingCommands.has(key)) pendingCommands.set(key, []);
        pendingCommands.get(key).push({ status, body: b });
        break;
      }
      case 'command_end': {
        const key = JSON.stringify([ev.command, ev.workdir]);
        const waiting = pendingCommands.get(key);
        let pending = waiting && waiting.shift();
        if (!pending) {
          const b = entry(ev, ev.phase === 'agent' ? '$' : ev.phase + ' $');
          b.append(el('span', 'cmd', commandText(ev.command)), ' ');
          pending = { status: el('span'), body: b };
          b.append(pending.status);
        }
        commandOutcome(pending.status, ev);
        showOutput(pending.body, ev.output);
        break;
      }
      case 'patch': {
        const b = entry(ev, ev.ok ? 'patch' : 'patch failed', ev.ok ? 'ok' : 'bad');
        for (const f of ev.files || []) b.append(el('code', null, f.kind + ' ' + f.path), ' ');
        if (ev.error) b.append(el('pre', null, ev.error));
        break;
      }
      case 'model_request': {
        if (ev.status === 'completed' && pendingTurns.has(ev.turn)) {
          const span = pendingTurns.get(ev.turn);
          pendingTurns.delete(ev.turn);
          span.className = 'ok';
          span.textContent = ev.usage ? tokens(ev.usage.inputTokens) + ' in (' + tokens(ev.usage.cachedInputTokens) + ' cached) · ' + tokens(ev.usage.outputTokens) + ' out' : 'done';
          break;
        }
        const b = entry(ev, 'model turn ' + ev.turn, ev.status === 'retrying' ? 'bad' : '');
        const span = el('span', ev.status === 'started' ? 'run' : 'muted', ev.status === 'started' ? 'thinking…' : ev.status);
        b.append(span);
        if (ev.status === 'started') pendingTurns.set(ev.turn, span);
        if (ev.usage) b.append(el('span', 'muted', ' ' + tokens(ev.usage.inputTokens) + ' in · ' + tokens(ev.usage.outputTokens) + ' out'));
        if (ev.reason) b.append(el('pre', null, ev.reason));
        break;
      }
      case 'message': entry(ev, 'message').append(el('pre', null, ev.text)); break;
      case 'log': entry(ev, ev.level, ev.level === 'error' ? 'bad' : ev.level === 'warn' ? 'run' : '').append(el('span', null, ev.message)); break;
      case 'result': showResult(ev); break;
      default: break;
    }
  };

  const conn = byId('conn');
  const stream = new EventSource(location.pathname.replace(/\\/+$/, '') + '/events' + location.search);
  stream.onopen = () => { conn.textContent = 'live'; };
  stream.onerror = () => { conn.textContent = 'reconnecting…'; };
  stream.onmessage = (message) => {
    let ev;
    try { ev = JSON.parse(message.data); } catch { return; }
    if (!ev || typeof ev !== 'object') return;
    try { handle(ev); } catch (error) { console.error(error); }
    if (ev.type === 'state' && FINAL.has(ev.state)) { stream.close(); conn.textContent = ''; }
  };
})();
`;
