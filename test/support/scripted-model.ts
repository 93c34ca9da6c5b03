/**
 * A scripted, OpenAI-compatible Responses API server for tests and benchmarks.
 *
 * It answers `POST {baseUrl}/responses` the way the real API does, so that the unmodified `openai`
 * SDK (and anything built on it) can be pointed at it through `OPENAI_BASE_URL`:
 * - `stream: true`: Server-Sent Events, `event: <type>\ndata: <json>\n\n`, every event with a
 *   `sequence_number`, in the real order (`response.created`, `response.in_progress`, per output
 *   item `response.output_item.added` … `response.output_item.done`, then `response.completed`
 *   carrying the full `output` and `usage`). No `[DONE]` sentinel (the Responses API sends none).
 * - otherwise: one JSON `Response` object.
 * Each request consumes one scripted turn (a list of output items, or a fault). Requests that the real
 * API would reject before running the model (bad key, malformed body, dangling tool calls) get the
 * same 4xx error and consume no turn.
 *
 * Formats follow the API reference (https://platform.openai.com/docs/api-reference/responses/create,
 * https://platform.openai.com/docs/api-reference/responses-streaming, error bodies per
 * https://platform.openai.com/docs/guides/error-codes) and the SDK's types in
 * `openai/resources/responses/responses.d.ts`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

/** One output item the scripted model emits. */
export type ScriptedItem =
  /** An assistant message with one `output_text` part; `phase` is echoed when given. */
  | { type: 'message'; text: string; phase?: 'commentary' | 'final_answer' }
  /**
   * A function tool call. An object `arguments` is sent as `JSON.stringify(arguments)`; a string is
   * sent verbatim (so tests can send invalid JSON). `callId` defaults to a fresh `call_…`.
   */
  | { type: 'function_call'; name: string; arguments: string | object; callId?: string }
  /** A custom (freeform) tool call, e.g. the Codex `apply_patch` grammar tool; `input` is raw text. */
  | { type: 'custom_tool_call'; name: string; input: string; callId?: string }
  /**
   * A reasoning item. `summary` (one string per summary part) is streamed only when the request
   * asks for summaries (`reasoning.summary` set), and `encrypted_content` is attached only when the
   * request has `include: ['reasoning.encrypted_content']`, as the real API does. `tokens` is the
   * item's `reasoning_tokens` (default 32).
   */
  | { type: 'reasoning'; summary?: string | string[]; tokens?: number };

/** Overrides of the estimated usage of one response (tokens). Unset fields are estimated. */
export interface UsageOverride {
  input_tokens?: number;
  cached_tokens?: number;
  output_tokens?: number;
  reasoning_tokens?: number;
}

/** A normal response with knobs: usage overrides, or an `incomplete` ending. */
export interface ScriptedResponse {
  items: ScriptedItem[];
  usage?: UsageOverride;
  /** Ends with `response.incomplete` (status `incomplete`, `incomplete_details.reason`) instead. */
  incomplete?: 'max_output_tokens' | 'content_filter';
}

/** A failure instead of (or around) a normal response. Each fault consumes one turn. */
export type ScriptedFault =
  /**
   * An HTTP error before any event. `body` is the whole JSON body (default: an OpenAI-style
   * `{ error: { message, type, param, code } }` fitting the status); `headers` are added as given
   * (e.g. `{ 'retry-after-ms': '10' }` for a 429 that the SDK should honour).
   */
  | { fault: 'http'; status: number; body?: object; headers?: Record<string, string> }
  /**
   * The stream of `items` (default: one short message) is cut: after `afterEvents` SSE events
   * (0 = right after the 200 headers) the socket is destroyed, never reaching `response.completed`.
   * In non-streaming mode the socket is destroyed before any response.
   */
  | { fault: 'cut'; afterEvents: number; items?: ScriptedItem[] }
  /**
   * Waits `ms` before answering with `then`. By default the wait happens after `response.created`
   * and `response.in_progress` were sent (a slow model); with `beforeHeaders: true` nothing at all is
   * sent during the wait (a stalled connection). The wait ends early if the client disconnects.
   */
  | { fault: 'delay'; ms: number; then: ScriptedItem[] | ScriptedResponse; beforeHeaders?: boolean }
  /**
   * The model fails mid-request: after `response.created` and `response.in_progress`, either a
   * `response.failed` event whose `response.error` is `{ code, message }` (default), or with
   * `via: 'error'` an `error` event `{ code, message, param }` (the SDK throws an `APIError`).
   * `code` defaults to `server_error`. Non-streaming: HTTP 500 with that error.
   */
  | { fault: 'failed'; message: string; code?: string; via?: 'response.failed' | 'error' };

