/**
 * End to end: the real app (`codex-cloud serve`) with a forged runner — `CODEX_RUNNER_COMMAND` is a
 * script that answers every TaskSpec with a hostile TaskResult, as a runner taken over by the agent
 * could. The app must refuse what breaks the path rules, neutralise the texts it publishes and read
 * an oversized result without holding it.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppHarness, waitFor } from '../support/app-harness.ts';

const REPO = 'acme/calc';
const DONE = /✅ \*\*Done\*\*/;
const FAILED = /❌ \*\*Failed\*\*/;

/**
 * The forged runner: reads the TaskSpec from stdin and answers by the scenario named in its
 * instruction. `huge` writes its parent's pid (the app) to the file named by its first argument (the
 * app passes the runner no environment of its own), then a 300 MB result line.
 */
const FORGED_RUNNER = String.raw`
import { writeFileSync } from 'node:fs';
let input = '';
for await (const chunk of process.stdin) input += chunk;
const spec = JSON.parse(input);
const b64 = (s) => Buffer.from(s).toString('base64');
const scenario = /scenario:(\S+)/.exec(spec.instruction)?.[1];
const out = (event) => process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...event }) + '\n');
out({ type: 'phase', phase: 'agent', status: 'started' });
if (scenario === 'huge') {
  writeFileSync(process.argv[2], String(process.ppid));
  process.stdout.write('{"type":"result","at":"now","result":{"summary":"');
  const chunk = Buffer.alloc(1024 * 1024, 'A');
  let written = 0;
  const more = () => {
    while (written < 300 * 1024 * 1024) {
      written += chunk.length;
      if (!process.stdout.write(chunk)) return process.stdout.once('drain', more);
    }
    process.stdout.write('"}}\n');
  };
  more();
} else {
  const hostileText = 'Fix #2 for @alice, GH-3, acme/other#4';
  const changes = {
    'github-file': [{ action: 'add', path: '.github', mode: '100644', contentBase64: b64('gone\n') }],
    'github-delete': [{ action: 'delete', path: '.github' }],
    'zwj-git': [{ action: 'add', path: '.git\u200c/config', mode: '100644', contentBase64: b64('[core]\n') }],
    'hostile-text': [{ action: 'modify', path: 'README.md', mode: '100644', contentBase64: b64('# calc, better\n') }],
  }[scenario];
  out({
    type: 'result',
    result: {
      version: 1, id: spec.id, status: 'succeeded', stopReason: 'completed', baseSha: spec.repository.baseSha,
      summary: 'Done. Fixes #2, closes https://github.com/acme/calc/issues/3 and cc @alice',
      changes,
      commitMessage: hostileText + '\n\nCloses https://github.com/acme/calc/issues/5\nResolves: GH-6, @octo-org/team',
      pullRequest: { title: hostileText, body: '## Summary\nFixes #2 and resolves acme/other#4; thanks @alice\n\nCloses [it](https://github.com/acme/calc/issues/7)' },
      commands: [], findings: [], plan: [],
      usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 },
    },
  });
}
`;

