/**
 * The local environment cache: freshness, LRU eviction past the total size, what it accepts from
 * a runner's work directory (a regular file within the cap, never through a link), and the unpacked
 * copies it keeps ready (made with the runner's entry checks, used once, refilled, bounded).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packEnvironment, placeUnpacked } from '../../src/agent/environment/archive.ts';
import { EnvironmentCache } from '../../src/runners/environment-cache.ts';
import { symlinkEscapeArchive } from '../support/tar-archives.ts';

const key = (c: string): string => c.repeat(64);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'env-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function archive(name: string, bytes: number): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, Buffer.alloc(bytes, 7));
  return file;
}

describe('EnvironmentCache', () => {
  test('an adopted archive is fresh for maxAgeMs, then removed', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const cache = new EnvironmentCache({ dir: path.join(dir, 'fresh'), maxAgeMs: 12 * 3_600_000, maxArchiveBytes: 1000, maxTotalBytes: 10_000, now: () => now });
    const { entry } = await cache.adopt(key('a'), await archive('a.tar', 100));
    expect(entry).toEqual({ key: key('a'), savedAt: '2026-01-01T00:00:00.000Z', lastUsedAt: '2026-01-01T00:00:00.000Z', bytes: 100 });
    const stored = path.join(dir, 'fresh', `${key('a')}.tar`);
    expect((await stat(stored)).mode & 0o777).toBe(0o644);
    now += 11 * 3_600_000;
    expect((await cache.lookup(key('a')))?.file).toBe(stored);
    now += 2 * 3_600_000;
    expect(await cache.lookup(key('a'))).toBeUndefined();
    expect(await lstat(stored).catch(() => undefined)).toBeUndefined();
    expect(await cache.lookup('not-a-key')).toBeUndefined();
  });

  test('past maxTotalBytes the least recently used archives go first', async () => {
    let now = 1_000_000;
    const cache = new EnvironmentCache({ dir: path.join(dir, 'lru'), maxAgeMs: 1e9, maxArchiveBytes: 1000, maxTotalBytes: 2500, now: () => now });
    for (const c of ['a', 'b']) {
      now += 1000;
      await cache.adopt(key(c), await archive(`${c}.tar`, 1000));
    }
    now += 1000;
    expect(await cache.lookup(key('a'))).toBeDefined(); // a is now more recently used than b
    now += 1000;
    await cache.adopt(key('c'), await archive('c.tar', 1000));
    expect(await cache.lookup(key('b'))).toBeUndefined();
    expect(await cache.lookup(key('a'))).toBeDefined();
    expect(await cache.lookup(key('c'))).toBeDefined();
  });

  test('only a regular file within the cap is adopted: not a symlink, not a directory, not too large', async () => {
    const cache = new EnvironmentCache({ dir: path.join(dir, 'adopt'), maxAgeMs: 1e9, maxArchiveBytes: 1000, maxTotalBytes: 1e6 });
    const secret = await archive('secret', 10);
    const link = path.join(dir, 'link.tar');
    await symlink(secret, link);
    expect(await cache.adopt(key('d'), link)).toEqual({ refused: 'the archive cannot be opened: ELOOP' });
    await mkdir(path.join(dir, 'a-dir.tar'));
    expect(await cache.adopt(key('d'), path.join(dir, 'a-dir.tar'))).toEqual({ refused: 'the archive is not a regular file' });
    expect(await cache.adopt(key('d'), await archive('big.tar', 1001))).toEqual({ refused: 'the archive is larger than 1000 bytes' });
    expect(await cache.adopt(key('d'), path.join(dir, 'missing.tar'))).toEqual({ refused: 'the archive cannot be opened: ENOENT' });
    expect(await cache.lookup(key('d'))).toBeUndefined();
  });

  test('forRunner lends the fresh archive into the work directory and says where to save; fresh skips the restore', async () => {
    const cache = new EnvironmentCache({ dir: path.join(dir, 'lend'), maxAgeMs: 1e9, maxArchiveBytes: 1000, maxTotalBytes: 1e6, unpackedCopies: 0 });
    await cache.adopt(key('e'), await archive('e.tar', 50));
    const work = path.join(dir, 'work-e');
    await mkdir(work);
    const base = { key: key('e'), repositoryId: '1', scope: 'default', fresh: false, maxBytes: 5000 };
    const spec = await cache.forRunner(base, work);
    expect(spec.maxBytes).toBe(1000);
    expect(spec.save).toEqual({ path: path.join(work, 'environment-save.tar') });
    expect(spec.restore?.from).toEqual({ path: path.join(work, 'environment-restore.tar') });
    expect(await readFile(path.join(work, 'environment-restore.tar'))).toEqual(Buffer.alloc(50, 7));
    expect((await cache.forRunner({ ...base, fresh: true }, work)).restore).toBeUndefined();
    expect((await cache.forRunner({ ...base, key: key('f') }, work)).restore).toBeUndefined();

    // After the task: a saved archive is adopted under the app's key; a refused restore drops the entry.
    await writeFile(path.join(work, 'environment-save.tar'), 'new archive');
    expect(await cache.collect(base, { key: 'whatever the runner says', status: 'built', savedBytes: 11 }, work)).toMatch(/cached \(11 bytes\)/);
    expect((await cache.lookup(key('e')))?.bytes).toBe(11);
    await cache.collect(base, { key: key('e'), status: 'built', restoreFailure: 'refused', saveFailure: 'x' }, work);
    expect(await cache.lookup(key('e'))).toBeUndefined();
  });
});

/** A real environment archive: `repo/node_modules/dep/index.js` and `home/.cache/blob`, tagged `tag`. */
async function environmentArchive(tag: string): Promise<string> {
  const work = await mkdtemp(path.join(dir, 'pack-'));
  await mkdir(path.join(work, 'repo', 'node_modules', 'dep'), { recursive: true });
  await writeFile(path.join(work, 'repo', 'node_modules', 'dep', 'index.js'), `module.exports = '${tag}';\n`);
  await mkdir(path.join(work, 'home', '.cache'), { recursive: true });
  await writeFile(path.join(work, 'home', '.cache', 'blob'), tag);
  const file = path.join(work, 'env.tar');
  await packEnvironment({ workDir: work, repoPaths: ['node_modules/'], file, maxBytes: 1e6 });
  return file;
}

