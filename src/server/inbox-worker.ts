/**
 * Processes the webhook inbox (src/server/inbox.ts) in the background: pending deliveries are handed
 * to Probot's handlers (`app.webhooks.receive`, the same dispatch the webhook edge used to call while
 * GitHub waited) in order of arrival, at most `concurrency` at a time. On start it takes up whatever
 * a crash left pending. A delivery whose handlers fail is tried again later (exponential back-off),
 * and marked failed after `maxAttempts` attempts (one log line with the delivery id, the event and
 * the error, never the payload). Processed and failed rows are pruned after their retention time.
 */
import type { Logger } from 'pino';
import type { AcknowledgementsFirst } from './acknowledgements-first.ts';
import type { InboxDelivery, PendingDelivery, SqliteWebhookInbox } from './inbox.ts';

/** What the worker needs of Probot's `app.webhooks` (an @octokit/webhooks `Webhooks` instance). */
export interface WebhookDispatcher {
  /** Runs the handlers of a verified event; rejects (often an AggregateError) when one of them throws. */
  receive(event: { id: string; name: string; payload: Record<string, unknown> }): Promise<void>;
}

/** Options of {@link WebhookInboxWorker}. */
export interface InboxWorkerOptions {
  inbox: SqliteWebhookInbox;
  dispatcher: WebhookDispatcher;
  log: Logger;
  /**
   * Deliveries processed at the same time; default 64 (handlers wait on GitHub, not on the CPU).
   * With `acknowledgements`, this many may wait for their acknowledgement at the same time, and
   * `maxInFlight` bounds all deliveries being processed.
   */
  concurrency?: number;
  /**
   * The deliveries waiting for their 👀 (acknowledgements-first.ts), shared with the handlers: a
   * delivery waits from when it is accepted (or started) until its handler marks it done or its
   * processing ends, and an acknowledged delivery no longer holds one of the `concurrency` slots, so
   * that the next deliveries get their 👀 while the work that can wait goes on.
   */
  acknowledgements?: AcknowledgementsFirst;
  /** All deliveries being processed at once, acknowledged or not; default 4 × `concurrency`. */
  maxInFlight?: number;
  /** Attempts before a delivery is marked failed; default 5. */
  maxAttempts?: number;
  /** Wait before the first retry, ms, doubled at each further one (at most 5 minutes); default 2,000. */
  retryBaseMs?: number;
  /** How long processed deliveries are kept (their ids, against redeliveries), ms; default 24 hours. */
  processedRetentionMs?: number;
  /** How long failed deliveries are kept (with their payloads, for a redelivery), ms; default 7 days. */
  failedRetentionMs?: number;
  /** How often old rows are pruned, ms; default 1 hour. */
  pruneEveryMs?: number;
  /**
   * How long the handlers of one delivery may run before the attempt counts as failed and its slot
   * is freed, ms; default 10 minutes (a handler that hangs must not hold the inbox).
   */
  handlerTimeoutMs?: number;
}

/** Thrown (and recorded) when a delivery's handlers run past `handlerTimeoutMs`. */
class HandlerTimeoutError extends Error {
  override name = 'HandlerTimeoutError';
}

const HOUR_MS = 3_600_000;
/**
 * The most deliveries stored in one transaction ({@link WebhookInboxWorker.acceptGrouped}): a
 * bigger group saves little more and makes its first deliveries wait for the last one's answer.
 */
const MAX_GROUP = 8;
const MAX_RETRY_MS = 5 * 60_000;

/** The message of a handler error (each error of an AggregateError), cut to 300 characters. */
function errorText(error: unknown): string {
  const errors = error instanceof AggregateError ? error.errors : [error];
  return errors
    .map((e) => String((e as Error | undefined)?.message ?? e))
    .join('; ')
    .slice(0, 300);
}

