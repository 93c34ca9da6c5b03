/**
 * Environment archives: a round trip through zstd and gzip, and the refusal of malicious archives
 * (crafted byte by byte with node-tar's Header, as an attacker's setup code could write them).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EnvironmentArchiveError, extractEnvironment, packEnvironment } from '../../../src/agent/environment/archive.ts';
import { craftArchive, type RawEntry } from '../../support/tar-archives.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'env-archive-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function workDir(name: string): Promise<string> {
  const w = path.join(dir, name);
  await mkdir(path.join(w, 'repo'), { recursive: true });
  await mkdir(path.join(w, 'home'), { recursive: true });
  return w;
}

const LIMITS = { maxBytes: 50 * 1024 * 1024, maxUnpackedBytes: 200 * 1024 * 1024 };

describe('packEnvironment + extractEnvironment', () => {
  test.each(['zstd', 'gzip'] as const)('round trip (%s): ignored checkout paths and the home, links kept, setup script left out', async (compression) => {
    const from = await workDir(`from-${compression}`);
    await mkdir(path.join(from, 'repo/node_modules/dep/bin'), { recursive: true });
    await writeFile(path.join(from, 'repo/node_modules/dep/index.js'), 'module.exports = 42;\n');
    await writeFile(path.join(from, 'repo/node_modules/dep/bin/cli.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
    await mkdir(path.join(from, 'repo/node_modules/.bin'));
    await symlink('../dep/bin/cli.js', path.join(from, 'repo/node_modules/.bin/dep'));
    await writeFile(path.join(from, 'repo/README.md'), 'tracked, not in the list\n');
    await mkdir(path.join(from, 'home/.npm/_cacache'), { recursive: true });
    await writeFile(path.join(from, 'home/.npm/_cacache/index'), 'cache');
    await mkdir(path.join(from, 'home/.venv/bin'), { recursive: true });
    await symlink('/usr/bin/python3', path.join(from, 'home/.venv/bin/python'));
    await writeFile(path.join(from, 'home/.codex-setup.sh'), 'echo secret-ish');
    const file = path.join(dir, `env-${compression}.tar`);
    const packed = await packEnvironment({ workDir: from, repoPaths: ['node_modules/', 'missing/'], homeExclude: ['.codex-setup.sh'], file, maxBytes: LIMITS.maxBytes, compression });
    expect(packed.compression).toBe(compression);
    expect(packed.bytes).toBe((await stat(file)).size);

    const to = await workDir(`to-${compression}`);
    await writeFile(path.join(to, 'repo/README.md'), 'the checkout');
    const stats = await extractEnvironment({ source: createReadStream(file), workDir: to, ...LIMITS });
    expect(stats.skipped).toEqual([]);
    expect(await readFile(path.join(to, 'repo/node_modules/dep/index.js'), 'utf8')).toBe('module.exports = 42;\n');
    expect((await stat(path.join(to, 'repo/node_modules/dep/bin/cli.js'))).mode & 0o777).toBe(0o755);
    expect(await readlink(path.join(to, 'repo/node_modules/.bin/dep'))).toBe('../dep/bin/cli.js');
    expect(await readlink(path.join(to, 'home/.venv/bin/python'))).toBe('/usr/bin/python3');
    expect(await readFile(path.join(to, 'home/.npm/_cacache/index'), 'utf8')).toBe('cache');
    expect(await readFile(path.join(to, 'repo/README.md'), 'utf8')).toBe('the checkout');
    expect(await lstat(path.join(to, 'home/.codex-setup.sh')).catch(() => undefined)).toBeUndefined();
    // No staging directory is left behind.
    expect((await readdir(to)).sort()).toEqual(['home', 'repo']);
  });

  test('a file of the checkout is never overwritten by the archive', async () => {
    const to = await workDir('tracked');
    await writeFile(path.join(to, 'repo/package.json'), '{"the":"checkout"}');
    const archive = craftArchive([{ path: 'repo/package.json', type: 'File', body: 'evil' }, { path: 'repo/node_modules/a.js', type: 'File', body: 'a' }]);
    const stats = await extractEnvironment({ source: Readable.from([archive]), workDir: to, ...LIMITS });
    expect(stats.skipped).toEqual(['repo/package.json']);
    expect(await readFile(path.join(to, 'repo/package.json'), 'utf8')).toBe('{"the":"checkout"}');
    expect(await readFile(path.join(to, 'repo/node_modules/a.js'), 'utf8')).toBe('a');
  });

  test('setuid and setgid bits are dropped', async () => {
    const to = await workDir('setuid');
    const archive = craftArchive([{ path: 'home/bin/tool', type: 'File', body: '#!/bin/sh\n', mode: 0o6755 }]);
    await extractEnvironment({ source: Readable.from([archive]), workDir: to, ...LIMITS });
    expect((await stat(path.join(to, 'home/bin/tool'))).mode & 0o7777).toBe(0o755);
  });

  const malicious: [string, RawEntry[], RegExp][] = [
    ['an absolute path', [{ path: '/tmp/evil-abs', type: 'File', body: 'x' }], /absolute path/],
    ['a path with ..', [{ path: 'repo/../../evil-dotdot', type: 'File', body: 'x' }], /a path with \.\./],
    ['an entry outside repo/ and home/', [{ path: 'git/hooks/post-checkout', type: 'File', body: 'x' }], /outside repo\/ and home\//],
    ['a symlink to /etc', [{ path: 'home/etc', type: 'SymbolicLink', linkpath: '/etc' }], /outside the checkout and the home/],
    ['a symlink leaving the home', [{ path: 'home/up', type: 'SymbolicLink', linkpath: '../../..' }], /outside the home/],
    ['a symlink with /usr/../', [{ path: 'home/x', type: 'SymbolicLink', linkpath: '/usr/../etc/shadow' }], /outside the checkout and the home/],
    [
      'a file written through an earlier symlink',
      [{ path: 'repo/node_modules', type: 'SymbolicLink', linkpath: '.' }, { path: 'repo/node_modules/.git/config', type: 'File', body: 'x' }],
      /below the symbolic link repo\/node_modules/,
    ],
    ['a hard link to /etc/passwd', [{ path: 'home/passwd', type: 'Link', linkpath: '/etc/passwd' }], /hard link/],
    ['a hard link with ..', [{ path: 'home/passwd', type: 'Link', linkpath: 'repo/../../../etc/passwd' }], /hard link/],
    ['a character device', [{ path: 'home/null', type: 'CharacterDevice' }], /CharacterDevice/],
    ['a block device', [{ path: 'home/sda', type: 'BlockDevice' }], /BlockDevice/],
    ['a FIFO', [{ path: 'home/fifo', type: 'FIFO' }], /FIFO/],
    ['a file replacing the home', [{ path: 'home', type: 'File', body: 'x' }], /replaces the checkout or the home/],
  ];

  test.each(malicious)('refuses %s, and nothing of the archive stays', async (name, entries, reason) => {
    const to = await workDir(`evil-${name.replace(/\W+/g, '-')}`);
    // A harmless entry first: a refusal must not leave it behind.
    const archive = craftArchive([{ path: 'repo/node_modules/first.js', type: 'File', body: 'first' }, ...entries]);
    const restore = extractEnvironment({ source: Readable.from([archive]), workDir: to, ...LIMITS });
    await expect(restore).rejects.toThrow(EnvironmentArchiveError);
    await expect(restore).rejects.toThrow(reason);
    expect((await readdir(to)).sort()).toEqual(['home', 'repo']);
    expect(await readdir(path.join(to, 'repo'))).toEqual([]);
    expect(await readdir(path.join(to, 'home'))).toEqual([]);
    expect(await lstat('/tmp/evil-abs').catch(() => undefined)).toBeUndefined();
    expect(await lstat(path.join(dir, 'evil-dotdot')).catch(() => undefined)).toBeUndefined();
  });

  test('a compression bomb stops at maxUnpackedBytes', async () => {
    const to = await workDir('bomb');
    const archive = craftArchive([{ path: 'home/big', type: 'File', body: 'x'.repeat(100_000) }]);
    await expect(extractEnvironment({ source: Readable.from([archive]), workDir: to, maxBytes: LIMITS.maxBytes, maxUnpackedBytes: 10_000 }))
      .rejects.toThrow(/unpacks to more than 10000 bytes/);
  });

  test('too many entries are refused', async () => {
    const to = await workDir('entries');
    const archive = craftArchive(Array.from({ length: 5 }, (_, i) => ({ path: `home/f${i}`, type: 'File', body: 'x' })));
    await expect(extractEnvironment({ source: Readable.from([archive]), workDir: to, ...LIMITS, maxEntries: 4 })).rejects.toThrow(/more than 4 entries/);
    expect(await readdir(path.join(to, 'home'))).toEqual([]);
  });

  test('packing stops at maxBytes and leaves no file; a symlink restore would refuse is not saved', async () => {
    const from = await workDir('too-big');
    await mkdir(path.join(from, 'repo/node_modules'));
    await writeFile(path.join(from, 'repo/node_modules/random.bin'), Buffer.from(Array.from({ length: 300_000 }, () => Math.floor(Math.random() * 256))));
    const file = path.join(dir, 'too-big.tar');
    await expect(packEnvironment({ workDir: from, repoPaths: ['node_modules/'], file, maxBytes: 100_000 })).rejects.toThrow(/larger than 100000 bytes/);
    expect(await lstat(file).catch(() => undefined)).toBeUndefined();

    const linked = await workDir('bad-link');
    await symlink('/root/.ssh', path.join(linked, 'home/ssh'));
    await expect(packEnvironment({ workDir: linked, repoPaths: [], file, maxBytes: LIMITS.maxBytes })).rejects.toThrow(/not saved: home\/ssh: a symbolic link to \/root\/.ssh/);
    expect(await lstat(file).catch(() => undefined)).toBeUndefined();
  });

  test('nothing to pack (no ignored paths, an empty home) is an EnvironmentArchiveError, not a crash', async () => {
    const empty = await workDir('empty');
    const file = path.join(dir, 'empty.tar');
    await expect(packEnvironment({ workDir: empty, repoPaths: ['missing/'], file, maxBytes: LIMITS.maxBytes })).rejects.toThrow(EnvironmentArchiveError);
    await expect(packEnvironment({ workDir: empty, repoPaths: [], file, maxBytes: LIMITS.maxBytes })).rejects.toThrow(/nothing to cache/);
    expect(await lstat(file).catch(() => undefined)).toBeUndefined();
  });
});
