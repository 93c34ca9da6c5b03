/**
 * The local environment cache: freshness, LRU eviction past the total size, and what it accepts from
 * a runner's work directory (a regular file within the cap, never through a link).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EnvironmentCache } from '../../src/runners/environment-cache.ts';

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
    const cache = new EnvironmentCache({ dir: path.join(dir, 'lend'), maxAgeMs: 1e9, maxArchiveBytes: 1000, maxTotalBytes: 1e6 });
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
