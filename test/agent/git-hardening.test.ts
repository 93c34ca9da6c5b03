/**
 * Regression tests of issue 7, "Host-side git never executes what the agent wrote": a hostile agent
 * rewrites the workspace's git configuration (filter drivers, fsmonitor, hooks, includeIf, external
 * diff and textconv, attributes and excludes files, nested repositories, a redirected `.git`) so that
 * the runner's host-side git would run its script, which records the runner's secret in a marker
 * file outside the workspace and prints it into the collected content. Each case first proves the
 * attack live with plain git on the workspace's own `.git` (what the runner did before), then checks
 * that {@link collectChanges} runs nothing, leaks nothing, and still reports exactly the changes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileChange } from '../../src/contract.ts';
import { collectChanges } from '../../src/agent/changes.ts';
import { checkoutRepository } from '../../src/agent/checkout.ts';
import { gitIn, type TrustedRepository } from '../../src/agent/git.ts';
import { createBareRepo, runGit } from '../support/git-http.ts';

const SECRET = `secret-xyz-${process.pid}`;
let dir: string;
let outside: string;
let savedKey: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'git-hardening-'));
  outside = path.join(dir, 'outside');
  await mkdir(outside);
  // The runner's environment holds a secret, as the app's did.
  savedKey = process.env.PRIVATE_KEY;
  process.env.PRIVATE_KEY = SECRET;
});

afterAll(async () => {
  if (savedKey === undefined) delete process.env.PRIVATE_KEY;
  else process.env.PRIVATE_KEY = savedKey;
  await rm(dir, { recursive: true, force: true });
});

const BASE_FILES = { 'src/app.js': 'console.log(1);\n', 'README.md': '# app\n' };

interface Workspace {
  repo: TrustedRepository;
  base: string;
  ws: string;
  /** Path of the attack script in the workspace. */
  script: string;
  /** Marker file outside the workspace that the attack script creates. */
  marker: string;
}

/** A fresh checkout, as the runner makes it, plus the attacker's script written into the workspace. */
async function workspace(name: string, extra: (origin: string) => Promise<void> = async () => {}): Promise<Workspace> {
  const origin = await createBareRepo(path.join(dir, 'origins'), `acme/${name}`, BASE_FILES);
  await extra(origin.path);
  const head = (await runGit(['--git-dir', origin.path, 'rev-parse', 'refs/heads/main'])).toString().trim();
  const repo = { gitDir: path.join(dir, name, 'git'), workTree: path.join(dir, name, 'repo') };
  const { sha: base } = await checkoutRepository({ cloneUrl: `file://${origin.path}`, baseSha: head, baseRef: 'main', dir: repo.workTree, gitDir: repo.gitDir });
  const marker = path.join(outside, `${name}.marker`);
  const script = path.join(repo.workTree, '.attack.sh');
  // Records the secret outside the workspace, and prints it (a clean filter's output is the blob).
  await writeFile(script, `#!/bin/sh\nprintf '%s' "$PRIVATE_KEY" > '${marker}'\ncat >/dev/null 2>&1\nprintf '%s\\n' "$PRIVATE_KEY"\n`, { mode: 0o755 });
  return { repo, base, ws: repo.workTree, script, marker };
}

/**
 * What the runner did before the fix: `git add -A` with a temporary index, then a diff, on the
 * workspace's own `.git` with the runner's environment. `patch` also renders a patch (textconv and
 * external diff drivers apply there).
 */
function naiveCollect(ws: string, base: string, patch = false): void {
  const index = path.join(ws, '..', `naive-index-${Math.random()}`);
  if (existsSync(path.join(ws, '.git/index'))) copyFileSync(path.join(ws, '.git/index'), index);
  const env = { ...process.env, GIT_INDEX_FILE: index };
  try {
    execFileSync('git', ['add', '-A', '--', '.'], { cwd: ws, env, stdio: 'ignore' });
    execFileSync('git', ['diff', '--cached', patch ? '-p' : '--raw', base], { cwd: ws, env, stdio: 'ignore' });
  } catch {
    // Whether git then fails does not matter: the attack ran (or not) by then.
  }
}

