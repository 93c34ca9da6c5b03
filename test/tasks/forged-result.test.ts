/**
 * A runner that lies about its base commit, end to end: the app's runner command is a tiny script
 * that ignores the dispatched base and returns a TaskResult "based on" an attacker's commit of the
 * same repository (a branch adding a workflow). The app refuses it: a failure reply naming both
 * SHAs, no commit, no branch, no pull request.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, FIXED_MATH } from '../support/fixtures.ts';

const REPO = 'acme/calc';
let h: AppHarness;
let dir: string;
let script: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forged-runner-'));
  script = path.join(dir, 'forged-runner.mjs');
  // The runner program is rewritten between tests: no runner started ahead with the previous one.
  h = await AppHarness.start({ env: { CODEX_RUNNER_COMMAND: JSON.stringify([process.execPath, script]), CODEX_RUNNER_STANDBY: 'false' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a result claiming another base SHA is refused with a failure reply, and nothing is published', async () => {
  const mainSha = (await h.github.git(REPO, 'rev-parse', 'main')).trim();
  const forged = await h.github.commitFiles(REPO, 'attacker', { '.github/workflows/pwn.yml': 'on: push\njobs: {}\n' }, { from: 'main' });
  const change = { action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: Buffer.from(FIXED_MATH).toString('base64') };
  await writeFile(
    script,
    `import { readFileSync } from 'node:fs';
const spec = JSON.parse(readFileSync(0, 'utf8'));
const at = () => new Date().toISOString();
const usage = { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 };
const result = { version: 1, id: spec.id, status: 'succeeded', stopReason: 'completed', baseSha: ${JSON.stringify(forged)},
  summary: 'Fixed add.', changes: [${JSON.stringify(change)}], commitMessage: 'Fix add', pullRequest: { title: 'Fix add', body: 'Fixed.' },
  commands: [], findings: [], plan: [], usage };
process.stdout.write(JSON.stringify({ type: 'phase', at: at(), phase: 'agent', status: 'started' }) + '\\n');
process.stdout.write(JSON.stringify({ type: 'result', at: at(), result }) + '\\n');
`,
  );
  const commits = h.github.requestsTo('POST /repos/{owner}/{repo}/git/commits').length;
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex fix add');
  expect(await h.deliver(delivery)).toBe(200);
  const reply = await waitFor('the failure reply', () => h.botComments(REPO, number).find((c) => /❌ \*\*Failed\*\*/.test(c.body)), 60_000);
  expect(reply.body).toContain(`based on ${forged}, not the dispatched ${mainSha}`);
  expect(h.task(number)?.state).toBe('failed');
  expect(h.github.requestsTo('POST /repos/{owner}/{repo}/git/commits')).toHaveLength(commits);
  expect((await h.github.git(REPO, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/codex/')).trim()).toBe('');
  expect(await h.github.pulls(REPO)).toHaveLength(0);
  expect(h.botComments(REPO, number)).toHaveLength(1);
});

test('on a pull request, a result based on the PR base instead of the dispatched head is refused: failure reply, nothing pushed', async () => {
  const mainSha = (await h.github.git(REPO, 'rev-parse', 'main')).trim();
  const headSha = await h.github.commitFiles(REPO, 'feature', { 'NOTES.md': 'notes\n' }, { from: 'main' });
  const pull = await h.github.addPull(REPO, { head: 'feature', title: 'Notes', user: 'maintainer' });
  const number = pull.number as number;
  const change = { action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: Buffer.from(FIXED_MATH).toString('base64') };
  // The runner answers with the spec's base SHA (the PR's base branch) although it was sent the head.
  await writeFile(
    script,
    `import { readFileSync } from 'node:fs';
const spec = JSON.parse(readFileSync(0, 'utf8'));
if (spec.repository.headSha !== ${JSON.stringify(headSha)}) throw new Error('expected the PR head in the spec');
const usage = { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 };
const result = { version: 1, id: spec.id, status: 'succeeded', stopReason: 'completed', baseSha: spec.repository.baseSha,
  summary: 'Fixed add.', changes: [${JSON.stringify(change)}], commitMessage: 'Fix add', pullRequest: { title: 'Fix add', body: 'Fixed.' },
  commands: [], findings: [], plan: [], usage };
process.stdout.write(JSON.stringify({ type: 'result', at: new Date().toISOString(), result }) + '\\n');
`,
  );
  const commits = h.github.requestsTo('POST /repos/{owner}/{repo}/git/commits').length;
  expect(await h.deliver(h.mention(REPO, number, '@codex fix add'))).toBe(200);
  const reply = await waitFor('the failure reply', () => h.botComments(REPO, number).find((c) => /❌ \*\*Failed\*\*/.test(c.body)), 60_000);
  expect(reply.body).toContain(`based on ${mainSha}, not the dispatched ${headSha}`);
  expect(h.task(number)?.state).toBe('failed');
  expect(h.github.requestsTo('POST /repos/{owner}/{repo}/git/commits')).toHaveLength(commits);
  expect((await h.github.git(REPO, 'rev-parse', 'refs/heads/feature')).trim()).toBe(headSha);
  expect(h.botComments(REPO, number)).toHaveLength(1);
});
