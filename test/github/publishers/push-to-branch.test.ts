import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { FileChange } from '../../../src/contract.ts';
import {
  COMPARE_MAX_FILES,
  buildTreeEntries,
  decideOnMove,
  forkBranchName,
  openFromForkHead,
  overlappingPaths,
  pushToBranch,
} from '../../../src/github/publishers/push-to-branch.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../../support/github-stand-in.ts';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const write = (path: string, text: string): FileChange => ({ action: 'modify', path, mode: '100644', contentBase64: b64(text) });

describe('buildTreeEntries', () => {
  test('deletions first, then writes with their blob SHAs and modes', () => {
    const changes: FileChange[] = [
      { action: 'add', path: 'a/b', mode: '100755', contentBase64: b64('x') },
      { action: 'delete', path: 'a' },
      { action: 'add', path: 'link', mode: '120000', contentBase64: b64('a/b') },
    ];
    const blobs = new Map([['a/b', '1'.repeat(40)], ['link', '2'.repeat(40)]]);
    expect(buildTreeEntries(changes, blobs)).toEqual([
      { path: 'a', mode: '100644', type: 'blob', sha: null },
      { path: 'a/b', mode: '100755', type: 'blob', sha: '1'.repeat(40) },
      { path: 'link', mode: '120000', type: 'blob', sha: '2'.repeat(40) },
    ]);
    expect(() => buildTreeEntries([write('x', 'y')], new Map())).toThrow('no blob for x');
  });
});

describe('overlappingPaths and decideOnMove', () => {
  test('equal paths and directory/file collisions overlap; siblings do not', () => {
    expect(overlappingPaths(['src/x.ts', 'README.md'], ['src/y.ts', 'docs/a.md'])).toEqual([]);
    expect(overlappingPaths(['src/x.ts', 'README.md'], ['README.md'])).toEqual(['README.md']);
    expect(overlappingPaths(['src/x.ts/inner'], ['src/x.ts'])).toEqual(['src/x.ts/inner']);
    expect(overlappingPaths(['src'], ['src/x.ts'])).toEqual(['src']);
    expect(overlappingPaths(['src/x.ts'], ['src/x.tsx', 'sr'])).toEqual([]);
    expect(overlappingPaths(['Readme.md'], ['README.md'])).toEqual([]);
  });

  test('rebase only when the branch moved forward without touching our files', () => {
    const files = (...names: string[]) => names.map((filename) => ({ filename }));
    expect(decideOnMove(['a.ts'], { status: 'ahead', files: files('b.ts') })).toEqual({ kind: 'rebase' });
    expect(decideOnMove(['a.ts'], { status: 'ahead', files: files('a.ts') })).toEqual({ kind: 'conflict', overlapping: ['a.ts'], rewritten: false, unknown: false });
    expect(decideOnMove(['old.ts'], { status: 'ahead', files: [{ filename: 'new.ts', previous_filename: 'old.ts' }] })).toMatchObject({
      kind: 'conflict',
      overlapping: ['old.ts'],
    });
    expect(decideOnMove(['a.ts'], { status: 'diverged', files: files('b.ts') })).toMatchObject({ kind: 'conflict', rewritten: true });
    const many = Array.from({ length: COMPARE_MAX_FILES }, (_, i) => ({ filename: `f${i}` }));
    expect(decideOnMove(['a.ts'], { status: 'ahead', files: many })).toMatchObject({ kind: 'conflict', unknown: true, overlapping: [] });
  });

  test('forkBranchName: codex/pr-<n>-<slug>', () => {
    expect(forkBranchName(7, 'Fix the "parser"!')).toBe('codex/pr-7-fix-the-parser');
    expect(forkBranchName(8, '日本語')).toBe('codex/pr-8');
  });
});

