/** The stand-in's pull request endpoints: files, review comments and reviews, compare, refs/pull/N/head, forks. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GitHubStandIn, ProbotOctokitForTests, statusOf } from './github-stand-in.ts';

const REPO = 'octo/pulls';
const LINES = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);

describe('GitHubStandIn pull requests', () => {
  let gh: GitHubStandIn;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let pullNumber: number;
  let mainSha: string;

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    ({ headSha: mainSha } = await gh.addRepo(REPO, { 'src/x.ts': `${LINES.join('\n')}\n`, 'README.md': '# r\n', 'gone.txt': 'bye\n' }, { permissions: { alice: 'write' } }));
    const changed = [...LINES];
    changed[11] = 'line 12 changed';
    await gh.commitFiles(REPO, 'feature', { 'src/x.ts': `${changed.join('\n')}\n`, 'new.txt': 'new\n', 'gone.txt': null });
    pullNumber = Number((await gh.addPull(REPO, { head: 'feature', title: 'Feature', user: 'alice' })).number);
    octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  });
  afterAll(async () => gh.close());

  test('files of a pull request: status, counts and patch against the merge base', async () => {
    await gh.commitFiles(REPO, 'main', { 'README.md': '# moved on\n' });
    const { data } = await octokit.rest.pulls.listFiles({ owner: 'octo', repo: 'pulls', pull_number: pullNumber });
    const byName = Object.fromEntries(data.map((f) => [f.filename, f]));
    expect(Object.keys(byName).sort()).toEqual(['gone.txt', 'new.txt', 'src/x.ts']);
    expect(byName['src/x.ts']).toMatchObject({ status: 'modified', additions: 1, deletions: 1, changes: 2 });
    expect(byName['src/x.ts']!.patch).toMatch(/^@@ -9,7 \+9,7 @@/);
    expect(byName['gone.txt']).toMatchObject({ status: 'removed', deletions: 1 });
    expect(byName['new.txt']).toMatchObject({ status: 'added', additions: 1 });
  });

  test('compare base...head: merge base, ahead/behind and the files', async () => {
    const pull = (await octokit.rest.pulls.get({ owner: 'octo', repo: 'pulls', pull_number: pullNumber })).data;
    const { data } = await octokit.rest.repos.compareCommitsWithBasehead({ owner: 'octo', repo: 'pulls', basehead: `main...${pull.head.sha}` });
    expect(data).toMatchObject({ status: 'diverged', ahead_by: 1, behind_by: 1, merge_base_commit: { sha: mainSha } });
    expect(data.files?.map((f) => f.filename).sort()).toEqual(['gone.txt', 'new.txt', 'src/x.ts']);
    expect(data.commits).toHaveLength(1);
    expect(await statusOf(octokit.rest.repos.compareCommitsWithBasehead({ owner: 'octo', repo: 'pulls', basehead: 'main...nope' }))).toBe(404);
  });

  test('refs/pull/N/head follows the head branch', async () => {
    const sha = await gh.commitFiles(REPO, 'feature', { 'more.txt': 'more\n' });
    expect((await gh.git(REPO, 'rev-parse', `refs/pull/${pullNumber}/head`)).trim()).toBe(sha);
  });

  test('review comments: diff hunk up to the line, replies in the thread, reactions; lines outside the diff refused', async () => {
    const c = await gh.addReviewComment(REPO, pullNumber, { user: 'alice', body: 'use a constant', path: 'src/x.ts', line: 12 });
    expect(c).toMatchObject({ path: 'src/x.ts', line: 12, side: 'RIGHT', start_line: null });
    expect(String(c.diff_hunk).split('\n')).toEqual(['@@ -9,7 +9,7 @@ line 8', ' line 9', ' line 10', ' line 11', '-line 12', '+line 12 changed']);
    await expect(gh.addReviewComment(REPO, pullNumber, { user: 'alice', body: 'x', path: 'src/x.ts', line: 1 })).rejects.toThrow('Validation Failed');
    const { data: reply } = await octokit.rest.pulls.createReplyForReviewComment({
      owner: 'octo', repo: 'pulls', pull_number: pullNumber, comment_id: Number(c.id), body: 'on it',
    });
    expect(reply).toMatchObject({ in_reply_to_id: c.id, path: 'src/x.ts', line: 12, user: { login: gh.botLogin } });
    const { data: list } = await octokit.rest.pulls.listReviewComments({ owner: 'octo', repo: 'pulls', pull_number: pullNumber });
    expect(list.map((x) => x.id)).toEqual([c.id, reply.id]);
    await octokit.rest.reactions.createForPullRequestReviewComment({ owner: 'octo', repo: 'pulls', comment_id: Number(c.id), content: 'eyes' });
    const { data: got } = await octokit.rest.pulls.getReviewComment({ owner: 'octo', repo: 'pulls', comment_id: Number(c.id) });
    expect(got.reactions).toMatchObject({ eyes: 1, total_count: 1 });
  });

  test('reviews with inline comments are listed, with their comments', async () => {
    const review = await gh.addReview(REPO, pullNumber, {
      user: gh.botLogin,
      body: 'Two findings',
      comments: [{ body: '[P1] off by one', path: 'src/x.ts', line: 12, startLine: 11 }],
    });
    const { data: reviews } = await octokit.rest.pulls.listReviews({ owner: 'octo', repo: 'pulls', pull_number: pullNumber });
    expect(reviews.at(-1)).toMatchObject({ id: review.id, body: 'Two findings', state: 'COMMENTED', user: { login: gh.botLogin } });
    const { data: comments } = await octokit.rest.pulls.listCommentsForReview({
      owner: 'octo', repo: 'pulls', pull_number: pullNumber, review_id: Number(review.id),
    });
    expect(comments).toMatchObject([{ body: '[P1] off by one', start_line: 11, line: 12, pull_request_review_id: review.id }]);
  });

  test('creating a review: one request, inline comments on diff lines; a line outside the diff fails it whole (422)', async () => {
    const pull = (await octokit.rest.pulls.get({ owner: 'octo', repo: 'pulls', pull_number: pullNumber })).data;
    const before = gh.reviews(REPO, pullNumber).length;
    const create = (comments: Array<{ path: string; line: number; start_line?: number; side?: 'RIGHT'; body: string }>) =>
      octokit.rest.pulls.createReview({ owner: 'octo', repo: 'pulls', pull_number: pullNumber, commit_id: pull.head.sha, event: 'COMMENT', body: 'Review', comments });
    const error = await create([{ path: 'src/x.ts', line: 12, body: 'ok' }, { path: 'src/x.ts', line: 2, body: 'not in the diff' }]).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 422, response: { data: { message: 'Unprocessable Entity', errors: ['Line could not be resolved'] } } });
    expect(await statusOf(create([{ path: 'README.md', line: 1, body: 'file not in the diff' }]))).toBe(422);
    expect(gh.reviews(REPO, pullNumber)).toHaveLength(before);
    const { data } = await create([
      { path: 'src/x.ts', line: 12, start_line: 10, side: 'RIGHT', body: 'range' },
      { path: 'new.txt', line: 1, body: 'single' },
    ]);
    expect(data).toMatchObject({ state: 'COMMENTED', commit_id: pull.head.sha, body: 'Review', user: { login: gh.botLogin } });
    const { data: comments } = await octokit.rest.pulls.listCommentsForReview({ owner: 'octo', repo: 'pulls', pull_number: pullNumber, review_id: data.id });
    expect(comments.map((c) => [c.path, c.start_line, c.line, c.side])).toEqual([['src/x.ts', 10, 12, 'RIGHT'], ['new.txt', null, 1, 'RIGHT']]);
    expect(gh.requestsTo('POST /repos/octo/pulls/pulls/{n}/reviews')).toHaveLength(3);
  });

  test('fork pull requests: head in the fork, reachable as refs/pull/N/head, not writable with the base token', async () => {
    await gh.addFork(REPO, 'mallory/pulls');
    const forkHead = await gh.commitFiles('mallory/pulls', 'patch-1', { 'src/x.ts': 'fork\n' });
    const pr = await gh.addForkPull(REPO, { headRepo: 'mallory/pulls', head: 'patch-1', title: 'From a fork', user: 'mallory', maintainerCanModify: true });
    expect(pr).toMatchObject({ head: { label: 'mallory:patch-1', sha: forkHead, repo: { full_name: 'mallory/pulls', fork: true } }, maintainer_can_modify: true });
    expect((await gh.git(REPO, 'rev-parse', `refs/pull/${Number(pr.number)}/head`)).trim()).toBe(forkHead);
    const moved = await gh.commitFiles('mallory/pulls', 'patch-1', { 'b.txt': 'b\n' });
    expect((await gh.git(REPO, 'rev-parse', `refs/pull/${Number(pr.number)}/head`)).trim()).toBe(moved);
    const { data: files } = await octokit.rest.pulls.listFiles({ owner: 'octo', repo: 'pulls', pull_number: Number(pr.number) });
    expect(files.map((f) => f.filename).sort()).toEqual(['b.txt', 'src/x.ts']);
    expect(await statusOf(octokit.rest.git.getRef({ owner: 'mallory', repo: 'pulls', ref: 'heads/patch-1' }))).toBe(404);
    const { data: listed } = await octokit.rest.pulls.list({ owner: 'octo', repo: 'pulls', head: 'mallory:patch-1' });
    expect(listed.map((p) => p.number)).toEqual([pr.number]);
  });
});