/** Mentions and references GitHub would make live (an approximation of its matchers, see neutralize.test.ts). */
function liveReferences(text: string): string[] {
  const patterns = [/(?<![\w`])@[A-Za-z0-9][\w-]*/g, /(?:[\w.-]+\/[\w.-]+)?#\d+/g, /\bGH-\d+/gi, /https?:\/\/[\w.-]+\/[^\s]*?\/(?:issues|pulls?)\/\d+/gi];
  return patterns.flatMap((p) => Array.from(text.matchAll(p), (m) => m[0]));
}

let h: AppHarness;
let dir: string;
let pidFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forged-runner-'));
  const script = path.join(dir, 'forged-runner.mjs');
  pidFile = path.join(dir, 'app.pid');
  await writeFile(script, FORGED_RUNNER);
  h = await AppHarness.start({ env: { CODEX_RUNNER_COMMAND: JSON.stringify([process.execPath, script, pidFile]) } });
  await h.github.addRepo(
    REPO,
    { 'README.md': '# calc\n', '.github/workflows/ci.yml': 'on: push\njobs: {}\n', '.github/dependabot.yml': 'version: 2\n' },
    { installationId: 1, permissions: { maintainer: 'write' } },
  );
}, 60_000);

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Opens an issue, mentions the app with the scenario, and waits for the final reply. */
async function runScenario(scenario: string): Promise<{ issue: number; body: string }> {
  const issue = h.github.addIssue(REPO, { title: `scenario ${scenario}`, body: 'x', user: 'maintainer' }).number as number;
  expect(await h.deliver(h.mention(REPO, issue, `@codex scenario:${scenario}`))).toBe(200);
  const reply = await waitFor(`the final reply to ${scenario}`, () => h.botComments(REPO, issue).find((c) => DONE.test(c.body) || FAILED.test(c.body)), 60_000);
  return { issue, body: reply.body };
}

describe('a forged runner result through the real app', () => {
  test.each([
    ['github-file', '".github": changes to .github/workflows are not allowed'],
    ['github-delete', '".github": changes to .github/workflows are not allowed'],
    ['zwj-git', 'path contains an invisible or control character (U+200C)'],
  ])('%s: refused before anything is written to GitHub; the workflows stay', async (scenario, reason) => {
    const pullsBefore = (await h.github.pulls(REPO)).length;
    const { body } = await runScenario(scenario);
    expect(body).toMatch(FAILED);
    expect(body).toContain('the changes were refused');
    expect(body).toContain(reason);
    expect(await h.github.pulls(REPO)).toHaveLength(pullsBefore);
    expect((await h.github.git(REPO, 'for-each-ref', '--format=%(refname)', 'refs/heads/')).trim()).toBe('refs/heads/main');
    expect(await h.github.git(REPO, 'show', 'main:.github/workflows/ci.yml')).toBe('on: push\njobs: {}\n');
  });

  test('hostile text: the PR title, body and commit message carry no live mention or reference but Closes #N', async () => {
    const { issue, body } = await runScenario('hostile-text');
    expect(body).toMatch(DONE);
    expect(liveReferences(body.replace(/\[#\d+: [^\]]*\]\([^)]*\)/, ''))).toEqual([]);
    const pr = (await h.github.pulls(REPO)).at(-1) as { title: string; body: string; head: { sha: string } };
    expect(pr.title.replaceAll('\u200d', '')).toBe('Fix #2 for @alice, GH-3, acme/other#4');
    expect(liveReferences(pr.title)).toEqual([]);
    // The app's own link to the issue is the only live reference (the footer names no requester here).
    expect(liveReferences(pr.body.replace(/^.*requested by @\S+.*$/m, ''))).toEqual([`#${issue}`]);
    expect(pr.body).toContain(`Closes #${issue}`);
    const message = await h.github.git(REPO, 'log', '-1', '--format=%B', pr.head.sha);
    expect(liveReferences(message.replace(/^Co-authored-by: .*$/gm, ''))).toEqual([]);
    expect(message.replaceAll('\u200d', '')).toContain('Closes https://github.com/acme/calc/issues/5\nResolves: GH-6, @octo-org/team');
  });

  test('a 300 MB result line fails the task with a clear reason; the app never holds it', async () => {
    const { body } = await runScenario('huge');
    expect(body).toContain("the runner's result is larger than 75 MiB; the runner was stopped");
    const status = readFileSync(`/proc/${readFileSync(pidFile, 'utf8').trim()}/status`, 'utf8');
    const peakKiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]);
    // The app's peak resident memory over its whole life: a 300 MB line parsed whole takes gigabytes.
    expect(peakKiB * 1024).toBeLessThan(450 * 1024 * 1024);
    // The app is still answering.
    expect((await fetch(`${h.url}/healthz`)).ok).toBe(true);
  }, 90_000);
});
