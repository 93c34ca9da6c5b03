/**
 * End to end: a review changes nothing. A reviewer that edits files anyway (apply_patch) and runs a
 * command still ends as a review only: no commit, no branch, the files it wrote are not published;
 * the review body lists the command it ran with its exit code, from the runner's records.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, pullRequestRepo, X_TS_PATCH, X_TS_PR } from '../support/pull-requests.ts';
import { toolOutputs } from '../support/scripted-model.ts';
import { botReviews, finalTurn, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

test('a reviewer that edits files: a review only, nothing pushed; the commands it ran are listed from the records', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  const refsBefore = await h.github.git(REPO, 'for-each-ref', '--format=%(refname) %(objectname)');
  h.model.push(
    [{ type: 'function_call', name: 'apply_patch', arguments: { input: X_TS_PATCH } }],
    (req) => {
      // The edit happened in the checkout: the review must still publish nothing of it.
      expect(toolOutputs(req).at(-1)?.output ?? '').toContain('Success. Updated the following files');
      return [{ type: 'function_call', name: 'shell', arguments: { command: ['grep', '-n', '1.0825', 'src/x.ts'] } }];
    },
    finalTurn(reviewJson([{ title: 'Hard-coded tax rate', priority: 1, path: 'src/x.ts', start: 12 }])),
  );
  expect(await h.deliver(h.mention(REPO, number, '@codex review'))).toBe(200);
  await waitFor('the review', () => h.botComments(REPO, number).find((c) => /Reviewed/.test(c.body)), 90_000);
  const reviews = botReviews(h, REPO, number);
  expect(reviews).toHaveLength(1);
  expect(String(reviews[0]!.body)).toMatch(/`grep -n 1\.0825 src\/x\.ts` → exit \d/);
  expect(await h.github.git(REPO, 'for-each-ref', '--format=%(refname) %(objectname)')).toBe(refsBefore);
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(headSha);
  expect((await h.github.pulls(REPO)).length).toBe(1);
}, 180_000);
