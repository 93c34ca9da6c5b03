import { describe, expect, test } from '@jest/globals';
import type { CommandRecord, Usage } from '../../src/contract.ts';
import { MAX_LISTED_CHECKS } from '../../src/github/checks-run.ts';
import { PULL_REQUEST_BODY_LIMIT, codeSpan, pullRequestBody } from '../../src/github/pull-request-body.ts';

const usage: Usage = {
  inputTokens: 123_456,
  cachedInputTokens: 100_000,
  outputTokens: 4_567,
  reasoningTokens: 1_000,
  turns: 7,
  phaseMs: { agent: 150_000 },
  modelMs: 90_000,
  commandMs: 30_000,
  totalMs: 192_000,
};
const SUMMARY = '## Summary\n- `src/math.js`: `add` now adds.\n\n## Testing\n- `node --test` passes';

function cmd(command: string[], exitCode: number | null, extra: Partial<CommandRecord> = {}): CommandRecord {
  return { phase: 'agent', command, workdir: '.', exitCode, durationMs: 1234, timedOut: false, ...extra };
}

describe('codeSpan', () => {
  test('shows backticks and line breaks literally', () => {
    expect(codeSpan('npm test')).toBe('`npm test`');
    expect(codeSpan('echo `date`')).toBe('`` echo `date` ``');
    expect(codeSpan('a ``` b')).toBe('```` a ``` b ````');
    expect(codeSpan('line1\nline2')).toBe('`line1⏎line2`');
    expect(codeSpan('')).toBe('`  `');
  });
});

