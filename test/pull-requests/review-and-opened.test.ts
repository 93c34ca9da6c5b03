/**
 * End to end: the two other ways to ask on a pull request. A submitted review whose body mentions
 * the app (👀 on the pull request: reviews have no reactions API), and a new pull request whose body
 * does. Both end as a commit on the pull request's branch; a review without the mention does nothing.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, patchTurns, pullRequestRepo, X_TS_PATCH, X_TS_PR } from '../support/pull-requests.ts';
import { pullRequestOpened, pullRequestReviewSubmitted } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

const pullOf = async (number: number) => (await h.github.pulls(REPO)).find((p) => p.number === number)!;
const done = (number: number) => waitFor('the final reply', () => h.botComments(REPO, number).find((c) => /✅ \*\*Done\*\*/.test(c.body)), 60_000);

test('a review whose body mentions the app: 👀 on the pull request, a commit on its branch', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  const quiet = await h.github.addReview(REPO, number, { user: 'maintainer', body: 'Looks fine overall.', state: 'COMMENTED' });
  expect(await h.deliver(pullRequestReviewSubmitted({ repo: h.github.repository(REPO), pull: await pullOf(number), review: quiet, installationId: 1 }))).toBe(200);

  h.model.push(...patchTurns(X_TS_PATCH));
  const review = await h.github.addReview(REPO, number, { user: 'maintainer', body: '@codex use a constant for the rate', state: 'CHANGES_REQUESTED' });
  expect(await h.deliver(pullRequestReviewSubmitted({ repo: h.github.repository(REPO), pull: await pullOf(number), review, installationId: 1 }))).toBe(200);
  await waitFor('the eyes reaction on the pull request', () => h.github.reactions(REPO, { issueNumber: number }).some((r) => r.content === 'eyes'));
  await done(number);
  const head = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${head}^`)).trim()).toBe(headSha);
  expect(h.botComments(REPO, number)).toHaveLength(1);
  expect(h.model.requests).toHaveLength(2); // the quiet review started nothing
});

test('a new pull request whose body mentions the app: a commit on its branch', async () => {
  h.model.push(...patchTurns(X_TS_PATCH));
  const { number, branch, headSha, pull } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR }, { body: 'Adds gross().\n\n@codex use a constant for the rate' });
  expect(await h.deliver(pullRequestOpened({ repo: h.github.repository(REPO), pull, installationId: 1 }))).toBe(200);
  await waitFor('the eyes reaction on the pull request', () => h.github.reactions(REPO, { issueNumber: number }).some((r) => r.content === 'eyes'));
  await done(number);
  const head = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${head}^`)).trim()).toBe(headSha);
});
