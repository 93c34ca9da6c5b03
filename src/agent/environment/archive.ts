/**
 * Environment archives: what the setup phase produced in the checkout (its git-ignored paths) and in
 * the sandbox home, as ONE compressed tar archive (POSIX pax, https://pubs.opengroup.org/onlinepubs/9799919799/utilities/pax.html),
 * written and read as streams with node-tar (zstd with Node's zlib, gzip where zstd is missing).
 * Entries are `repo/<path>` (the checkout) and `home/<path>` (the sandbox home).
 *
 * The archive is produced by untrusted setup code, so extraction checks every entry and refuses the
 * whole archive on the first bad one (see {@link checkEntry}); it extracts into a fresh staging
 * directory first and only then moves the entries into place, never over a file of the checkout.
 */
import { createWriteStream, readlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { ReadEntry } from 'tar';

/** node-tar, loaded on first use: a task that restores an unpacked copy (or runs no setup) never needs it. */
const loadTar = () => import('tar');

/** The compressions an archive may have: zstd (preferred) or gzip. */
export type ArchiveCompression = 'zstd' | 'gzip';

/** zstd when this Node.js has it (22.15+), else gzip. */
export function defaultCompression(): ArchiveCompression {
  return typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === 'function' ? 'zstd' : 'gzip';
}

/** Thrown when an archive is refused (unsafe entry, too large) or cannot be written or read. */
export class EnvironmentArchiveError extends Error {
  override name = 'EnvironmentArchiveError';
}

/** Counts bytes through a stream and fails it once they pass `max`. */
function byteLimit(max: number, what: string): Transform & { bytes: number } {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      counter.bytes += chunk.length;
      if (counter.bytes > max) done(new EnvironmentArchiveError(`${what} is larger than ${max} bytes`));
      else done(null, chunk);
    },
  }) as Transform & { bytes: number };
  counter.bytes = 0;
  return counter;
}

/** Inputs of {@link packEnvironment}. */
export interface PackOptions {
  /** The task's work directory: `<workDir>/repo` is the checkout, `<workDir>/home` the sandbox home. */
  workDir: string;
  /** Checkout paths to include, relative to the checkout (e.g. git's `node_modules/`); missing ones are skipped. */
  repoPaths: readonly string[];
  /** Home entries (top-level names) to leave out, e.g. the setup script. */
  homeExclude?: readonly string[];
  /** Where to write the archive (created or truncated). */
  file: string;
  /** Largest archive, bytes: writing stops and the file is removed once it would pass this. */
  maxBytes: number;
  compression?: ArchiveCompression;
}

/**
 * Writes the environment archive to `opts.file`, streaming (never the whole tree in memory). Symbolic
 * links are stored as links; sockets and devices are left out; owners are not recorded. Entries that
 * {@link checkEntry} would refuse at restore are a reason not to save at all.
 * @returns the archive's size, bytes, and its compression.
 * @throws EnvironmentArchiveError when it would be larger than `maxBytes`, holds an entry restore
 *   would refuse, or there is nothing to pack.
 */
export async function packEnvironment(opts: PackOptions): Promise<{ bytes: number; compression: ArchiveCompression }> {
  const compression = opts.compression ?? defaultCompression();
  const entries: string[] = [];
  for (const p of opts.repoPaths) {
    const clean = path.posix.normalize(p.replace(/\/+$/, ''));
    if (!clean || clean === '.' || clean.startsWith('../') || path.posix.isAbsolute(clean)) continue;
    if (await lstat(path.join(opts.workDir, 'repo', clean)).then(() => true, () => false)) entries.push(`repo/${clean}`);
  }
  const exclude = new Set(opts.homeExclude ?? []);
  for (const name of await readdir(path.join(opts.workDir, 'home')).catch(() => [] as string[])) {
    if (!exclude.has(name)) entries.push(`home/${name}`);
  }
  // Setup left nothing behind (no ignored paths, an empty home): nothing to cache.
  if (entries.length === 0) throw new EnvironmentArchiveError('setup produced nothing to cache');
  let refused: string | undefined;
  const tar = await loadTar();
  const pack = tar.create(
    {
      cwd: opts.workDir,
      portable: true,
      ...(compression === 'zstd' ? { zstd: true } : { gzip: true }),
      filter: (entryPath, stat) => {
        if (refused) return false;
        if (!('isFile' in stat)) return true;
        if (!(stat.isFile() || stat.isDirectory() || stat.isSymbolicLink())) return false;
        if (stat.isSymbolicLink()) {
          const why = symlinkProblem(entryPath.replace(/^\.\//, ''), readLinkSync(path.join(opts.workDir, entryPath)));
          if (why) refused = why;
        }
        return !refused;
      },
    },
    entries,
  );
  const limit = byteLimit(opts.maxBytes, 'the environment archive');
  try {
    await pipeline(pack as unknown as Readable, limit, createWriteStream(opts.file, { mode: 0o600 }));
  } catch (error) {
    await rm(opts.file, { force: true });
    if (error instanceof EnvironmentArchiveError) throw error;
    throw new EnvironmentArchiveError(`the environment archive could not be written: ${(error as Error).message}`, { cause: error });
  }
  if (refused) {
    await rm(opts.file, { force: true });
    throw new EnvironmentArchiveError(`not saved: ${refused}`);
  }
  return { bytes: limit.bytes, compression };
}

/** The target of a symbolic link, or '' (node-tar's filter is synchronous). */
function readLinkSync(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}

/**
 * Absolute symbolic link targets that are accepted: the system's own programs and libraries (a
 * Python virtualenv's `bin/python -> /usr/bin/python3`). Nothing of a user, a secret or a device.
 */
const SYSTEM_LINK_PREFIXES = ['/usr/'];

/** Why a symbolic link at archive path `entry` to `target` is refused, or undefined when it is fine. */
function symlinkProblem(entry: string, target: string): string | undefined {
  if (!target) return `${entry}: a symbolic link without a target`;
  if (target.includes('\0')) return `${entry}: a symbolic link target with a NUL byte`;
  if (path.posix.isAbsolute(target)) {
    const normal = path.posix.normalize(target);
    if (SYSTEM_LINK_PREFIXES.some((prefix) => normal.startsWith(prefix)) && !target.split('/').includes('..')) return undefined;
    return `${entry}: a symbolic link to ${target}, outside the checkout and the home`;
  }
  const top = entry.split('/')[0]!;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(entry), target));
  if (resolved !== top && !resolved.startsWith(`${top}/`)) return `${entry}: a symbolic link to ${target}, outside the ${top === 'repo' ? 'checkout' : 'home'}`;
  return undefined;
}

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** A tar entry as {@link checkEntry} sees it. */
export interface ArchiveEntry {
  /** Path as stored in the archive. */
  path: string;
  /** node-tar's entry type name (`File`, `Directory`, `SymbolicLink`, `Link`, `CharacterDevice`, …). */
  type: string;
  /** Link target, for `SymbolicLink` and `Link`. */
  linkpath?: string;
}