/** Proves the attack live with {@link naiveCollect}, then collects hardened and checks nothing ran. */
async function collectAfterProvingTheAttack(w: Workspace, patch = false) {
  naiveCollect(w.ws, w.base, patch);
  expect(await readFile(w.marker, 'utf8')).toBe(SECRET);
  await unlink(w.marker);
  const collected = await collectChanges(w.repo, w.base);
  expect(existsSync(w.marker)).toBe(false);
  for (const change of collected.changes) {
    if (change.action !== 'delete') expect(Buffer.from(change.contentBase64, 'base64').toString('latin1')).not.toContain(SECRET);
  }
  expect(JSON.stringify(collected)).not.toContain(Buffer.from(SECRET).toString('base64').slice(0, 12));
  return collected;
}

function content(changes: FileChange[], file: string): string | undefined {
  const change = changes.find((c) => c.path === file);
  return change && change.action !== 'delete' ? Buffer.from(change.contentBase64, 'base64').toString('utf8') : undefined;
}

/** The agent's one real edit, whose content must come back byte for byte. */
const EDIT = 'console.log(2);\n';

async function edit(w: Workspace): Promise<void> {
  await writeFile(path.join(w.ws, 'src/app.js'), EDIT);
}

describe('an agent-written git configuration never runs on the host', () => {
  test('a filter driver in .git/config named by .gitattributes', async () => {
    const w = await workspace('filter');
    await appendFile(path.join(w.ws, '.git/config'), `[filter "x"]\n\tclean = ${w.script}\n\tsmudge = ${w.script}\n\trequired = true\n`);
    await writeFile(path.join(w.ws, '.gitattributes'), '* filter=x\n');
    await edit(w);
    const { changes, skipped } = await collectAfterProvingTheAttack(w);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', '.gitattributes', 'src/app.js']);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
    expect(content(changes, '.gitattributes')).toBe('* filter=x\n');
    expect(skipped).toEqual([]);
  });

  test('core.fsmonitor', async () => {
    const w = await workspace('fsmonitor');
    await appendFile(path.join(w.ws, '.git/config'), `[core]\n\tfsmonitor = ${w.script}\n\tfsmonitorHookVersion = 2\n`);
    await edit(w);
    const { changes } = await collectAfterProvingTheAttack(w);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', 'src/app.js']);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('hooks in .git/hooks and in a core.hooksPath directory', async () => {
    const w = await workspace('hooks');
    const hooks = ['post-index-change', 'pre-commit', 'post-checkout', 'reference-transaction', 'pre-auto-gc', 'post-rewrite'];
    await mkdir(path.join(w.ws, '.git/hooks'), { recursive: true });
    await mkdir(path.join(w.ws, '.hooks'));
    for (const hook of hooks) {
      await writeFile(path.join(w.ws, '.git/hooks', hook), `#!/bin/sh\nexec ${w.script}\n`, { mode: 0o755 });
      await writeFile(path.join(w.ws, '.hooks', hook), `#!/bin/sh\nexec ${w.script}\n`, { mode: 0o755 });
    }
    await edit(w);
    // Proven live through .git/hooks first, then through core.hooksPath.
    const first = await collectAfterProvingTheAttack(w);
    await appendFile(path.join(w.ws, '.git/config'), `[core]\n\thooksPath = ${path.join(w.ws, '.hooks')}\n`);
    await rm(path.join(w.ws, '.git/hooks'), { recursive: true });
    const { changes } = await collectAfterProvingTheAttack(w);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', ...hooks.map((h) => `.hooks/${h}`).sort(), 'src/app.js']);
    expect(first.changes.length).toBe(changes.length);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('include and includeIf pointing to an agent file that defines a filter', async () => {
    const w = await workspace('include');
    await writeFile(path.join(w.ws, '.evil.cfg'), `[filter "y"]\n\tclean = ${w.script}\n[core]\n\tfsmonitor = ${w.script}\n`);
    await appendFile(path.join(w.ws, '.git/config'), `[includeIf "gitdir:/"]\n\tpath = ${path.join(w.ws, '.evil.cfg')}\n[include]\n\tpath = ${path.join(w.ws, '.evil.cfg')}\n`);
    await writeFile(path.join(w.ws, '.gitattributes'), '*.js filter=y\n');
    await edit(w);
    const { changes } = await collectAfterProvingTheAttack(w);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', '.evil.cfg', '.gitattributes', 'src/app.js']);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('diff.external and a textconv driver', async () => {
    const w = await workspace('diffdrivers');
    await appendFile(path.join(w.ws, '.git/config'), `[diff]\n\texternal = ${w.script}\n[diff "t"]\n\ttextconv = ${w.script}\n`);
    await writeFile(path.join(w.ws, '.gitattributes'), '* diff=t\n');
    await edit(w);
    const { changes } = await collectAfterProvingTheAttack(w, true);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', '.gitattributes', 'src/app.js']);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('core.attributesFile, core.excludesFile, info/attributes and info/exclude of the agent are not read', async () => {
    const w = await workspace('attrfiles');
    await writeFile(path.join(w.ws, '.attrs'), '* filter=z\n');
    await writeFile(path.join(w.ws, '.ignore'), '*.js\n');
    await mkdir(path.join(w.ws, '.git/info'), { recursive: true });
    await writeFile(path.join(w.ws, '.git/info/attributes'), '* filter=z\n');
    await writeFile(path.join(w.ws, '.git/info/exclude'), '*.md\n');
    await appendFile(
      path.join(w.ws, '.git/config'),
      `[core]\n\tattributesFile = ${path.join(w.ws, '.attrs')}\n\texcludesFile = ${path.join(w.ws, '.ignore')}\n[filter "z"]\n\tclean = ${w.script}\n`,
    );
    await edit(w);
    await writeFile(path.join(w.ws, 'README.md'), '# app, edited\n');
    const { changes } = await collectAfterProvingTheAttack(w);
    // Ignore rules of the agent's .git would have hidden both edits.
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', '.attrs', '.ignore', 'README.md', 'src/app.js']);
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('the workspace .git replaced by a gitfile pointing to an agent-made git directory', async () => {
    const w = await workspace('gitfile');
    const evil = path.join(w.ws, '.evil-git');
    execFileSync('git', ['init', '-q', '--template=', '--separate-git-dir', evil, path.join(dir, 'gitfile-scratch')]);
    execFileSync('git', ['--git-dir', evil, 'config', 'core.fsmonitor', w.script]);
    execFileSync('git', ['--git-dir', evil, 'config', 'core.worktree', w.ws]);
    await rm(path.join(w.ws, '.git'), { recursive: true });
    await writeFile(path.join(w.ws, '.git'), `gitdir: ${evil}\n`);
    await edit(w);
    naiveCollect(w.ws, '4b825dc642cb6eb9a060e54bf8d69288fbee4904');
    expect(await readFile(w.marker, 'utf8')).toBe(SECRET);
    await unlink(w.marker);
    const { changes } = await collectChanges(w.repo, w.base);
    expect(existsSync(w.marker)).toBe(false);
    // The agent's git directory is just files of the workspace to the runner.
    expect(changes.map((c) => c.path).filter((p) => !p.startsWith('.evil-git/')).sort()).toEqual(['.attack.sh', 'src/app.js']);
    expect(content(changes, '.evil-git/config')).toContain('fsmonitor');
    expect(content(changes, 'src/app.js')).toBe(EDIT);
  });

  test('a nested repository with its own filter, in place of a submodule of the base and as a new directory', async () => {
    // The base has a submodule `vendor/lib` (a gitlink): the checkout leaves its directory empty.
    const w = await workspace('nested', async (origin) => {
      const index = path.join(dir, 'nested-base-index');
      const env = { GIT_INDEX_FILE: index };
      await runGit(['--git-dir', origin, 'read-tree', 'refs/heads/main'], { env });
      await runGit(['--git-dir', origin, 'update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},vendor/lib`], { env });
      const tree = (await runGit(['--git-dir', origin, 'write-tree'], { env })).toString().trim();
      const commit = (await runGit(['--git-dir', origin, 'commit-tree', tree, '-p', 'refs/heads/main', '-m', 'submodule'])).toString().trim();
      await runGit(['--git-dir', origin, 'update-ref', 'refs/heads/main', commit]);
    });
    for (const nested of ['vendor/lib', 'tools/x']) {
      const sub = path.join(w.ws, nested);
      await mkdir(sub, { recursive: true });
      execFileSync('git', ['init', '-q', sub]);
      await writeFile(path.join(sub, 'f.txt'), 'one\n');
      execFileSync('git', ['-C', sub, 'add', 'f.txt']);
      execFileSync('git', ['-C', sub, '-c', 'user.name=a', '-c', 'user.email=a@a', 'commit', '-qm', 'x']);
      await appendFile(path.join(sub, '.git/config'), `[filter "n"]\n\tclean = ${w.script}\n`);
      await writeFile(path.join(sub, '.gitattributes'), '* filter=n\n');
      // Same size, other content: git status hashes the file, through the filter.
      await writeFile(path.join(sub, 'f.txt'), 'two\n');
      await utimes(path.join(sub, 'f.txt'), new Date(), new Date(Date.now() + 5000));
    }
    // git looks inside a submodule's directory when its HEAD is the commit the index records; a
    // detached HEAD file naming that commit is enough (git does not check the object exists).
    await writeFile(path.join(w.ws, 'vendor/lib/.git/HEAD'), `${'a'.repeat(40)}\n`);
    await edit(w);
    const { changes, skipped } = await collectAfterProvingTheAttack(w);
    expect(changes.map((c) => c.path).sort()).toEqual(['.attack.sh', 'src/app.js']);
    expect(skipped).toEqual([{ path: 'tools/x', reason: expect.stringMatching(/nested git repositories/) }]);

    // The hardened configuration alone would not stop this one: without the private index's
    // skip-worktree mark on the submodule, git add runs git status inside it, whose filter runs
    // (without the secret, which is not in the environment of the runner's git).
    const index = path.join(dir, 'nested-unprotected-index');
    await copyFile(path.join(w.repo.gitDir, 'index'), index);
    await gitIn(w.repo, ['update-index', '--no-skip-worktree', 'vendor/lib'], { env: { GIT_INDEX_FILE: index } });
    await gitIn(w.repo, ['add', '-A', '--', '.'], { env: { GIT_INDEX_FILE: index } }).catch(() => undefined);
    expect(await readFile(w.marker, 'utf8')).toBe('');
  });
});

describe('host-side reads never follow a symlink out of the workspace', () => {
  test('symlinks to a secret file and directory outside are collected as links, .gitignore included', async () => {
    const w = await workspace('symlinks');
    const secretFile = path.join(outside, 'id_rsa');
    await writeFile(secretFile, `${SECRET}\n`);
    await mkdir(path.join(outside, 'dir'), { recursive: true });
    await writeFile(path.join(outside, 'dir/key.pem'), `${SECRET}\n`);
    await symlink(secretFile, path.join(w.ws, 'leak'));
    await symlink(path.join(outside, 'dir'), path.join(w.ws, 'leakdir'));
    await symlink(secretFile, path.join(w.ws, '.gitignore'));
    await unlink(path.join(w.ws, 'README.md'));
    await symlink(secretFile, path.join(w.ws, 'README.md'));
    await chmod(w.script, 0o644);
    const { changes } = await collectChanges(w.repo, w.base);
    const byPath = Object.fromEntries(changes.map((c) => [c.path, c]));
    expect(Object.keys(byPath).sort()).toEqual(['.attack.sh', '.gitignore', 'README.md', 'leak', 'leakdir']);
    for (const link of ['leak', '.gitignore', 'README.md']) {
      expect(byPath[link]).toMatchObject({ mode: '120000', contentBase64: Buffer.from(secretFile).toString('base64') });
    }
    expect(byPath['leakdir']).toMatchObject({ mode: '120000', contentBase64: Buffer.from(path.join(outside, 'dir')).toString('base64') });
    expect(JSON.stringify(changes.map((c) => (c.action === 'delete' ? '' : Buffer.from(c.contentBase64, 'base64').toString())))).not.toContain(SECRET);
  });
});