describe('pullRequestBody', () => {
  test('summary, Closes #N, the Checks run section (last run of each check, setup), and a footer with model, tokens, time and log', () => {
    const body = pullRequestBody({
      summary: SUMMARY,
      issueNumber: 12,
      commands: [
        { ...cmd(['npm', 'ci'], 0), phase: 'setup' },
        cmd(['node', '--test'], 1),
        cmd(['bash', '-lc', 'grep -rn "add" src | head'], 0, { workdir: 'packages/core' }),
        cmd(['npm', 'run', 'lint'], null, { timedOut: true, durationMs: 600_000 }),
        cmd(['npx', 'tsc', '--noEmit'], null),
        cmd(['node', '--test'], 0, { durationMs: 850 }),
      ],
      setup: { status: 'succeeded' },
      model: 'gpt-5-codex',
      usage,
      taskUrl: 'https://codex.example.com/tasks/t-1',
      requester: 'alice',
    });
    expect(body).toBe(
      `${SUMMARY}\n\nCloses #12\n\n### Checks run\n\n` +
        '- `npm run lint` · ⏱️ timed out · 10m 00s\n' +
        '- `npx tsc --noEmit` · ❌ killed · 1.2 s\n' +
        '- `node --test` · ✅ exit 0 · 850 ms\n' +
        '- _1 other command (reading, searching, editing): see the task log._\n' +
        '- Setup (dependency install): ✅ succeeded\n\n' +
        '---\n<sub>Codex Cloud · requested by @alice · model `gpt-5-codex` · 123,456 input tokens (100,000 cached), ' +
        '4,567 output, 7 turns · 3m 12s · [task log](https://codex.example.com/tasks/t-1)</sub>',
    );
  });

  test('a summary claiming passing tests after a failing last test run gets a plain note; a failed setup is stated', () => {
    const body = pullRequestBody({
      summary: '# Fix it\n\n## Testing\n- All tests pass',
      commands: [cmd(['npm', 'test'], 0), cmd(['npm', 'test'], 1)],
      setup: { status: 'failed', reason: 'npm (package-lock.json) exited with 1; the agent went on without it' },
      model: 'm',
      usage,
    });
    expect(body).toContain('- `npm test` · ❌ exit 1 · 1.2 s\n');
    expect(body).toContain('- Setup (dependency install): ❌ failed: npm (package-lock.json) exited with 1; the agent went on without it. ');
    expect(body).toContain("\n\n**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.\n\n---\n");
  });

  test('without an issue, commands, requester or log link, those parts are left out', () => {
    const body = pullRequestBody({ summary: SUMMARY, commands: [{ ...cmd(['npm', 'ci'], 0), phase: 'setup' }], model: 'm', usage: { ...usage, turns: 1 } });
    expect(body).toBe(`${SUMMARY}\n\n### Checks run\n\n- No tests or other checks were run by the agent.\n\n**Note:** no test command was run in this task; the summary's claim that tests pass is not supported.\n\n---\n<sub>Codex Cloud · model \`m\` · 123,456 input tokens (100,000 cached), 4,567 output, 1 turn · 3m 12s</sub>`);
    expect(pullRequestBody({ summary: SUMMARY, commands: [], model: 'm', usage, taskUrl: 'javascript:alert(1)' })).not.toContain('task log');
  });

  test('commands are capped at the last 30, cut when long, and backticks cannot break out of their code span', () => {
    const many = Array.from({ length: 45 }, (_, i) => cmd(['npm', 'test', '--', `step-${i}`], 0));
    many.push(cmd(['bash', '-c', 'npm test `whoami`\n</details>\n# not a heading'], 0));
    many.push(cmd(['pytest', '-k', 'x'.repeat(1000)], 0));
    const body = pullRequestBody({ summary: SUMMARY, commands: many, model: 'm', usage });
    const items = body.split('\n').filter((l) => l.startsWith('- ') && l.includes(' · '));
    expect(items).toHaveLength(MAX_LISTED_CHECKS);
    expect(body).toContain('- _17 earlier checks not shown._');
    expect(body).not.toContain('step-16`');
    expect(body).toContain('`npm test -- step-17`');
    expect(body).toContain('- ``npm test `whoami` </details> # not a heading`` · ✅');
    expect(body).not.toContain('<details>');
    const long = items.at(-1)!;
    expect(long).toMatch(/^- `pytest -k x+…` · ✅/);
    expect(long.length).toBeLessThan(260);
    // Arguments with spaces or quotes are shell-quoted for display.
    expect(pullRequestBody({ summary: '', commands: [cmd(['make', 'test', "NAME=it's"], 0)], model: 'm', usage })).toContain(
      "`make test 'NAME=it'\\''s'`",
    );
  });

  test('a huge summary is cut to keep the body within GitHub limit, closing an open code fence, with a note', () => {
    const commands = Array.from({ length: 40 }, (_, i) => cmd(['bash', '-lc', `${'y'.repeat(300)} ${i}`], i % 2));
    const huge = `## Summary\n${'word '.repeat(5000)}\n\`\`\`diff\n${'+ added line\n'.repeat(20_000)}`;
    const body = pullRequestBody({ summary: huge, issueNumber: 3, commands, model: 'gpt-5-codex', usage, taskUrl: 'https://x.example/t', requester: 'bob' });
    expect(body.length).toBeLessThanOrEqual(PULL_REQUEST_BODY_LIMIT);
    expect(body.length).toBeGreaterThan(PULL_REQUEST_BODY_LIMIT - 200);
    expect(body).toContain('\n\nCloses #3\n\n### Checks run');
    expect(body).toMatch(/\n```\n\n_The summary was cut to fit GitHub's limit on pull request bodies \([\d,]+ of [\d,]+ characters shown\); the task log has the rest._\n\nCloses #3/);
    expect(body).toContain('[task log](https://x.example/t)');
    // The cut falls on a line break of the summary.
    const cutAt = body.indexOf('\n```\n\n_The summary was cut');
    expect(body.slice(cutAt - '+ added line'.length, cutAt)).toBe('+ added line');

    // Exactly at the limit nothing is cut; one character more and it is.
    const rest = pullRequestBody({ summary: '', issueNumber: 3, commands: [], model: 'm', usage });
    const fits = 'a'.repeat(PULL_REQUEST_BODY_LIMIT - rest.length - 2);
    expect(pullRequestBody({ summary: fits, issueNumber: 3, commands: [], model: 'm', usage })).toHaveLength(PULL_REQUEST_BODY_LIMIT);
    const over = pullRequestBody({ summary: `${fits}a`, issueNumber: 3, commands: [], model: 'm', usage });
    expect(over.length).toBeLessThanOrEqual(PULL_REQUEST_BODY_LIMIT);
    expect(over).toContain('The summary was cut');
  });

  test('a cut never splits a surrogate pair and closes an open HTML comment', () => {
    const emoji = '😀'.repeat(40_000);
    const body = pullRequestBody({ summary: emoji, commands: [], model: 'm', usage });
    expect(body.length).toBeLessThanOrEqual(PULL_REQUEST_BODY_LIMIT);
    expect(body).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    const hidden = pullRequestBody({ summary: `intro\n<!-- ${'z'.repeat(70_000)}`, issueNumber: 1, commands: [], model: 'm', usage });
    // The summary's raw HTML is made literal, so an open comment cannot hide what follows it.
    expect(hidden).toContain('&lt;!--');
    expect(hidden).toMatch(/\nCloses #1\n/);
    expect(hidden.length).toBeLessThanOrEqual(PULL_REQUEST_BODY_LIMIT);
  });

  test("the agent's summary cannot ping people or close other issues", () => {
    const body = pullRequestBody({ summary: '## Summary\n- Fixes #12, thanks @octocat and @acme/team\n- `keep @code #1`', issueNumber: 3, commands: [], model: 'm', usage });
    expect(body).not.toMatch(/(?<![\w\u200d])@octocat/);
    expect(body).not.toMatch(/Fixes #12/);
    expect(body).toContain('`keep @code #1`');
    expect(body).toMatch(/\nCloses #3\n/);
  });
});
