/**
 * End to end: a review that finds nothing at or above `min_priority` posts no review: a 👍 on the
 * request and one short comment naming the reviewed commit; the progress comment says so and links it.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

test('nothing found: 👍 on the request, one short comment naming the commit, no review', async () => {
  const { number, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  // A P3 only: below the default min_priority (P1), so counted, not posted.
  h.model.push(finalTurn(reviewJson([{ title: 'Tiny nit', priority: 3, path: 'src/x.ts', start: 12 }], { correct: true })));
  const delivery = h.mention(REPO, number, '@codex review');
  expect(await h.deliver(delivery)).toBe(200);
  const commentId = (delivery.payload.comment as { id: number }).id;
  const note = await waitFor('the short comment', () => h.botComments(REPO, number).find((c) => c.body.includes('👍 No new issues')), 90_000);
  expect(note.body).toContain(headSha);
  expect(note.body).toContain('1 lower-priority finding not posted');
  await waitFor('the thumbs-up', () => h.github.reactions(REPO, { commentId }).some((r) => r.content === '+1'));
  const progress = await waitFor('the progress line', () => h.botComments(REPO, number).find((c) => /👍 \*\*Reviewed\*\*/.test(c.body)));
  expect(progress.body).toContain(String(note.html_url));
  expect(botReviews(h, REPO, number)).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(2);
}, 180_000);
