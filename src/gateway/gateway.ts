/**
 * The model gateway: an OpenAI-compatible endpoint served by the app, so that runners (untrusted once
 * the agent starts) never hold the app's OpenAI key. A runner authenticates with its task token
 * (see task-tokens.ts); the gateway checks the token and the task's token budget, forwards the request
 * to the real upstream with the app's key, streams the answer back as it arrives and records the
 * usage the upstream reports against the task.
 *
 * Wire formats: the Responses API (https://platform.openai.com/docs/api-reference/responses/create),
 * its streaming events (https://platform.openai.com/docs/api-reference/responses-streaming), error
 * bodies `{ error: { message, type, param, code } }` (https://platform.openai.com/docs/guides/error-codes),
 * Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 */
import http from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BodyTooLargeError, lingerAfterEarlyAnswer, readBodyLimited } from './request-body.ts';
import { verifyBearer } from './task-tokens.ts';
import type { TaskTokenRecord, TaskTokens, TaskTokenUsage, TokenUsageDelta } from './task-tokens.ts';

/** The subset of a pino logger the gateway uses (`(object, message)` calls). */
export interface GatewayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of {@link createModelGateway}. */
export interface ModelGatewayOptions {
  tokens: TaskTokens;
  /** OpenAI-compatible base URL of the real API, e.g. `https://api.openai.com/v1` (http or https). */
  upstreamBaseUrl: string;
  /** The app's API key for the upstream (`OPENAI_API_KEY`); sent only upstream, never logged. */
  upstreamApiKey: string;
  /** One line per request (task id, status, tokens, duration); never tokens or keys. */
  log?: GatewayLogger;
  /** Path prefix the gateway serves, default `/v1` (so runners use `<app URL>/v1` as base URL). */
  pathPrefix?: string;
  /** Largest request body accepted, bytes; default 32 MiB. Larger bodies get 413. */
  maxBodyBytes?: number;
  /**
   * Requests of one task in flight at once, default 1; more get 429 `rate_limit_exceeded` (retryable).
   * With 1, each request's `max_output_tokens` is capped by what the earlier ones left, so the budget
   * is overshot by at most one response's input tokens.
   */
  maxConcurrentPerTask?: number;
  /** Called after usage of one response was recorded, with that response's usage (tokens). */
  onUsage?: (taskId: string, usage: TokenUsageDelta) => void;
  /**
   * Called once per task, when recorded usage first passes the task's budget (`usedTokens >
   * budgetTokens`), with the task's usage after that response (tokens). The gateway has revoked the
   * task token by then; the app ends the task. Exceptions are logged and ignored.
   */
  onBudgetExceeded?: (taskId: string, usage: TaskTokenUsage) => void;
}

/**
 * A Node HTTP handler, as Probot 14's `server.addHandler` takes it. Resolves `false` (without touching
 * the response) when the path is not the gateway's, `true` once the gateway has answered.
 */
export type GatewayHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

/** Stream event types that end a response and carry `response.usage`. */
const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Upstream response headers passed back to the runner (the rest, e.g. cookies or org ids, are dropped). */
const PASSED_RESPONSE_HEADERS = /^(content-type|cache-control|x-request-id|openai-processing-ms|openai-version|retry-after|retry-after-ms|x-should-retry|x-ratelimit-[a-z-]+)$/;

/** Request headers forwarded upstream besides the ones the gateway sets itself. */
const PASSED_REQUEST_HEADERS = ['accept', 'openai-beta'];

/** Largest JSON (non-streamed) upstream body the gateway parses for usage, bytes; bigger ones pass unread. */
const MAX_SNIFF_BYTES = 64 * 1024 * 1024;

