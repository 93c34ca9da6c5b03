/**
 * End to end: a check suite created by the app itself never starts an automatic fix, and the app's
 * own failing check runs are left out of a fix started by another app's failure.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { firstPrompt, openPullRequest, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';
import { checkSuiteCompleted } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/codex.yml': 'autofix:\n  enabled: true\n' });

test("the app's own failed check suite is ignored; its failing check run stays out of another app's fix", async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'notes\n' });
  const own = h.github.addCheckRun(REPO, { headSha, name: 'Codex Cloud', app: 'own', output: { title: 'OWN-CHECK-OUTPUT', summary: 'the app failed' } });
  const ownSuite = h.github.checkSuite((own.check_suite as { id: number }).id);
  expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite: ownSuite, installationId: 1 }))).toBe(200);
  await waitFor('the own suite to be ignored', () => h.logLines().some((l) => l.msg === "autofix: the App's own checks are ignored"));
  await new Promise((r) => setTimeout(r, 300));
  expect(h.model.requests).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(0);
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(headSha);

  // Another CI app fails on the same head: a fix of its check only.
  const ci = h.github.addCheckRun(REPO, { headSha, name: 'unit', output: { title: 'UNIT-FAILED', summary: 'add(2, 3) returned -1' } });
  const ciSuite = h.github.checkSuite((ci.check_suite as { id: number }).id);
  h.model.push(...patchTurns('*** Begin Patch\n*** Add File: fix.txt\n+fixed\n*** End Patch'));
  expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite: ciSuite, installationId: 1 }))).toBe(200);
  const done = await waitFor('the fix reply', () => h.botComments(REPO, number).find((c) => /^Pushed \[/.test(c.body)), 90_000);
  const prompt = firstPrompt(h.model.requests[0]!);
  expect(prompt).toContain('UNIT-FAILED');
  expect(prompt).not.toContain('OWN-CHECK-OUTPUT');
  expect(done.body).toContain('`unit`');
  expect(done.body).not.toContain('Codex Cloud');
  expect((await h.github.git(REPO, 'log', '-1', '--format=%s', `refs/heads/${branch}`)).trim()).toBe('Fix failing checks: unit');
}, 150_000);
