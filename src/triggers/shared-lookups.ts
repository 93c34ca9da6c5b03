/**
 * Identical lookups in flight at the same time share one request: in a burst of mentions in one
 * repository, the permission of one user and the config of one repository are read once. Nothing is
 * kept once a lookup settles, so no answer is older than the request that produced it. One instance
 * per app (app.ts passes it to the triggers), never module state.
 */
export class SharedLookups {
  readonly #inflight = new Map<string, Promise<unknown>>();

  /** Lookups in flight now. */
  get size(): number {
    return this.#inflight.size;
  }

  /**
   * `load()`, or the promise of the identical lookup (same `key`) already in flight. A rejection
   * reaches every caller that shared it; the next call after it settles loads again.
   */
  run<T>(key: string, load: () => Promise<T>): Promise<T> {
    let pending = this.#inflight.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = load().finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }
}
