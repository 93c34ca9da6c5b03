/**
 * End to end, the real app with the local runner, the GitHub stand-in and the scripted model:
 * `autofix.enabled: true` and a failed check suite on a pull request's head start a fix on their own
 * (no comment from a person); a redelivery starts nothing; the check failing again on the app's own
 * commit is a second attempt; failing again after `max_attempts` (2) starts no third, and one comment
 * says the cap was reached. Attempts are stored in the app's database (the app restarts before the
 * third failure).
 */
import { afterAll, afterEach, beforeAll, expect, test } from '@jest/globals';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { CI_WORKFLOW, failingTestJobSteps } from '../support/ci-logs.ts';
import { openPullRequest, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';
import { checkSuiteCompleted, workflowRunCompleted } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const CAP = /Automatic fixing stopped/;
let h: AppHarness;

const addFile = (name: string) => `*** Begin Patch\n*** Add File: ${name}\n+fixed\n*** End Patch`;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(
    REPO,
    { ...pullRequestRepo(), '.github/workflows/ci.yml': CI_WORKFLOW, '.github/codex.yml': 'autofix:\n  enabled: true\n  checks: [test]\n' },
    { installationId: 1, permissions: { maintainer: 'write' } },
  );
});

afterEach(() => {
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

async function headOf(branch: string): Promise<string> {
  return (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
}

async function failOn(headSha: string) {
  const created = await h.github.addWorkflowRun(REPO, { headSha, jobs: [{ name: 'test', steps: failingTestJobSteps() }, { name: 'lint', steps: [{ name: 'Run npm run lint', conclusion: 'failure', lines: ['error  no-unused-vars'] }] }] });
  return { ...created, delivery: checkSuiteCompleted({ repo: h.github.repository(REPO), suite: created.suite, installationId: 1 }) };
}

test('a failed check suite: one automatic fix commit; a redelivery: still one; failing again on the app commit: a second; again (after a restart): no third, one cap comment', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'notes\n' }, { title: 'Parse amounts' });
  const pushed = () => h.botComments(REPO, number).filter((c) => /^Pushed \[/.test(c.body));

  // Attempt 1: no person asked.
  const first = await failOn(headSha);
  h.model.push(...patchTurns(addFile('fix-1.txt')));
  expect(await h.deliver(first.delivery)).toBe(200);
  await waitFor('the first fix reply', () => pushed().length === 1, 90_000);
  const c1 = await headOf(branch);
  expect((await h.github.git(REPO, 'rev-parse', `${c1}^`)).trim()).toBe(headSha);
  expect((await h.github.git(REPO, 'log', '-1', '--format=%s', c1)).trim()).toBe('Fix failing checks: test');
  expect(pushed()[0]!.body).toContain('(automatic attempt 1 of 2)');
  expect(pushed()[0]!.body).not.toContain('`lint`'); // autofix.checks: [test]
  expect(h.github.comments(REPO, number).every((c) => (c.user as { login: string }).login === h.github.botLogin)).toBe(true);
  expect(h.model.requests).toHaveLength(2);

  // A redelivery (the inbox keeps one row per delivery id, so it is not processed again) and the
  // workflow run about the same failure (decided, and refused as the same attempt): nothing new.
  expect(await h.deliver(first.delivery)).toBe(200);
  expect(await h.deliver(workflowRunCompleted({ repo: h.github.repository(REPO), run: first.run, installationId: 1 }))).toBe(200);
  await waitFor('the workflow run to be decided', () => h.logLines().filter((l) => l.msg === 'autofix decision').length >= 2);
  expect(await headOf(branch)).toBe(c1);
  expect(h.model.requests).toHaveLength(2);

  // Attempt 2: the check fails again on the app's commit.
  const second = await failOn(c1);
  h.model.push(...patchTurns(addFile('fix-2.txt')));
  expect(await h.deliver(second.delivery)).toBe(200);
  await waitFor('the second fix reply', () => pushed().length === 2, 90_000);
  const c2 = await headOf(branch);
  expect((await h.github.git(REPO, 'rev-parse', `${c2}^`)).trim()).toBe(c1);
  expect(pushed()[1]!.body).toContain('(automatic attempt 2 of 2)');
  expect(h.model.requests).toHaveLength(4);

  // The attempts are stored durably: a restarted app still counts them.
  await h.stopApp();
  await h.startApp();

  // Fails again: the cap is reached; one comment, no third attempt, also on redelivery.
  const third = await failOn(c2);
  expect(await h.deliver(third.delivery)).toBe(200);
  const cap = await waitFor('the cap comment', () => h.botComments(REPO, number).find((c) => CAP.test(c.body)));
  expect(cap.body).toContain('`test` still fails after 2 automatic fix attempts');
  expect(cap.body).toContain('@codex fix ci');
  expect(await h.deliver(third.delivery)).toBe(200);
  expect(await h.deliver(workflowRunCompleted({ repo: h.github.repository(REPO), run: third.run, installationId: 1 }))).toBe(200);
  // The redelivery is deduplicated by the inbox; the workflow run is decided (cap already reported).
  await waitFor('the workflow run to be decided', () => h.logLines().filter((l) => l.msg === 'autofix decision').length >= 5);
  expect(h.botComments(REPO, number).filter((c) => CAP.test(c.body))).toHaveLength(1);
  expect(await headOf(branch)).toBe(c2);
  expect(h.model.requests).toHaveLength(4);
  expect(h.github.comments(REPO, number).filter((c) => (c.user as { login: string }).login !== h.github.botLogin)).toHaveLength(0);
}, 240_000);