/**
 * Creates the gateway's request handler. Routes (under `pathPrefix`):
 * - `POST /responses`: the Responses API, streamed (SSE passed through as it arrives) or not.
 * - `GET /models`: passed through to the upstream.
 *
 * Answers of its own (OpenAI-style error bodies): 401 `invalid_api_key` for a missing, unknown, revoked
 * or expired task token and 429 `insufficient_quota` when the task's budget is used up (both with
 * `x-should-retry: false`); 429 `rate_limit_exceeded` for too many concurrent requests of a task;
 * 400 for a body that is not a JSON object; 413 for a body over `maxBodyBytes`; 405 for other methods;
 * 502 when the upstream cannot be reached. The task's policy (see {@link applyTaskPolicy}) answers
 * 403 `model_not_allowed` for another model than the task's and 400 `tool_not_allowed` /
 * `parameter_not_allowed` / `invalid_value` for hosted tools and parameters the gateway refuses. Upstream statuses and bodies pass through otherwise, except
 * that an upstream 401/403 (the app's key was rejected) gets a generic body, since the real API echoes
 * part of the key in it.
 *
 * The forwarded body has `store: false` forced, `prompt_cache_key` defaulted to the task id,
 * `safety_identifier` set to the task id, the task's model and reasoning effort when the token pins
 * them, and `max_output_tokens` capped by the task's remaining budget. When a response's usage takes
 * the task past its budget, the token is revoked and `onBudgetExceeded` is called. Usage is recorded from `response.completed`,
 * `response.incomplete` or `response.failed` events (streams) or the JSON body's `usage`. A stream cut
 * before its terminal event records nothing (the upstream reported nothing).
 * @throws TypeError (at creation) when `upstreamBaseUrl` is not an http(s) URL.
 */
export function createModelGateway(opts: ModelGatewayOptions): GatewayHandler {
  const base = new URL(opts.upstreamBaseUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TypeError(`upstreamBaseUrl must be http(s), got ${base.protocol}`);
  }
  const baseHref = base.href.replace(/\/+$/, '');
  const prefix = '/' + (opts.pathPrefix ?? '/v1').replace(/^\/+|\/+$/g, '');
  const root = prefix === '/' ? '' : prefix;
  const routes = new Map<string, 'responses' | 'models'>([
    [`${root}/responses`, 'responses'],
    [`${root}/models`, 'models'],
  ]);
  const maxBodyBytes = opts.maxBodyBytes ?? 32 * 1024 * 1024;
  const maxConcurrent = opts.maxConcurrentPerTask ?? 1;
  const inFlight = new Map<string, number>();
  const ctx: Ctx = { opts, baseHref, maxBodyBytes };

  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes.get(path);
    if (route === undefined) return false;

    const started = performance.now();
    const entry: LogEntry = { route, method: req.method ?? '', status: 0, outcome: 'ok' };
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let counted: string | undefined;
    try {
      const expected = route === 'responses' ? 'POST' : 'GET';
      if (req.method !== expected) {
        req.resume();
        sendError(res, 405, `Method ${req.method} not allowed on ${path}; use ${expected}.`, 'invalid_request_error', null, { allow: expected });
        return true;
      }
      const rec = verifyBearer(headerValue(req.headers.authorization), opts.tokens);
      if (!rec) {
        req.resume();
        sendError(
          res, 401,
          'Invalid, expired or revoked task token. The model gateway accepts only the token of a running task (Authorization: Bearer <task token>).',
          'invalid_request_error', 'invalid_api_key', { 'x-should-retry': 'false' },
        );
        return true;
      }
      entry.taskId = rec.taskId;
      entry.usedTokens = rec.usedTokens;
      entry.budgetTokens = rec.budgetTokens;
      if (route === 'models') {
        req.resume();
        await forward(ctx, req, res, abort.signal, entry, { method: 'GET', path: '/models', taskId: rec.taskId });
        return true;
      }
      if (rec.usedTokens >= rec.budgetTokens) {
        req.resume();
        sendError(
          res, 429,
          `Task ${rec.taskId} has used its token budget: ${rec.usedTokens} of ${rec.budgetTokens} tokens (input + output).`,
          'insufficient_quota', 'insufficient_quota', { 'x-should-retry': 'false' },
        );
        return true;
      }
      const running = inFlight.get(rec.taskId) ?? 0;
      if (running >= maxConcurrent) {
        req.resume();
        sendError(
          res, 429,
          `Task ${rec.taskId} has ${running} model requests in flight; at most ${maxConcurrent} are allowed at once.`,
          'requests', 'rate_limit_exceeded', { 'retry-after-ms': '1000' },
        );
        return true;
      }
      inFlight.set(rec.taskId, running + 1);
      counted = rec.taskId;
      await handleResponses(ctx, req, res, abort.signal, entry, rec);
      return true;
    } catch (error) {
      entry.outcome = 'error';
      entry.error = error instanceof Error ? error.message : String(error);
      if (!res.headersSent) sendError(res, 500, 'The model gateway failed while handling the request.', 'server_error', null);
      else res.destroy();
      return true;
    } finally {
      if (counted !== undefined) {
        const n = (inFlight.get(counted) ?? 1) - 1;
        if (n > 0) inFlight.set(counted, n);
        else inFlight.delete(counted);
      }
      if (entry.outcome === 'ok' && abort.signal.aborted) entry.outcome = 'client_closed';
      entry.status = res.headersSent ? res.statusCode : 499; // 499: the runner left before an answer
      entry.durationMs = Math.round(performance.now() - started);
      const failed = entry.outcome !== 'ok' || entry.status >= 500;
      opts.log?.[failed ? 'warn' : 'info']({ gateway: entry }, 'model gateway request');
    }
  };
}