/**
 * Checks one entry of an archive being restored; `symlinks` holds the paths of the symbolic links
 * seen so far (updated). Refused: absolute paths, `..` segments, anything outside `repo/` and
 * `home/`, entries below a symbolic link of the archive, symbolic links leaving their top directory
 * (absolute ones only into `/usr/`), hard links to anything outside the archive's `repo/` and `home/`,
 * and every type but files, directories and links (devices, FIFOs, …).
 * @returns why the entry is refused, or undefined when it is fine.
 */
export function checkEntry(entry: ArchiveEntry, symlinks: Set<string>): string | undefined {
  const raw = entry.path.replace(/\/+$/, '');
  const shown = JSON.stringify(entry.path.slice(0, 200));
  if (!ALLOWED_TYPES.has(entry.type)) return `${shown}: entries of type ${entry.type} are not allowed`;
  if (raw.includes('\0') || raw.includes('\\')) return `${shown}: unexpected characters in the path`;
  if (path.posix.isAbsolute(raw)) return `${shown}: an absolute path`;
  const parts = raw.split('/');
  if (parts.some((part) => part === '..')) return `${shown}: a path with ..`;
  const clean = parts.filter((part) => part !== '' && part !== '.');
  if (clean[0] !== 'repo' && clean[0] !== 'home') return `${shown}: outside repo/ and home/`;
  if (clean.length === 1 && entry.type !== 'Directory') return `${shown}: replaces the checkout or the home`;
  const normal = clean.join('/');
  for (let i = 1; i < clean.length; i++) {
    if (symlinks.has(clean.slice(0, i).join('/'))) return `${shown}: below the symbolic link ${clean.slice(0, i).join('/')}`;
  }
  if (entry.type === 'SymbolicLink') {
    const why = symlinkProblem(normal, entry.linkpath ?? '');
    if (why) return why;
    symlinks.add(normal);
  } else {
    symlinks.delete(normal);
  }
  if (entry.type === 'Link') {
    const target = entry.linkpath ?? '';
    const tparts = target.split('/');
    if (!target || path.posix.isAbsolute(target) || tparts.includes('..') || (tparts[0] !== 'repo' && tparts[0] !== 'home')) {
      return `${shown}: a hard link to ${JSON.stringify(target.slice(0, 200))}, outside the archive`;
    }
    for (let i = 1; i <= tparts.length; i++) {
      if (symlinks.has(tparts.slice(0, i).join('/'))) return `${shown}: a hard link through the symbolic link ${tparts.slice(0, i).join('/')}`;
    }
  }
  return undefined;
}

/** Inputs of {@link extractEnvironment}. */
export interface ExtractOptions {
  /** The archive (zstd or gzip, detected). */
  source: Readable;
  /** The task's work directory: entries go to `<workDir>/repo` and `<workDir>/home`. */
  workDir: string;
  /** Largest archive read, bytes. */
  maxBytes: number;
  /** Largest total size of the files in it, bytes (a compression bomb stops here). */
  maxUnpackedBytes: number;
  /** Most entries (files, directories, links) restored; default {@link DEFAULT_MAX_ENTRIES}. */
  maxEntries?: number;
}

