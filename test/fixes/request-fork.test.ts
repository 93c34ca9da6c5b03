/**
 * End to end: `@codex fix ci` on a pull request from a fork. The agent gets the failing checks and the
 * cut log like on any pull request, but the fork rule of pull request work applies: the app cannot
 * push to the fork, so the fix becomes a new pull request from a `codex/pr-<n>-…` branch of the base
 * repository on top of the fork's head; the fork is untouched.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { ASSERTION_MESSAGE, CI_WORKFLOW, failingTestJobSteps } from '../support/ci-logs.ts';
import { FIX_PATCH, FIXED_MATH } from '../support/fixtures.ts';
import { firstPrompt, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
const FORK = 'outsider/calc';
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/workflows/ci.yml': CI_WORKFLOW });

test('a fork PR: the agent gets the failing log; the fix is a new PR on top of the fork head; the fork is untouched', async () => {
  await h.github.addFork(REPO, FORK);
  const forkHead = await h.github.commitFiles(FORK, 'patch-1', { 'NOTES.md': 'from the fork\n' }, { from: 'main', message: 'Fork notes' });
  const pull = await h.github.addForkPull(REPO, { headRepo: FORK, head: 'patch-1', title: 'Fork notes', body: 'Please merge.', user: 'outsider' });
  const number = pull.number as number;
  await h.github.addWorkflowRun(REPO, { headSha: forkHead, headBranch: 'patch-1', jobs: [{ name: 'test', steps: failingTestJobSteps() }] });
  const pullsBefore = (await h.github.pulls(REPO)).length;
  h.model.push(...patchTurns(FIX_PATCH));

  expect(await h.deliver(h.mention(REPO, number, '@codex fix ci'))).toBe(200);
  const done = await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => /✅ \*\*Done\*\*/.test(c.body)), 90_000);
  const prompt = firstPrompt(h.model.requests[0]!);
  expect(prompt).toContain(ASSERTION_MESSAGE);
  expect(prompt).toContain('Make them pass.');

  const pulls = await h.github.pulls(REPO);
  expect(pulls).toHaveLength(pullsBefore + 1);
  const opened = pulls.at(-1) as { number: number; head: { ref: string } };
  expect(opened.head.ref).toMatch(new RegExp(`^codex/pr-${number}-`));
  const commit = (await h.github.git(REPO, 'rev-parse', `refs/heads/${opened.head.ref}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${commit}^`)).trim()).toBe(forkHead);
  expect(await h.github.git(REPO, 'show', `${commit}:src/math.js`)).toBe(FIXED_MATH);
  expect(done.body).toContain(`#${opened.number}`);
  expect((await h.github.git(FORK, 'rev-parse', 'refs/heads/patch-1')).trim()).toBe(forkHead);
}, 150_000);
