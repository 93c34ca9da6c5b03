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
 *
 * Unpacked copies: extracting an archive costs about what installing the dependencies cost (both
 * write every file), so restoring by extraction at the start of a task would save little. The cache
 * therefore keeps, for the most recently used keys, one copy already extracted (with the runner's
 * own entry checks, {@link extractEnvironment}) under `<dir>/unpacked/`, made in the background after
 * a task saved or restored that environment. A task whose key has one gets it moved (renamed) into its
 * work directory and the runner renames its entries into place: a restore in milliseconds whatever
 * the number of files. Each copy is used once (a task may change it); the next is unpacked from the
 * archive once that task ended. A task that finds none restores from the archive.
 */
import { randomUUID } from 'node:crypto';
import { constants, createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { extractEnvironment } from '../agent/environment/archive.ts';
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
  /**
   * How many keys keep an unpacked copy ready (see the module's doc); 0 turns unpacked copies off
   * (every restore extracts the archive). Default {@link DEFAULT_UNPACKED_COPIES}. Each copy takes
   * the environment's unpacked size on disk, outside `maxTotalBytes`.
   */
  unpackedCopies?: number;
  /** Largest size the files of an archive unpack to, bytes (default 10 GiB). */
  maxUnpackedBytes?: number;
  /** Owner given to unpacked copies: the runner's user when it is another (`CODEX_RUNNER_USER`). */
  owner?: { uid: number; gid: number };
  /** Where background failures (an archive that cannot be unpacked) are reported; default process warnings. */
  warn?: (message: string) => void;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** Default {@link EnvironmentCacheOptions.unpackedCopies}. */
export const DEFAULT_UNPACKED_COPIES = 2;

/** Name of the archive the runner restores from / saves to, in its work directory. */
const RESTORE_NAME = 'environment-restore.tar';
const SAVE_NAME = 'environment-save.tar';
/** Name of an unpacked copy moved into a runner's work directory. */
const UNPACKED_NAME = 'environment-unpacked';

/** The environments of the local backend. */
export class EnvironmentCache {
  readonly #opts: EnvironmentCacheOptions;
  readonly #now: () => number;
  readonly #copies: number;
  /** Unpacking under way, by key, and the temporary directories it writes. */
  readonly #unpacking = new Map<string, Promise<void>>();
  readonly #ownTemporaries = new Set<string>();

  constructor(opts: EnvironmentCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#copies = Math.max(0, Math.floor(opts.unpackedCopies ?? DEFAULT_UNPACKED_COPIES));
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

  get #unpackedRoot(): string {
    return path.join(this.#opts.dir, 'unpacked');
  }

  /** The unpacked copy of the archive of `key` saved at `savedAt` (a new archive is a new name). */
  #unpacked(key: string, savedAt: string): string {
    return path.join(this.#unpackedRoot, `${key}-${Date.parse(savedAt)}`);
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

  /** Removes the environment of `key` (stale, or refused by a runner), with its unpacked copies. */
  async remove(key: string): Promise<void> {
    if (!KEY.test(key)) return;
    await rm(this.#meta(key), { force: true });
    await rm(this.#archive(key), { force: true });
    for (const name of await readdir(this.#unpackedRoot).catch(() => [] as string[])) {
      if (name.startsWith(`${key}-`)) await rm(path.join(this.#unpackedRoot, name), { recursive: true, force: true });
    }
  }

  /**
   * Starts making the unpacked copy of `key`'s fresh archive in the background, unless copies are
   * off or it exists or is being made. Never throws: a failure is reported through `warn` (the
   * archive is then restored by extraction, where the runner reports any problem with it).
   */
  prepareUnpacked(key: string): void {
    if (this.#copies === 0 || !KEY.test(key) || this.#unpacking.has(key)) return;
    const job = this.#unpack(key)
      .catch((error: unknown) => (this.#opts.warn ?? process.emitWarning)(`environment ${key.slice(0, 12)}: no unpacked copy: ${(error as Error).message}`))
      .finally(() => this.#unpacking.delete(key));
    this.#unpacking.set(key, job);
  }

  /** Resolves when no unpacked copy is being made (tests, benchmarks, shutdown). */
  async idle(): Promise<void> {
    while (this.#unpacking.size > 0) await Promise.all(this.#unpacking.values());
  }

  async #unpack(key: string): Promise<void> {
    const meta = await this.#readMeta(key);
    if (!meta || this.#now() - Date.parse(meta.savedAt) > this.#opts.maxAgeMs) return;
    const target = this.#unpacked(key, meta.savedAt);
    if (await lstat(target).then(() => true, () => false)) return;
    await mkdir(this.#unpackedRoot, { recursive: true, mode: 0o700 });
    const tmp = path.join(this.#unpackedRoot, `.tmp-${key}-${randomUUID()}`);
    this.#ownTemporaries.add(tmp);
    try {
      await mkdir(path.join(tmp, 'repo'), { recursive: true, mode: 0o700 });
      await mkdir(path.join(tmp, 'home'), { mode: 0o700 });
      await extractEnvironment({
        source: createReadStream(this.#archive(key)),
        workDir: tmp,
        maxBytes: this.#opts.maxArchiveBytes,
        maxUnpackedBytes: this.#opts.maxUnpackedBytes ?? 10 * 1024 ** 3,
      });
      if (this.#opts.owner) await chownTree(tmp, this.#opts.owner);
      // Removed or replaced meanwhile: the copy would be of an archive no task restores.
      const now = await this.#readMeta(key);
      if (now?.savedAt !== meta.savedAt) return;
      await rename(tmp, target);
    } finally {
      this.#ownTemporaries.delete(tmp);
      await rm(tmp, { recursive: true, force: true });
    }
    await this.#trimUnpacked();
  }

  /**
   * Keeps the {@link EnvironmentCacheOptions.unpackedCopies} most recent unpacked copies of fresh
   * archives; removes the others and temporaries a stopped process left.
   */
  async #trimUnpacked(): Promise<void> {
    const root = this.#unpackedRoot;
    const copies: { file: string; mtimeMs: number }[] = [];
    for (const name of await readdir(root).catch(() => [] as string[])) {
      const file = path.join(root, name);
      if (name.startsWith('.tmp-')) {
        if (!this.#ownTemporaries.has(file)) await rm(file, { recursive: true, force: true });
        continue;
      }
      const match = /^([0-9a-f]{64})-(\d+)$/.exec(name);
      const meta = match ? await this.#readMeta(match[1]!) : undefined;
      const current = meta && Date.parse(meta.savedAt) === Number(match![2]) && this.#now() - Date.parse(meta.savedAt) <= this.#opts.maxAgeMs;
      if (!current) {
        await rm(file, { recursive: true, force: true });
        continue;
      }
      copies.push({ file, mtimeMs: (await stat(file).catch(() => undefined))?.mtimeMs ?? 0 });
    }
    copies.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const { file } of copies.slice(this.#copies)) await rm(file, { recursive: true, force: true });
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
      // Taken by rename: atomic, so two tasks of one key never share a copy. The next copy is made
      // after this task (collect), not while it starts: unpacking competes with it for CPU and disk.
      const unpacked = path.join(workDir, UNPACKED_NAME);
      const took = this.#copies > 0 && (await rename(this.#unpacked(environment.key, cached.savedAt), unpacked).then(() => true, () => false));
      if (took) {
        out.restore = { from: { unpacked }, savedAt: cached.savedAt };
        return out;
      }
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
   * drops the environment the runner refused to restore; then starts making the unpacked copy of the
   * environment the task saved or restored, for the next task (in the background).
   * @returns a line for the app's log, or undefined when there was nothing to do.
   */
  async collect(environment: EnvironmentSpec, outcome: EnvironmentOutcome | undefined, workDir: string): Promise<string | undefined> {
    if (!outcome) return undefined;
    if (outcome.restoreFailure) await this.remove(environment.key);
    // The environment served this task: ready a copy for the next one.
    if (outcome.status === 'restored') this.prepareUnpacked(environment.key);
    if (outcome.status !== 'built' || outcome.savedBytes === undefined) return outcome.restoreFailure ? `environment ${environment.key.slice(0, 12)} dropped: ${outcome.restoreFailure}` : undefined;
    const { entry, refused } = await this.adopt(environment.key, path.join(workDir, SAVE_NAME));
    if (entry) this.prepareUnpacked(environment.key);
    return entry ? `environment ${environment.key.slice(0, 12)} cached (${entry.bytes} bytes)` : `environment ${environment.key.slice(0, 12)} not cached: ${refused}`;
  }
}

/** `lchown` of `root` and everything below it (links themselves, never their targets). */
async function chownTree(root: string, owner: { uid: number; gid: number }): Promise<void> {
  await lchown(root, owner.uid, owner.gid);
  for (const entry of await readdir(root, { recursive: true })) await lchown(path.join(root, entry), owner.uid, owner.gid);
}
