/**
 * Runner side of the runner API (src/runners/runner-api.ts): sends progress events and the TaskResult
 * to the app over HTTPS with the task token, when the TaskSpec has `report` (the ECS backend). The
 * runner keeps printing JSON lines on stdout as well (CloudWatch logs).
 * - Events are batched (every `batchMs` or `batchSize` events, one request in flight at a time, in
 *   order) and best effort: a batch is retried a couple of times, then dropped with a line on stderr.
 * - The result is critical: retried with exponential backoff (p-retry) for up to `resultMaxRetryTimeMs`.
 * Both stop retrying on answers that cannot improve (400, 401, 403, 404, 413).
 */
import { isIP } from 'node:net';
import pRetry, { AbortError } from 'p-retry';
import type { ProgressEvent, TaskResult } from '../contract.ts';

/** Options of {@link Reporter}. Times in ms. */
export interface ReporterOptions {
  /** Task URL of the runner API, `{appUrl}/runner/v1/tasks/{id}` (from `spec.report.url`). */
  url: string;
  /** The task token (from `spec.report.token`), sent as `Authorization: Bearer`. */
  token: string;
  /** Longest wait before a batch of events is sent, ms (default 500). */
  batchMs?: number;
  /** Events per request at most; a full batch is sent at once (default 50). */
  batchSize?: number;
  /** Events kept while the app is unreachable; the oldest are dropped beyond (default 2000). */
  maxQueue?: number;
  /** Retries of one events batch (default 2). */
  eventRetries?: number;
  /** First retry delay of an events batch, ms (default 250; ×4 per retry). */
  eventRetryDelayMs?: number;
  /** How long the result is retried, ms (default 5 minutes). */
  resultMaxRetryTimeMs?: number;
  /** First result retry delay, ms (default 1000; doubles, randomised, capped at 30 s). */
  resultMinDelayMs?: number;
  /** Timeout of one HTTP request, ms (default 60 s). */
  requestTimeoutMs?: number;
  /** Diagnostics (default: a line on stderr). Never receives the token. */
  log?: (message: string) => void;
  /** `fetch` implementation (default the global one). */
  fetch?: typeof fetch;
}

/** Statuses after which a retry cannot succeed. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 405, 413, 422]);

/** Thrown by {@link requireSecureUrl}. */
export class InsecureUrlError extends Error {
  override name = 'InsecureUrlError';
}

/** Whether `hostname` (as `URL.hostname` gives it) is a loopback address or `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}

/**
 * Checks a URL the runner sends secrets to: `https:`, or `http:` only for a loopback host (tests,
 * development) or when `env.CODEX_ALLOW_INSECURE_APP_URL` is `1`.
 * @returns the parsed URL.
 * @throws InsecureUrlError for anything else (or a URL that does not parse).
 */
export function requireSecureUrl(url: string, env: NodeJS.ProcessEnv = process.env): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InsecureUrlError(`not a valid URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol === 'https:') return parsed;
  if (parsed.protocol === 'http:' && (isLoopbackHost(parsed.hostname) || env.CODEX_ALLOW_INSECURE_APP_URL === '1')) return parsed;
  throw new InsecureUrlError(
    `refusing to send credentials to ${parsed.protocol}//${parsed.host}: https is required (http only for loopback addresses or with CODEX_ALLOW_INSECURE_APP_URL=1)`,
  );
}

/** Describes a failed fetch without secrets, e.g. `connect ECONNREFUSED 127.0.0.1:9`. */
function describeFetchError(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.message ?? e.cause?.code ?? e.message ?? String(error);
}

class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    super(`HTTP ${status}${body ? `: ${body.slice(0, 300)}` : ''}`);
    this.status = status;
  }
}

/** Posts events and the result of one task to the runner API. */
export class Reporter {
  readonly #opts: Required<Omit<ReporterOptions, 'fetch' | 'log'>> & Pick<ReporterOptions, 'fetch'>;
  readonly #log: (message: string) => void;
  readonly #queue: ProgressEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #pumping: Promise<void> | undefined;
  #dropped = 0;
  #closed = false;

