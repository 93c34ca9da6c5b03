/** The result phase's change collection on a real git checkout. */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { collectChanges } from '../../src/agent/changes.ts';
import { checkoutRepository } from '../../src/agent/checkout.ts';
import type { TrustedRepository } from '../../src/agent/git.ts';
import { adoptWorkingTree } from '../../src/agent/trusted-repo.ts';
import { createBareRepo } from '../support/git-http.ts';

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

/** Checks out `files` the way the runner does: a private git directory plus the workspace. */
async function checkout(name: string, files: Record<string, string>): Promise<{ repo: TrustedRepository; base: string }> {
  const origin = await createBareRepo(path.join(dir, 'origins'), `acme/${name}`, files);
  const repo = { gitDir: path.join(dir, name, 'git'), workTree: path.join(dir, name, 'repo') };
  const { sha: base } = await checkoutRepository({ cloneUrl: `file://${origin.path}`, baseSha: origin.headSha, baseRef: 'main', dir: repo.workTree, gitDir: repo.gitDir });
  expect(base).toBe(origin.headSha);
  return { repo, base };
}

test('adds, modifications, deletions, modes, symlinks and binary files, respecting .gitignore', async () => {
  const { repo: trusted, base } = await checkout('r1', {
    'src/a.js': 'a\n',
    'old.txt': 'old\n',
    'run.sh': 'echo\n',
    '.gitignore': 'node_modules/\n*.log\n',
  });
  const repo = trusted.workTree;
  // The agent's own git works in the workspace, on the same commit.
  expect(git(repo, 'rev-parse', 'HEAD').trim()).toBe(base);
  expect(git(repo, 'status', '--porcelain')).toBe('');

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
  const privateIndexBefore = await readFile(path.join(trusted.gitDir, 'index'));

  const { changes, skipped } = await collectChanges(trusted, base);
  const byPath = Object.fromEntries(changes.map((c) => [c.path, c]));
  expect(Object.keys(byPath).sort()).toEqual(['blob.bin', 'link', 'new.txt', 'old.txt', 'run.sh', 'src/a.js']);
  expect(byPath['src/a.js']).toEqual({ action: 'modify', path: 'src/a.js', mode: '100644', contentBase64: Buffer.from('a2\n').toString('base64') });
  expect(byPath['old.txt']).toEqual({ action: 'delete', path: 'old.txt' });
  expect(byPath['run.sh']).toMatchObject({ action: 'modify', mode: '100755' });
  expect(byPath['new.txt']).toMatchObject({ action: 'add', mode: '100644' });
  expect(byPath['link']).toEqual({ action: 'add', path: 'link', mode: '120000', contentBase64: Buffer.from('src/a.js').toString('base64') });
  expect(byPath['blob.bin']).toMatchObject({ action: 'add', contentBase64: binary.toString('base64') });
  expect(skipped).toEqual([]);
  // The workspace's index and the private one are untouched.
  expect(await readFile(path.join(repo, '.git/index'))).toEqual(indexBefore);
  expect(await readFile(path.join(trusted.gitDir, 'index'))).toEqual(privateIndexBefore);
  // A second collection gives the same answer.
  expect((await collectChanges(trusted, base)).changes).toEqual(changes);
});

test('the checkout has no hooks and no auth header in either git directory', async () => {
  const { repo } = await checkout('r0', { 'a.txt': 'a\n' });
  for (const gitDir of [repo.gitDir, path.join(repo.workTree, '.git')]) {
    const config = await readFile(path.join(gitDir, 'config'), 'utf8');
    expect(config).not.toMatch(/extraheader|authorization/i);
    expect(await readdir(gitDir)).not.toContain('hooks');
  }
});

test('an edit of the same size in the same second as the checkout is still seen', async () => {
  const repo = path.join(dir, 'r2');
  await mkdir(repo, { recursive: true });
  await writeFile(path.join(repo, 'f.js'), 'a - b\n');
  git(repo, 'init', '-q');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-qm', 'base');
  const base = git(repo, 'rev-parse', 'HEAD').trim();
  // In place (`codex-cloud exec`): the private git directory borrows the repository's objects.
  const trusted = await adoptWorkingTree(repo, path.join(dir, 'r2-git'));
  expect(trusted).toEqual({ gitDir: path.join(dir, 'r2-git'), workTree: repo });
  await writeFile(path.join(repo, 'f.js'), 'a + b\n');
  const { changes } = await collectChanges(trusted!, base);
  expect(changes.map((c) => c.path)).toEqual(['f.js']);
});

test('the same for a fresh checkout', async () => {
  const { repo, base } = await checkout('r3', { 'f.js': 'a - b\n' });
  await writeFile(path.join(repo.workTree, 'f.js'), 'a + b\n');
  const { changes } = await collectChanges(repo, base);
  expect(changes.map((c) => c.path)).toEqual(['f.js']);
});

test('a directory outside any git repository has nothing to collect', async () => {
  const plain = path.join(dir, 'plain');
  await mkdir(plain, { recursive: true });
  await writeFile(path.join(plain, 'x'), 'x');
  expect(await adoptWorkingTree(plain, path.join(dir, 'plain-git'))).toBeUndefined();
});