interface Ctx {
  opts: ModelGatewayOptions;
  baseHref: string;
  maxBodyBytes: number;
}

/** The one log line of a request. Holds no token, key, header or body. */
interface LogEntry {
  route: 'responses' | 'models';
  method: string;
  taskId?: string;
  status: number;
  upstreamStatus?: number;
  stream?: boolean;
  model?: string;
  outcome: 'ok' | 'client_closed' | 'upstream_cut' | 'upstream_unreachable' | 'error';
  inputTokens?: number;
  cachedInputTokens?: number;
  outputTokens?: number;
  /** The task's used tokens before this request, and its budget. */
  usedTokens?: number;
  budgetTokens?: number;
  durationMs?: number;
  error?: string;
}

async function handleResponses(
  ctx: Ctx,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  signal: AbortSignal,
  entry: LogEntry,
  rec: TaskTokenRecord,
): Promise<void> {
  let raw: Buffer;
  try {
    raw = await readBodyLimited(req, ctx.maxBodyBytes);
  } catch (error) {
    if (!(error instanceof BodyTooLargeError)) {
      entry.outcome = 'client_closed';
      res.destroy();
      return;
    }
    // `connection: close`: the socket is closed after this answer, once the rest has drained a moment.
    lingerAfterEarlyAnswer(req);
    sendError(res, 413, `Request body exceeds ${ctx.maxBodyBytes} bytes.`, 'invalid_request_error', 'request_too_large', {
      connection: 'close',
      'x-should-retry': 'false',
    });
    return;
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    sendError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
    return;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    sendError(res, 400, 'The request body must be a JSON object.', 'invalid_request_error', null);
    return;
  }
  const params = body as Record<string, unknown>;
  const refusal = applyTaskPolicy(params, rec, ctx.opts.tokens.remaining(rec.taskId));
  if (refusal) {
    entry.error = refusal.message.slice(0, 300);
    sendError(res, refusal.status, refusal.message, refusal.type, refusal.code, refusal.headers, refusal.param);
    return;
  }
  params.store = false;
  if (typeof params.prompt_cache_key !== 'string' || params.prompt_cache_key === '') params.prompt_cache_key = rec.taskId;
  params.safety_identifier = rec.taskId;
  entry.stream = params.stream === true;
  if (typeof params.model === 'string') entry.model = params.model.slice(0, 100);

  let recorded = false;
  const record = (usage: unknown): void => {
    const delta = usageDelta(usage);
    if (recorded || !delta) return;
    recorded = true;
    entry.inputTokens = delta.inputTokens;
    entry.cachedInputTokens = delta.cachedInputTokens;
    entry.outputTokens = delta.outputTokens;
    const after = ctx.opts.tokens.recordUsage(rec.taskId, delta);
    try {
      ctx.opts.onUsage?.(rec.taskId, delta);
    } catch (error) {
      ctx.opts.log?.warn({ taskId: rec.taskId, error: String(error) }, 'model gateway onUsage callback failed');
    }
    // Usage only grows, so exactly one response takes the task from within its budget to past it.
    const before = after ? after.usedTokens - delta.inputTokens - delta.outputTokens : 0;
    if (after && after.usedTokens > after.budgetTokens && before <= after.budgetTokens) {
      ctx.opts.tokens.revoke(rec.taskId);
      ctx.opts.log?.warn({ taskId: rec.taskId, usedTokens: after.usedTokens, budgetTokens: after.budgetTokens }, 'task passed its token budget; task token revoked');
      try {
        ctx.opts.onBudgetExceeded?.(rec.taskId, after);
      } catch (error) {
        ctx.opts.log?.warn({ taskId: rec.taskId, error: String(error) }, 'model gateway onBudgetExceeded callback failed');
      }
    }
  };
  await forward(ctx, req, res, signal, entry, {
    method: 'POST',
    path: '/responses',
    taskId: rec.taskId,
    body: Buffer.from(JSON.stringify(params), 'utf8'),
    onUsage: record,
  });
}

