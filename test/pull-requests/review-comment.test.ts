/**
 * End to end: an inline review comment `@codex use a constant here` on line 12 of `src/x.ts`. The
 * agent's first model request says which file and line the comment is about and carries the diff
 * hunk; 👀 goes on the review comment; the commit on the pull request's branch changes that file.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { firstPrompt, openPullRequest, patchTurns, pullRequestRepo, X_TS_PATCH, X_TS_PR } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, pullRequestRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

test('an inline review comment: the first model request has the path, the line and the hunk; the commit changes that file', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR }, { title: 'Gross prices' });
  expect(X_TS_PR.split('\n')[11]).toBe('  return price * 1.0825;');
  h.model.push(...patchTurns(X_TS_PATCH, { title: 'Use a constant for the tax rate' }));
  const { delivery, commentId } = await h.mentionInReviewComment(REPO, number, { path: 'src/x.ts', line: 12, body: '@codex use a constant here' });
  expect(await h.deliver(delivery)).toBe(200);

  await waitFor('the eyes reaction on the review comment', () => h.github.reactions(REPO, { reviewCommentId: commentId }).some((r) => r.content === 'eyes'));
  const done = await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => /✅ \*\*Done\*\*/.test(c.body)), 60_000);

  const prompt = firstPrompt(h.model.requests[0]!);
  expect(prompt).toContain('inline review comment on `src/x.ts`, line 12 of the head version');
  expect(prompt).toContain('Diff hunk of `src/x.ts`:');
  expect(prompt).toContain('+  return price * 1.0825;');
  expect(prompt).toContain('use a constant here');

  const newHead = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${newHead}^`)).trim()).toBe(headSha);
  expect((await h.github.git(REPO, 'diff', '--name-only', headSha, newHead)).trim()).toBe('src/x.ts');
  expect(await h.github.git(REPO, 'show', `${newHead}:src/x.ts`)).toContain('  return price * TAX_RATE;');
  expect(done.body).toContain(newHead.slice(0, 7));
  // The reply goes to the pull request's conversation, the only comment of the app there.
  expect(h.botComments(REPO, number)).toHaveLength(1);
});