  /** @throws InsecureUrlError when `url` is not acceptable to {@link requireSecureUrl}. */
  constructor(opts: ReporterOptions) {
    requireSecureUrl(opts.url);
    this.#opts = {
      batchMs: 500,
      batchSize: 50,
      maxQueue: 2000,
      eventRetries: 2,
      eventRetryDelayMs: 250,
      resultMaxRetryTimeMs: 5 * 60_000,
      resultMinDelayMs: 1000,
      requestTimeoutMs: 60_000,
      ...opts,
      url: opts.url.replace(/\/+$/, ''),
    };
    this.#log = opts.log ?? ((message) => process.stderr.write(`codex-cloud runner: ${message}\n`));
  }

  /** Queues a progress event (a `result` event is not sent: see {@link sendResult}). Never throws. */
  event(event: ProgressEvent): void {
    if (this.#closed || event.type === 'result') return;
    this.#queue.push(event);
    if (this.#queue.length > this.#opts.maxQueue) {
      this.#queue.shift();
      this.#dropped++;
    }
    if (this.#queue.length >= this.#opts.batchSize) void this.#pump();
    else this.#timer ??= setTimeout(() => void this.#pump(), this.#opts.batchMs);
  }

  /** Sends every queued event (best effort); resolves when done or given up. Never rejects. */
  async flush(): Promise<void> {
    while (this.#queue.length || this.#pumping) await this.#pump();
  }

  /**
   * Sends the result after the queued events, retrying with backoff for up to
   * `resultMaxRetryTimeMs`.
   * @returns true once the app accepted it, false when it could not be delivered (logged).
   */
  async sendResult(result: TaskResult): Promise<boolean> {
    await this.flush();
    try {
      await pRetry(() => this.#post('/result', result), {
        retries: Number.POSITIVE_INFINITY,
        maxRetryTime: this.#opts.resultMaxRetryTimeMs,
        minTimeout: this.#opts.resultMinDelayMs,
        maxTimeout: 30_000,
        factor: 2,
        randomize: true,
        onFailedAttempt: ({ error, retryDelay, attemptNumber }) => {
          if (retryDelay > 0) this.#log(`sending the result failed (attempt ${attemptNumber}: ${error.message}); retrying in ${Math.round(retryDelay / 1000)} s`);
        },
      });
      return true;
    } catch (error) {
      this.#log(`the result could not be delivered to the app: ${(error as Error).message}`);
      return false;
    }
  }

  /** Stops sending events (pending ones are dropped). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }

  #pump(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pumping ??= (async () => {
      while (this.#queue.length && !this.#closed) {
        const batch = this.#queue.splice(0, this.#opts.batchSize);
        if (this.#dropped) {
          this.#log(`${this.#dropped} progress events were dropped while the app was unreachable`);
          this.#dropped = 0;
        }
        try {
          await pRetry(() => this.#post('/events', { events: batch }), {
            retries: this.#opts.eventRetries,
            minTimeout: this.#opts.eventRetryDelayMs,
            factor: 4,
          });
        } catch (error) {
          this.#log(`${batch.length} progress events could not be sent: ${(error as Error).message}`);
        }
      }
    })().finally(() => {
      this.#pumping = undefined;
    });
    return this.#pumping;
  }

  async #post(path: string, body: unknown): Promise<void> {
    const doFetch = this.#opts.fetch ?? fetch;
    let response: Response;
    try {
      response = await doFetch(`${this.#opts.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.#opts.token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#opts.requestTimeoutMs),
      });
    } catch (error) {
      throw new Error(describeFetchError(error), { cause: error });
    }
    const text = await response.text().catch(() => '');
    if (response.ok) return;
    const error = new HttpStatusError(response.status, text);
    if (FINAL_STATUSES.has(response.status)) throw new AbortError(error);
    throw error;
  }
}