/** The background processor of one inbox. */
export class WebhookInboxWorker {
  readonly #opts: Required<Omit<InboxWorkerOptions, 'log' | 'acknowledgements'>> & Pick<InboxWorkerOptions, 'acknowledgements'> & { log: Logger };
  readonly #running = new Map<string, Promise<void>>();
  /** Due deliveries read from the inbox and not started yet (oldest first). */
  #batch: PendingDelivery[] = [];
  #started = false;
  #stopped = false;
  #scheduled = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #pruneTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Deliveries waiting to be stored together ({@link acceptGrouped}). */
  #group: Array<{ delivery: InboxDelivery; resolve: (outcome: 'queued' | 'duplicate') => void; reject: (error: unknown) => void }> = [];

  constructor(opts: InboxWorkerOptions) {
    this.#opts = {
      concurrency: 64,
      maxAttempts: 5,
      retryBaseMs: 2_000,
      processedRetentionMs: 24 * HOUR_MS,
      failedRetentionMs: 7 * 24 * HOUR_MS,
      pruneEveryMs: HOUR_MS,
      handlerTimeoutMs: 10 * 60_000,
      maxInFlight: 4 * (opts.concurrency ?? 64),
      ...opts,
      log: opts.log.child({ name: 'inbox' }),
    };
  }

  /**
   * Stores a verified delivery (see {@link SqliteWebhookInbox.add}) and, when it is new, schedules
   * its processing. Returns once the row is written.
   * @throws Error from `node:sqlite` when it cannot be stored (the edge then answers 503).
   */
  accept(delivery: Omit<InboxDelivery, 'receivedAt'>): 'queued' | 'duplicate' {
    const outcome = this.#opts.inbox.add({ ...delivery, receivedAt: Date.now() });
    if (outcome === 'queued') {
      this.#opts.acknowledgements?.begin(delivery.id);
      this.#schedule();
    }
    return outcome;
  }

  /**
   * Like {@link accept}, but the deliveries accepted in the same turn of the event loop are stored
   * together, up to {@link MAX_GROUP} at a time, in one transaction (one commit instead of one each:
   * in a burst, most of what storing costs). Resolves once the delivery is stored.
   * @throws (rejects) Error from `node:sqlite` when the transaction fails: none of its deliveries is stored.
   */
  acceptGrouped(delivery: Omit<InboxDelivery, 'receivedAt'>): Promise<'queued' | 'duplicate'> {
    return new Promise((resolve, reject) => {
      this.#group.push({ delivery: { ...delivery, receivedAt: Date.now() }, resolve, reject });
      if (this.#group.length >= MAX_GROUP) this.#storeGroup();
      else if (this.#group.length === 1) setImmediate(() => this.#storeGroup());
    });
  }

  #storeGroup(): void {
    const group = this.#group;
    if (group.length === 0) return;
    this.#group = [];
    let outcomes: Array<'queued' | 'duplicate'>;
    try {
      outcomes = this.#opts.inbox.addAll(group.map((g) => g.delivery));
    } catch (error) {
      for (const g of group) g.reject(error);
      return;
    }
    group.forEach((g, i) => {
      if (outcomes[i] === 'queued') this.#opts.acknowledgements?.begin(g.delivery.id);
      g.resolve(outcomes[i]!);
    });
    if (outcomes.includes('queued')) this.#schedule();
  }

  /** Starts processing: first whatever is pending (left by a crash), then each accepted delivery. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#prune();
    this.#pruneTimer = setInterval(() => this.#prune(), this.#opts.pruneEveryMs);
    this.#pruneTimer.unref();
    // An acknowledged delivery frees its slot: start the next one.
    this.#unsubscribe = this.#opts.acknowledgements?.onDone(() => this.#schedule());
    this.#schedule();
  }

  /**
   * Stops taking deliveries and waits for those being processed, at most `timeoutMs` (ms). Those not
   * finished by then stay pending and are processed after the next start.
   */
  async stop(timeoutMs = 5_000): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pruneTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#running.values()]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }

  #schedule(): void {
    if (!this.#started || this.#stopped || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  /**
   * Starts the oldest due delivery (if a slot is free) and schedules the next start for the next
   * turn of the event loop, so that each start (the handlers' synchronous part) lets the I/O between
   * them through: in a burst, the webhook edge keeps answering while the first deliveries are
   * processed. Due deliveries are read from the inbox a batch at a time. Arms a timer for the next
   * retry when nothing is due now.
   */
  #pump(): void {
    if (this.#stopped) return;
    const free = this.#free();
    if (free > 0 && this.#batch.length === 0) {
      try {
        this.#batch = this.#opts.inbox.due(Date.now(), free, this.#running.keys());
      } catch (error) {
        this.#opts.log.error({ err: errorText(error) }, 'could not read the webhook inbox');
      }
    }
    const delivery = free > 0 ? this.#batch.shift() : undefined;
    if (delivery && !this.#running.has(delivery.id)) {
      this.#opts.acknowledgements?.begin(delivery.id);
      const done = this.#process(delivery).finally(() => {
        this.#running.delete(delivery.id);
        this.#opts.acknowledgements?.done(delivery.id);
        this.#schedule();
      });
      this.#running.set(delivery.id, done);
    }
    if (this.#batch.length > 0 && this.#free() > 0) this.#schedule();
    else this.#armRetryTimer();
  }

  /**
   * Deliveries that may start now: slots left among those waiting for their acknowledgement (all
   * running ones without `acknowledgements`), within `maxInFlight`.
   */
  #free(): number {
    const { concurrency, maxInFlight, acknowledgements } = this.#opts;
    if (!acknowledgements) return concurrency - this.#running.size;
    let waiting = 0;
    for (const id of this.#running.keys()) if (acknowledgements.isWaiting(id)) waiting++;
    return Math.min(concurrency - waiting, maxInFlight - this.#running.size);
  }

  #armRetryTimer(): void {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#free() <= 0) return;
    let next: number | undefined;
    try {
      next = this.#opts.inbox.nextDueAt();
    } catch {
      return;
    }
    if (next === undefined) return;
    const wait = next - Date.now();
    // Due now but not started: being processed (a finish schedules the next pump).
    if (wait <= 0) return;
    this.#retryTimer = setTimeout(() => this.#schedule(), wait);
    this.#retryTimer.unref();
  }

  async #process(delivery: PendingDelivery): Promise<void> {
    const { inbox, dispatcher, log, maxAttempts, retryBaseMs, handlerTimeoutMs } = this.#opts;
    const ref = { deliveryId: delivery.id, eventName: delivery.name };
    let attempts = delivery.attempts + 1;
    try {
      attempts = inbox.begin(delivery.id);
      const payload = JSON.parse(delivery.payload) as Record<string, unknown>;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          dispatcher.receive({ id: delivery.id, name: delivery.name, payload }),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new HandlerTimeoutError(`the handlers ran longer than ${handlerTimeoutMs} ms`)), handlerTimeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
      inbox.processed(delivery.id, Date.now());
    } catch (error) {
      const err = errorText(error);
      try {
        if (attempts >= maxAttempts) {
          inbox.failed(delivery.id, err, Date.now());
          log.error({ ...ref, attempts, err }, `webhook delivery failed ${attempts} times: marked failed`);
        } else {
          const wait = Math.min(retryBaseMs * 2 ** (attempts - 1), MAX_RETRY_MS);
          inbox.retryLater(delivery.id, err, Date.now() + wait);
          log.warn({ ...ref, attempts, retryInMs: wait, err }, 'webhook handler failed; will try again');
        }
      } catch (storeError) {
        log.error({ ...ref, err: errorText(storeError) }, 'could not record a failed webhook delivery');
      }
    }
  }

  #prune(): void {
    const now = Date.now();
    try {
      const deleted = this.#opts.inbox.prune(now - this.#opts.processedRetentionMs, now - this.#opts.failedRetentionMs);
      if (deleted > 0) this.#opts.log.debug({ deleted }, 'pruned old webhook deliveries');
    } catch (error) {
      this.#opts.log.warn({ err: errorText(error) }, 'could not prune the webhook inbox');
    }
  }
}
