/**
 * End to end, the real app with the local runner, the GitHub stand-in and the scripted model:
 * `@codex fix ci` on a pull request whose `test` job failed with a 3,000-line jest log. The app reads
 * the failing check, its job and its log (through the presigned redirect) with its installation
 * token, cuts the log to the failing step around the assertion error, and hands it to the agent as
 * untrusted data; the fix is one verified commit on the pull request's branch, on top of the failing
 * head, and the reply names the check, links the job log that was read and the commit.
 */
import { writeFileSync } from 'node:fs';
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { ASSERTION_MESSAGE, CI_WORKFLOW, FAILING_STEP_NAME, failingTestJobSteps } from '../support/ci-logs.ts';
import { FIX_PATCH, FIXED_MATH } from '../support/fixtures.ts';
import { ProbotOctokitForTests } from '../support/github-stand-in.ts';
import { firstPrompt, openPullRequest, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/workflows/ci.yml': CI_WORKFLOW });

test('@codex fix ci: the agent gets the cut log (assertion error, failing step, not 3,000 lines); one commit on the PR branch; a reply linking the job and the commit', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'notes\n' }, { title: 'Parse amounts' });
  const { jobs } = await h.github.addWorkflowRun(REPO, { headSha, jobs: [{ name: 'test', steps: failingTestJobSteps() }] });
  const jobUrl = String(jobs[0]!.html_url);
  h.model.push(...patchTurns(FIX_PATCH, { title: 'Fix add()' }));

  const delivery = h.mention(REPO, number, '@codex fix ci');
  expect(await h.deliver(delivery)).toBe(200);
  expect(await h.deliver(delivery)).toBe(200); // a redelivery: still one task
  const done = await waitFor('the fix reply', () => h.botComments(REPO, number).find((c) => /^Pushed \[/.test(c.body)), 90_000);
  expect(h.botComments(REPO, number)).toHaveLength(1);

  // What the agent saw: the failing step and the assertion, as data; not the whole log.
  const prompt = firstPrompt(h.model.requests[0]!);
  if (process.env.FIX_PROMPT_OUT) writeFileSync(process.env.FIX_PROMPT_OUT, prompt);
  if (process.env.FIX_REPLY_OUT) writeFileSync(process.env.FIX_REPLY_OUT, done.body);
  expect(prompt).toContain(ASSERTION_MESSAGE);
  expect(prompt).toContain(FAILING_STEP_NAME);
  expect(prompt).toContain('.github/workflows/ci.yml');
  expect(prompt).toMatch(/check_log .*\(trust: data\)/);
  expect(prompt).not.toContain('\u001b[');
  expect(prompt).not.toContain('module-001.test.js');
  expect((prompt.match(/handles case/g) ?? []).length).toBeLessThan(200);
  expect(Buffer.byteLength(prompt)).toBeLessThan(60_000);
  // The log was fetched from the presigned URL without the installation token.
  expect(h.github.logRequests.length).toBeGreaterThan(0);
  expect(h.github.logRequests.every((r) => r.authorization === undefined)).toBe(true);

  // One verified commit on the branch, on top of the failing head, with the fix message.
  const newHead = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${newHead}^`)).trim()).toBe(headSha);
  expect(await h.github.git(REPO, 'show', `${newHead}:src/math.js`)).toBe(FIXED_MATH);
  const octokit = new ProbotOctokitForTests({ auth: { token: h.github.createInstallationToken(1).token }, baseUrl: h.github.apiUrl });
  const { data: commit } = await octokit.rest.git.getCommit({ owner: 'acme', repo: 'calc', commit_sha: newHead });
  expect(commit.verification?.verified).toBe(true);
  expect(commit.message).toMatch(/^Fix failing checks: test\n\nFailing checks:\n- test \(failure, step \d+ "Run tests"\)/);
  expect(commit.message).toContain('Co-authored-by: maintainer');

  // The reply: the check, the job log read, the failing step, the commit.
  expect(done.body).toContain(`[\`${newHead.slice(0, 7)}\`](${h.github.url}/${REPO}/commit/${newHead})`);
  expect(done.body).toContain(`[job log](${jobUrl})`);
  expect(done.body).toContain('`test`');
  expect(done.body).toContain(FAILING_STEP_NAME);
  expect(done.body).not.toContain('unavailable');
  expect(done.body).toMatch(new RegExp(`\\[Task log\\]\\(${h.url}/tasks/task_\\w+\\?key=`));
  expect(h.model.requests).toHaveLength(2);
}, 150_000);
