import { afterEach, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { APIError, AuthenticationError, BadRequestError, InternalServerError, PermissionDeniedError, RateLimitError } from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { pino } from 'pino';
import { SseUsageTap, createModelGateway } from '../../src/gateway/gateway.ts';
import type { ModelGatewayOptions } from '../../src/gateway/gateway.ts';
import { MemoryTaskTokenPersistence, TaskTokens } from '../../src/gateway/task-tokens.ts';
import type { TaskTokenUsage, TokenUsageDelta } from '../../src/gateway/task-tokens.ts';
import { ScriptedModel } from '../support/scripted-model.ts';
import type { RecordedRequest, ScriptedModelOptions, ScriptedResponse } from '../support/scripted-model.ts';

const UPSTREAM_KEY = 'sk-upstream-secret';
const TASK = 'task-7f3a';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Harness {
  model?: ScriptedModel;
  tokens: TaskTokens;
  token: string;
  gatewayUrl: string;
  client: (apiKey?: string) => OpenAI;
  logs: string[];
  usages: Array<[string, TokenUsageDelta]>;
  /** Calls of `onBudgetExceeded`. */
  exceeded: Array<[string, TaskTokenUsage]>;
  setClock: (ms: number) => void;
}

/**
 * Starts a ScriptedModel upstream (unless `upstreamBaseUrl` is given), a gateway on a real HTTP server,
 * and issues a token for TASK.
 */
async function start(
  modelOpts: ScriptedModelOptions | undefined,
  gatewayOpts: Partial<ModelGatewayOptions> = {},
  budgetTokens = 100_000,
): Promise<Harness> {
  let model: ScriptedModel | undefined;
  if (modelOpts) {
    model = await ScriptedModel.start({ requireAuth: UPSTREAM_KEY, ...modelOpts });
    cleanups.push(() => model!.close());
  }
  let clock = 1_700_000_000_000;
  const tokens = new TaskTokens({ persistence: new MemoryTaskTokenPersistence(), now: () => clock });
  const token = tokens.issue(TASK, { budgetTokens, ttlMs: 60 * 60_000 });
  const logs: string[] = [];
  const usages: Array<[string, TokenUsageDelta]> = [];
  const exceeded: Array<[string, TaskTokenUsage]> = [];
  const handler = createModelGateway({
    tokens,
    upstreamBaseUrl: model?.baseUrl ?? 'http://127.0.0.1:9/v1',
    upstreamApiKey: UPSTREAM_KEY,
    log: pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }),
    onUsage: (taskId, usage) => void usages.push([taskId, usage]),
    onBudgetExceeded: (taskId, usage) => void exceeded.push([taskId, usage]),
    ...gatewayOpts,
  });
  const server = http.createServer((req, res) => {
    void handler(req, res).then((handled) => {
      if (!handled) res.writeHead(404, { 'content-type': 'text/plain' }).end('not the gateway');
    });
  });
  const gatewayUrl = await listen(server);
  return {
    model,
    tokens,
    token,
    gatewayUrl,
    client: (apiKey = token) => new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey, maxRetries: 0 }),
    logs,
    usages,
    exceeded,
    setClock: (ms) => {
      clock = ms;
    },
  };
}