/** What a turn resolves to. */
export type ScriptedOutcome = ScriptedItem[] | ScriptedResponse | ScriptedFault;

/**
 * One scripted turn: output items, a response with options, a fault, or a function computing one of
 * those from the request (e.g. to read the previous `function_call_output`). A function that throws
 * answers HTTP 500 (`x-should-retry: false`) with the error's message.
 */
export type ScriptedTurn = ScriptedOutcome | ((req: RecordedRequest) => ScriptedOutcome | Promise<ScriptedOutcome>);

/** One request received on `POST {baseUrl}/responses`, in arrival order. */
export interface RecordedRequest {
  /** Parsed JSON body (the SDK's `ResponseCreateParams`); `undefined` if it was not valid JSON. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary request fields
  body: any;
  /** Request headers, names lower-cased (Node's `IncomingHttpHeaders`). */
  headers: Record<string, string | string[] | undefined>;
  /** `Date.now()` when the body was fully read, ms since the epoch. */
  receivedAt: number;
  /** Index of the scripted turn it consumed (0-based), or `null` if rejected before the script. */
  turn: number | null;
  /** HTTP status answered (200 for streams, even if later cut or failed). */
  status: number;
  /** `id` of the response it produced (`resp_…`), when one was produced. */
  responseId?: string;
}

/** Options of {@link ScriptedModel.start}. */
export interface ScriptedModelOptions {
  /** Initial script; more can be {@link ScriptedModel.push}ed. */
  turns?: ScriptedTurn[];
  /**
   * When the script runs out: `error` (default) answers HTTP 500 with an error body saying so and
   * `x-should-retry: false` (so the test fails loudly), `repeat-last` replays the last turn.
   */
  onExhausted?: 'error' | 'repeat-last';
  /** Expected bearer token; any other `Authorization` gets 401 `invalid_api_key`. Unset: no check. */
  requireAuth?: string;
  /** Listen address, default `127.0.0.1`; the port is chosen by the OS. */
  host?: string;
  /** Characters per `*.delta` event (default 4, about one token). */
  deltaChars?: number;
  /** Pause between SSE events, ms (default 0: events are written back to back). */
  eventDelayMs?: number;
  /**
   * Prompt-cache realism: cached tokens below `minTokens` count as 0 (the real API: 1024), and are
   * rounded down to a multiple of `incrementTokens` (the real API: 128). Defaults 0 and 1.
   */
  cache?: { minTokens?: number; incrementTokens?: number };
  /**
   * Reject inputs the real API rejects with 400 (default true): a `function_call_output` without
   * its `function_call`, a `function_call` without its output (both only without
   * `previous_response_id`), a reasoning item whose `encrypted_content` is missing (with
   * `store: false`) or was not issued by this server.
   */
  validateInput?: boolean;
}

/** Estimated token count of a text, tokens: `ceil(chars / 4)`. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * The text the prompt cache sees, in the order the model reads it: tools, instructions, input,
 * each `JSON.stringify`-ed. Its length drives `input_tokens`; its common prefix with the previous
 * request of the same model and `prompt_cache_key` drives `cached_tokens`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the request body is untyped JSON
export function promptText(body: any): string {
  return JSON.stringify(body?.tools ?? []) + JSON.stringify(body?.instructions ?? null) + JSON.stringify(body?.input ?? null);
}

/**
 * Outputs of tool calls found in a request's `input` (`function_call_output` and
 * `custom_tool_call_output` items), in order. A non-string `output` (content parts) is
 * `JSON.stringify`-ed.
 */