/**
 * Sends one request upstream and pipes the answer back. SSE bodies of 2xx answers are parsed on the
 * fly for terminal events' usage; JSON bodies are parsed for `usage` when they end.
 */
async function forward(
  ctx: Ctx,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  signal: AbortSignal,
  entry: LogEntry,
  call: { method: 'GET' | 'POST'; path: string; taskId: string; body?: Buffer; onUsage?: (usage: unknown) => void },
): Promise<void> {
  const target = new URL(ctx.baseHref + call.path);
  const headers: http.OutgoingHttpHeaders = {
    authorization: `Bearer ${ctx.opts.upstreamApiKey}`,
    'accept-encoding': 'identity',
    'user-agent': 'codex-cloud-model-gateway',
  };
  for (const name of PASSED_REQUEST_HEADERS) {
    const value = headerValue(req.headers[name]);
    if (value !== undefined) headers[name] = value;
  }
  if (call.body) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(call.body.length);
  }
  if (signal.aborted) {
    entry.outcome = 'client_closed';
    return;
  }
  const upReq = (target.protocol === 'https:' ? https : http).request(target, { method: call.method, headers, signal });
  upReq.end(call.body);
  let up: http.IncomingMessage;
  try {
    [up] = (await once(upReq, 'response')) as [http.IncomingMessage];
  } catch (error) {
    if (signal.aborted) {
      entry.outcome = 'client_closed';
      return;
    }
    entry.outcome = 'upstream_unreachable';
    const code = (error as { code?: string }).code ?? (error instanceof Error ? error.message : String(error));
    entry.error = code;
    sendError(res, 502, `The model gateway could not reach the upstream model API (${code}).`, 'server_error', 'upstream_unreachable');
    return;
  }
  upReq.on('error', () => {}); // later socket errors surface on `up` (and through pipeline)
  const status = up.statusCode ?? 502;
  entry.upstreamStatus = status;

  if (status === 401 || status === 403) {
    // The real API echoes a masked part of the key in these bodies: never hand them to the runner.
    up.resume();
    entry.error = `upstream rejected the gateway's API key (HTTP ${status})`;
    sendError(res, status, `The upstream model API rejected the model gateway's credentials (HTTP ${status}); ask the app's operator.`, 'invalid_request_error', 'upstream_auth_failed', { 'x-should-retry': 'false' });
    return;
  }

  const outHeaders: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(up.headers)) {
    if (value !== undefined && PASSED_RESPONSE_HEADERS.test(name)) outHeaders[name] = value;
  }
  const contentType = headerValue(up.headers['content-type']) ?? '';
  const ok = status >= 200 && status < 300;
  let sniff: { push(chunk: Buffer): void; end(): void } | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        sniff?.push(chunk);
      } catch {
        sniff = undefined; // never let accounting break the stream
      }
      callback(null, chunk);
    },
    flush(callback) {
      try {
        sniff?.end();
      } catch {
        // ignore: malformed bodies are the runner's to report
      }
      callback();
    },
  });
  if (ok && call.onUsage && /^text\/event-stream\b/i.test(contentType)) {
    const onUsage = call.onUsage;
    sniff = new SseUsageTap((usage) => onUsage(usage));
  } else if (ok && call.onUsage && /\bjson\b/i.test(contentType)) {
    sniff = jsonUsageTap(call.onUsage);
  }
  res.writeHead(status, outHeaders);
  res.flushHeaders();
  try {
    await pipeline(up, tap, res);
  } catch (error) {
    if (signal.aborted) {
      entry.outcome = 'client_closed';
    } else {
      entry.outcome = 'upstream_cut';
      entry.error = error instanceof Error ? error.message : String(error);
    }
    res.destroy();
  }
}