async function collect(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const TEXT = 'Streamed through the gateway, piece by piece: ünïcødé ✓.';

describe('model gateway', () => {
  it('streams a response through intact, with the upstream key, store:false, and records usage', async () => {
    const h = await start({
      turns: [{ items: [{ type: 'reasoning' }, { type: 'message', text: TEXT }], usage: { input_tokens: 1200, cached_tokens: 1024, output_tokens: 77 } }],
    });
    const events = await collect(
      await h.client().responses.create({
        model: 'gpt-test',
        instructions: 'Be brief.',
        input: 'Say it',
        stream: true,
        store: true,
      }),
    );
    expect(events[0]?.type).toBe('response.created');
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe(TEXT);
    const last = events.at(-1);
    if (last?.type !== 'response.completed') throw new Error(`last event ${last?.type}`);
    expect(last.response.usage).toMatchObject({ input_tokens: 1200, output_tokens: 77, input_tokens_details: { cached_tokens: 1024 } });

    expect(h.tokens.usage(TASK)).toEqual({
      inputTokens: 1200, cachedInputTokens: 1024, outputTokens: 77, usedTokens: 1277, budgetTokens: 100_000, requests: 1,
    });
    expect(h.usages).toEqual([[TASK, { inputTokens: 1200, cachedInputTokens: 1024, outputTokens: 77 }]]);

    const upstream = h.model!.requests;
    expect(upstream).toHaveLength(1);
    expect(upstream[0]?.status).toBe(200);
    expect(upstream[0]?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(JSON.stringify(upstream[0]?.headers)).not.toContain(h.token);
    expect(Object.keys(upstream[0]?.headers ?? {}).filter((k) => k.startsWith('x-stainless'))).toEqual([]);
    expect(upstream[0]?.body).toMatchObject({
      model: 'gpt-test',
      input: 'Say it',
      stream: true,
      store: false,
      prompt_cache_key: TASK,
      safety_identifier: TASK,
    });
    // The response echoes what the upstream ran with.
    expect((last.response as unknown as { store: boolean }).store).toBe(false);

    const line = JSON.parse(h.logs.at(-1)!) as { msg: string; gateway: Record<string, unknown> };
    expect(line.msg).toBe('model gateway request');
    expect(line.gateway).toMatchObject({
      taskId: TASK, route: 'responses', status: 200, upstreamStatus: 200, stream: true, outcome: 'ok',
      inputTokens: 1200, cachedInputTokens: 1024, outputTokens: 77,
    });
    expect(typeof line.gateway.durationMs).toBe('number');
  });

  it('passes events through as they arrive (no buffering) and stops when the runner leaves', async () => {
    // The upstream sends response.created and response.in_progress, then thinks for a minute. A gateway
    // that buffered would deliver nothing before this test's 10 s timeout.
    const h = await start({ turns: [{ fault: 'delay', ms: 60_000, then: [{ type: 'message', text: 'late' }] }] });
    const stream = await h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true });
    const types: string[] = [];
    for await (const event of stream) {
      types.push(event.type);
      if (types.length === 2) break; // aborts the request
    }
    expect(types).toEqual(['response.created', 'response.in_progress']);
    expect(h.tokens.usage(TASK)?.requests).toBe(0);
  }, 10_000);

  it('keeps a prompt_cache_key the runner set, and serves non-streaming requests with usage', async () => {
    const h = await start({ turns: [{ items: [{ type: 'message', text: 'plain' }], usage: { input_tokens: 40, output_tokens: 2 } }] });
    const response = await h.client().responses.create({ model: 'gpt-test', input: 'hi', prompt_cache_key: 'my-key' });
    expect(response.output_text).toBe('plain');
    expect(h.model!.requests[0]?.body).toMatchObject({ prompt_cache_key: 'my-key', store: false });
    expect(h.model!.requests[0]?.body.stream).toBeUndefined();
    expect(h.tokens.usage(TASK)).toMatchObject({ inputTokens: 40, outputTokens: 2, usedTokens: 42, requests: 1 });
  });

  it('records usage of response.incomplete', async () => {
    const h = await start({
      turns: [{ items: [{ type: 'message', text: 'cut short' }], incomplete: 'max_output_tokens', usage: { input_tokens: 10, output_tokens: 5 } }],
    });
    const events = await collect(await h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }));
    expect(events.at(-1)?.type).toBe('response.incomplete');
    expect(h.tokens.usage(TASK)?.usedTokens).toBe(15);
  });

  it('answers 401 invalid_api_key to missing, unknown, revoked and expired tokens without calling upstream', async () => {
    const h = await start({ turns: [] });
    const expectUnauthorized = async (client: OpenAI): Promise<void> => {
      const error = await caught(client.responses.create({ model: 'gpt-test', input: 'x', stream: true }));
      expect(error).toBeInstanceOf(AuthenticationError);
      const e = error as AuthenticationError;
      expect(e.status).toBe(401);
      expect(e.code).toBe('invalid_api_key');
      expect(e.type).toBe('invalid_request_error');
      expect(e.headers?.get('x-should-retry')).toBe('false');
    };
    await expectUnauthorized(h.client('cct_' + 'x'.repeat(43)));
    await expectUnauthorized(h.client(UPSTREAM_KEY)); // the upstream key is not a task token

    const raw = await fetch(`${h.gatewayUrl}/v1/responses`, { method: 'POST', body: '{}' });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toMatchObject({ error: { code: 'invalid_api_key', param: null } });

    h.setClock(1_700_000_000_000 + 60 * 60_000);
    await expectUnauthorized(h.client());
    h.setClock(1_700_000_000_000);
    await h.client().models.list().catch(() => undefined); // live again: reaches the upstream (404 there)
    h.tokens.revoke(TASK);
    await expectUnauthorized(h.client());
    expect(h.model!.requests).toHaveLength(0);
  });

  it('answers 429 insufficient_quota once the budget is used up, without calling upstream', async () => {
    const h = await start(
      { turns: [{ items: [{ type: 'message', text: 'one' }], usage: { input_tokens: 80, output_tokens: 20 } }] },
      {},
      100,
    );
    await collect(await h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }));
    expect(h.tokens.remaining(TASK)).toBe(0);
    expect(h.exceeded).toEqual([]); // reaching the budget is not passing it

    const error = await caught(h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }));
    expect(error).toBeInstanceOf(RateLimitError);
    const e = error as RateLimitError;
    expect(e.code).toBe('insufficient_quota');
    expect(e.message).toContain('100 of 100 tokens');
    expect(e.headers?.get('x-should-retry')).toBe('false');
    expect(h.model!.requests).toHaveLength(1);
  });

  it('refuses more concurrent requests of a task than allowed', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const first = new Promise<void>((resolve) => (arrived = resolve));
    const h = await start(
      {
        turns: [
          async () => {
            arrived();
            await gate;
            return [{ type: 'message', text: 'slow' }];
          },
        ],
      },
      { maxConcurrentPerTask: 1 },
    );
    const slow = h.client().responses.create({ model: 'gpt-test', input: 'x' });
    await first;
    const error = await caught(h.client().responses.create({ model: 'gpt-test', input: 'y' }));
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).code).toBe('rate_limit_exceeded');
    release();
    expect((await slow).output_text).toBe('slow');
    expect(h.model!.requests).toHaveLength(1);
  });

  it('passes upstream HTTP errors through with status, body and retry headers', async () => {
    const h = await start({
      turns: [
        { fault: 'http', status: 500 },
        { fault: 'http', status: 429, headers: { 'retry-after-ms': '10' } },
        { fault: 'http', status: 400, body: { error: { message: 'bad tool schema', type: 'invalid_request_error', param: 'tools', code: null } } },
      ],
    });
    const e500 = await caught(h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }));
    expect(e500).toBeInstanceOf(InternalServerError);
    expect((e500 as APIError).status).toBe(500);
    expect((e500 as APIError).message).toContain('The server had an error');

    const e429 = (await caught(h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }))) as APIError;
    expect(e429).toBeInstanceOf(RateLimitError);
    expect(e429.code).toBe('rate_limit_exceeded');
    expect(e429.headers?.get('retry-after-ms')).toBe('10');

    const e400 = (await caught(h.client().responses.create({ model: 'gpt-test', input: 'x' }))) as APIError;
    expect(e400.status).toBe(400);
    expect(e400.param).toBe('tools');
    expect(e400.message).toContain('bad tool schema');
    expect(h.tokens.usage(TASK)?.requests).toBe(0);
  });

  it('hides the body of an upstream 401 (the app key was rejected)', async () => {
    const h = await start({ turns: [] }, { upstreamApiKey: 'sk-wrong-app-key' });
    const error = (await caught(h.client().responses.create({ model: 'gpt-test', input: 'x' }))) as APIError;
    expect(error.status).toBe(401);
    expect(error.code).toBe('upstream_auth_failed');
    expect(JSON.stringify(error.error)).not.toContain('sk-wrong');
    expect(h.model!.requests[0]?.headers.authorization).toBe('Bearer sk-wrong-app-key');
    expect(h.logs.join('')).not.toContain('sk-wrong-app-key');
  });

  it('answers 502 when the upstream is unreachable', async () => {
    const port = await closedPort();
    const h = await start(undefined, { upstreamBaseUrl: `http://127.0.0.1:${port}/v1` });
    const error = (await caught(h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }))) as APIError;
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.status).toBe(502);
    expect(error.code).toBe('upstream_unreachable');
    expect(error.message).toContain('ECONNREFUSED');
    const line = JSON.parse(h.logs.at(-1)!) as { level: number; gateway: Record<string, unknown> };
    expect(line.gateway).toMatchObject({ status: 502, outcome: 'upstream_unreachable', taskId: TASK });
  });

  it('cuts the stream to the runner when the upstream stream is cut, recording nothing', async () => {
    const h = await start({ turns: [{ fault: 'cut', afterEvents: 4, items: [{ type: 'message', text: TEXT }] }] });
    const seen: ResponseStreamEvent[] = [];
    const stream = await h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true });
    const error = await caught(
      (async () => {
        for await (const event of stream) seen.push(event);
      })(),
    );
    // A socket-level failure (undici's TypeError `terminated`, from another realm than jest's).
    expect(String((error as { message?: unknown }).message)).toMatch(/terminated|closed|aborted|socket/i);
    expect(seen.length).toBeLessThanOrEqual(4);
    expect(seen.some((e) => e.type === 'response.completed')).toBe(false);
    expect(h.tokens.usage(TASK)?.requests).toBe(0);
  });

  it('aborts the upstream request when the runner disconnects', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    let received!: () => void;
    const arrived = new Promise<void>((resolve) => (received = resolve));
    // An upstream that accepts the request and never answers.
    const hanging = http.createServer((req) => {
      req.resume();
      req.on('end', () => received());
      req.socket.on('close', () => upstreamClosed());
    });
    const upstreamUrl = await listen(hanging);
    const h = await start(undefined, { upstreamBaseUrl: `${upstreamUrl}/v1` });
    const abort = new AbortController();
    const pending = h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }, { signal: abort.signal });
    await arrived;
    abort.abort();
    await expect(pending).rejects.toThrow();
    await closed; // the gateway dropped its upstream connection (else this test times out)
  });

  it('serves GET /v1/models through the upstream for live tokens only; other paths are not its own', async () => {
    const h = await start({ turns: [] });
    const ok = await fetch(`${h.gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${h.token}` } });
    // The scripted upstream has no /models route: its 404 comes through.
    expect(ok.status).toBe(404);
    expect(await ok.json()).toMatchObject({ error: { message: 'Invalid URL (GET /v1/models)' } });
    const denied = await fetch(`${h.gatewayUrl}/v1/models`);
    expect(denied.status).toBe(401);
    const other = await fetch(`${h.gatewayUrl}/v1/chat/completions`, { method: 'POST' });
    expect(other.status).toBe(404);
    expect(await other.text()).toBe('not the gateway');
    const wrongMethod = await fetch(`${h.gatewayUrl}/v1/responses`, { headers: { authorization: `Bearer ${h.token}` } });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
  });

  it('rejects bodies that are not JSON objects, or too large, before calling upstream', async () => {
    const h = await start({ turns: [] }, { maxBodyBytes: 2_000 });
    const post = (body: string): Promise<Response> =>
      fetch(`${h.gatewayUrl}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/json' },
        body,
      });
    const notJson = await post('{"model":');
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect((await post('[1,2]')).status).toBe(400);
    const big = (await caught(h.client().responses.create({ model: 'gpt-test', input: 'x'.repeat(5_000) }))) as APIError;
    expect(big.status).toBe(413);
    expect(big.code).toBe('request_too_large');
    expect(h.model!.requests).toHaveLength(0);
  });

  it('never logs the task token or the upstream key', async () => {
    const h = await start({
      turns: [[{ type: 'message', text: 'a' }], { fault: 'http', status: 500 }],
    }, {}, 100_000);
    await collect(await h.client().responses.create({ model: 'gpt-test', input: 'x', stream: true }));
    await caught(h.client().responses.create({ model: 'gpt-test', input: 'x' }));
    await caught(h.client(h.token.slice(0, -1) + 'Z').responses.create({ model: 'gpt-test', input: 'x' }));
    h.tokens.revoke(TASK);
    await caught(h.client().responses.create({ model: 'gpt-test', input: 'x' }));
    expect(h.logs).toHaveLength(4);
    const all = h.logs.join('\n');
    expect(all).toContain(TASK);
    expect(all).not.toContain(h.token.slice(4, 20));
    expect(all).not.toContain(UPSTREAM_KEY);
    expect(all).not.toMatch(/cct_|Bearer|authorization/i);
  });
});

describe('model gateway: the task policy (pinned model, effort, tools; budget)', () => {
  const PINNED = 'task-pinned';

  /** POSTs a raw body to /v1/responses with `token`; returns the status and the parsed body. */
  async function postRaw(h: Harness, token: string, body: object): Promise<{ status: number; json: { error?: { code?: string; param?: string | null; message?: string } } }> {
    const res = await fetch(`${h.gatewayUrl}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as { error?: { code?: string } } };
  }

  it('fires 4 concurrent requests at a time on a 1,000-token budget: one forwarded at a time, max_output_tokens within the remaining budget, the task ended once past it', async () => {
    let active = 0;
    let maxActive = 0;
    const forwarded: Array<{ maxOutputTokens: unknown; remaining: number }> = [];
    const upstreamSees: { tokens?: TaskTokens } = {};
    // Every response reads 300 input tokens and writes up to 400 (no more than max_output_tokens allows).
    const turn = async (req: RecordedRequest): Promise<ScriptedResponse> => {
      active++;
      maxActive = Math.max(maxActive, active);
      forwarded.push({ maxOutputTokens: req.body.max_output_tokens, remaining: upstreamSees.tokens!.remaining(TASK) });
      await new Promise((resolve) => setTimeout(resolve, 30));
      active--;
      const cap = typeof req.body.max_output_tokens === 'number' ? req.body.max_output_tokens : Infinity;
      return { items: [{ type: 'message', text: 'done' }], usage: { input_tokens: 300, output_tokens: Math.min(400, cap) } };
    };
    const h = await start({ turns: [turn], onExhausted: 'repeat-last' }, {}, 1_000);
    upstreamSees.tokens = h.tokens;

    const outcomes: string[] = [];
    for (let round = 0; round < 10; round++) {
      const settled = await Promise.allSettled(
        Array.from({ length: 4 }, () => h.client().responses.create({ model: 'gpt-test', input: 'go', max_output_tokens: 4_000 })),
      );
      const codes = settled.map((r) => (r.status === 'fulfilled' ? 'ok' : `${(r.reason as APIError).status} ${(r.reason as APIError).code}`));
      outcomes.push(...codes);
      if (codes.every((c) => c.startsWith('401') || c.includes('insufficient_quota'))) break;
    }

    expect(maxActive).toBe(1);
    expect(outcomes).toContain('429 rate_limit_exceeded'); // the concurrent ones were turned away
    expect(outcomes.filter((c) => c === 'ok')).toHaveLength(2);
    // Each forwarded request could write no more than what was left.
    expect(forwarded).toEqual([
      { maxOutputTokens: 1_000, remaining: 1_000 },
      { maxOutputTokens: 300, remaining: 300 },
    ]);
    const usage = h.tokens.usage(TASK)!;
    // 300 + 400, then 300 + 300: past the budget by the last response's input tokens only.
    expect(usage.usedTokens).toBe(1_300);
    expect(usage.usedTokens).toBeLessThanOrEqual(1_000 + 300);
    expect(h.exceeded).toEqual([[TASK, expect.objectContaining({ usedTokens: 1_300, budgetTokens: 1_000, requests: 2 })]]);
    expect(h.tokens.verify(h.token)).toBeUndefined(); // revoked: the runner's next request is refused
    expect(outcomes.at(-1)).toBe('401 invalid_api_key');
    expect(h.model!.requests).toHaveLength(2);
    expect(h.logs.join('\n')).toContain('task passed its token budget; task token revoked');
  }, 20_000);

  it('refuses another model than the pinned one, and sets a missing one', async () => {
    const h = await start({ turns: [[{ type: 'message', text: 'pinned' }]] });
    const token = h.tokens.issue(PINNED, { budgetTokens: 10_000, ttlMs: 60_000, model: 'gpt-pinned', reasoningEffort: 'low' });
    const error = await caught(h.client(token).responses.create({ model: 'gpt-5-pro', input: 'x' }));
    expect(error).toBeInstanceOf(PermissionDeniedError);
    expect((error as APIError).status).toBe(403);
    expect((error as APIError).code).toBe('model_not_allowed');
    expect((error as APIError).param).toBe('model');
    expect((error as APIError).message).toContain('"gpt-pinned"');
    expect(h.model!.requests).toHaveLength(0);

    const ok = await postRaw(h, token, { input: 'x' });
    expect(ok.status).toBe(200);
    expect(h.model!.requests[0]?.body.model).toBe('gpt-pinned');
  });

  it('forces the pinned reasoning effort (and removes one when the app pinned the model only)', async () => {
    const h = await start({ turns: [[{ type: 'message', text: 'a' }], [{ type: 'message', text: 'b' }], [{ type: 'message', text: 'c' }]] });
    const token = h.tokens.issue(PINNED, { budgetTokens: 10_000, ttlMs: 60_000, model: 'gpt-pinned', reasoningEffort: 'low' });
    await h.client(token).responses.create({ model: 'gpt-pinned', input: 'x', reasoning: { effort: 'xhigh', summary: 'auto' } });
    await h.client(token).responses.create({ model: 'gpt-pinned', input: 'x' });
    expect(h.model!.requests[0]?.body.reasoning).toEqual({ effort: 'low', summary: 'auto' });
    expect(h.model!.requests[1]?.body.reasoning).toEqual({ effort: 'low' });

    const modelOnly = h.tokens.issue('task-model-only', { budgetTokens: 10_000, ttlMs: 60_000, model: 'gpt-pinned' });
    await h.client(modelOnly).responses.create({ model: 'gpt-pinned', input: 'x', reasoning: { effort: 'high' } });
    expect(h.model!.requests[2]?.body.reasoning).toBeUndefined();
  });

  it('refuses an MCP tool (with its server URL) before calling upstream', async () => {
    const h = await start({ turns: [] });
    const error = await caught(
      h.client().responses.create({
        model: 'gpt-test',
        input: 'x',
        tools: [
          { type: 'function', name: 'shell', parameters: { type: 'object', properties: {} }, strict: false },
          { type: 'mcp', server_label: 'exfil', server_url: 'https://attacker.example/mcp', require_approval: 'never' },
        ],
      }),
    );
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as APIError).code).toBe('tool_not_allowed');
    expect((error as APIError).param).toBe('tools[1]');
    expect((error as APIError).message).toContain('"mcp"');
    expect(h.model!.requests).toHaveLength(0);
  });

  it.each([['web_search'], ['web_search_preview'], ['file_search'], ['code_interpreter'], ['image_generation'], ['local_shell'], ['computer_use_preview']])(
    'refuses the hosted tool %s',
    async (type) => {
      const h = await start({ turns: [] });
      const refused = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', tools: [{ type }] });
      expect(refused.status).toBe(400);
      expect(refused.json.error).toMatchObject({ code: 'tool_not_allowed', param: 'tools[0]' });
      expect(h.model!.requests).toHaveLength(0);
    },
  );

  it('forwards function and custom tools; refuses hosted tool choices, stored prompts and background runs', async () => {
    const h = await start({ turns: [[{ type: 'message', text: 'ok' }]] });
    const tools = [
      { type: 'function', name: 'shell', parameters: { type: 'object', properties: {} }, strict: false },
      { type: 'custom', name: 'apply_patch', format: { type: 'text' } },
    ];
    expect((await postRaw(h, h.token, { model: 'gpt-test', input: 'x', tools, tool_choice: 'auto' })).status).toBe(200);
    expect(h.model!.requests[0]?.body.tools).toEqual(tools);
    const choice = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', tools, tool_choice: { type: 'web_search_preview' } });
    expect(choice).toMatchObject({ status: 400, json: { error: { code: 'tool_not_allowed', param: 'tool_choice' } } });
    const prompt = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', prompt: { id: 'pmpt_123' } });
    expect(prompt).toMatchObject({ status: 400, json: { error: { code: 'parameter_not_allowed', param: 'prompt' } } });
    const background = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', background: true });
    expect(background).toMatchObject({ status: 400, json: { error: { code: 'parameter_not_allowed', param: 'background' } } });
    const notList = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', tools: { type: 'function' } });
    expect(notList).toMatchObject({ status: 400, json: { error: { param: 'tools' } } });
    expect(h.model!.requests).toHaveLength(1);
  });

  it('caps max_output_tokens by the remaining budget, keeps a smaller one, refuses a bad one', async () => {
    const say = (text: string, input: number, output: number): ScriptedResponse => ({ items: [{ type: 'message', text }], usage: { input_tokens: input, output_tokens: output } });
    const h = await start({ turns: [say('a', 5, 5), say('b', 2, 3), say('c', 470, 5)] }, {}, 500);
    await h.client().responses.create({ model: 'gpt-test', input: 'x', max_output_tokens: 64 });
    expect(h.model!.requests[0]?.body.max_output_tokens).toBe(64);
    expect(h.tokens.remaining(TASK)).toBe(490);
    await h.client().responses.create({ model: 'gpt-test', input: 'x', max_output_tokens: 100_000 });
    expect(h.model!.requests[1]?.body.max_output_tokens).toBe(490);
    const bad = await postRaw(h, h.token, { model: 'gpt-test', input: 'x', max_output_tokens: -5 });
    expect(bad).toMatchObject({ status: 400, json: { error: { code: 'invalid_value', param: 'max_output_tokens' } } });
    await h.client().responses.create({ model: 'gpt-test', input: 'x' });
    expect(h.model!.requests[2]?.body.max_output_tokens).toBe(485);
    expect(h.tokens.remaining(TASK)).toBe(10); // fewer than a response needs
    const low = await caught(h.client().responses.create({ model: 'gpt-test', input: 'x' }));
    expect(low).toBeInstanceOf(RateLimitError);
    expect((low as APIError).code).toBe('insufficient_quota');
    expect((low as APIError).message).toContain('10 tokens left');
    expect(h.model!.requests).toHaveLength(3);
  });

  it('adds no max_output_tokens of its own while more than a response can write is left', async () => {
    const h = await start({ turns: [[{ type: 'message', text: 'a' }], [{ type: 'message', text: 'b' }]] }, {}, 4_000_000);
    await h.client().responses.create({ model: 'gpt-test', input: 'x' });
    await h.client().responses.create({ model: 'gpt-test', input: 'x', max_output_tokens: 200_000 });
    expect(h.model!.requests[0]?.body.max_output_tokens).toBeUndefined();
    expect(h.model!.requests[1]?.body.max_output_tokens).toBe(200_000);
  });
});

