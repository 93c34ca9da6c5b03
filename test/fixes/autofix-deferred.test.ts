/**
 * End to end: one automatic attempt at a time per pull request. A failure that arrives while a fix
 * runs waits; when the fix ends (here without a change, so the head stays) it is evaluated again
 * against the pull request's head, and the check not yet attempted on that head gets its own fix.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { firstPrompt, openPullRequest, patchTurns, pullRequestRepo } from '../support/pull-requests.ts';
import { checkSuiteCompleted } from '../support/webhooks.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, { ...pullRequestRepo(), '.github/codex.yml': 'autofix:\n  enabled: true\n' });

const decisions = (action: string) => h.logLines().filter((l) => l.msg === 'autofix decision' && l.decision === action);

test('a failure while a fix runs waits, then is evaluated again on the head: the other check gets its fix', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'NOTES.md': 'notes\n' });
  const unit = h.github.addCheckRun(REPO, { headSha, name: 'unit', app: { id: 4242, slug: 'stand-in-ci', name: 'Stand-in CI' }, output: { title: 'UNIT-FAILED' } });
  const lintApp = { id: 5151, slug: 'lint-ci', name: 'Lint CI' };

  // Attempt 1 (unit): while it runs, the lint suite fails on the same head; the agent changes nothing.
  h.model.push(async () => {
    const lint = h.github.addCheckRun(REPO, { headSha, name: 'lint', app: lintApp, output: { title: 'LINT-FAILED' } });
    const suite = h.github.checkSuite((lint.check_suite as { id: number }).id);
    expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite, installationId: 1 }))).toBe(200);
    await waitFor('the lint failure to wait', () => decisions('wait').length === 1);
    return [{ type: 'message', text: 'The unit failure does not reproduce here.' }];
  });
  h.model.push(...patchTurns('*** Begin Patch\n*** Add File: lint-fix.txt\n+fixed\n*** End Patch'));
  const unitSuite = h.github.checkSuite((unit.check_suite as { id: number }).id);
  expect(await h.deliver(checkSuiteCompleted({ repo: h.github.repository(REPO), suite: unitSuite, installationId: 1 }))).toBe(200);

  const notFixed = await waitFor('the not-fixed reply', () => h.botComments(REPO, number).find((c) => /^Could not fix/.test(c.body)), 90_000);
  expect(notFixed.body).toContain('`unit`');
  const pushed = await waitFor('the lint fix', () => h.botComments(REPO, number).find((c) => /^Pushed \[/.test(c.body)), 90_000);
  expect(pushed.body).toContain('`lint`');
  expect(pushed.body).not.toContain('`unit`');
  expect(firstPrompt(h.model.requests[1]!)).toContain('LINT-FAILED');
  expect(firstPrompt(h.model.requests[1]!)).not.toContain('UNIT-FAILED');
  expect(decisions('run')).toHaveLength(2);
  const head = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect((await h.github.git(REPO, 'rev-parse', `${head}^`)).trim()).toBe(headSha);
  expect((await h.github.git(REPO, 'log', '-1', '--format=%s', head)).trim()).toBe('Fix failing checks: lint');
}, 180_000);
