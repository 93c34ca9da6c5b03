/**
 * End to end: `review.auto` with `on_push: true`. A push (`synchronize`) after a review gets an
 * incremental review: the reviewer is asked about the new commits only (`<last reviewed>..<head>`)
 * and given the app's open earlier findings. The finding it lists as resolved gets "Fixed in
 * `<sha7>`" in its thread; the one it reports again on the same lines is not posted twice.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { firstPrompt, openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn, pullOf, pullRequestEvent, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/codex.yml': 'review:\n  auto: true\n  on_push: true\n' });

const RATE = { title: 'Hard-coded tax rate', priority: 1 as const, path: 'src/x.ts', start: 12 };
const SIGNATURE = { title: 'gross() accepts negative prices', priority: 1 as const, path: 'src/x.ts', start: 11 };

test('synchronize: an incremental review of the new commits; "Fixed in" for the resolved finding; no duplicate', async () => {
  const { number, pull, branch, headSha: first } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  h.model.push(finalTurn(reviewJson([RATE, SIGNATURE])));
  expect(await h.deliver(pullRequestEvent(h, REPO, 'opened', pull))).toBe(200);
  await waitFor('the first review', () => h.botComments(REPO, number).find((c) => /Reviewed/.test(c.body)), 90_000);
  const threads = h.github.reviewComments(REPO, number);
  expect(threads).toHaveLength(2);
  const signatureThread = threads.find((c) => String(c.body).includes(SIGNATURE.title))!;

  // A push: a new commit on the branch (lines of src/x.ts unchanged, a guard added in a new file).
  const second = await h.github.commitFiles(REPO, branch, { 'src/guard.ts': 'export const guard = (p: number) => Math.max(0, p);\n' }, { message: 'Guard prices' });
  let idOfSignature = '';
  h.model.push(
    finalTurn(
      () => reviewJson([RATE], { resolved: [idOfSignature] }),
      (req) => {
        const prompt = firstPrompt(req);
        expect(prompt).toContain(`git diff ${first}..${second}`);
        const earlier = prompt.split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as { id: string; title: string });
        expect(earlier.map((e) => e.title).sort()).toEqual([RATE.title, SIGNATURE.title].sort());
        idOfSignature = earlier.find((e) => e.title === SIGNATURE.title)!.id;
      },
    ),
  );
  expect(await h.deliver(pullRequestEvent(h, REPO, 'synchronize', await pullOf(h, REPO, number), {}, { before: first, after: second }))).toBe(200);
  await waitFor('the "Fixed in" reply', () => h.github.reviewComments(REPO, number).find((c) => c.in_reply_to_id === signatureThread.id), 90_000);
  const reply = h.github.reviewComments(REPO, number).find((c) => c.in_reply_to_id === signatureThread.id)!;
  expect(reply.body).toBe(`Fixed in \`${second.slice(0, 7)}\`.`);
  // The rate finding, still open on the same lines, is not posted again.
  await waitFor('the second progress line', () => h.botComments(REPO, number).filter((c) => /Reviewed/.test(c.body)).length === 2);
  const rateComments = h.github.reviewComments(REPO, number).filter((c) => String(c.body).includes(RATE.title));
  expect(rateComments).toHaveLength(1);
  // Nothing new to post: no second review (a thread reply is an empty review on GitHub), a 👍 comment.
  expect(botReviews(h, REPO, number).filter((r) => String(r.body) !== '')).toHaveLength(1);
  const note = h.botComments(REPO, number).find((c) => c.body.includes('👍 No new issues'))!;
  expect(note.body).toContain(`in ${second} (1 earlier finding still open)`);
  expect(h.model.requests).toHaveLength(2);
}, 180_000);
