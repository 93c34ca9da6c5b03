/**
 * The local backend's environment cache (DESIGN.md, "Environments"): archives the runner saved after
 * setup, kept under the data directory as `<dir>/<key>.tar` with `<key>.json` metadata, fresh for
 * `maxAgeMs`, each at most `maxArchiveBytes`, evicted least recently used past `maxTotalBytes`.
 *
 * The app, not the runner, writes the cache: the runner writes the archive into its own work
 * directory, and after the task the app copies it in (never following a link, only a regular file
 * within the size cap) under the key the APP computed, so a runner can never place an environment
 * under another repository's key. For the next task the app links the archive into that runner's
 * work directory, read-only to it.
 */
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { EnvironmentOutcome, EnvironmentSpec } from '../contract.ts';

const KEY = /^[0-9a-f]{64}$/;

/** Metadata of a cached environment (`<key>.json`). */
export const CachedEnvironment = z.object({
  key: z.string().regex(KEY),
  /** When the runner saved it, ISO-8601. */
  savedAt: z.string(),
  /** When a task last restored it (or it was saved), ISO-8601: the LRU order. */
  lastUsedAt: z.string(),
  /** Archive size, bytes. */
  bytes: z.number().int().nonnegative(),
});
export type CachedEnvironment = z.infer<typeof CachedEnvironment>;

/** Options of {@link EnvironmentCache} (app.ts: from `CODEX_ENV_*`, see src/config/env.ts). */
export interface EnvironmentCacheOptions {
  /** Directory of the cache (created mode 0700), e.g. `<CODEX_DATA_DIR>/environments`. */
  dir: string;
  /** How long an environment stays fresh after it was saved, ms. */
  maxAgeMs: number;
  /** Largest archive accepted, bytes (also the runner's `maxBytes`). */
  maxArchiveBytes: number;
  /** Total size of the cache, bytes; the least recently used archives go first past it. */
  maxTotalBytes: number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** Name of the archive the runner restores from / saves to, in its work directory. */
const RESTORE_NAME = 'environment-restore.tar';
const SAVE_NAME = 'environment-save.tar';

/** The environments of the local backend. */
export class EnvironmentCache {
  readonly #opts: EnvironmentCacheOptions;
  readonly #now: () => number;