/**
 * Parses Server-Sent Events incrementally from raw bytes (any chunking, `\n`, `\r\n` or `\r` line
 * ends) and calls `onUsage(response.usage, type)` for each `response.completed`, `response.incomplete`
 * or `response.failed` event. Other events' data is not kept, so memory stays at one line or one
 * terminal event. An event cut by the end of the stream is dropped (as the SSE spec says).
 * Exported for tests of the framing; the gateway uses it on upstream streams.
 */
export class SseUsageTap {
  readonly #onUsage: (usage: unknown, type: string) => void;
  readonly #decoder = new TextDecoder();
  #pending = '';
  /** How much of `#pending` has been scanned for line ends. */
  #scanned = 0;
  #event: string | null = null;
  #data: string[] = [];
  #skip = false;

  constructor(onUsage: (usage: unknown, type: string) => void) {
    this.#onUsage = onUsage;
  }

  /** Feeds the next bytes of the stream. */
  push(chunk: Uint8Array): void {
    this.#pending += this.#decoder.decode(chunk, { stream: true });
    this.#drain();
  }

  /** Ends the stream (a trailing incomplete event is discarded). */
  end(): void {
    this.#pending += this.#decoder.decode();
    if (this.#pending.endsWith('\r')) {
      this.#pending += '\n';
    }
    this.#drain();
  }

  #drain(): void {
    const text = this.#pending;
    let start = 0;
    let i = this.#scanned;
    for (;;) {
      const lf = text.indexOf('\n', i);
      const cr = text.indexOf('\r', i);
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      if (text.charCodeAt(end) === 13 && end + 1 === text.length) break; // a `\r\n` may be split
      this.#line(text.slice(start, end));
      i = text.charCodeAt(end) === 13 && text.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
      start = i;
    }
    this.#pending = text.slice(start);
    this.#scanned = Math.max(0, this.#pending.length - (this.#pending.endsWith('\r') ? 1 : 0));
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') {
      this.#event = value;
      this.#skip = !TERMINAL_EVENTS.has(value);
      if (this.#skip) this.#data = [];
    } else if (field === 'data' && !this.#skip) {
      this.#data.push(value);
    }
  }

  #dispatch(): void {
    const data = this.#data;
    const event = this.#event;
    this.#data = [];
    this.#event = null;
    this.#skip = false;
    if (data.length === 0) return;
    let parsed: { type?: unknown; response?: { usage?: unknown } };
    try {
      parsed = JSON.parse(data.join('\n'));
    } catch {
      return;
    }
    const type = event ?? (typeof parsed?.type === 'string' ? parsed.type : '');
    if (TERMINAL_EVENTS.has(type) && parsed?.response?.usage != null) this.#onUsage(parsed.response.usage, type);
  }
}

/** Collects a JSON body (up to {@link MAX_SNIFF_BYTES}) and reports its `usage` at the end. */
function jsonUsageTap(onUsage: (usage: unknown) => void): { push(chunk: Buffer): void; end(): void } {
  const parts: Buffer[] = [];
  let size = 0;
  return {
    push(chunk) {
      size += chunk.length;
      if (size <= MAX_SNIFF_BYTES) parts.push(chunk);
    },
    end() {
      if (size > MAX_SNIFF_BYTES) return;
      const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { usage?: unknown };
      if (body?.usage != null) onUsage(body.usage);
    },
  };
}

