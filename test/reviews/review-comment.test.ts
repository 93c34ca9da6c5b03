/**
 * End to end: `@codex review` in an inline review comment on a line of the diff. The review is
 * published like any other; with nothing to report the 👍 goes on that review comment.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

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
