/**
 * Gives the 👀 of every delivery being handled precedence over the work that can wait (reading the
 * thread and the repository config, recording and queuing a task, posting its progress comment). In
 * a burst of mentions, processed together on one event loop, each 👀 otherwise waits behind every
 * other mention's reads and writes, and the last ones come late.
 *
 * A delivery waits for its acknowledgement from when the webhook edge stores it (or the inbox
 * worker starts it) until its handler says it is acknowledged ({@link AcknowledgementsFirst.done}:
 * the 👀 request settled, or the handler decided to add none) or its processing ends. Work that can
 * wait awaits {@link AcknowledgementsFirst.othersDone}: until no other delivery waits, or at most
 * the maximum wait (a 👀 that hangs on GitHub must not hold every other task). The inbox worker
 * also limits how many started deliveries wait at once (inbox-worker.ts).
 */

/** Default maximum wait of {@link AcknowledgementsFirst.othersDone}, ms. */
const DEFAULT_MAX_WAIT_MS = 2_000;

/** The deliveries of one app waiting for their acknowledgement, by `X-GitHub-Delivery`. */
export class AcknowledgementsFirst {
  readonly #waiting = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #maxWaitMs: number;

  /** @param maxWaitMs the longest {@link othersDone} waits, ms; default 2,000. */
  constructor(maxWaitMs = DEFAULT_MAX_WAIT_MS) {
    this.#maxWaitMs = maxWaitMs;
  }

  /** Deliveries waiting now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Whether delivery `id` waits for its acknowledgement. */
  isWaiting(id: string): boolean {
    return this.#waiting.has(id);
  }

  /** Delivery `id` waits for its acknowledgement (idempotent). */
  begin(id: string): void {
    this.#waiting.add(id);
  }

  /** Delivery `id` is acknowledged, needs no acknowledgement, or ended (idempotent). */
  done(id: string): void {
    if (!this.#waiting.delete(id)) return;
    for (const listener of [...this.#listeners]) listener();
  }

  /** Calls `listener` after each {@link done} that ended a wait. @returns the unsubscribe function. */
  onDone(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves once no delivery other than `self` waits (at once when none does), or after the
   * maximum wait. Never rejects.
   */
  othersDone(self?: string): Promise<void> {
    if (this.#othersClear(self)) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(finish, this.#maxWaitMs);
      timer.unref();
      const unsubscribe = this.onDone(() => {
        if (this.#othersClear(self)) finish();
      });
    });
  }

  #othersClear(self: string | undefined): boolean {
    return this.#waiting.size === 0 || (this.#waiting.size === 1 && self !== undefined && this.#waiting.has(self));
  }
}
