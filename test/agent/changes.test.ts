/** The result phase's change collection on a real git checkout. */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { collectChanges } from '../../src/agent/changes.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'changes-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]).toString();
}

test('adds, modifications, deletions, modes, symlinks and binary files, respecting .gitignore', async () => {
  const repo = path.join(dir, 'r1');
  await mkdir(path.join(repo, 'src'), { recursive: true });
  await writeFile(path.join(repo, 'src/a.js'), 'a\n');
  await writeFile(path.join(repo, 'old.txt'), 'old\n');
  await writeFile(path.join(repo, 'run.sh'), 'echo\n');
  await writeFile(path.join(repo, '.gitignore'), 'node_modules/\n*.log\n');
  git(repo, 'init', '-q');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'base');
  const base = git(repo, 'rev-parse', 'HEAD').trim();

  await writeFile(path.join(repo, 'src/a.js'), 'a2\n');
  await unlink(path.join(repo, 'old.txt'));
  await chmod(path.join(repo, 'run.sh'), 0o755);
  await writeFile(path.join(repo, 'new.txt'), 'new\n');
  await symlink('src/a.js', path.join(repo, 'link'));
  const binary = Buffer.from([0, 1, 2, 255, 254, 0, 10]);
  await writeFile(path.join(repo, 'blob.bin'), binary);
  await mkdir(path.join(repo, 'node_modules/x'), { recursive: true });
  await writeFile(path.join(repo, 'node_modules/x/index.js'), 'ignored\n');
  await writeFile(path.join(repo, 'debug.log'), 'ignored\n');
  const indexBefore = await readFile(path.join(repo, '.git/index'));

  const { changes, skipped } = await collectChanges(repo, base);
  const byPath = Object.fromEntries(changes.map((c) => [c.path, c]));
  expect(Object.keys(byPath).sort()).toEqual(['blob.bin', 'link', 'new.txt', 'old.txt', 'run.sh', 'src/a.js']);
  expect(byPath['src/a.js']).toEqual({ action: 'modify', path: 'src/a.js', mode: '100644', contentBase64: Buffer.from('a2\n').toString('base64') });
  expect(byPath['old.txt']).toEqual({ action: 'delete', path: 'old.txt' });
  expect(byPath['run.sh']).toMatchObject({ action: 'modify', mode: '100755' });
  expect(byPath['new.txt']).toMatchObject({ action: 'add', mode: '100644' });
  expect(byPath['link']).toEqual({ action: 'add', path: 'link', mode: '120000', contentBase64: Buffer.from('src/a.js').toString('base64') });
  expect(byPath['blob.bin']).toMatchObject({ action: 'add', contentBase64: binary.toString('base64') });
  expect(skipped).toEqual([]);
  // The checkout's own index is untouched.
  expect(await readFile(path.join(repo, '.git/index'))).toEqual(indexBefore);
});

test('an edit of the same size in the same second as the checkout is still seen', async () => {
  const repo = path.join(dir, 'r2');
  await mkdir(repo, { recursive: true });
  await writeFile(path.join(repo, 'f.js'), 'a - b\n');
  git(repo, 'init', '-q');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'base');
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  await writeFile(path.join(repo, 'f.js'), 'a + b\n');
  const { changes } = await collectChanges(repo, base);
  expect(changes.map((c) => c.path)).toEqual(['f.js']);
});
