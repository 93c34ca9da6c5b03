/**
 * End to end: automatic fixes never run for a pull request from a fork (the app cannot push there and
 * the code is untrusted), whether the failure event lists the pull request or not (GitHub lists only
 * same-repository pull requests in `check_suite.pull_requests`; the app checks the head itself too).
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { CI_WORKFLOW, failingTestJobSteps } from '../support/ci-logs.ts';
import { pullRequestRepo } from '../support/pull-requests.ts';
import { checkSuiteCompleted, workflowRunCompleted } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const FORK = 'outsider/calc';
let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(
    REPO,
    { ...pullRequestRepo(), '.github/workflows/ci.yml': CI_WORKFLOW, '.github/codex.yml': 'autofix:\n  enabled: true\n' },
    { installationId: 1, permissions: { maintainer: 'write' } },
  );
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

test("a fork PR's failed checks: no automatic attempt, no comment, no commit", async () => {
  await h.github.addFork(REPO, FORK);
  const forkHead = await h.github.commitFiles(FORK, 'patch-1', { 'NOTES.md': 'from the fork\n' }, { from: 'main', message: 'Fork notes' });
  const pull = await h.github.addForkPull(REPO, { headRepo: FORK, head: 'patch-1', title: 'Fork notes', body: 'Please merge.', user: 'outsider' });
  const number = pull.number as number;
  const { suite, run } = await h.github.addWorkflowRun(REPO, { headSha: forkHead, headBranch: 'patch-1', jobs: [{ name: 'test', steps: failingTestJobSteps() }] });

  // As GitHub sends it (no pull request listed), and with the fork's pull request listed.
  expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite, installationId: 1 }))).toBe(200);
  expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite: { ...suite, pull_requests: [{ number }] }, installationId: 1 }))).toBe(200);
  expect(await h.deliver(workflowRunCompleted({ repo: h.github.repository(REPO), run: { ...run, pull_requests: [{ number }] }, installationId: 1 }))).toBe(200);

  await waitFor('the fork decisions', () => h.logLines().filter((l) => l.msg === 'autofix decision' && l.reason === 'fork').length === 2);
  expect(h.logLines().some((l) => l.msg === 'autofix: no pull request of this repository has this head; ignored')).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  expect(h.model.requests).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(0);
  expect(h.task(number)).toBeUndefined();
  expect((await h.github.git(FORK, 'rev-parse', 'refs/heads/patch-1')).trim()).toBe(forkHead);
});
