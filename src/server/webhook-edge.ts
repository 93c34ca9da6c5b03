/**
 * The app's webhook endpoint (`POST /api/github/webhooks`), in front of the webhook inbox.
 * Probot's own middleware (@octokit/webhooks' `createNodeMiddleware`) buffers the whole body before
 * anything else, logs the whole event on a signature failure or a handler error, and answers 500 when
 * a handler throws; this edge replaces it (see `serve.ts` for how Probot's route is switched off):
 *
 * 1. method, path and the delivery headers (`X-GitHub-Event`, `X-GitHub-Delivery`,
 *    `X-Hub-Signature-256`, `Content-Type: application/json`) are checked first;
 * 2. the body is read as a stream with a size limit, {@link MAX_WEBHOOK_BODY_BYTES} by default (GitHub
 *    caps payloads at 25 MB: https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap):
 *    a larger `Content-Length` gets 413 before a byte is read, a longer stream gets 413 as soon as it
 *    passes the limit, and the rest is discarded unread (never buffered);
 * 3. the signature (HMAC-SHA256 of the body with the webhook secret,
 *    https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries) is checked
 *    before the body is parsed as JSON;
 * 4. the envelope (a JSON object; `action` a string and `installation.id` a positive integer where
 *    present, as Probot's dispatch reads them) is validated with zod; anything else gets 202 and is
 *    ignored;
 * 5. the delivery is stored in the inbox ({@link DeliveryQueue}, durable: src/server/inbox.ts) and
 *    answered at once; Probot's handlers run in the background (src/server/inbox-worker.ts), so
 *    GitHub never waits for them and a crash after the answer loses nothing.
 *
 * Log lines name the delivery id and event (cut to 100 characters) and the reason; never the body.
 * Answers: 200 stored (or already stored: a redelivery), 202 ignored (not an event payload), 400 bad
 * headers / signature / JSON, 405 not POST, 413 too large, 415 not JSON, 503 when concurrent
 * uploads already hold `maxBufferedBytes` or the delivery could not be stored (never for a
 * handler's failure).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';

/** The body size limit, bytes: 25 MiB, just above GitHub's 25 MB payload cap. */
const MAX_WEBHOOK_BODY_BYTES = 25 * 1024 * 1024;

/** What all webhook requests together may buffer by default, bytes: 8 full-size payloads (200 MiB). */
const MAX_BUFFERED_WEBHOOK_BYTES = 8 * MAX_WEBHOOK_BODY_BYTES;

/** Where GitHub delivers webhooks (Probot's and @octokit/webhooks' default path). */
export const WEBHOOK_PATH = '/api/github/webhooks';

/** What the edge needs of Probot's `app.webhooks` (an @octokit/webhooks `Webhooks` instance). */
export interface WebhookReceiver {
  /** Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `payload` with the webhook secret. */
  verify(payload: string, signature: string): Promise<boolean>;
}

/** Where verified deliveries go (the inbox worker's `accept`). */
export interface DeliveryQueue {
  /**
   * Stores a delivery durably before returning (`payload`: the JSON text as received).
   * @returns `'queued'`, or `'duplicate'` for a delivery id already stored.
   * @throws when it cannot be stored (the edge answers 503, so that GitHub shows a failed delivery).
   */
  accept(delivery: { id: string; name: string; payload: string }): 'queued' | 'duplicate';
  /**
   * Like {@link accept}, stored together with the deliveries of the same event-loop turn (one
   * commit); resolves once stored. The edge uses it when present.
   * @throws (rejects) when they cannot be stored.
   */
  acceptGrouped?(delivery: { id: string; name: string; payload: string }): Promise<'queued' | 'duplicate'>;
}

/** Options of {@link createWebhookEdge}. */
export interface WebhookEdgeOptions {
  receiver: WebhookReceiver;
  queue: DeliveryQueue;
  log: Logger;
  /** Default {@link WEBHOOK_PATH}. */
  path?: string;
  /** Body size limit, bytes; default {@link MAX_WEBHOOK_BODY_BYTES}. */
  maxBodyBytes?: number;
  /**
   * Bytes all requests together may hold before their signature is checked, default
   * {@link MAX_BUFFERED_WEBHOOK_BYTES}: past it, a new chunk gets 503 (with `Retry-After`), so that
   * concurrent unsigned uploads cannot take the app's memory.
   */
  maxBufferedBytes?: number;
}

/** A Probot server handler: `true` when it answered the request. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** The fields Probot's dispatch reads from every payload (`action`, `installation.id`). */
const Envelope = z.looseObject({
  action: z.string().max(100).optional(),
  installation: z.looseObject({ id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) }).optional(),
});

/** `X-GitHub-Event`: a lower-case name such as `issue_comment` or `projects_v2_item`. */
const EVENT_NAME = /^[a-z0-9_]{1,64}$/;
const JSON_CONTENT_TYPE = /^\s*application\/json\s*(?:;|$)/i;

/** How long a refused upload may go on being discarded before its connection is closed, ms. */
const DISCARD_LINGER_MS = 2_000;

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** A header value fit for a log line. */
function shown(value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.slice(0, 100);
}

function answer(res: ServerResponse, status: number, body: Record<string, string>, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/**
 * Answers an upload early (413, 503) and drops the rest of it without keeping it. The connection is
 * not closed at once (a client still sending would get a reset and could lose the answer); it is
 * closed after {@link DISCARD_LINGER_MS} if the upload has not ended by then.
 */
function refuseUpload(req: IncomingMessage, res: ServerResponse, status: number, body: Record<string, string>, headers: Record<string, string> = {}): void {
  answer(res, status, body, headers);
  req.removeAllListeners('data');
  req.resume();
  const timer = setTimeout(() => req.socket.destroy(), DISCARD_LINGER_MS);
  timer.unref();
  req.once('close', () => clearTimeout(timer));
}

type BodyRead = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'busy' | 'aborted' };