/**
 * Tool types a task may declare: function tools and custom (freeform grammar) tools, both executed by
 * the runner in its sandbox. Everything else is a hosted tool the upstream would run on the app's key
 * and outside the sandbox (`mcp` with any server URL, `web_search*`, `file_search`,
 * `code_interpreter`, `computer_use*`, `image_generation`, `local_shell`, …): refused.
 * See https://platform.openai.com/docs/api-reference/responses/create#responses-create-tools.
 */
const ALLOWED_TOOL_TYPES: ReadonlySet<string> = new Set(['function', 'custom']);

/** Top-level parameters refused, with why: each makes the upstream use configuration or state that is not the task's. */
const REFUSED_PARAMS: ReadonlyMap<string, string> = new Map([
  ['prompt', 'a stored prompt template brings its own model and tools'],
  ['conversation', 'conversations are stored server-side; the gateway forces store: false'],
  ['background', 'background responses are stored server-side and outlive the request'],
]);

/** Smallest `max_output_tokens` the Responses API accepts, tokens. */
const MIN_OUTPUT_TOKENS = 16;

/**
 * Largest output of one response of current OpenAI models (reasoning included), tokens (GPT-5's
 * 128,000). While more than this is left of a budget, the gateway adds no `max_output_tokens` of its
 * own (the model's limit already keeps the output within the budget, and the API may refuse a value
 * over the model's limit).
 */
const MODEL_OUTPUT_CEILING = 128_000;

/** Why {@link applyTaskPolicy} refused a request: an OpenAI-style error to answer. */
interface PolicyRefusal {
  status: number;
  type: string;
  code: string;
  param: string | null;
  message: string;
  headers?: Record<string, string>;
}

/**
 * Holds a Responses API request body to the task's policy, in place:
 * - `model`: with a pinned model (the token's `model`), another one is refused (403
 *   `model_not_allowed`); a missing one is set to it.
 * - `reasoning.effort`: set to the token's `reasoningEffort`; removed when the token pins the model
 *   but no effort (the model's default applies).
 * - `tools` and `tool_choice`: only function and custom tools (see {@link ALLOWED_TOOL_TYPES});
 *   others are refused (400 `tool_not_allowed`, naming the index and type).
 * - `prompt`, `conversation`, `background`: refused (400 `parameter_not_allowed`).
 * - `max_output_tokens`: must be a positive integer when given; set to `min(requested,
 *   remainingTokens)`, or to `remainingTokens` when not given and fewer than
 *   {@link MODEL_OUTPUT_CEILING} are left. With fewer than {@link MIN_OUTPUT_TOKENS} tokens left, 429
 *   `insufficient_quota`.
 * @param remainingTokens the task's remaining budget, tokens.
 * @returns the refusal, or undefined when the (possibly rewritten) body may be forwarded.
 */