  constructor(opts: EnvironmentCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Largest archive accepted, bytes. */
  get maxArchiveBytes(): number {
    return this.#opts.maxArchiveBytes;
  }

  #archive(key: string): string {
    return path.join(this.#opts.dir, `${key}.tar`);
  }

  #meta(key: string): string {
    return path.join(this.#opts.dir, `${key}.json`);
  }

  async #readMeta(key: string): Promise<CachedEnvironment | undefined> {
    try {
      return CachedEnvironment.parse(JSON.parse(await readFile(this.#meta(key), 'utf8')));
    } catch {
      return undefined;
    }
  }

  /**
   * The fresh environment for `key`, marked as used now; a stale one is removed.
   * @returns its metadata and archive path, or undefined.
   */
  async lookup(key: string): Promise<(CachedEnvironment & { file: string }) | undefined> {
    if (!KEY.test(key)) return undefined;
    const meta = await this.#readMeta(key);
    if (!meta) return undefined;
    if (this.#now() - Date.parse(meta.savedAt) > this.#opts.maxAgeMs) {
      await this.remove(key);
      return undefined;
    }
    const used = { ...meta, lastUsedAt: new Date(this.#now()).toISOString() };
    await writeFile(this.#meta(key), JSON.stringify(used));
    return { ...used, file: this.#archive(key) };
  }

  /**
   * Copies an archive a runner wrote into the cache under `key` (the app's key, never the runner's
   * word): only a regular file (not followed through a link) of at most `maxArchiveBytes`.
   * Then evicts past `maxTotalBytes`.
   * @returns the new entry, or undefined with the reason when the file is not acceptable.
   */
  async adopt(key: string, file: string): Promise<{ entry?: CachedEnvironment; refused?: string }> {
    if (!KEY.test(key)) return { refused: 'not a cache key' };
    await mkdir(this.#opts.dir, { recursive: true, mode: 0o700 });
    let handle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      return { refused: `the archive cannot be opened: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
    }
    const tmp = path.join(this.#opts.dir, `.${key}.${process.pid}.${this.#now()}.tmp`);
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) return { refused: 'the archive is not a regular file' };
      if (stat.size > this.#opts.maxArchiveBytes) return { refused: `the archive is larger than ${this.#opts.maxArchiveBytes} bytes` };
      // Copied from the opened descriptor: what is checked is what is copied, owned by the app.
      await pipeline(
        createReadStream('', { fd: handle.fd, autoClose: false, start: 0, end: Math.max(0, stat.size - 1) }),
        createWriteStream(tmp, { mode: 0o644 }),
      );
      await chmod(tmp, 0o644);
      await rename(tmp, this.#archive(key));
      const at = new Date(this.#now()).toISOString();
      const entry: CachedEnvironment = { key, savedAt: at, lastUsedAt: at, bytes: stat.size };
      await writeFile(this.#meta(key), JSON.stringify(entry), { mode: 0o600 });
      await this.evict();
      return { entry };
    } finally {
      await handle.close();
      await rm(tmp, { force: true });
    }
  }

  /** Removes the environment of `key` (stale, or refused by a runner). */
  async remove(key: string): Promise<void> {
    if (!KEY.test(key)) return;
    await rm(this.#meta(key), { force: true });
    await rm(this.#archive(key), { force: true });
  }

  /** Removes stale environments, then the least recently used ones until the cache fits `maxTotalBytes`. */
  async evict(): Promise<void> {
    const names = await readdir(this.#opts.dir).catch(() => [] as string[]);
    const entries: CachedEnvironment[] = [];
    for (const name of names) {
      const key = name.endsWith('.json') ? name.slice(0, -5) : undefined;
      if (!key || !KEY.test(key)) continue;
      const meta = await this.#readMeta(key);
      if (!meta || this.#now() - Date.parse(meta.savedAt) > this.#opts.maxAgeMs) await this.remove(key);
      else entries.push(meta);
    }
    entries.sort((a, b) => Date.parse(a.lastUsedAt) - Date.parse(b.lastUsedAt));
    let total = entries.reduce((sum, e) => sum + e.bytes, 0);
    for (const e of entries) {
      if (total <= this.#opts.maxTotalBytes) break;
      await this.remove(e.key);
      total -= e.bytes;
    }
  }

  /**
   * Fills `environment.restore` and `.save` for a runner working in `workDir` (local paths): the
   * fresh archive of its key, linked (or copied) into the work directory, readable but not writable
   * by the runner (the app owns it, mode 0644, so a runner of another user cannot change the cached
   * archive); and where the runner saves a new one.
   */
  async forRunner(environment: EnvironmentSpec, workDir: string): Promise<EnvironmentSpec> {
    const out: EnvironmentSpec = { ...environment, maxBytes: Math.min(environment.maxBytes, this.#opts.maxArchiveBytes), save: { path: path.join(workDir, SAVE_NAME) } };
    delete out.restore;
    const cached = environment.fresh ? undefined : await this.lookup(environment.key);
    if (cached) {
      const lent = path.join(workDir, RESTORE_NAME);
      await rm(lent, { force: true });
      await link(cached.file, lent).catch(async () => {
        await copyFile(cached.file, lent);
        await chmod(lent, 0o444);
      });
      out.restore = { from: { path: lent }, savedAt: cached.savedAt };
    }
    return out;
  }

  /**
   * After the task, before its work directory is removed: adopts the archive the runner saved, or
   * drops the environment the runner refused to restore.
   * @returns a line for the app's log, or undefined when there was nothing to do.
   */
  async collect(environment: EnvironmentSpec, outcome: EnvironmentOutcome | undefined, workDir: string): Promise<string | undefined> {
    if (!outcome) return undefined;
    if (outcome.restoreFailure) await this.remove(environment.key);
    if (outcome.status !== 'built' || outcome.savedBytes === undefined) return outcome.restoreFailure ? `environment ${environment.key.slice(0, 12)} dropped: ${outcome.restoreFailure}` : undefined;
    const { entry, refused } = await this.adopt(environment.key, path.join(workDir, SAVE_NAME));
    return entry ? `environment ${environment.key.slice(0, 12)} cached (${entry.bytes} bytes)` : `environment ${environment.key.slice(0, 12)} not cached: ${refused}`;
  }
}