/** Bytes held by the requests of one edge, against its budget. */
interface BufferBudget {
  /** Takes `bytes` from the budget; `false` (and nothing taken) when they do not fit. */
  take(bytes: number): boolean;
  give(bytes: number): void;
}

function bufferBudget(max: number): BufferBudget {
  let held = 0;
  return {
    take(bytes) {
      if (held + bytes > max) return false;
      held += bytes;
      return true;
    },
    give(bytes) {
      held -= bytes;
    },
  };
}

/**
 * Reads the body, stopping as soon as it passes `limit` bytes or the budget is spent. The bytes
 * taken from `budget` are given back when the read settles (the caller holds the body from then on).
 */
function readBody(req: IncomingMessage, limit: number, budget: BufferBudget): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyRead) => {
      if (settled) return;
      settled = true;
      budget.give(size);
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      if (size + chunk.length > limit) {
        chunks.length = 0;
        settle({ ok: false, reason: 'too_large' });
        return;
      }
      if (!budget.take(chunk.length)) {
        chunks.length = 0;
        settle({ ok: false, reason: 'busy' });
        return;
      }
      size += chunk.length;
      chunks.push(chunk);
    });
    req.once('end', () => settle({ ok: true, body: Buffer.concat(chunks, size) }));
    req.once('error', () => settle({ ok: false, reason: 'aborted' }));
    req.once('close', () => settle({ ok: false, reason: 'aborted' }));
  });
}

/**
 * Builds the edge handler (mount it with Probot's `addHandler`).
 * @returns a handler that answers `POST {path}` and passes every other request on (`false`).
 */
export function createWebhookEdge(opts: WebhookEdgeOptions): HttpHandler {
  const path = opts.path ?? WEBHOOK_PATH;
  const maxBodyBytes = opts.maxBodyBytes ?? MAX_WEBHOOK_BODY_BYTES;
  const budget = bufferBudget(opts.maxBufferedBytes ?? MAX_BUFFERED_WEBHOOK_BYTES);
  const log = opts.log.child({ name: 'webhooks' });

  return async (req, res) => {
    const pathname = (req.url ?? '').split('?')[0]!.replace(/\/+$/, '');
    if (pathname !== path) return false;
    if (req.method !== 'POST') {
      answer(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return true;
    }
    const deliveryId = header(req, 'x-github-delivery');
    const eventName = header(req, 'x-github-event');
    const signature = header(req, 'x-hub-signature-256');
    const ref = { deliveryId: shown(deliveryId), eventName: shown(eventName) };
    const refuse = (status: number, reason: string) => {
      log.warn({ ...ref, status, reason }, 'webhook refused');
      answer(res, status, { error: reason });
      return true;
    };

    const declared = Number(header(req, 'content-length') ?? 0);
    if (declared > maxBodyBytes) {
      log.warn({ ...ref, status: 413, bytes: declared }, 'webhook refused: payload too large');
      refuseUpload(req, res, 413, { error: `payload larger than ${maxBodyBytes} bytes` });
      return true;
    }
    if (!deliveryId || deliveryId.length > 100 || !eventName || !EVENT_NAME.test(eventName) || !signature) {
      return refuse(400, 'missing or invalid X-GitHub-Event, X-GitHub-Delivery or X-Hub-Signature-256 header');
    }
    if (!JSON_CONTENT_TYPE.test(header(req, 'content-type') ?? '')) return refuse(415, 'Content-Type must be application/json');

    const read = await readBody(req, maxBodyBytes, budget);
    if (!read.ok) {
      if (read.reason === 'too_large') {
        log.warn({ ...ref, status: 413 }, 'webhook refused: payload too large');
        refuseUpload(req, res, 413, { error: `payload larger than ${maxBodyBytes} bytes` });
      } else if (read.reason === 'busy') {
        log.warn({ ...ref, status: 503 }, 'webhook refused: too many bytes buffered by concurrent requests');
        refuseUpload(req, res, 503, { error: 'too many concurrent uploads; retry later' }, { 'retry-after': '10' });
      }
      return true;
    }
    const text = read.body.toString('utf8');
    const verified = await opts.receiver.verify(text, signature).catch(() => false);
    if (!verified) return refuse(400, 'signature does not match the payload and secret');

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return refuse(400, 'the payload is not JSON');
    }
    const envelope = Envelope.safeParse(parsed);
    if (!envelope.success) {
      log.warn({ ...ref, status: 202 }, 'webhook ignored: not an event payload Probot can dispatch');
      answer(res, 202, { ignored: 'payload not understood' });
      return true;
    }

    let outcome: 'queued' | 'duplicate';
    try {
      const delivery = { id: deliveryId, name: eventName, payload: text };
      outcome = opts.queue.acceptGrouped ? await opts.queue.acceptGrouped(delivery) : opts.queue.accept(delivery);
    } catch (error) {
      log.error({ ...ref, status: 503, err: String((error as Error)?.message ?? error).slice(0, 300) }, 'webhook not stored');
      answer(res, 503, { error: 'the delivery could not be stored; redeliver it later' }, { 'retry-after': '10' });
      return true;
    }
    if (outcome === 'duplicate') log.info(ref, 'webhook delivery already stored (a redelivery): not queued again');
    answer(res, 200, { ok: outcome });
    return true;
  };
}
