/**
 * End to end: automatic reviews (`review.auto: true` in `.github/codex.yml`). `pull_request.opened`
 * → one review, a redelivery or a `reopened` of the same head → still one; a draft pull request → none
 * until `ready_for_review`; an author in `authors_ignore` → none; findings on `paths_ignore` files are
 * not published and the reviewer is told to skip them. Automatic reviews get no 👀 (nobody asked).
 */
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { firstPrompt, openPullRequest, pullRequestRepo, X_TS_PR } from '../support/pull-requests.ts';
import { botReviews, finalTurn, pullRequestEvent, reviewJson } from '../support/reviews.ts';

const REPO = 'acme/calc';
const CONFIG = 'review:\n  auto: true\n  authors_ignore: ["ignored-dev"]\n  paths_ignore: ["docs/**"]\n';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, { ...pullRequestRepo(), '.github/codex.yml': CONFIG }, { installationId: 1, permissions: { maintainer: 'write', 'ignored-dev': 'write' } });
});

afterEach(() => {
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

const P1 = { title: 'Hard-coded tax rate', priority: 1 as const, path: 'src/x.ts', start: 12 };
const reviewed = (number: number) => waitFor('the review', () => h.botComments(REPO, number).find((c) => /Reviewed/.test(c.body)), 90_000);

test('opened → one review; a redelivery and a reopen of the same head → still one; no 👀', async () => {
  const { number, pull, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  h.model.push(finalTurn(reviewJson([P1])));
  const opened = pullRequestEvent(h, REPO, 'opened', pull);
  expect(await h.deliver(opened)).toBe(200);
  expect(await h.deliver(opened)).toBe(200);
  await reviewed(number);
  expect(await h.deliver(pullRequestEvent(h, REPO, 'reopened', pull))).toBe(200);
  await sleep(1500);
  const reviews = botReviews(h, REPO, number);
  expect(reviews).toHaveLength(1);
  expect(reviews[0]!.commit_id).toBe(headSha);
  expect(h.github.reactions(REPO, { issueNumber: number }).some((r) => r.content === 'eyes')).toBe(false);
  expect(h.model.requests).toHaveLength(1);
}, 180_000);

test('a draft pull request: no review until ready_for_review', async () => {
  const before = h.model.requests.length;
  const { number, pull } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  expect(await h.deliver(pullRequestEvent(h, REPO, 'opened', pull, { draft: true }))).toBe(200);
  await sleep(1500);
  expect(h.botComments(REPO, number)).toHaveLength(0);
  expect(h.model.requests.length).toBe(before);
  h.model.push(finalTurn(reviewJson([P1])));
  expect(await h.deliver(pullRequestEvent(h, REPO, 'ready_for_review', pull, { draft: false }))).toBe(200);
  await reviewed(number);
  expect(botReviews(h, REPO, number)).toHaveLength(1);
}, 180_000);

test('authors_ignore: no review of their pull requests', async () => {
  const before = h.model.requests.length;
  const { number, pull } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR }, { user: 'ignored-dev' });
  expect(await h.deliver(pullRequestEvent(h, REPO, 'opened', pull))).toBe(200);
  await sleep(1500);
  expect(h.botComments(REPO, number)).toHaveLength(0);
  expect(h.model.requests.length).toBe(before);
}, 180_000);

test('paths_ignore: the reviewer is told to skip the files, and a finding on one is not published', async () => {
  const { number, pull } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR, 'docs/guide.md': 'A guide.\n' });
  h.model.push(
    finalTurn(reviewJson([P1, { title: 'Typo in the guide', priority: 1, path: 'docs/guide.md', start: 1 }]), (req) => {
      expect(firstPrompt(req)).toContain("':(exclude,glob)docs/**'");
    }),
  );
  expect(await h.deliver(pullRequestEvent(h, REPO, 'opened', pull))).toBe(200);
  await reviewed(number);
  const reviews = botReviews(h, REPO, number);
  expect(reviews).toHaveLength(1);
  expect(String(reviews[0]!.body)).not.toContain('Typo in the guide');
  const inline = h.github.reviewComments(REPO, number);
  expect(inline.map((c) => c.path)).toEqual(['src/x.ts']);
}, 180_000);

test('a new pull request whose body says `@codex review <focus>`: one review (the asked one, with its focus), not two', async () => {
  const before = h.model.requests.length;
  const { number, pull } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR }, { body: 'Adds gross().\n\n@codex review rounding' });
  h.model.push(finalTurn(reviewJson([P1]), (req) => expect(firstPrompt(req)).toContain('rounding')));
  expect(await h.deliver(pullRequestEvent(h, REPO, 'opened', pull))).toBe(200);
  await reviewed(number);
  await sleep(1500);
  expect(botReviews(h, REPO, number)).toHaveLength(1);
  expect(h.model.requests.length).toBe(before + 1);
}, 180_000);