export function toolOutputs(req: RecordedRequest): { call_id: string; output: string }[] {
  const input: unknown = req.body?.input;
  if (!Array.isArray(input)) return [];
  const outputs: { call_id: string; output: string }[] = [];
  for (const item of input as Record<string, unknown>[]) {
    if (item?.type === 'function_call_output' || item?.type === 'custom_tool_call_output') {
      const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output);
      outputs.push({ call_id: String(item.call_id), output });
    }
  }
  return outputs;
}

/** The scripted server. Start with {@link ScriptedModel.start}; always {@link ScriptedModel.close}. */
export class ScriptedModel {
  /** Base URL to give the SDK (`baseURL` / `OPENAI_BASE_URL`), e.g. `http://127.0.0.1:PORT/v1`. */
  readonly baseUrl: string;
  /** Every request to `POST /v1/responses`, in arrival order. */
  readonly requests: RecordedRequest[] = [];

  readonly #server: http.Server;
  readonly #opts: ScriptedModelOptions;
  readonly #turns: ScriptedTurn[];
  #next = 0;
  readonly #cache = new Map<string, string>();
  readonly #issuedEncrypted = new Set<string>();
  readonly #aborts = new Set<AbortController>();

  private constructor(server: http.Server, baseUrl: string, opts: ScriptedModelOptions) {
    this.#server = server;
    this.baseUrl = baseUrl;
    this.#opts = opts;
    this.#turns = [...(opts.turns ?? [])];
  }

