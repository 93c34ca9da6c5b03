/** Host-side reads of checkout files: only regular files inside the repository, bounded. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readInside } from '../../src/agent/repo-files.ts';
import { detectSetup } from '../../src/agent/setup.ts';

describe('readInside', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'repo-files-')));
    root = path.join(dir, 'repo');
    await mkdir(root);
    await writeFile(path.join(dir, 'secret.txt'), 'PRIVATE_KEY=outside\n');
    await writeFile(path.join(root, 'inside.txt'), 'hello world\n');
    await symlink(path.join(dir, 'secret.txt'), path.join(root, 'escape.txt'));
    await symlink('inside.txt', path.join(root, 'alias.txt'));
    execFileSync('mkfifo', [path.join(root, 'fifo')]);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  test('reads a regular file, and an in-repository symlink to one, up to maxBytes', async () => {
    expect(await readInside(root, path.join(root, 'inside.txt'), 100)).toEqual({ content: 'hello world\n', bytes: 12 });
    expect(await readInside(root, path.join(root, 'alias.txt'), 5)).toEqual({ content: 'hello', bytes: 12 });
  });

  test('refuses a symlink out of the repository, a FIFO and a directory', async () => {
    expect(await readInside(root, path.join(root, 'escape.txt'), 100)).toBeUndefined();
    expect(await readInside(root, path.join(root, 'fifo'), 100)).toBeUndefined();
    expect(await readInside(dir, root, 100)).toBeUndefined();
  });

  test('setup detection does not follow a package.json symlinked out of the checkout', async () => {
    const repo = path.join(dir, 'zero');
    await mkdir(repo);
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ dependencies: { leftpad: '1.0.0' } }));
    await symlink(path.join(dir, 'package.json'), path.join(repo, 'package.json'));
    const { steps } = await detectSetup(repo, path.join(dir, 'home'), process.env.PATH ?? '');
    expect(steps.some((s) => s.command.join(' ').includes('npm'))).toBe(false);
  });
});