/** Default {@link ExtractOptions.maxEntries}: one million. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;

/** What {@link extractEnvironment} restored. */
export interface ExtractStats {
  /** Entries in the archive. */
  entries: number;
  /** Compressed bytes read. */
  bytes: number;
  /** Checkout paths that were not restored because the checkout has them (tracked files win). */
  skipped: string[];
}

/**
 * Restores an environment archive into the checkout and the home of `workDir`. Every entry is checked
 * with {@link checkEntry}; one bad entry refuses the whole archive and nothing of it stays. Modes
 * keep their permission bits only (no setuid, setgid or sticky bit); owners are not restored.
 * @throws EnvironmentArchiveError when the archive is refused, too large or unreadable.
 */
export async function extractEnvironment(opts: ExtractOptions): Promise<ExtractStats> {
  const staging = path.join(opts.workDir, `.environment-restore-${process.pid}-${Date.now()}`);
  await mkdir(staging, { mode: 0o700 });
  const symlinks = new Set<string>();
  let refused: string | undefined;
  let entries = 0;
  let unpacked = 0;
  const limit = byteLimit(opts.maxBytes, 'the environment archive');
  try {
    const tar = await loadTar();
    const unpack = tar.extract({
      cwd: staging,
      // Every path check is ours (checkEntry): node-tar would rewrite absolute link targets.
      preservePaths: true,
      preserveOwner: false,
      strict: true,
      filter: (_p, entry) => {
        if (refused) return false;
        const e = entry as ReadEntry;
        entries += 1;
        if (entries > (opts.maxEntries ?? DEFAULT_MAX_ENTRIES)) {
          refused = `the archive has more than ${opts.maxEntries ?? DEFAULT_MAX_ENTRIES} entries`;
          return false;
        }
        refused = checkEntry({ path: e.path, type: e.type, linkpath: e.linkpath }, symlinks);
        if (!refused && e.type !== 'Directory') {
          unpacked += e.size ?? 0;
          if (unpacked > opts.maxUnpackedBytes) refused = `the archive unpacks to more than ${opts.maxUnpackedBytes} bytes`;
        }
        // After a refusal the rest is read and skipped, so that no write of node-tar is still
        // pending when the staging directory is removed.
        if (refused) return false;
        if (e.mode !== undefined) e.mode &= 0o777;
        return true;
      },
    });
    await pipeline(opts.source, limit, unpack as unknown as NodeJS.WritableStream);
    if (refused) throw new EnvironmentArchiveError(`the environment archive was refused: ${refused}`);
    const skipped: string[] = [];
    await moveInto(path.join(staging, 'repo'), path.join(opts.workDir, 'repo'), 'repo', skipped);
    await moveInto(path.join(staging, 'home'), path.join(opts.workDir, 'home'), 'home', skipped);
    return { entries, bytes: limit.bytes, skipped };
  } catch (error) {
    if (error instanceof EnvironmentArchiveError) throw error;
    if (refused) throw new EnvironmentArchiveError(`the environment archive was refused: ${refused}`);
    throw new EnvironmentArchiveError(`the environment archive could not be read: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Moves an environment the backend already extracted (`<dir>/repo`, `<dir>/home`, checked by
 * {@link extractEnvironment} when it was unpacked) into the checkout and the home of `workDir`, by
 * renaming (so `dir` must be on the same file system), then removes `dir`. Tracked files win, as in
 * {@link extractEnvironment}.
 * @returns the checkout and home paths that were not placed because `workDir` has them.
 * @throws EnvironmentArchiveError when `dir` is not a directory directly inside `workDir`, or a move fails.
 */
export async function placeUnpacked(dir: string, workDir: string): Promise<string[]> {
  if (path.dirname(path.resolve(dir)) !== path.resolve(workDir)) throw new EnvironmentArchiveError(`the unpacked environment ${dir} is not inside the work directory`);
  const stat = await lstat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new EnvironmentArchiveError(`the unpacked environment ${dir} is missing`);
  const skipped: string[] = [];
  try {
    await moveInto(path.join(dir, 'repo'), path.join(workDir, 'repo'), 'repo', skipped);
    await moveInto(path.join(dir, 'home'), path.join(workDir, 'home'), 'home', skipped);
  } catch (error) {
    throw new EnvironmentArchiveError(`the unpacked environment could not be moved into place: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return skipped;
}

/**
 * Moves the entries of `from` into `to`: an entry `to` lacks is renamed (a whole subtree at once);
 * a directory both have is merged; anything else of `to` (a file, a symbolic link) is kept and the
 * archive's entry skipped. `to` itself is never followed through a symbolic link.
 */
async function moveInto(from: string, to: string, label: string, skipped: string[]): Promise<void> {
  let names: string[];
  try {
    names = await readdir(from);
  } catch {
    return;
  }
  for (const name of names) {
    const source = path.join(from, name);
    const target = path.join(to, name);
    const existing = await lstat(target).catch(() => undefined);
    if (!existing) {
      await rename(source, target);
    } else if (existing.isDirectory() && (await lstat(source)).isDirectory()) {
      await moveInto(source, target, `${label}/${name}`, skipped);
    } else {
      skipped.push(`${label}/${name}`);
    }
  }
}