function applyTaskPolicy(params: Record<string, unknown>, rec: TaskTokenRecord, remainingTokens: number): PolicyRefusal | undefined {
  const invalid = (param: string, code: string, message: string): PolicyRefusal => ({ status: 400, type: 'invalid_request_error', code, param, message });

  if (rec.model !== undefined) {
    if (params.model === undefined) params.model = rec.model;
    if (params.model !== rec.model) {
      const asked = typeof params.model === 'string' ? JSON.stringify(params.model.slice(0, 100)) : `a ${typeof params.model}`;
      return {
        status: 403, type: 'invalid_request_error', code: 'model_not_allowed', param: 'model',
        message: `This task may use only the model ${JSON.stringify(rec.model)}, chosen by the app; the request asked for ${asked}.`,
      };
    }
  }

  for (const [name, why] of REFUSED_PARAMS) {
    if (params[name] !== undefined && params[name] !== null && params[name] !== false) {
      return invalid(name, 'parameter_not_allowed', `The model gateway does not allow \`${name}\`: ${why}.`);
    }
  }

  if (params.tools !== undefined && params.tools !== null) {
    if (!Array.isArray(params.tools)) return invalid('tools', 'invalid_type', '`tools` must be an array of tool definitions.');
    for (const [i, tool] of (params.tools as unknown[]).entries()) {
      const type = typeof tool === 'object' && tool !== null ? (tool as { type?: unknown }).type : undefined;
      if (typeof type !== 'string' || !ALLOWED_TOOL_TYPES.has(type)) {
        return invalid(
          `tools[${i}]`, 'tool_not_allowed',
          `tools[${i}] has type ${typeof type === 'string' ? JSON.stringify(type.slice(0, 100)) : 'none'}: the model gateway allows only \`function\` and \`custom\` tools, which the runner executes; hosted tools (MCP, web search, file search, code interpreter, computer use, image generation, local shell) are refused.`,
        );
      }
    }
  }
  const choiceProblem = toolChoiceProblem(params.tool_choice);
  if (choiceProblem) return invalid('tool_choice', 'tool_not_allowed', choiceProblem);

  if (rec.reasoningEffort !== undefined || rec.model !== undefined) {
    const reasoning = params.reasoning;
    const rest = typeof reasoning === 'object' && reasoning !== null && !Array.isArray(reasoning) ? { ...(reasoning as Record<string, unknown>) } : {};
    delete rest.effort;
    if (rec.reasoningEffort !== undefined) params.reasoning = { ...rest, effort: rec.reasoningEffort };
    else if (Object.keys(rest).length > 0) params.reasoning = rest;
    else delete params.reasoning;
  }

  const requested = params.max_output_tokens;
  if (requested !== undefined && requested !== null && (!Number.isSafeInteger(requested) || (requested as number) <= 0)) {
    return invalid('max_output_tokens', 'invalid_value', '`max_output_tokens` must be a positive integer.');
  }
  if (remainingTokens < MIN_OUTPUT_TOKENS) {
    return {
      status: 429, type: 'insufficient_quota', code: 'insufficient_quota', param: null, headers: { 'x-should-retry': 'false' },
      message: `Task ${rec.taskId} has ${remainingTokens} tokens left of its budget, fewer than the ${MIN_OUTPUT_TOKENS} a response needs.`,
    };
  }
  if (typeof requested === 'number') params.max_output_tokens = Math.min(requested, remainingTokens);
  else if (remainingTokens < MODEL_OUTPUT_CEILING) params.max_output_tokens = remainingTokens;
  else delete params.max_output_tokens;
  return undefined;
}

/**
 * Why a `tool_choice` is refused, or undefined: `none`, `auto`, `required`, a function or custom tool
 * by name, or `allowed_tools` listing only those pass; hosted tool types are refused.
 */
function toolChoiceProblem(choice: unknown): string | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (typeof choice === 'string') {
    return ['none', 'auto', 'required'].includes(choice) ? undefined : `tool_choice ${JSON.stringify(choice.slice(0, 100))} is not one of none, auto, required.`;
  }
  const type = typeof choice === 'object' && !Array.isArray(choice) ? (choice as { type?: unknown }).type : undefined;
  if (typeof type === 'string' && ALLOWED_TOOL_TYPES.has(type)) return undefined;
  if (type === 'allowed_tools') {
    const tools = (choice as { tools?: unknown }).tools;
    if (Array.isArray(tools) && tools.every((t) => typeof t === 'object' && t !== null && ALLOWED_TOOL_TYPES.has(String((t as { type?: unknown }).type)))) return undefined;
  }
  return `tool_choice may name only \`function\` and \`custom\` tools; ${typeof type === 'string' ? JSON.stringify(type.slice(0, 100)) : 'this one'} is refused.`;
}

/** Reads `usage` of the Responses API (`input_tokens`, `input_tokens_details.cached_tokens`, `output_tokens`). */
function usageDelta(usage: unknown): TokenUsageDelta | undefined {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const u = usage as { input_tokens?: unknown; output_tokens?: unknown; input_tokens_details?: { cached_tokens?: unknown } | null };
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0);
  return {
    inputTokens: num(u.input_tokens),
    cachedInputTokens: num(u.input_tokens_details?.cached_tokens),
    outputTokens: num(u.output_tokens),
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Sends an OpenAI-style error body `{ error: { message, type, param, code } }`. */
function sendError(
  res: http.ServerResponse,
  status: number,
  message: string,
  type: string,
  code: string | null,
  headers: Record<string, string> = {},
  param: string | null = null,
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const text = JSON.stringify({ error: { message, type, param, code } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}
