/**
 * One model turn on the OpenAI Responses API, streamed, with bounded retries.
 * API reference: https://platform.openai.com/docs/api-reference/responses/create and
 * https://platform.openai.com/docs/api-reference/responses-streaming
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import type {
  ResponseInputItem,
  ResponseOutputItem,
  ResponseStreamEvent,
  FunctionTool,
} from 'openai/resources/responses/responses';
import pRetry, { AbortError } from 'p-retry';

/** Token counts of one or more model requests, as the Responses API reports them (`usage`). */
export interface TokenUsage {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

/** What one turn asks of the model. */
export interface TurnRequest {
  model: string;
  /** System-level instructions (`instructions`), stable across turns so the prefix caches. */
  instructions: string;
  /** The full history (stateless turns: `store: false`). */
  input: ResponseInputItem[];
  tools: FunctionTool[];
  /** `prompt_cache_key`: the task id, so that every turn of a task lands on the same cache. */
  promptCacheKey: string;
  reasoningEffort?: 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';
}

/** What one turn returned. */
export interface TurnResult {
  /** Output items of the completed response (reasoning, messages, function calls). */
  output: ResponseOutputItem[];
  usage: TokenUsage;
  /** Attempts made (1 when no retry was needed). */
  attempts: number;
}

/** Retry policy of a turn. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First delay, ms; doubles on each retry, capped at 30 s. */
  baseMs: number;
}

/** Thrown when the stream ended without `response.completed` (a cut connection): retryable. */
export class StreamCutError extends Error {
  override name = 'StreamCutError';
}

/** Thrown when the model request failed for good (retries exhausted or a non-retryable error). */
export class ModelError extends Error {
  override name = 'ModelError';
  readonly status: number | undefined;
  constructor(message: string, status: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/**
 * Creates the SDK client. `baseUrl`/`apiKey` default to the SDK's own `OPENAI_BASE_URL` and
 * `OPENAI_API_KEY`. SDK-level retries are off: {@link runTurn} retries whole streamed turns itself.
 */
export function createModelClient(opts: { baseUrl?: string; apiKey?: string; timeoutMs?: number }): OpenAI {
  return new OpenAI({
    baseURL: opts.baseUrl ?? process.env.OPENAI_BASE_URL ?? undefined,
    apiKey: opts.apiKey ?? process.env.OPENAI_API_KEY ?? 'missing-api-key',
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 10 * 60_000,
  });
}

function isRetryable(error: unknown): boolean {
  if (error instanceof APIUserAbortError) return false;
  if (error instanceof StreamCutError || error instanceof APIConnectionError) return true;
  if (error instanceof APIError) {
    // The API's own hint, as the SDK honours it.
    const hint = error.headers?.get('x-should-retry');
    if (hint === 'false') return false;
    if (hint === 'true') return true;
    const status = error.status;
    if (status === undefined) return true; // an error event inside the stream
    return status === 408 || status === 409 || status === 429 || status >= 500;
  }
  // Errors thrown by the fetch/stream machinery mid-stream (undici's `TypeError: terminated`,
  // socket resets). Compared by name: they may come from another realm than this module's TypeError.
  const e = error as { name?: string; code?: string; cause?: { code?: string } } | undefined;
  return e?.name === 'TypeError' || e?.code === 'ECONNRESET' || e?.cause?.code === 'ECONNRESET' || e?.cause?.code === 'UND_ERR_SOCKET';
}

function describe(error: unknown): string {
  if (error instanceof APIError) return `${error.status ?? 'stream error'}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one streamed turn: `POST /responses` with `stream: true, store: false`, consuming the SSE
 * events until `response.completed`. Retries (exponential backoff with jitter) on 408/409/429/5xx,
 * connection errors and streams cut before completion.
 * @param onEvent receives every stream event (for live progress); optional.
 * @param onRetry called before each retry with the attempt number and the reason.
 * @throws ModelError when retries are exhausted or the error is not retryable;
 *   the SDK's APIUserAbortError when `signal` aborts.
 */
export async function runTurn(
  client: OpenAI,
  request: TurnRequest,
  opts: {
    retry: RetryPolicy;
    signal?: AbortSignal;
    onEvent?: (event: ResponseStreamEvent) => void;
    onRetry?: (attempt: number, reason: string) => void;
  },
): Promise<TurnResult> {
  let attempts = 0;
  try {
    return await pRetry(
      async () => {
        attempts++;
        try {
          const result = await streamOnce(client, request, opts.signal, opts.onEvent);
          return { ...result, attempts };
        } catch (error) {
          if (opts.signal?.aborted || !isRetryable(error)) {
            throw new AbortError(error instanceof Error ? error : String(error));
          }
          // Errors from Node's own stream machinery may come from another realm (not `instanceof
          // Error` here), which p-retry would refuse to retry: carry them as a cut stream.
          throw error instanceof Error ? error : new StreamCutError(`the response stream broke: ${describe(error)}`, { cause: error });
        }
      },
      {
        retries: opts.retry.retries,
        minTimeout: opts.retry.baseMs,
        maxTimeout: 30_000,
        factor: 2,
        randomize: true,
        signal: opts.signal,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          if (retriesLeft > 0 && isRetryable(error) && !opts.signal?.aborted) {
            opts.onRetry?.(attemptNumber, describe(error));
          }
        },
      },
    );
  } catch (error) {
    if (opts.signal?.aborted) throw new APIUserAbortError();
    const status = error instanceof APIError ? error.status : undefined;
    throw new ModelError(
      `model request failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${describe(error)}`,
      status,
      { cause: error },
    );
  }
}

