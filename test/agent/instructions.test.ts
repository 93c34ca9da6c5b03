/** AGENTS.md collection on the host: never through a symlink out of the repository (issue 7). */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENTS_MD_MAX_BYTES, collectAgentsDocs } from '../../src/agent/instructions.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'instructions-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('AGENTS.md files from the root down to the working directory, in-repo symlinks followed', async () => {
  const root = path.join(dir, 'ok');
  await mkdir(path.join(root, 'docs'), { recursive: true });
  await mkdir(path.join(root, 'pkg/api'), { recursive: true });
  await writeFile(path.join(root, 'AGENTS.md'), 'root rules\n');
  await writeFile(path.join(root, 'docs/api-agents.md'), 'api rules\n');
  await symlink('../../docs/api-agents.md', path.join(root, 'pkg/api/AGENTS.md'));
  expect(await collectAgentsDocs(root, path.join(root, 'pkg/api'))).toEqual([
    { path: 'AGENTS.md', content: 'root rules\n' },
    { path: 'pkg/api/AGENTS.md', content: 'api rules\n' },
  ]);
});

test('an AGENTS.md that leads out of the repository, or is not a regular file, is skipped', async () => {
  const secret = path.join(dir, 'id_rsa');
  await writeFile(secret, 'secret-xyz\n');
  const root = path.join(dir, 'hostile');
  for (const sub of ['a', 'a/b', 'a/b/c', 'a/b/c/d']) await mkdir(path.join(root, sub), { recursive: true });
  await symlink(secret, path.join(root, 'AGENTS.md'));
  await symlink('/proc/self/environ', path.join(root, 'a/AGENTS.md'));
  await symlink(dir, path.join(root, 'a/b/out'));
  await symlink('out/id_rsa', path.join(root, 'a/b/AGENTS.md'));
  execFileSync('mkfifo', [path.join(root, 'a/b/c/AGENTS.md')]);
  await mkdir(path.join(root, 'a/b/c/d/AGENTS.md'));
  expect(await collectAgentsDocs(root, path.join(root, 'a/b/c/d'))).toEqual([]);
});

test('a huge AGENTS.md is cut at the budget', async () => {
  const root = path.join(dir, 'huge');
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, 'AGENTS.md'), 'x'.repeat(AGENTS_MD_MAX_BYTES * 4));
  const [doc] = await collectAgentsDocs(root);
  expect(doc!.content).toBe(`${'x'.repeat(AGENTS_MD_MAX_BYTES)}\n[AGENTS.md truncated at ${AGENTS_MD_MAX_BYTES} bytes]`);
});