/** A new task work directory with an empty checkout and home. */
async function workDir(name: string): Promise<string> {
  const work = path.join(dir, name);
  await mkdir(path.join(work, 'repo'), { recursive: true });
  await mkdir(path.join(work, 'home'));
  return work;
}

describe('unpacked copies', () => {
  const base = (c: string) => ({ key: key(c), repositoryId: '1', scope: 'default', fresh: false, maxBytes: 1e6 });

  test('a collected archive is unpacked in the background; the next task gets the copy (moved, used once); the copy is made again after a task restored', async () => {
    const cache = new EnvironmentCache({ dir: path.join(dir, 'copies'), maxAgeMs: 1e9, maxArchiveBytes: 1e6, maxTotalBytes: 1e7 });
    const first = await workDir('copies-first');
    await writeFile(path.join(first, 'environment-save.tar'), await readFile(await environmentArchive('v1')));
    expect(await cache.collect(base('a'), { key: key('a'), status: 'built', savedBytes: 1 }, first)).toMatch(/cached/);
    await cache.idle();

    const second = await workDir('copies-second');
    const spec = await cache.forRunner(base('a'), second);
    const unpacked = path.join(second, 'environment-unpacked');
    expect(spec.restore?.from).toEqual({ unpacked });
    expect(await readFile(path.join(unpacked, 'repo', 'node_modules', 'dep', 'index.js'), 'utf8')).toBe("module.exports = 'v1';\n");
    // What the runner does with it: rename into place.
    expect(await placeUnpacked(unpacked, second)).toEqual([]);
    expect(await readFile(path.join(second, 'repo', 'node_modules', 'dep', 'index.js'), 'utf8')).toBe("module.exports = 'v1';\n");
    expect(await readFile(path.join(second, 'home', '.cache', 'blob'), 'utf8')).toBe('v1');
    expect(await lstat(unpacked).catch(() => undefined)).toBeUndefined();

    // The copy was taken: a task starting meanwhile reads the archive, and nothing is unpacked while
    // tasks start. Once a task that restored ends, a new copy is made for the next one.
    const third = await workDir('copies-third');
    expect((await cache.forRunner(base('a'), third)).restore?.from).toEqual({ path: path.join(third, 'environment-restore.tar') });
    await cache.idle();
    expect(await readdir(path.join(dir, 'copies', 'unpacked'))).toEqual([]);
    await cache.collect(base('a'), { key: key('a'), status: 'restored' }, second);
    await cache.idle();
    const fourth = await workDir('copies-fourth');
    expect((await cache.forRunner(base('a'), fourth)).restore?.from).toEqual({ unpacked: path.join(fourth, 'environment-unpacked') });
    await cache.idle();

    // A new archive for the key replaces the copy; removing the key removes its copies.
    const fifth = await workDir('copies-fifth');
    await writeFile(path.join(fifth, 'environment-save.tar'), await readFile(await environmentArchive('v2')));
    await cache.collect(base('a'), { key: key('a'), status: 'built', savedBytes: 1 }, fifth);
    await cache.idle();
    const sixth = await workDir('copies-sixth');
    await cache.forRunner(base('a'), sixth);
    expect(await readFile(path.join(sixth, 'environment-unpacked', 'home', '.cache', 'blob'), 'utf8')).toBe('v2');
    await cache.collect(base('a'), { key: key('a'), status: 'restored' }, sixth);
    await cache.idle();
    expect(await readdir(path.join(dir, 'copies', 'unpacked'))).toHaveLength(1);
    await cache.remove(key('a'));
    expect(await readdir(path.join(dir, 'copies', 'unpacked'))).toEqual([]);
  });

  test('at most unpackedCopies keys keep a copy; 0 turns copies off (the archive is lent)', async () => {
    const cache = new EnvironmentCache({ dir: path.join(dir, 'bounded'), maxAgeMs: 1e9, maxArchiveBytes: 1e6, maxTotalBytes: 1e7, unpackedCopies: 2 });
    for (const c of ['a', 'b', 'c']) {
      await cache.adopt(key(c), await environmentArchive(c));
      cache.prepareUnpacked(key(c));
      await cache.idle();
      await new Promise((r) => setTimeout(r, 20)); // distinct mtimes
    }
    expect((await readdir(path.join(dir, 'bounded', 'unpacked'))).map((n) => n.slice(0, 1)).sort()).toEqual(['b', 'c']);

    const off = new EnvironmentCache({ dir: path.join(dir, 'bounded'), maxAgeMs: 1e9, maxArchiveBytes: 1e6, maxTotalBytes: 1e7, unpackedCopies: 0 });
    const work = await workDir('bounded-off');
    expect((await off.forRunner(base('c'), work)).restore?.from).toEqual({ path: path.join(work, 'environment-restore.tar') });
  });

  test('an archive the runner would refuse makes no copy (a warning); the task gets the archive and the runner refuses it', async () => {
    const warnings: string[] = [];
    const cache = new EnvironmentCache({ dir: path.join(dir, 'evil'), maxAgeMs: 1e9, maxArchiveBytes: 1e6, maxTotalBytes: 1e7, warn: (m) => warnings.push(m) });
    const victim = path.join(dir, 'evil-victim');
    await mkdir(victim);
    // node_modules as a symlink out of the checkout, then a file through it.
    const evil = path.join(dir, 'evil.tar');
    await writeFile(evil, symlinkEscapeArchive(victim));
    await cache.adopt(key('e'), evil);
    cache.prepareUnpacked(key('e'));
    await cache.idle();
    expect(warnings.join('\n')).toMatch(/no unpacked copy: .*symbolic link/);
    expect(await readdir(victim)).toEqual([]);
    expect(await readdir(path.join(dir, 'evil', 'unpacked'))).toEqual([]);
    const work = await workDir('evil-work');
    expect((await cache.forRunner(base('e'), work)).restore?.from).toEqual({ path: path.join(work, 'environment-restore.tar') });
    await cache.idle();
  });

  test('copies belong to the runner user when there is one (root only)', async () => {
    if (process.getuid?.() !== 0) return;
    const warnings: string[] = [];
    const cache = new EnvironmentCache({ dir: path.join(dir, 'owned'), maxAgeMs: 1e9, maxArchiveBytes: 1e6, maxTotalBytes: 1e7, owner: { uid: 65534, gid: 65534 }, warn: (m) => warnings.push(m) });
    await cache.adopt(key('0'), await environmentArchive('o'));
    cache.prepareUnpacked(key('0'));
    await cache.idle();
    expect(warnings).toEqual([]);
    const work = await workDir('owned-work');
    await cache.forRunner(base('0'), work);
    await cache.idle();
    for (const file of ['environment-unpacked', 'environment-unpacked/repo/node_modules/dep/index.js', 'environment-unpacked/home/.cache']) {
      expect((await lstat(path.join(work, file))).uid).toBe(65534);
    }
  });

  test('placeUnpacked takes only a directory directly inside the work directory; tracked files win', async () => {
    const work = await workDir('place');
    await expect(placeUnpacked(path.join(dir, 'elsewhere'), work)).rejects.toThrow(/not inside the work directory/);
    await expect(placeUnpacked(path.join(work, 'missing'), work)).rejects.toThrow(/missing/);
    const unpacked = path.join(work, 'environment-unpacked');
    await mkdir(path.join(unpacked, 'repo', 'node_modules'), { recursive: true });
    await writeFile(path.join(unpacked, 'repo', 'index.js'), 'from the archive');
    await mkdir(path.join(unpacked, 'home'));
    await writeFile(path.join(work, 'repo', 'index.js'), 'tracked');
    expect(await placeUnpacked(unpacked, work)).toEqual(['repo/index.js']);
    expect(await readFile(path.join(work, 'repo', 'index.js'), 'utf8')).toBe('tracked');
    expect((await lstat(path.join(work, 'repo', 'node_modules'))).isDirectory()).toBe(true);
  });
});