async function streamOnce(
  client: OpenAI,
  request: TurnRequest,
  signal: AbortSignal | undefined,
  onEvent: ((event: ResponseStreamEvent) => void) | undefined,
): Promise<Omit<TurnResult, 'attempts'>> {
  const stream = await client.responses.create(
    {
      model: request.model,
      instructions: request.instructions,
      input: request.input,
      tools: request.tools,
      tool_choice: 'auto',
      parallel_tool_calls: false,
      store: false,
      stream: true,
      prompt_cache_key: request.promptCacheKey,
      ...(request.reasoningEffort
        ? {
            reasoning: { effort: request.reasoningEffort, summary: 'auto' as const },
            include: ['reasoning.encrypted_content' as const],
          }
        : {}),
    },
    { signal },
  );
  for await (const event of stream) {
    onEvent?.(event);
    if (event.type === 'response.completed') {
      const response = event.response;
      const usage = response.usage;
      return {
        output: response.output,
        usage: {
          inputTokens: usage?.input_tokens ?? 0,
          cachedInputTokens: usage?.input_tokens_details?.cached_tokens ?? 0,
          outputTokens: usage?.output_tokens ?? 0,
          reasoningTokens: usage?.output_tokens_details?.reasoning_tokens ?? 0,
        },
      };
    }
    if (event.type === 'response.failed' || event.type === 'response.incomplete') {
      const err = event.response.error;
      throw new APIError(
        event.type === 'response.failed' ? 500 : 400,
        err ?? undefined,
        `response ${event.type.split('.')[1]}: ${err?.message ?? event.response.incomplete_details?.reason ?? 'unknown'}`,
        undefined,
      );
    }
    if (event.type === 'error') {
      throw new APIError(undefined, event, `stream error: ${event.message}`, undefined);
    }
  }
  throw new StreamCutError('the response stream ended before response.completed');
}

/** Adds token usage `b` into `a` (mutates `a`). */
export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  a.inputTokens += b.inputTokens;
  a.cachedInputTokens += b.cachedInputTokens;
  a.outputTokens += b.outputTokens;
  a.reasoningTokens += b.reasoningTokens;
  return a;
}
