/**
 * End to end: someone pushes to the pull request's branch while the task runs (the push happens
 * during the agent's first model request). Other files: the change is committed on top of the new
 * head (no force). The same file: the reply says the branch moved and how to retry; nothing is pushed.
 */
import { expect, test } from '@jest/globals';
import { waitFor } from '../support/app-harness.ts';
import { useAppHarness } from '../support/use-app-harness.ts';
import { openPullRequest, patchTurns, pullRequestRepo, X_TS_PATCH, X_TS_PR } from '../support/pull-requests.ts';

const REPO = 'acme/calc';
const h = useAppHarness(REPO, pullRequestRepo());

const finalReply = (number: number, pattern: RegExp) =>
  waitFor(`a final reply matching ${pattern}`, () => h.botComments(REPO, number).find((c) => pattern.test(c.body)), 60_000);

test('a push to other files meanwhile: the change is committed on top of the new head', async () => {
  const { number, branch, headSha } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  let pushed = '';
  h.model.push(...patchTurns(X_TS_PATCH, { before: async () => void (pushed = await h.github.commitFiles(REPO, branch, { 'README.md': 'pushed meanwhile\n' })) }));
  expect(await h.deliver(h.mention(REPO, number, '@codex use a constant for the rate'))).toBe(200);
  const done = await finalReply(number, /✅ \*\*Done\*\*/);
  const newHead = (await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim();
  expect(pushed).not.toBe('');
  expect((await h.github.git(REPO, 'rev-parse', `${newHead}^`)).trim()).toBe(pushed);
  expect((await h.github.git(REPO, 'rev-parse', `${pushed}^`)).trim()).toBe(headSha);
  expect(await h.github.git(REPO, 'show', `${newHead}:README.md`)).toBe('pushed meanwhile\n');
  expect(await h.github.git(REPO, 'show', `${newHead}:src/x.ts`)).toContain('price * TAX_RATE');
  expect(done.body).toContain('re-applied on top of commits pushed meanwhile');
  // Never forced: every ref update of the branch was a fast-forward request.
  const updates = h.github.requestsTo({ method: 'PATCH', path: /\/git\/refs\/heads/ });
  expect(updates.length).toBeGreaterThan(0);
  for (const r of updates) expect((r.body as { force?: boolean }).force).toBe(false);
});

test('a push to the same file meanwhile: a reply that the branch moved and how to retry; nothing pushed', async () => {
  const { number, branch } = await openPullRequest(h.github, REPO, { 'src/x.ts': X_TS_PR });
  let pushed = '';
  h.model.push(...patchTurns(X_TS_PATCH, { before: async () => void (pushed = await h.github.commitFiles(REPO, branch, { 'src/x.ts': `${X_TS_PR}// edited meanwhile\n` })) }));
  expect(await h.deliver(h.mention(REPO, number, '@codex use a constant for the rate'))).toBe(200);
  const failed = await finalReply(number, /❌ \*\*Failed\*\*/);
  expect((await h.github.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(pushed);
  expect(failed.body).toContain(`The branch ${branch} moved while the task ran`);
  expect(failed.body).toContain('the same files: src/x.ts');
  expect(failed.body).toContain('Nothing was pushed');
  expect(failed.body).toContain('`@codex retry`');
  expect(h.github.requestsTo({ method: 'PATCH', path: new RegExp(`/git/refs/heads(/|%2F)${branch}$`) })).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(1);
});
