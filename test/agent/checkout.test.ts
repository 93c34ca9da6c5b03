/**
 * The checkout phase against the GitHub stand-in's git smart HTTP (real git, token auth): the base
 * commit for issue work, and a pull request's head with just enough history for its diff and log.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec } from '../../src/contract.ts';
import { checkoutRepository } from '../../src/agent/checkout.ts';
import { runGit } from '../support/git-http.ts';
import { GitHubStandIn } from '../support/github-stand-in.ts';

const REPO = 'octo/deep';

describe('checkoutRepository', () => {
  let gh: GitHubStandIn;
  let work: string;
  let token: string;
  let cloneUrl: string;
  let mainTip: string;
  let forkPoint: string;
  let featureHead: string;
  let totalCommits: number;
  let dirNo = 0;

  const git = async (dir: string, ...args: string[]) => (await runGit(args, { cwd: dir })).toString('utf8').trim();
  const newDir = () => path.join(work, `c${++dirNo}`);
  /** Checks out with a private git directory beside the workspace; the workspace gets its copy as .git. */
  const co = async (opts: Omit<Parameters<typeof checkoutRepository>[0], 'gitDir'>) =>
    (await checkoutRepository({ ...opts, gitDir: `${opts.dir}-git` })).sha;

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    work = await mkdtemp(path.join(tmpdir(), 'checkout-test-'));
    ({ cloneUrl } = await gh.addRepo(REPO, { 'README.md': '# deep\n', 'src/a.ts': 'a0\n' }));
    // main: 30 commits, the PR branches off, 20 more commits on main; the PR has 3 commits.
    for (let i = 1; i <= 30; i++) forkPoint = await gh.commitFiles(REPO, 'main', { 'log.txt': `main ${i}\n` }, { message: `main ${i}` });
    for (let i = 1; i <= 3; i++) {
      featureHead = await gh.commitFiles(REPO, 'feature', { [`src/f${i}.ts`]: `f${i}\n` }, { from: forkPoint, message: `feature ${i}` });
    }
    for (let i = 31; i <= 50; i++) mainTip = await gh.commitFiles(REPO, 'main', { 'log.txt': `main ${i}\n` }, { message: `main ${i}` });
    totalCommits = 1 + 50 + 3;
    token = gh.createInstallationToken(1, { permissions: { contents: 'read' } }).token;
  });
  afterAll(async () => {
    await gh.close();
    await rm(work, { recursive: true, force: true });
  });

  test('issue work: the base commit alone, depth 1, on a branch named like the base', async () => {
    const dir = newDir();
    expect(await co({ cloneUrl, token, baseSha: mainTip, baseRef: 'main', dir })).toBe(mainTip);
    expect(await git(dir, 'rev-list', '--count', 'HEAD')).toBe('1');
    expect(await git(dir, 'branch', '--show-current')).toBe('main');
  });

  test('pull request head: the PR commits and the merge base, so base...HEAD diff and base..HEAD log work; not the whole history', async () => {
    const dir = newDir();
    const head = await co({ cloneUrl, token, baseSha: mainTip, baseRef: 'main', headSha: featureHead, headRef: 'feature', prCommits: 3, dir });
    expect(head).toBe(featureHead);
    expect(await git(dir, 'branch', '--show-current')).toBe('feature');
    expect(await git(dir, 'merge-base', mainTip, 'HEAD')).toBe(forkPoint);
    expect((await git(dir, 'diff', '--name-only', `${mainTip}...HEAD`)).split('\n')).toEqual(['src/f1.ts', 'src/f2.ts', 'src/f3.ts']);
    expect((await git(dir, 'diff', '--name-only', 'origin/main...HEAD')).split('\n')).toEqual(['src/f1.ts', 'src/f2.ts', 'src/f3.ts']);
    expect((await git(dir, 'log', '--format=%s', `${mainTip}..HEAD`)).split('\n')).toEqual(['feature 3', 'feature 2', 'feature 1']);
    expect(await git(dir, 'rev-parse', '--is-shallow-repository')).toBe('true');
    const fetched = Number(await git(dir, 'rev-list', '--count', '--all'));
    expect(fetched).toBeLessThan(totalCommits);
    expect(await readFile(path.join(dir, 'src/f3.ts'), 'utf8')).toBe('f3\n');
    // The token is not left in the checkout's configuration.
    expect(await readFile(path.join(dir, '.git/config'), 'utf8')).not.toContain(Buffer.from(`x-access-token:${token}`).toString('base64'));
  });

  test('an unknown commit count still finds the merge base (default depth), and a head on base works', async () => {
    const dir = newDir();
    expect(await co({ cloneUrl, token, baseSha: mainTip, baseRef: 'main', headSha: featureHead, dir })).toBe(featureHead);
    expect(await git(dir, 'merge-base', mainTip, 'HEAD')).toBe(forkPoint);
    expect(await git(dir, 'branch', '--show-current')).toBe('main');
  });

  test('fork pull request: the head comes from refs/pull/N/head of the base repository', async () => {
    await gh.addFork(REPO, 'mallory/deep');
    let forkHead = '';
    for (let i = 1; i <= 2; i++) forkHead = await gh.commitFiles('mallory/deep', 'patch-1', { [`src/m${i}.ts`]: `m${i}\n` }, { message: `fork ${i}` });
    const pr = await gh.addForkPull(REPO, { headRepo: 'mallory/deep', head: 'patch-1', title: 'From a fork', user: 'mallory' });
    const spec = TaskSpec.shape.repository.parse({
      cloneUrl, fullName: REPO, baseRef: 'main', baseSha: mainTip, headRef: 'patch-1', headSha: forkHead,
      fetchRef: `refs/pull/${Number(pr.number)}/head`, prCommits: 2,
    });
    const dir = newDir();
    const head = await co({ ...spec, token, dir });
    expect(head).toBe(forkHead);
    expect((await git(dir, 'log', '--format=%s', `${mainTip}..HEAD`)).split('\n')).toEqual(['fork 2', 'fork 1']);
    expect((await git(dir, 'diff', '--name-only', `${mainTip}...HEAD`)).split('\n')).toEqual(['src/m1.ts', 'src/m2.ts']);
  });

  test('when a fetch by SHA fails, the head comes through fetchRef and the base through its branch', async () => {
    const main = await gh.commitFiles(REPO, 'main', { 'log.txt': 'main 51\n' }, { message: 'main 51' });
    const head = await gh.commitFiles(REPO, 'feature', { 'src/f4.ts': 'f4\n' }, { message: 'feature 4' });
    gh.failNext({ method: 'POST', path: /\/octo\/deep\.git\/git-upload-pack$/ }, { status: 500 });
    const dir = newDir();
    const out = await co({
      cloneUrl, token, baseSha: main, baseRef: 'main', headSha: head, headRef: 'feature', fetchRef: 'refs/heads/feature', prCommits: 4, dir,
    });
    expect(out).toBe(head);
    expect(await git(dir, 'rev-parse', 'refs/remotes/origin/codex-head')).toBe(head);
    expect((await git(dir, 'log', '--format=%s', `${main}..HEAD`)).split('\n')).toEqual(['feature 4', 'feature 3', 'feature 2', 'feature 1']);
  });

  test('the contract accepts only refs/pull/<n>/head or refs/heads/<branch> as fetchRef', () => {
    const base = { cloneUrl, fullName: REPO, baseRef: 'main', baseSha: mainTip };
    for (const fetchRef of ['refs/pull/12/head', 'refs/heads/feature/x']) {
      expect(TaskSpec.shape.repository.safeParse({ ...base, fetchRef }).success).toBe(true);
    }
    for (const fetchRef of ['+refs/heads/a:refs/heads/main', 'refs/tags/v1', '--upload-pack=x', 'refs/pull/1/merge', 'refs/heads/a b']) {
      expect(TaskSpec.shape.repository.safeParse({ ...base, fetchRef }).success).toBe(false);
    }
    expect(TaskSpec.shape.repository.safeParse({ ...base, headSha: 'abc' }).success).toBe(false);
  });
});
