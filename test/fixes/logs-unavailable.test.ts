/**
 * End to end: the job log endpoint fails (404: logs expired or deleted; 500) when a fix is asked
 * for. The agent still gets the check run's output and annotations; the reply says the logs were
 * unavailable. With a fix: one commit and the note; without one (the agent changed nothing): the
 * not-fixed reply with the note, and no commit.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { CI_WORKFLOW, failingTestJobSteps } from '../support/ci-logs.ts';
import { FIX_PATCH } from '../support/fixtures.ts';
import { firstPrompt, openPullRequest, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
const OUTPUT = { title: '1 test failed', summary: 'parseAmount › accepts a decimal comma: EXPECTED-1.5-RECEIVED-15' };
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/workflows/ci.yml': CI_WORKFLOW });

async function failingPull(logStatus: number) {
  const opened = await openPullRequest(h.github, REPO, { 'NOTES.md': `notes ${logStatus}\n` });
  const { jobs } = await h.github.addWorkflowRun(REPO, { headSha: opened.headSha, jobs: [{ name: 'test', steps: failingTestJobSteps(), output: OUTPUT }] });
  h.github.setJobLogStatus(Number(jobs[0]!.id), logStatus);
  return { ...opened, jobUrl: String(jobs[0]!.html_url) };
}

test('logs expired (404): the agent gets the check output; one commit; the reply says the logs were unavailable', async () => {
  const { number, branch, headSha, jobUrl } = await failingPull(404);
  const before = h.model.requests.length;
  h.model.push(...patchTurns(FIX_PATCH));
  expect(await h.deliver(h.mention(REPO, number, '@codex fix the failing checks'))).toBe(200);
  const done = await waitFor('the fix reply', () => h.botComments(REPO, number).find((c) => /^Pushed \[/.test(c.body)), 90_000);
  const prompt = firstPrompt(h.model.requests[before]!);
  expect(prompt).toContain('EXPECTED-1.5-RECEIVED-15');
  expect(prompt).toContain('Process completed with exit code 1.');
  expect(prompt).toContain('The log could not be read (expired: GitHub answered 404)');
  expect(prompt).toContain('were unavailable');
  expect(prompt).not.toContain('AssertionError');
  expect(done.body).toMatch(/The logs of `test` \(expired or deleted\) were unavailable/);
  expect(done.body).toContain(`[job](${jobUrl}) (log unavailable)`);
  const newHead = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${newHead}^`)).trim()).toBe(headSha);
});

test('logs endpoint failing (500) and the agent changes nothing: the not-fixed reply with the note, no commit', async () => {
  const { number, branch, headSha } = await failingPull(500);
  const before = h.model.requests.length;
  h.model.push([{ type: 'message', text: 'I could not reproduce the failure: `node --test` passes here.' }]);
  // Octokit retries the 500 with back-off: the app may answer 202 (still working) rather than 200.
  expect([200, 202]).toContain(await h.deliver(h.mention(REPO, number, '@codex the build is red, fix ci please')));
  const done = await waitFor('the not-fixed reply', () => h.botComments(REPO, number).find((c) => /^Could not fix/.test(c.body)), 90_000);
  expect(firstPrompt(h.model.requests[before]!)).toContain('EXPECTED-1.5-RECEIVED-15');
  expect(done.body).toContain('Nothing was pushed');
  expect(done.body).toMatch(/The logs of `test` \(could not be downloaded\) were unavailable/);
  expect(done.body).toContain('could not reproduce the failure');
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(headSha);
}, 150_000);