describe('pushToBranch and openFromForkHead against the GitHub stand-in', () => {
  const REPO = 'octo/app';
  let gh: GitHubStandIn;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let branchNo = 0;

  /** A fresh PR branch with one commit over main; returns its name and head. */
  async function prBranch(): Promise<{ branch: string; head: string }> {
    const branch = `feature-${++branchNo}`;
    const head = await gh.commitFiles(REPO, branch, { 'src/x.ts': 'export const x = 1;\n' }, { from: 'main' });
    return { branch, head };
  }
  const show = async (rev: string, path: string) => gh.git(REPO, 'show', `${rev}:${path}`);
  const parents = async (sha: string) => (await gh.git(REPO, 'rev-list', '--parents', '-n', '1', sha)).trim().split(' ').slice(1);
  const headOf = async (branch: string) => (await gh.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo(REPO, { 'README.md': '# app\n', 'src/x.ts': 'export const x = 0;\n', 'src/y.ts': 'export const y = 0;\n' }, { permissions: { alice: 'write' } });
    octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  });
  afterAll(async () => {
    // Never a forced ref update, in any test.
    const forces = gh.requestsTo('PATCH /repos/octo/app/git/refs/heads/{name}').map((r) => (r.body as { force?: unknown }).force);
    expect(forces.length).toBeGreaterThan(3);
    expect(new Set(forces)).toEqual(new Set([false]));
    await gh.close();
  });

  test('unmoved branch: one verified commit whose parent is the dispatched head, fast-forwarded', async () => {
    const { branch, head } = await prBranch();
    const out = await pushToBranch(octokit, {
      owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head,
      changes: [write('src/x.ts', 'export const X = 1;\n'), { action: 'delete', path: 'src/y.ts' }],
      message: 'Use a constant', coAuthors: [{ login: 'alice', id: 42 }],
    });
    expect(out).toEqual({ kind: 'pushed', commitSha: expect.stringMatching(/^[0-9a-f]{40}$/), parentSha: head, rebased: false, verified: true });
    if (out.kind !== 'pushed') return;
    expect(await headOf(branch)).toBe(out.commitSha);
    expect(await parents(out.commitSha)).toEqual([head]);
    expect(await show(out.commitSha, 'src/x.ts')).toBe('export const X = 1;\n');
    await expect(show(out.commitSha, 'src/y.ts')).rejects.toThrow();
    expect(await gh.git(REPO, 'log', '-1', '--format=%B', out.commitSha)).toContain('Co-authored-by: alice <42+alice@users.noreply.github.com>');
    const patches = gh.requestsTo(`PATCH /repos/octo/app/git/refs/heads/${branch}`);
    expect(patches.map((r) => r.body)).toEqual([{ sha: out.commitSha, force: false }]);
  });

  test('branch moved before publishing, other files: re-applied on top of the new head', async () => {
    const { branch, head } = await prBranch();
    const pushed = await gh.commitFiles(REPO, branch, { 'README.md': '# app, moved on\n' });
    const out = await pushToBranch(octokit, {
      owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head, changes: [write('src/x.ts', 'const x = 2;\n')], message: 'Change x',
    });
    expect(out).toMatchObject({ kind: 'pushed', parentSha: pushed, rebased: true, verified: true });
    if (out.kind !== 'pushed') return;
    expect(await headOf(branch)).toBe(out.commitSha);
    expect(await parents(out.commitSha)).toEqual([pushed]);
    expect(await show(out.commitSha, 'README.md')).toBe('# app, moved on\n');
    expect(await show(out.commitSha, 'src/x.ts')).toBe('const x = 2;\n');
  });

  test('branch moved during publishing (the ref update answers 422): re-applied when the files do not overlap', async () => {
    const { branch, head } = await prBranch();
    let moved: string | undefined;
    const racing = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
    racing.hook.before('request', async (options) => {
      if (options.method === 'PATCH' && !moved) moved = await gh.commitFiles(REPO, branch, { 'docs/new.md': 'new\n' });
    });
    const out = await pushToBranch(racing, {
      owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head, changes: [write('src/x.ts', 'const x = 3;\n')], message: 'Change x',
    });
    expect(moved).toBeDefined();
    expect(out).toMatchObject({ kind: 'pushed', parentSha: moved, rebased: true });
    const patches = gh.requestsTo(`PATCH /repos/octo/app/git/refs/heads/${branch}`);
    expect(patches.map((r) => r.status)).toEqual([422, 200]);
    if (out.kind === 'pushed') expect(await show(out.commitSha, 'docs/new.md')).toBe('new\n');
  });

  test('branch moved with an overlapping file: branch_moved, nothing pushed', async () => {
    const { branch, head } = await prBranch();
    const pushed = await gh.commitFiles(REPO, branch, { 'src/x.ts': 'export const x = 99;\n' });
    const out = await pushToBranch(octokit, {
      owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head,
      changes: [write('src/x.ts', 'const x = 4;\n'), write('README.md', 'r\n')], message: 'Change x',
    });
    expect(out).toEqual({
      kind: 'branch_moved', branch, dispatchedHeadSha: head, currentHeadSha: pushed, overlapping: ['src/x.ts'], rewritten: false, unknown: false,
    });
    expect(await headOf(branch)).toBe(pushed);
    expect(gh.requestsTo(`PATCH /repos/octo/app/git/refs/heads/${branch}`)).toHaveLength(0);
  });

  test('force-pushed branch (no longer contains the dispatched head): branch_moved, rewritten', async () => {
    const { branch, head } = await prBranch();
    const main = (await gh.git(REPO, 'rev-parse', 'refs/heads/main')).trim();
    await gh.git(REPO, 'update-ref', `refs/heads/${branch}`, main);
    const rewritten = await gh.commitFiles(REPO, branch, { 'other.txt': 'o\n' });
    const out = await pushToBranch(octokit, {
      owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head, changes: [write('README.md', 'r\n')], message: 'm',
    });
    expect(out).toMatchObject({ kind: 'branch_moved', currentHeadSha: rewritten, rewritten: true, overlapping: [] });
    expect(await headOf(branch)).toBe(rewritten);
  });

  test('deleted branch: branch_missing', async () => {
    const { branch, head } = await prBranch();
    await gh.git(REPO, 'update-ref', '-d', `refs/heads/${branch}`);
    const out = await pushToBranch(octokit, { owner: 'octo', repo: 'app', branch, dispatchedHeadSha: head, changes: [write('a', 'a')], message: 'm' });
    expect(out).toEqual({ kind: 'branch_missing', branch });
  });

  test('empty change set is refused', async () => {
    await expect(pushToBranch(octokit, { owner: 'octo', repo: 'app', branch: 'main', dispatchedHeadSha: '0'.repeat(40), changes: [], message: 'm' })).rejects.toThrow(
      'no changes',
    );
  });

  test('fork pull request: a codex/pr-<n>-<slug> branch in the base repository on the fork head, and a PR into the base branch', async () => {
    await gh.addFork(REPO, 'mallory/app');
    const forkHead = await gh.commitFiles('mallory/app', 'patch-1', { 'src/y.ts': 'export const y = 1;\n' });
    const fork = await gh.addForkPull(REPO, { headRepo: 'mallory/app', head: 'patch-1', title: 'Tweak y', user: 'mallory' });
    const out = await openFromForkHead(octokit, {
      owner: 'octo', repo: 'app', pullNumber: Number(fork.number), pullTitle: 'Tweak y', baseRef: 'main', dispatchedHeadSha: forkHead,
      changes: [write('src/x.ts', 'export const x = 5;\n')], message: 'Address review', title: 'Address review on #' + String(fork.number), body: 'Body',
    });
    expect(out).toMatchObject({ branch: `codex/pr-${Number(fork.number)}-tweak-y`, created: true, verified: true });
    expect(await headOf(out.branch)).toBe(out.commitSha);
    expect(await parents(out.commitSha)).toEqual([forkHead]);
    expect(await show(out.commitSha, 'src/y.ts')).toBe('export const y = 1;\n');
    expect(await show(out.commitSha, 'src/x.ts')).toBe('export const x = 5;\n');
    const pulls = await gh.pulls(REPO);
    const opened = pulls.find((p) => p.number === out.number);
    expect(opened).toMatchObject({ html_url: out.url, base: { ref: 'main' }, head: { ref: out.branch, repo: { full_name: REPO } } });
    // The fork itself is untouched.
    expect((await gh.git('mallory/app', 'rev-parse', 'refs/heads/patch-1')).trim()).toBe(forkHead);

    // A retry of the same publication (e.g. after a crash) reuses the branch, the commit and the PR.
    const args = {
      owner: 'octo', repo: 'app', pullNumber: Number(fork.number), pullTitle: 'Tweak y', baseRef: 'main', dispatchedHeadSha: forkHead,
      changes: [write('src/x.ts', 'export const x = 5;\n')], message: 'Address review', title: 'Address review', body: 'Body',
    };
    const again = await openFromForkHead(octokit, args);
    expect(again).toEqual({ ...out, created: false });
    // A different change gets its own branch.
    const other = await openFromForkHead(octokit, { ...args, changes: [write('src/x.ts', 'export const x = 6;\n')] });
    expect(other).toMatchObject({ branch: `${out.branch}-2`, created: true });
    expect(other.number).not.toBe(out.number);
  });
});
