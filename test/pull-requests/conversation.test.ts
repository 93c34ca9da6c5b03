/**
 * End to end, the real app with the local runner, the GitHub stand-in and the scripted model:
 * `@codex <instruction>` in a same-repository pull request's conversation ends as one verified commit
 * on the pull request's branch (no new pull request), with 👀, one progress comment and a reply
 * linking the commit. The gate is the issues' one: a read-only commenter gets a refusal and no task;
 * a redelivered webhook makes no second task.
 */
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { FIXED_MATH, fixTurns } from '../support/fixtures.ts';
import { ProbotOctokitForTests } from '../support/github-stand-in.ts';
import { firstPrompt, openPullRequest, pullRequestRepo } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
const DONE = /✅ \*\*Done\*\*/;
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, pullRequestRepo(), { installationId: 1, permissions: { maintainer: 'write', reader: 'read' } });
});

afterEach(() => {
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

test('a conversation comment: 👀, one progress comment, one verified commit on the PR branch on top of its head, no new PR, a reply linking it', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'notes\n' }, { title: 'Add notes', body: 'Adds notes. The add test still fails.' });
  const pullsBefore = (await h.github.pulls(REPO)).length;
  h.model.push(...fixTurns());
  const delivery = h.mention(REPO, number, '@codex please fix the failing add test');
  expect(await h.deliver(delivery)).toBe(200);
  expect(await h.deliver(delivery)).toBe(200); // a redelivery: still one task

  const commentId = (delivery.payload.comment as { id: number }).id;
  await waitFor('the eyes reaction', () => h.github.reactions(REPO, { commentId }).some((r) => r.content === 'eyes'));
  const done = await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => DONE.test(c.body)), 60_000);
  expect(h.botComments(REPO, number)).toHaveLength(1);
  expect(done.history.length).toBeGreaterThan(1); // edited in place through its phases

  // One new commit on the branch, its parent the head the task started from, holding the fix only.
  const newHead = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect(newHead).not.toBe(headSha);
  expect((await h.github.git(REPO, 'rev-parse', `${newHead}^`)).trim()).toBe(headSha);
  expect((await h.github.git(REPO, 'diff', '--name-only', headSha, newHead)).trim()).toBe('src/math.js');
  expect(await h.github.git(REPO, 'show', `${newHead}:src/math.js`)).toBe(FIXED_MATH);
  const octokit = new ProbotOctokitForTests({ auth: { token: h.github.createInstallationToken(1).token }, baseUrl: h.github.apiUrl });
  const { data: commit } = await octokit.rest.git.getCommit({ owner: 'acme', repo: 'calc', commit_sha: newHead });
  expect(commit.verification?.verified).toBe(true);
  expect(await h.github.pulls(REPO)).toHaveLength(pullsBefore);

  // The reply links the commit, lists the file and gives the summary.
  expect(done.body).toContain(`[\`${newHead.slice(0, 7)}\`](${h.github.url}/${REPO}/commit/${newHead})`);
  expect(done.body).toContain('`src/math.js`');
  expect(done.body).toContain('`add` subtracted its arguments');

  // The agent saw the pull request: its head checked out, base for the diff, changed files, trust marks.
  const prompt = firstPrompt(h.model.requests[0]!);
  expect(prompt).toContain(`pull request head ${branch} checked out at ${headSha}`);
  expect(prompt).toContain('NOTES.md (+1 −0)');
  expect(prompt).toMatch(/\[pull_request by @maintainer \S+ \(trust: instruction\)\]/);
  expect(h.model.requests).toHaveLength(5);
});

test('a read-only commenter on a pull request gets one refusal and no task', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'more notes\n' });
  const before = h.model.requests.length;
  const delivery = h.mention(REPO, number, '@codex push something', 'reader');
  expect(await h.deliver(delivery)).toBe(200);
  const refusal = await waitFor('the refusal', () => h.botComments(REPO, number).find((c) => /write access/.test(c.body)));
  expect(refusal.body).toContain('@reader');
  expect(await h.deliver(delivery)).toBe(200);
  await new Promise((r) => setTimeout(r, 500));
  expect(h.botComments(REPO, number)).toHaveLength(1);
  expect(h.task(number)).toBeUndefined();
  expect(h.model.requests.length).toBe(before);
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(headSha);
});
