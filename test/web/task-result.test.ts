import { describe, expect, it } from '@jest/globals';
import { TaskResult } from '../../src/contract.ts';
import { commandText, formatDuration, renderResultHtml } from '../../src/web/task-result.ts';

const HOSTILE = '<img src=x onerror=alert(1)>';

function result(overrides: Partial<TaskResult> = {}): TaskResult {
  return TaskResult.parse({
    id: 't1',
    status: 'succeeded',
    stopReason: 'completed',
    baseSha: 'a'.repeat(40),
    summary: `## Summary\n- fixed ${HOSTILE} [x](javascript:alert(1))`,
    changes: [],
    commitMessage: 'Fix',
    pullRequest: { title: 'Fix', body: '' },
    commands: [
      { phase: 'setup', command: ['npm', 'ci'], workdir: '.', exitCode: 0, durationMs: 65_000, output: { head: 'added 840 packages', tail: '', bytes: 18 } },
      {
        phase: 'agent',
        command: ['bash', '-lc', `npm test && echo '${HOSTILE}'`],
        workdir: 'pkg',
        exitCode: 1,
        durationMs: 1234,
        output: { head: `> test\n${HOSTILE}`, tail: 'npm ERR! Test failed', bytes: 10_000 },
      },
      { phase: 'agent', command: ['sleep', '999'], workdir: '.', exitCode: null, durationMs: 600_000, timedOut: true },
    ],
    usage: {
      inputTokens: 2_000_000,
      cachedInputTokens: 1_500_000,
      outputTokens: 100_000,
      reasoningTokens: 40_000,
      turns: 12,
      phaseMs: { checkout: 800, setup: 65_000, agent: 300_000, result: 50 },
      modelMs: 200_000,
      commandMs: 90_000,
      totalMs: 365_850,
    },
    ...overrides,
  });
}

describe('renderResultHtml', () => {
  it('shows status, links, the summary as safe markdown, commands with output and usage', () => {
    const html = renderResultHtml({
      state: 'succeeded',
      result: result(),
      links: {
        thread: 'https://github.com/o/r/issues/1',
        pullRequest: { number: 7, url: 'https://github.com/o/r/pull/7', title: `Fix ${HOSTILE}` },
        commit: { sha: 'b'.repeat(40), url: 'https://github.com/o/r/commit/bbbb' },
        review: 'javascript:alert(1)',
      },
    });
    expect(html).toContain('<span class="badge badge-ok">Succeeded</span>');
    expect(html).toContain(`<a href="https://github.com/o/r/pull/7" rel="noopener noreferrer">#7 Fix &#60;img src=x onerror=alert(1)&#62;</a>`);
    expect(html).toContain('Commit <a href="https://github.com/o/r/commit/bbbb" rel="noopener noreferrer">bbbbbbb</a>');
    // A link that is not http(s) is shown as text.
    expect(html).toContain(' · Review · ');
    expect(html).not.toMatch(/<img|javascript:/);
    expect(html).toContain('<h2>Summary</h2>');
    // Commands: the failing and the timed-out one open, with output head and tail.
    expect(html).toContain('<details class="command"><summary><span class="phase-tag">setup</span> <code class="cmd">npm ci</code> <span class="ok">exit 0</span> <span class="muted">· 1 min 5 s</span>');
    expect(html).toContain('<details class="command" open><summary><span class="phase-tag">agent</span> <code class="cmd">npm test &#38;&#38; echo &#39;&#60;img');
    expect(html).toContain('<span class="muted">in pkg</span> <span class="bad">exit 1</span>');
    expect(html).toContain('<pre class="output">&#62; test\n&#60;img src=x onerror=alert(1)&#62;\n<span class="omitted">… 9,945 bytes omitted …</span>\nnpm ERR! Test failed</pre>');
    expect(html).toContain('<span class="bad">timed out</span>');
    expect(html).toContain('<p class="muted">No output recorded.</p>');
    expect(html).toContain('3 run, <span class="bad">2 failed</span>');
    // Usage per phase; tokens only on the agent (the phase that calls the model); no cost without prices.
    expect(html).toContain('<tr><th scope="row">setup</th><td>1 min 5 s</td><td>–</td>');
    expect(html).toContain('<tr><th scope="row">agent</th><td>5 min 0 s</td><td>2.00M</td><td>1.50M</td><td>100.0k <span class="muted">(40.0k reasoning)</span></td><td>12</td></tr>');
    expect(html).not.toContain('Est. cost');
  });

  it('estimates the model cost when the model has prices: uncached input, cached input and output', () => {
    const html = renderResultHtml({
      state: 'succeeded',
      result: result(),
      model: 'gpt-x',
      prices: { 'gpt-x': { inputPerMillion: 1.25, cachedInputPerMillion: 0.125, outputPerMillion: 10 } },
    });
    // 0.5M × 1.25 + 1.5M × 0.125 + 0.1M × 10 = 0.625 + 0.1875 + 1 = 1.8125
    expect(html).toContain('<th scope="col">Est. cost</th>');
    expect(html).toContain('<td>12</td><td>$1.81</td></tr>');
    expect(html).toContain('compute time is not priced');
    // Another model: no cost.
    expect(renderResultHtml({ state: 'succeeded', result: result(), model: 'other', prices: { 'gpt-x': { inputPerMillion: 1, cachedInputPerMillion: 1, outputPerMillion: 1 } } })).not.toContain('Est. cost');
  });

  it("shows the app's failure reason, also without a result, and nothing before either exists", () => {
    expect(renderResultHtml({ state: 'running' })).toBe('');
    const html = renderResultHtml({ state: 'failed', failure: { phase: 'setup', reason: `npm ci failed ${HOSTILE}` } });
    expect(html).toContain('<span class="badge badge-bad">Failed</span>');
    expect(html).toContain('<p class="bad">Failed in setup:</p><pre>npm ci failed &#60;img src=x onerror=alert(1)&#62;</pre>');
    const publishing = renderResultHtml({ state: 'publishing', result: result({ summary: '' }) });
    expect(publishing).toContain('badge-run">Publishing…');
    expect(publishing).not.toContain('class="markdown"');
  });
});

describe('helpers', () => {
  it('formats durations and commands', () => {
    expect([formatDuration(850), formatDuration(1234), formatDuration(65_000)]).toEqual(['850 ms', '1.2 s', '1 min 5 s']);
    expect(commandText(['bash', '-lc', 'npm test'])).toBe('npm test');
    expect(commandText(['git', 'commit', '-m', "it's done"])).toBe("git commit -m 'it'\\''s done'");
  });
});