describe('SseUsageTap', () => {
  const completed = {
    type: 'response.completed',
    sequence_number: 9,
    response: { id: 'resp_1', output: [{ type: 'message', content: [{ type: 'output_text', text: 'ünï ✓ 😀' }] }], usage: { input_tokens: 12, output_tokens: 3, input_tokens_details: { cached_tokens: 8 } } },
  };
  const failed = { type: 'response.failed', response: { id: 'resp_2', usage: { input_tokens: 1, output_tokens: 0 } } };
  const stream = [
    ': keep-alive comment',
    '',
    'event: response.created',
    'data: {"type":"response.created","response":{"usage":null}}',
    '',
    'event: response.output_text.delta',
    'data: {"type":"response.output_text.delta","delta":"ü"}',
    '',
    'event: response.completed',
    `data: ${JSON.stringify(completed)}`,
    '',
    // no `event:` line, data split over two lines (joined with a newline: still valid JSON)
    `data: ${JSON.stringify(failed).split(',"response"')[0]},`,
    `data:"response"${JSON.stringify(failed).split(',"response"')[1]}`,
    '',
    'event: response.completed',
    'data: {"type":"response.completed","response":{"usage":{"input_tokens":999}}}',
    // cut here: no blank line, so this event is dropped
  ];

  const run = (text: string, chunkSize: number): Array<[unknown, string]> => {
    const calls: Array<[unknown, string]> = [];
    const tap = new SseUsageTap((usage, type) => calls.push([usage, type]));
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i += chunkSize) tap.push(bytes.subarray(i, i + chunkSize));
    tap.end();
    return calls;
  };
  const expected = [
    [completed.response.usage, 'response.completed'],
    [failed.response.usage, 'response.failed'],
  ];

  it.each([
    ['\\n', '\n'],
    ['\\r\\n', '\r\n'],
    ['\\r', '\r'],
  ])('finds usage of terminal events with %s line ends, whatever the chunking', (_name, eol) => {
    const text = stream.join(eol);
    for (const size of [1, 2, 3, 7, 64, text.length]) expect(run(text, size)).toEqual(expected);
  });
});
