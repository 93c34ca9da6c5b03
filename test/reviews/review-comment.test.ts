/**
 * End to end: `@codex review` in an inline review comment on a line of the diff. The review is
 * published like any other; with nothing to report the 👍 goes on that review comment.
 */
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, pullRequestRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterEach(() => {
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

test('@codex review in an inline comment: 👀 then 👍 on that comment, no review when nothing is found', async () => {
  const { number } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  h.model.push(finalTurn(reviewJson([])));
  const { delivery, commentId } = await h.mentionInReviewComment(REPO, number, { path: 'src/x.ts', line: 12, body: '@codex review' });
  expect(await h.deliver(delivery)).toBe(200);
  await waitFor('the eyes reaction', () => h.github.reactions(REPO, { reviewCommentId: commentId }).some((r) => r.content === 'eyes'));
  await waitFor('the thumbs-up', () => h.github.reactions(REPO, { reviewCommentId: commentId }).some((r) => r.content === '+1'), 90_000);
  await waitFor('the progress line', () => h.botComments(REPO, number).find((c) => /👍 \*\*Reviewed\*\*/.test(c.body)));
  expect(botReviews(h, REPO, number)).toHaveLength(0);
}, 180_000);
