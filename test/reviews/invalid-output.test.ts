/**
 * End to end: the reviewer's final message is not a valid review JSON object. The runner asks the
 * model once to restate it; still invalid, the review fails with a clear reply naming the problem,
 * and nothing is posted on the pull request (no review, no 👍).
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn } from '../support/reviews.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

test('invalid review JSON: one restate request, then a clear failure reply; nothing posted', async () => {
  const { number } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  h.model.push(
    finalTurn('{"findings": [{"title": "x", "priority": 7}], "overall_correctness": "maybe"}'),
    finalTurn('Sorry, I found nothing worth a JSON object.', (req) => {
      const last = JSON.stringify((req.body?.input as unknown[]).at(-1));
      expect(last).toMatch(/restate|JSON/i);
    }),
  );
  const delivery = h.mention(REPO, number, '@codex review');
  expect(await h.deliver(delivery)).toBe(200);
  const failed = await waitFor('the failure reply', () => h.botComments(REPO, number).find((c) => /Failed/.test(c.body)), 90_000);
  expect(failed.body).toContain('The review failed during `agent`');
  expect(failed.body).toContain('not a valid review JSON object');
  expect(failed.body).toContain('@codex retry');
  expect(h.model.requests).toHaveLength(2);
  expect(botReviews(h, REPO, number)).toHaveLength(0);
  expect(h.github.reactions(REPO, { issueNumber: number }).filter((r) => r.content === '+1')).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(1);
}, 180_000);
