import { afterEach, describe, expect, it } from '@jest/globals';
import OpenAI, { APIError, APIUserAbortError, AuthenticationError, BadRequestError } from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { ScriptedModel, estimateTokens, promptText, toolOutputs } from './scripted-model.ts';
import type { ScriptedModelOptions } from './scripted-model.ts';

let model: ScriptedModel | undefined;

afterEach(async () => {
  await model?.close();
  model = undefined;
});

async function start(opts: ScriptedModelOptions): Promise<{ server: ScriptedModel; client: OpenAI }> {
  model = await ScriptedModel.start(opts);
  const client = new OpenAI({ baseURL: model.baseUrl, apiKey: 'sk-test', maxRetries: 0 });
  return { server: model, client };
}

async function collect(stream: AsyncIterable<ResponseStreamEvent>): Promise<ResponseStreamEvent[]> {
  const events: ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const shellTool = {
  type: 'function' as const,
  name: 'shell',
  description: 'Runs a command.',
  strict: false,
  parameters: { type: 'object', properties: { command: { type: 'array', items: { type: 'string' } } } },
};

describe('ScriptedModel', () => {
  it('streams a message in the real event order; the SDK accumulates text and usage', async () => {
    const text = 'Hello from the scripted model, streamed in pieces.';
    const { server, client } = await start({ turns: [[{ type: 'message', text }]] });

    const events = await collect(
      await client.responses.create({ model: 'gpt-test', input: 'Say hello', instructions: 'Be brief.', stream: true }),
    );
    expect(events.map((e) => e.type).filter((t) => t !== 'response.output_text.delta')).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((d) => d.delta).join('')).toBe(text);

    const completed = events.at(-1);
    if (completed?.type !== 'response.completed') throw new Error('no response.completed');
    const r = completed.response;
    expect(r.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(r.model).toBe('gpt-test');
    expect(r.status).toBe('completed');
    expect(r.instructions).toBe('Be brief.');
    expect(r.output).toHaveLength(1);
    expect(r.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed' });
    expect(r.output[0]?.id).toMatch(/^msg_/);
    const usage = r.usage;
    expect(usage).toEqual({
      input_tokens: estimateTokens(promptText({ instructions: 'Be brief.', input: 'Say hello' })),
      input_tokens_details: expect.objectContaining({ cached_tokens: 0 }),
      output_tokens: estimateTokens(text),
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: (usage?.input_tokens ?? 0) + estimateTokens(text),
    });

    // The helper stream on the same kind of turn.
    server.push([{ type: 'message', text }]);
    const stream = client.responses.stream({ model: 'gpt-test', input: 'Say hello' });
    const seen: string[] = [];
    stream.on('response.output_text.delta', (e) => seen.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(text);
    expect(seen.join('')).toBe(text);
    expect(final.usage?.output_tokens).toBe(estimateTokens(text));

    expect(server.requests).toHaveLength(2);
    expect(server.requests[0]?.body).toMatchObject({ model: 'gpt-test', input: 'Say hello', stream: true });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer sk-test');
    expect(server.requests[0]?.responseId).toBe(r.id);
    expect(server.pendingTurns).toBe(0);
  });

  it('streams function-call arguments in several deltas that the SDK reassembles', async () => {
    const args = { command: ['bash', '-lc', 'npm test -- --runInBand'], workdir: 'packages/app' };
    const { client } = await start({
      turns: [
        [{ type: 'function_call', name: 'shell', arguments: args }],
        [{ type: 'function_call', name: 'shell', arguments: args, callId: 'call_fixed' }],
      ],
    });

    const events = await collect(
      await client.responses.create({ model: 'gpt-test', input: 'run tests', tools: [shellTool], stream: true }),
    );
    const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((d) => d.delta).join('')).toBe(JSON.stringify(args));
    const added = events.find((e) => e.type === 'response.output_item.added');
    expect(added?.type === 'response.output_item.added' && added.item).toMatchObject({
      type: 'function_call', name: 'shell', arguments: '', status: 'in_progress',
    });
    expect(events.map((e) => e.type)).toContain('response.function_call_arguments.done');

    const final = await client.responses.stream({ model: 'gpt-test', input: 'run tests', tools: [shellTool] }).finalResponse();
    const call = final.output[0];
    if (call?.type !== 'function_call') throw new Error('expected a function_call');
    expect(JSON.parse(call.arguments)).toEqual(args);
    expect(call.call_id).toBe('call_fixed');
    expect(call.id).toMatch(/^fc_/);
    expect(call.name).toBe('shell');
  });

  it('sends invalid JSON arguments verbatim', async () => {
    const broken = '{"command": ["ls", "-la"';
    const { client } = await start({ turns: [[{ type: 'function_call', name: 'shell', arguments: broken }]] });
    const final = await client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse();
    expect(final.output[0]).toMatchObject({ type: 'function_call', arguments: broken });
  });

  it('lets a turn read the previous function_call_output, and rejects dangling tool outputs', async () => {
    const { server, client } = await start({
      turns: [
        [{ type: 'function_call', name: 'shell', arguments: { command: ['echo', 'hi'] }, callId: 'call_1' }],
        (req) => [{ type: 'message', text: `tool said: ${toolOutputs(req).at(-1)?.output}` }],
      ],
    });
    const first = await client.responses.stream({ model: 'gpt-test', input: 'go', store: false }).finalResponse();
    const call = first.output[0];
    if (call?.type !== 'function_call') throw new Error('expected a function_call');

    // A function_call_output whose call is not in the input: the real API answers 400.
    await expect(
      client.responses.create({
        model: 'gpt-test',
        store: false,
        input: [{ type: 'function_call_output', call_id: 'call_unknown', output: 'x' }],
      }),
    ).rejects.toBeInstanceOf(BadRequestError);
    expect(server.requests.at(-1)?.turn).toBeNull();
    expect(server.pendingTurns).toBe(1);

    const second = await client.responses
      .stream({
        model: 'gpt-test',
        store: false,
        input: [
          { role: 'user', content: 'go' },
          { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
          { type: 'function_call_output', call_id: call.call_id, output: 'hi\n' },
        ],
      })
      .finalResponse();
    expect(second.output_text).toBe('tool said: hi\n');
  });

  it('surfaces an http fault as the SDK APIError, one turn per fault', async () => {
    const { server, client } = await start({
      turns: [
        { fault: 'http', status: 500 },
        { fault: 'http', status: 429, headers: { 'retry-after-ms': '1' } },
        [{ type: 'message', text: 'after the retry' }],
      ],
    });
    const err = await client.responses.create({ model: 'gpt-test', input: 'x', stream: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(500);
    expect((err as APIError).type).toBe('server_error');

    const retrying = new OpenAI({ baseURL: server.baseUrl, apiKey: 'sk-test', maxRetries: 1 });
    const final = await retrying.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse();
    expect(final.output_text).toBe('after the retry');
    expect(server.requests.map((r) => r.status)).toEqual([500, 429, 200]);
  });

  it('answers 500 (no retry) once the script is exhausted, or repeats the last turn', async () => {
    const { server } = await start({ turns: [] });
    const retrying = new OpenAI({ baseURL: server.baseUrl, apiKey: 'sk-test', maxRetries: 3 });
    const err = await retrying.responses.create({ model: 'gpt-test', input: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).status).toBe(500);
    expect((err as APIError).message).toMatch(/script exhausted/);
    expect(server.requests).toHaveLength(1);

    await server.close();
    const repeat = await start({ turns: [[{ type: 'message', text: 'again' }]], onExhausted: 'repeat-last' });
    for (let i = 0; i < 3; i++) {
      const r = await repeat.client.responses.create({ model: 'gpt-test', input: 'x' });
      expect(r.output_text).toBe('again');
    }
  });

  it('cuts the stream: SDK iteration throws and no response.completed arrives', async () => {
    const { client } = await start({
      turns: [
        { fault: 'cut', afterEvents: 4, items: [{ type: 'message', text: 'a long answer that never finishes' }] },
        { fault: 'cut', afterEvents: 0 },
      ],
    });
    const seen: string[] = [];
    const stream = await client.responses.create({ model: 'gpt-test', input: 'x', stream: true });
    await expect(
      (async () => {
        for await (const e of stream) seen.push(e.type);
      })(),
    ).rejects.toThrow();
    expect(seen).toHaveLength(4);
    expect(seen).not.toContain('response.completed');

    await expect(client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse()).rejects.toThrow();
  });

  it('checks the bearer token when requireAuth is set, without consuming a turn', async () => {
    const { server } = await start({ requireAuth: 'sk-right', turns: [[{ type: 'message', text: 'ok' }]] });
    const wrong = new OpenAI({ baseURL: server.baseUrl, apiKey: 'sk-wrong', maxRetries: 0 });
    const err = await wrong.responses.create({ model: 'gpt-test', input: 'x', stream: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect((err as APIError).status).toBe(401);
    expect((err as APIError).code).toBe('invalid_api_key');
    expect(server.pendingTurns).toBe(1);

    const right = new OpenAI({ baseURL: server.baseUrl, apiKey: 'sk-right', maxRetries: 0 });
    expect((await right.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse()).output_text).toBe('ok');
  });

  it('reports cached tokens for the prefix shared with the previous request of the same prompt_cache_key', async () => {
    const { client } = await start({ turns: [], onExhausted: 'repeat-last' });
    model?.push([{ type: 'message', text: 'done' }]);
    const instructions = 'You are a careful coding agent. '.repeat(40);
    const history: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Fix the failing test in src/a.ts' }];
    const usageOf = async (key: string) =>
      (await client.responses.stream({ model: 'gpt-test', instructions, input: history, prompt_cache_key: key }).finalResponse())
        .usage;

    const u1 = await usageOf('task-1');
    expect(u1?.input_tokens_details.cached_tokens).toBe(0);

    history.push({ role: 'assistant', content: 'Looking at it.' }, { role: 'user', content: 'Go on.' });
    const u2 = await usageOf('task-1');
    expect(u2?.input_tokens).toBeGreaterThan(u1?.input_tokens ?? Infinity);
    expect(u2?.input_tokens_details.cached_tokens).toBeGreaterThan(estimateTokens(instructions) - 1);
    expect(u2?.input_tokens_details.cached_tokens).toBeLessThan(u2?.input_tokens ?? 0);

    history.push({ role: 'user', content: 'More.' });
    const u3 = await usageOf('task-1');
    expect(u3?.input_tokens_details.cached_tokens).toBeGreaterThan(u2?.input_tokens_details.cached_tokens ?? Infinity);

    const other = await usageOf('task-2');
    expect(other?.input_tokens_details.cached_tokens).toBe(0);
  });

  it('streams reasoning summaries and encrypted content only when asked, and accepts them back', async () => {
    const { server, client } = await start({
      turns: [
        [
          { type: 'reasoning', summary: ['**Plan**\n\nRead the file.', 'Then patch it.'], tokens: 100 },
          { type: 'message', text: 'Done.' },
        ],
        [{ type: 'reasoning', summary: 'hidden' }, { type: 'message', text: 'Plain.' }],
        [{ type: 'message', text: 'Accepted.' }],
      ],
    });
    const params = {
      model: 'gpt-test',
      input: 'think',
      store: false,
      reasoning: { effort: 'high' as const, summary: 'auto' as const },
      include: ['reasoning.encrypted_content' as const],
    };
    const events = await collect(await client.responses.create({ ...params, stream: true }));
    expect(events.filter((e) => e.type === 'response.reasoning_summary_part.added')).toHaveLength(2);
    const completed = events.at(-1);
    if (completed?.type !== 'response.completed') throw new Error('no response.completed');
    const reasoning = completed.response.output[0];
    if (reasoning?.type !== 'reasoning') throw new Error('expected reasoning');
    expect(reasoning.id).toMatch(/^rs_/);
    expect(reasoning.summary.map((s) => s.text)).toEqual(['**Plan**\n\nRead the file.', 'Then patch it.']);
    expect(reasoning.encrypted_content).toEqual(expect.any(String));
    expect(completed.response.usage?.output_tokens_details.reasoning_tokens).toBe(100);
    expect(completed.response.usage?.output_tokens).toBe(100 + estimateTokens('Done.'));

    const plain = await client.responses.stream({ model: 'gpt-test', input: 'think' }).finalResponse();
    expect(plain.output[0]).toEqual({ id: expect.any(String), type: 'reasoning', summary: [] });

    // A forged encrypted_content is rejected, the issued one is accepted.
    const back = (enc: string) => ({
      ...params,
      input: [
        { role: 'user' as const, content: 'think' },
        { type: 'reasoning' as const, id: reasoning.id, summary: reasoning.summary, encrypted_content: enc },
      ],
    });
    await expect(client.responses.create(back('gAAAAforged'))).rejects.toBeInstanceOf(BadRequestError);
    const ok = await client.responses.create(back(reasoning.encrypted_content ?? ''));
    expect(ok.output_text).toBe('Accepted.');
    expect(server.pendingTurns).toBe(0);
  });

  it('fails a response with response.failed or an error event', async () => {
    const { client } = await start({
      turns: [
        { fault: 'failed', message: 'The model crashed.' },
        { fault: 'failed', message: 'Overloaded.', via: 'error', code: 'server_error' },
      ],
    });
    const failed = await client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse();
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code: 'server_error', message: 'The model crashed.' });

    const err = await client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).message).toMatch(/Overloaded/);
  });

  it('answers stream: false with one JSON Response, and supports incomplete endings', async () => {
    const { client } = await start({
      turns: [
        [{ type: 'message', text: 'non-streamed' }, { type: 'function_call', name: 'shell', arguments: '{}' }],
        { items: [{ type: 'message', text: 'trunc' }], incomplete: 'max_output_tokens', usage: { output_tokens: 5000 } },
      ],
    });
    const r = await client.responses.create({ model: 'gpt-test', input: 'x' });
    expect(r.status).toBe('completed');
    expect(r.output_text).toBe('non-streamed');
    expect(r.output.map((o) => o.type)).toEqual(['message', 'function_call']);
    expect(r.usage?.total_tokens).toBe((r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0));

    const inc = await client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse();
    expect(inc.status).toBe('incomplete');
    expect(inc.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(inc.usage?.output_tokens).toBe(5000);
  });

  it('holds a delayed stream open until the client aborts, and closes cleanly', async () => {
    const { server, client } = await start({
      turns: [
        { fault: 'delay', ms: 600_000, then: [{ type: 'message', text: 'too late' }] },
        { fault: 'delay', ms: 1, then: [{ type: 'message', text: 'soon' }], beforeHeaders: true },
      ],
    });
    const ac = new AbortController();
    const seen: string[] = [];
    const stream = client.responses.stream({ model: 'gpt-test', input: 'x' }, { signal: ac.signal });
    stream.on('event', (e) => {
      seen.push(e.type);
      if (e.type === 'response.in_progress') ac.abort();
    });
    await expect(stream.finalResponse()).rejects.toBeInstanceOf(APIUserAbortError);
    expect(seen).toEqual(['response.created', 'response.in_progress']);

    expect((await client.responses.stream({ model: 'gpt-test', input: 'x' }).finalResponse()).output_text).toBe('soon');
    await server.close();
  });
});