  /**
   * Starts listening on `host` (default 127.0.0.1) and an OS-chosen port.
   * @throws the listen error (e.g. EADDRNOTAVAIL for a bad host).
   */
  static async start(opts: ScriptedModelOptions = {}): Promise<ScriptedModel> {
    const host = opts.host ?? '127.0.0.1';
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const model = new ScriptedModel(server, `http://${urlHost}:${port}/v1`, opts);
    server.on('request', (req, res) => {
      model.#handle(req, res).catch((err: unknown) => {
        // A bug here must not hang the client: answer 500 if still possible, else drop the socket.
        if (!res.headersSent) {
          sendJson(res, 500, errorBody(`ScriptedModel internal error: ${String(err)}`, 'server_error', null, null), {
            'x-should-retry': 'false',
          });
        } else {
          res.destroy();
        }
      });
    });
    return model;
  }

  /** Appends turns to the script. */
  push(...turns: ScriptedTurn[]): void {
    this.#turns.push(...turns);
  }

  /** Turns not yet consumed (0 when the script was played exactly). */
  get pendingTurns(): number {
    return this.#turns.length - this.#next;
  }

  /** Stops listening, cuts open connections and pending delays. Safe to call twice. */
  async close(): Promise<void> {
    for (const ac of this.#aborts) ac.abort();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const raw = await readBody(req);
    if (path !== '/v1/responses' || req.method !== 'POST') {
      sendJson(res, 404, errorBody(`Invalid URL (${req.method} ${path})`, 'invalid_request_error', null, null));
      return;
    }
    const record: RecordedRequest = {
      body: undefined,
      headers: { ...req.headers },
      receivedAt: Date.now(),
      turn: null,
      status: 0,
    };
    this.requests.push(record);
    const reject = (status: number, body: object, headers: Record<string, string> = {}): void => {
      record.status = status;
      sendJson(res, status, body, headers);
    };

    if (this.#opts.requireAuth !== undefined) {
      const auth = req.headers.authorization;
      if (auth === undefined) {
        reject(401, errorBody("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null, null));
        return;
      }
      if (auth !== `Bearer ${this.#opts.requireAuth}`) {
        // The real API echoes a masked key; we echo nothing of it.
        reject(401, errorBody('Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key'));
        return;
      }
    }
    try {
      record.body = JSON.parse(raw);
    } catch {
      reject(400, errorBody('We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)', 'invalid_request_error', null, null));
      return;
    }
    const body = record.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      reject(400, errorBody('The request body must be a JSON object.', 'invalid_request_error', null, null));
      return;
    }
    if (typeof body.model !== 'string' || body.model === '') {
      reject(400, errorBody("Missing required parameter: 'model'.", 'invalid_request_error', 'model', 'missing_required_parameter'));
      return;
    }
    if (this.#opts.validateInput !== false) {
      const problem = this.#validateInput(body);
      if (problem) {
        reject(400, errorBody(problem, 'invalid_request_error', 'input', null));
        return;
      }
    }

    // Consume a turn.
    let turn: ScriptedTurn | undefined;
    if (this.#next < this.#turns.length) {
      record.turn = this.#next;
      turn = this.#turns[this.#next++];
    } else if (this.#opts.onExhausted === 'repeat-last' && this.#turns.length > 0) {
      record.turn = this.#turns.length - 1;
      turn = this.#turns[this.#turns.length - 1];
    } else {
      reject(500, errorBody(
        `ScriptedModel: script exhausted: request #${this.requests.length} arrived but only ${this.#turns.length} turn(s) were scripted.`,
        'server_error', null, 'script_exhausted',
      ), { 'x-should-retry': 'false' });
      return;
    }
    let outcome: ScriptedOutcome;
    try {
      outcome = typeof turn === 'function' ? await turn(record) : (turn as ScriptedOutcome);
    } catch (err) {
      reject(500, errorBody(`ScriptedModel: turn ${record.turn} threw: ${err instanceof Error ? err.message : String(err)}`, 'server_error', null, 'script_error'), {
        'x-should-retry': 'false',
      });
      return;
    }

    const ac = new AbortController();
    this.#aborts.add(ac);
    res.on('close', () => ac.abort());
    try {
      await this.#answer(body, record, outcome, res, ac.signal);
    } finally {
      this.#aborts.delete(ac);
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request body is untyped JSON
  #validateInput(body: any): string | undefined {
    const input: unknown = body.input;
    if (!Array.isArray(input)) return undefined;
    const items = input as Record<string, unknown>[];
    const checkCalls = body.previous_response_id == null;
    for (const [i, item] of items.entries()) {
      if (typeof item !== 'object' || item === null) continue;
      const later = items.slice(i + 1);
      const earlier = items.slice(0, i);
      if (checkCalls && (item.type === 'function_call' || item.type === 'custom_tool_call')) {
        const outType = `${item.type}_output`;
        if (!later.some((o) => o?.type === outType && o.call_id === item.call_id)) {
          return `No tool output found for ${item.type === 'function_call' ? 'function' : 'custom tool'} call ${String(item.call_id)}.`;
        }
      }
      if (checkCalls && (item.type === 'function_call_output' || item.type === 'custom_tool_call_output')) {
        const callType = String(item.type).replace(/_output$/, '');
        if (!earlier.some((c) => c?.type === callType && c.call_id === item.call_id)) {
          return `No tool call found for ${callType === 'function_call' ? 'function' : 'custom tool'} call output with call_id ${String(item.call_id)}.`;
        }
      }
      if (item.type === 'reasoning') {
        const enc = item.encrypted_content;
        if (typeof enc !== 'string' || enc === '') {
          if (body.store === false) {
            return `Item with id '${String(item.id)}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`;
          }
        } else if (!this.#issuedEncrypted.has(enc)) {
          return `The encrypted content for item ${String(item.id)} could not be verified.`;
        }
      }
    }
    return undefined;
  }

  #usage(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request body is untyped JSON
    body: any,
    items: ScriptedItem[],
    override: UsageOverride = {},
  ): Usage {
    const text = promptText(body);
    const bucket = `${body.model}\u0000${body.prompt_cache_key ?? ''}`;
    const previous = this.#cache.get(bucket);
    this.#cache.set(bucket, text);
    const inputTokens = override.input_tokens ?? estimateTokens(text);
    let cached = 0;
    if (previous !== undefined) {
      let n = 0;
      const max = Math.min(previous.length, text.length);
      while (n < max && previous.charCodeAt(n) === text.charCodeAt(n)) n++;
      cached = Math.floor(n / 4);
      const min = this.#opts.cache?.minTokens ?? 0;
      const inc = Math.max(1, this.#opts.cache?.incrementTokens ?? 1);
      cached = cached < min ? 0 : Math.floor(cached / inc) * inc;
    }
    cached = Math.min(override.cached_tokens ?? cached, inputTokens);
    let visible = 0;
    let reasoning = 0;
    for (const item of items) {
      if (item.type === 'message') visible += estimateTokens(item.text);
      else if (item.type === 'function_call') visible += estimateTokens(argumentsText(item.arguments));
      else if (item.type === 'custom_tool_call') visible += estimateTokens(item.input);
      else reasoning += item.tokens ?? 32;
    }
    reasoning = override.reasoning_tokens ?? reasoning;
    const outputTokens = override.output_tokens ?? visible + reasoning;
    return {
      input_tokens: inputTokens,
      input_tokens_details: { cached_tokens: cached, cache_write_tokens: inputTokens - cached },
      output_tokens: outputTokens,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: inputTokens + outputTokens,
    };
  }

  async #answer(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request body is untyped JSON
    body: any,
    record: RecordedRequest,
    outcome: ScriptedOutcome,
    res: http.ServerResponse,
    signal: AbortSignal,
  ): Promise<void> {
    const stream = body.stream === true;
    if (!Array.isArray(outcome) && 'fault' in outcome && outcome.fault === 'http') {
      const status = outcome.status;
      record.status = status;
      sendJson(res, status, outcome.body ?? defaultErrorBody(status), outcome.headers ?? {});
      return;
    }

    const response = baseResponse(body);
    record.responseId = response.id as string;
    const w = new SseWriter(res, signal, this.#opts.eventDelayMs ?? 0);
    const ctx: EmitContext = {
      body,
      deltaChars: Math.max(1, this.#opts.deltaChars ?? 4),
      obfuscate: body.stream_options?.include_obfuscation !== false,
      issue: (enc) => this.#issuedEncrypted.add(enc),
    };

    try {
      if (!Array.isArray(outcome) && 'fault' in outcome) {
        switch (outcome.fault) {
          case 'cut': {
            record.status = 200;
            const items = outcome.items ?? [{ type: 'message', text: 'This response is cut off before it completes.' }];
            const usage = this.#usage(body, items);
            if (!stream) {
              res.destroy();
              return;
            }
            w.cutAfter = Math.max(0, outcome.afterEvents);
            w.start();
            await w.maybeCut();
            await emitResponse(w, ctx, response, { items }, usage);
            return;
          }
          case 'failed': {
            this.#usage(body, []);
            const code = outcome.code ?? 'server_error';
            if (!stream) {
              record.status = 500;
              sendJson(res, 500, errorBody(outcome.message, 'server_error', null, code));
              return;
            }
            record.status = 200;
            w.start();
            await w.send('response.created', { response: { ...response } });
            await w.send('response.in_progress', { response: { ...response } });
            if (outcome.via === 'error') {
              await w.send('error', { code, message: outcome.message, param: null });
            } else {
              await w.send('response.failed', {
                response: { ...response, status: 'failed', error: { code, message: outcome.message } },
              });
            }
            w.end();
            return;
          }
          case 'delay': {
            const then = Array.isArray(outcome.then) ? { items: outcome.then } : outcome.then;
            const usage = this.#usage(body, then.items, then.usage);
            if (!stream) {
              await sleep(outcome.ms, undefined, { signal });
              record.status = 200;
              sendJson(res, 200, completedResponse(ctx, response, then, usage));
              return;
            }
            if (outcome.beforeHeaders) {
              await sleep(outcome.ms, undefined, { signal });
              record.status = 200;
              w.start();
              await emitResponse(w, ctx, response, then, usage);
            } else {
              record.status = 200;
              w.start();
              await emitResponse(w, ctx, response, then, usage, outcome.ms);
            }
            return;
          }
        }
      }
      const scripted: ScriptedResponse = Array.isArray(outcome) ? { items: outcome } : (outcome as ScriptedResponse);
      const usage = this.#usage(body, scripted.items, scripted.usage);
      record.status = 200;
      if (!stream) {
        sendJson(res, 200, completedResponse(ctx, response, scripted, usage));
        return;
      }
      w.start();
      await emitResponse(w, ctx, response, scripted, usage);
    } catch (err) {
      if (err instanceof StreamStopped || signal.aborted) return;
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Wire formats

interface Usage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

type Json = Record<string, unknown>;

interface EmitContext {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- request body is untyped JSON
  body: any;
  deltaChars: number;
  obfuscate: boolean;
  issue: (encryptedContent: string) => void;
}

/** Thrown inside a stream when it stops early (cut on purpose, or the client went away). */
class StreamStopped extends Error {}

/** Writes SSE events with sequence numbers; can cut the connection after N events. */
class SseWriter {
  cutAfter: number | undefined;
  #seq = 0;
  readonly #res: http.ServerResponse;
  readonly #signal: AbortSignal;
  readonly #pauseMs: number;

  constructor(res: http.ServerResponse, signal: AbortSignal, pauseMs: number) {
    this.#res = res;
    this.#signal = signal;
    this.#pauseMs = pauseMs;
  }

  start(): void {
    this.#res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': `req_${hex(16)}`,
      'openai-processing-ms': '1',
    });
    this.#res.flushHeaders();
  }

  /** Destroys the socket (after flushing what was written) once `cutAfter` events went out. */
  async maybeCut(): Promise<void> {
    if (this.cutAfter !== undefined && this.#seq >= this.cutAfter) {
      await new Promise<void>((resolve) => this.#res.write('', () => resolve()));
      this.#res.destroy();
      throw new StreamStopped('cut');
    }
  }

  async pause(ms: number): Promise<void> {
    try {
      await sleep(ms, undefined, { signal: this.#signal });
    } catch {
      throw new StreamStopped('client gone');
    }
  }

  /** Sends one event `{ type, sequence_number, ...fields }`. */
  async send(type: string, fields: Json): Promise<void> {
    if (this.#signal.aborted || this.#res.destroyed) throw new StreamStopped('client gone');
    if (this.#pauseMs > 0 && this.#seq > 0) await this.pause(this.#pauseMs);
    const event = { type, sequence_number: this.#seq++, ...fields };
    this.#res.write(`event: ${type}\ndata: ${JSON.stringify(event)}\n\n`);
    await this.maybeCut();
  }

  end(): void {
    this.#res.end();
  }
}

/** Lower-case hex of `bytes` random bytes. */
function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** An id as the API makes them: `prefix_` + 48 hex digits (`resp_`, `msg_`, `fc_`, `rs_`, `ctc_`). */
function newId(prefix: string): string {
  return `${prefix}_${hex(24)}`;
}

function newCallId(): string {
  return `call_${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x').slice(0, 24)}`;
}

function argumentsText(args: string | object): string {
  return typeof args === 'string' ? args : JSON.stringify(args);
}

/** Splits text into chunks of `size` code points (never splitting a surrogate pair). */
function chunks(text: string, size: number): string[] {
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(''));
  return out;
}

/** The `obfuscation` padding the real API adds to delta events (random, meaningless). */
function obfuscation(ctx: EmitContext, delta: string): Json {
  return ctx.obfuscate ? { obfuscation: randomBytes(8).toString('base64url').slice(0, Math.max(1, 16 - delta.length)) } : {};
}

function summaryParts(ctx: EmitContext, item: Extract<ScriptedItem, { type: 'reasoning' }>): string[] {
  const requested = ctx.body.reasoning?.summary != null;
  if (!requested || item.summary === undefined) return [];
  return Array.isArray(item.summary) ? item.summary : [item.summary];
}

function wantsEncrypted(ctx: EmitContext): boolean {
  return Array.isArray(ctx.body.include) && ctx.body.include.includes('reasoning.encrypted_content');
}

/** The response object as echoed in `response.created`, before any output. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- request body is untyped JSON
function baseResponse(body: any): Json {
  return {
    id: newId('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'in_progress',
    background: body.background ?? false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: body.service_tier ?? 'auto',
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

/** The final (completed) form of an output item, with fresh ids. */
function finalItem(ctx: EmitContext, item: ScriptedItem): Json {
  switch (item.type) {
    case 'message':
      return {
        id: newId('msg'),
        type: 'message',
        status: 'completed',
        content: [{ type: 'output_text', annotations: [], logprobs: [], text: item.text }],
        ...(item.phase ? { phase: item.phase } : {}),
        role: 'assistant',
      };
    case 'function_call':
      return {
        id: newId('fc'),
        type: 'function_call',
        status: 'completed',
        arguments: argumentsText(item.arguments),
        call_id: item.callId ?? newCallId(),
        name: item.name,
      };
    case 'custom_tool_call':
      return {
        id: newId('ctc'),
        type: 'custom_tool_call',
        status: 'completed',
        call_id: item.callId ?? newCallId(),
        input: item.input,
        name: item.name,
      };
    case 'reasoning': {
      const id = newId('rs');
      const summary = summaryParts(ctx, item).map((text) => ({ type: 'summary_text', text }));
      const out: Json = { id, type: 'reasoning', summary };
      if (wantsEncrypted(ctx)) {
        const enc = `gAAAAAB${Buffer.from(JSON.stringify({ id, n: hex(16) })).toString('base64')}`;
        ctx.issue(enc);
        out.encrypted_content = enc;
      }
      return out;
    }
  }
}

function completedResponse(ctx: EmitContext, response: Json, scripted: ScriptedResponse, usage: Usage): Json {
  return finish(response, scripted, scripted.items.map((item) => finalItem(ctx, item)), usage);
}

function finish(response: Json, scripted: ScriptedResponse, output: Json[], usage: Usage): Json {
  return {
    ...response,
    status: scripted.incomplete ? 'incomplete' : 'completed',
    completed_at: scripted.incomplete ? null : Math.floor(Date.now() / 1000),
    incomplete_details: scripted.incomplete ? { reason: scripted.incomplete } : null,
    output,
    usage,
  };
}

/** Streams a whole response: lifecycle events, each item's events, then the terminal event. */
async function emitResponse(
  w: SseWriter,
  ctx: EmitContext,
  response: Json,
  scripted: ScriptedResponse,
  usage: Usage,
  thinkMs = 0,
): Promise<void> {
  await w.send('response.created', { response: { ...response } });
  await w.send('response.in_progress', { response: { ...response } });
  if (thinkMs > 0) await w.pause(thinkMs);
  const output: Json[] = [];
  for (const [index, item] of scripted.items.entries()) {
    const done = finalItem(ctx, item);
    await emitItem(w, ctx, index, item, done);
    output.push(done);
  }
  const type = scripted.incomplete ? 'response.incomplete' : 'response.completed';
  await w.send(type, { response: finish(response, scripted, output, usage) });
  w.end();
}

async function emitItem(w: SseWriter, ctx: EmitContext, output_index: number, item: ScriptedItem, done: Json): Promise<void> {
  const item_id = done.id as string;
  switch (item.type) {
    case 'message': {
      const part = { type: 'output_text', annotations: [], logprobs: [], text: '' };
      await w.send('response.output_item.added', {
        output_index,
        item: { ...done, status: 'in_progress', content: [] },
      });
      await w.send('response.content_part.added', { item_id, output_index, content_index: 0, part });
      for (const delta of chunks(item.text, ctx.deltaChars)) {
        await w.send('response.output_text.delta', {
          item_id, output_index, content_index: 0, delta, logprobs: [], ...obfuscation(ctx, delta),
        });
      }
      await w.send('response.output_text.done', { item_id, output_index, content_index: 0, text: item.text, logprobs: [] });
      await w.send('response.content_part.done', { item_id, output_index, content_index: 0, part: { ...part, text: item.text } });
      break;
    }
    case 'function_call': {
      const args = done.arguments as string;
      await w.send('response.output_item.added', { output_index, item: { ...done, status: 'in_progress', arguments: '' } });
      for (const delta of chunks(args, ctx.deltaChars)) {
        await w.send('response.function_call_arguments.delta', { item_id, output_index, delta, ...obfuscation(ctx, delta) });
      }
      await w.send('response.function_call_arguments.done', { item_id, output_index, arguments: args });
      break;
    }
    case 'custom_tool_call': {
      const input = done.input as string;
      await w.send('response.output_item.added', { output_index, item: { ...done, status: 'in_progress', input: '' } });
      for (const delta of chunks(input, ctx.deltaChars)) {
        await w.send('response.custom_tool_call_input.delta', { item_id, output_index, delta, ...obfuscation(ctx, delta) });
      }
      await w.send('response.custom_tool_call_input.done', { item_id, output_index, input });
      break;
    }
    case 'reasoning': {
      await w.send('response.output_item.added', { output_index, item: { id: item_id, type: 'reasoning', summary: [] } });
      for (const [summary_index, text] of summaryParts(ctx, item).entries()) {
        const part = { type: 'summary_text', text: '' };
        await w.send('response.reasoning_summary_part.added', { item_id, output_index, summary_index, part });
        for (const delta of chunks(text, ctx.deltaChars)) {
          await w.send('response.reasoning_summary_text.delta', {
            item_id, output_index, summary_index, delta, ...obfuscation(ctx, delta),
          });
        }
        await w.send('response.reasoning_summary_text.done', { item_id, output_index, summary_index, text });
        await w.send('response.reasoning_summary_part.done', { item_id, output_index, summary_index, part: { ...part, text } });
      }
      break;
    }
  }
  await w.send('response.output_item.done', { output_index, item: done });
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

async function readBody(req: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function sendJson(res: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    'x-request-id': `req_${hex(16)}`,
    ...headers,
  });
  res.end(text);
}

/** An OpenAI-style error body: `{ error: { message, type, param, code } }`. */
function errorBody(message: string, type: string, param: string | null, code: string | null): object {
  return { error: { message, type, param, code } };
}

function defaultErrorBody(status: number): object {
  switch (status) {
    case 400:
      return errorBody('Invalid request (scripted).', 'invalid_request_error', null, null);
    case 401:
      return errorBody('Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
    case 403:
      return errorBody('You are not allowed to sample from this model (scripted).', 'invalid_request_error', null, null);
    case 404:
      return errorBody('The model does not exist or you do not have access to it (scripted).', 'invalid_request_error', null, 'model_not_found');
    case 429:
      return errorBody('Rate limit reached for requests (scripted). Please try again in 1s.', 'requests', null, 'rate_limit_exceeded');
    case 503:
      return errorBody('The engine is currently overloaded, please try again later.', 'server_error', null, null);
    default:
      return status >= 500
        ? errorBody('The server had an error while processing your request. Sorry about that!', 'server_error', null, null)
        : errorBody(`Scripted HTTP ${status}.`, 'invalid_request_error', null, null);
  }
}
