import { describe, expect, it, test } from '@jest/globals';
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Nodes, Root } from 'mdast';
import {
  GITHUB_COMMENT_MAX_CHARS,
  ProgressCommentUpdater,
  codeSpan,
  formatElapsed,
  progressMarker,
  renderProgressComment,
  sanitizeMarkdown,
  taskIdFromComment,
} from '../../src/github/progress-comment.ts';
import type { ProgressView } from '../../src/github/progress-comment.ts';

const base: ProgressView = {
  taskId: 'task-01J9',
  kind: 'task',
  state: 'running',
  startedAt: 1_700_000_000_000,
  now: 1_700_000_083_000,
  logUrl: 'https://codex.example.com/tasks/task-01J9?key=s3cret',
  requester: 'alice',
};

const usage = { inputTokens: 123_456, cachedInputTokens: 100_000, outputTokens: 2_100, turns: 7 };

function render(over: Partial<ProgressView>): string {
  return renderProgressComment({ ...base, ...over });
}

/** All nodes of a markdown tree, depth first. */
function nodes(tree: Root): Nodes[] {
  const out: Nodes[] = [];
  const walk = (n: Nodes): void => {
    out.push(n);
    if ('children' in n) for (const c of n.children) walk(c);
  };
  walk(tree);
  return out;
}

/** Text GitHub would scan for mentions and references: text nodes outside code and our links. */
function pingable(body: string): string[] {
  const found: string[] = [];
  const walk = (n: Nodes): void => {
    if (n.type === 'link') return;
    if (n.type === 'text' && (/(^|[^\w`])@[A-Za-z0-9]/.test(n.value) || /#\d|GH-\d|https?:\/\/[\w.-]+\/\S*\/(?:issues|pulls?)\/\d/i.test(n.value))) found.push(n.value);
    if ('children' in n) for (const c of n.children) walk(c);
  };
  walk(fromMarkdown(body));
  return found;
}

/** The raw HTML in a body, which must be only our own. */
function htmlNodes(body: string): string[] {
  return nodes(fromMarkdown(body))
    .filter((n) => n.type === 'html')
    .map((n) => (n as { value: string }).value);
}

describe('renderProgressComment', () => {
  it('starts with the hidden marker, which gives the task id back', () => {
    const body = render({ state: 'queued', queuePosition: 1 });
    expect(body.startsWith(`${progressMarker('task-01J9')}\n`)).toBe(true);
    expect(body.split('\n')[0]).toBe('<!-- codex-cloud:task=task-01J9 -->');
    expect(taskIdFromComment(body)).toBe('task-01J9');
    expect(taskIdFromComment('Some comment <!-- codex-cloud:task=x -->')).toBeUndefined();
    // An id that tries to close the HTML comment is encoded, and still round-trips.
    const evil = 'a --> @everyone <!--';
    const marker = progressMarker(evil);
    expect(marker.indexOf('-->')).toBe(marker.length - 3);
    expect(taskIdFromComment(renderProgressComment({ ...base, taskId: evil }))).toBe(evil);
  });

  it('queued: the position in the queue and the waiting time', () => {
    const body = render({ state: 'queued', queuePosition: 3 });
    expect(body).toContain('⏳ **Queued** · position 3 in the queue · waiting 1m 23s');
    expect(body).not.toContain('checkout');
  });

  it('running: phase marks, the live plan as a checklist, the last command and the log link', () => {
    const body = render({
      phase: 'agent',
      plan: [
        { step: 'Read the rate limiter', status: 'completed' },
        { step: 'Raise the limit', status: 'in_progress' },
        { step: 'Run the tests', status: 'pending' },
      ],
      lastCommand: { command: ['bash', '-lc', 'npm test -- --grep `limit`'], exitCode: null, running: true },
    });
    expect(body).toContain('🔄 **Working** · ✓ checkout → ✓ setup → **agent** → publishing · 1m 23s');
    expect(body).toContain(
      '**Plan**\n\n- [x] Read the rate limiter\n- [ ] **Raise the limit** ← _in progress_\n- [ ] Run the tests',
    );
    expect(body).toContain('Last command: `` npm test -- --grep `limit` `` (running…)');
    expect(body).toContain('[Task log](https://codex.example.com/tasks/task-01J9?key=s3cret)');

    expect(render({ phase: 'checkout' })).toContain('🔄 **Working** · **checkout** → setup → agent → publishing');
    expect(render({ phase: 'setup' })).toContain('✓ checkout → **setup** → agent');
    expect(render({ phase: 'result' })).toContain('✓ setup → **agent** → publishing');
    expect(render({ lastCommand: { command: ['npm', 'test'], exitCode: 1, running: false } })).toContain(
      'Last command: `npm test` (exit 1)',
    );
  });

  it('a finished task shows the plan as the agent left it, with no step marked in progress', () => {
    const plan = [
      { step: 'Reproduce', status: 'in_progress' as const },
      { step: 'Fix', status: 'pending' as const },
      { step: 'Test', status: 'pending' as const },
    ];
    for (const state of ['succeeded', 'no_changes', 'failed', 'cancelled'] as const) {
      const body = render({ state, plan, answer: 'Done.', failure: { phase: 'agent', reason: 'x' } });
      expect(body).toContain('<details><summary>Plan as the agent left it (0 of 3 steps checked off)</summary>\n\n- [ ] Reproduce\n- [ ] Fix\n- [ ] Test\n\n</details>');
      expect(body).not.toContain('in progress');
    }
    expect(render({ state: 'running', plan })).toContain('- [ ] **Reproduce** ← _in progress_');
  });

  it("the app's Checks run section follows the answer in a final state, and is not shown while active", () => {
    const checks = "### Checks run\n\n- `npm test` · ❌ exit 1 · 1.0 s\n\n**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.";
    const done = render({ state: 'succeeded', answer: '## Testing\n- All tests pass', checks, pullRequest: { number: 4, url: 'https://github.com/o/r/pull/4', title: 't' } });
    expect(done).toContain(`## Testing\n- All tests pass\n\n${checks}\n\n`);
    const failed = render({ state: 'failed', failure: { phase: 'setup', reason: 'npm ci exited with 1' }, checks });
    expect(failed.indexOf(checks)).toBeGreaterThan(failed.indexOf('npm ci exited with 1'));
    expect(render({ state: 'running', checks })).not.toContain('Checks run');
  });

  it('publishing: every runner phase done', () => {
    expect(render({ state: 'publishing' })).toContain(
      '🔄 **Publishing** · ✓ checkout → ✓ setup → ✓ agent → **publishing** · 1m 23s',
    );
  });

  it('succeeded: the pull request link, the summary, the plan collapsed, the usage footer', () => {
    const body = render({
      state: 'succeeded',
      pullRequest: { number: 42, url: 'https://github.com/octo/app/pull/42', title: 'Raise the [rate] limit' },
      answer: '## Summary\n\nRaised the limit to 100.\n\n## Testing\n\n- `npm test` passed',
      plan: [
        { step: 'Read', status: 'completed' },
        { step: 'Fix', status: 'completed' },
      ],
      usage,
      model: 'gpt-5-codex',
    });
    expect(body).toContain('✅ **Done** · 1m 23s');
    expect(body).toContain('Opened [#42: Raise the \\[rate\\] limit](https://github.com/octo/app/pull/42)');
    expect(body).toContain('## Summary\n\nRaised the limit to 100.\n\n## Testing\n\n- `npm test` passed');
    expect(body).toContain('<details><summary>Plan as the agent left it (2 of 2 steps checked off)</summary>\n\n- [x] Read\n- [x] Fix\n\n</details>');
    expect(body).toContain(
      '<sub>[Task log](https://codex.example.com/tasks/task-01J9?key=s3cret) · requested by @\u200dalice · ' +
        '123.5k input tokens (100k cached) · 2.1k output tokens · 7 turns · gpt-5-codex</sub>',
    );
    expect(body).not.toContain('Last command');
    expect(pingable(body)).toEqual([]);

    const pr = { number: 7, url: 'https://github.com/octo/app/pull/7', title: 'Tidy' };
    expect(render({ state: 'succeeded', kind: 'fix', pullRequest: pr })).toContain('Pushed commits to [#7: Tidy]');
    expect(render({ state: 'succeeded', kind: 'review', pullRequest: pr })).toContain('Reviewed [#7: Tidy]');
  });

  it('no_changes: the answer', () => {
    const body = render({ state: 'no_changes', answer: 'The limiter is configured in `config/limits.yml`.' });
    expect(body).toContain('💬 **Finished with no changes** · 1m 23s');
    expect(body).toContain('The limiter is configured in `config/limits.yml`.');
  });

  it('failed: the phase, the reason in a safe fence, the retry hint', () => {
    const reason = 'npm ERR! code ERESOLVE\n```\n@everyone </details>\n````';
    const body = render({ state: 'failed', failure: { phase: 'setup', reason }, mention: '@codex-dev' });
    expect(body).toContain('❌ **Failed** · ✓ checkout → ✗ **setup** → agent → publishing · 1m 23s');
    expect(body).toContain('The task failed during `setup`:');
    expect(body).toContain(`\`\`\`\`\`text\n${reason}\n\`\`\`\`\``);
    expect(body).toContain('To try again, comment `@codex-dev retry`.');
    // The reason stays inside its code block.
    const tree = fromMarkdown(body);
    const code = nodes(tree).filter((n) => n.type === 'code');
    expect(code).toHaveLength(1);
    expect((code[0] as { value: string }).value).toBe(reason);
    expect(pingable(body)).toEqual([]);

    const long = `${'first line\n'}${'x'.repeat(5000)}\nthe actual error`;
    const cut = render({ state: 'failed', failure: { phase: 'agent', reason: long } });
    expect(cut).toContain('first line');
    expect(cut).toContain('the actual error');
    expect(cut).toMatch(/characters omitted/);
    expect(cut.length).toBeLessThan(2500);
    // A mention that is not a plain login falls back to @codex.
    expect(render({ state: 'failed', mention: '@x` @everyone' })).toContain('`@codex retry`');
  });

  it('cancelled: by whom, and how to start again', () => {
    const body = render({ state: 'cancelled', cancelledBy: 'bob' });
    expect(body).toContain('⏹️ **Cancelled** · 1m 23s');
    expect(body).toContain('The task was cancelled by @\u200dbob.');
    expect(body).toContain('To start again, comment `@codex retry`, or mention `@codex` with a new request.');
    expect(render({ state: 'cancelled', kind: 'review' })).toContain('The review was cancelled.');
  });

  it('a hostile plan step cannot ping, inject HTML or break the layout', () => {
    const hostile = '@everyone </details> <img src=x onerror=alert(1)> ``` `code` #12 [x](javascript:alert(1))\n# Heading';
    for (const state of ['running', 'failed'] as const) {
      const body = render({
        state,
        plan: [
          { step: hostile, status: 'in_progress' },
          { step: 'next', status: 'pending' },
        ],
        lastCommand: { command: ['echo', '@everyone', '`</details>`'], exitCode: 0, running: false },
        failure: { phase: 'agent', reason: 'x' },
      });
      const tree = fromMarkdown(body);
      const lists = nodes(tree).filter((n) => n.type === 'list');
      expect(lists).toHaveLength(1);
      expect((lists[0] as { children: unknown[] }).children).toHaveLength(2);
      expect(nodes(tree).filter((n) => n.type === 'heading')).toEqual([]);
      expect(nodes(tree).flatMap((n) => (n.type === 'link' ? [n.url] : []))).toEqual([base.logUrl]);
      expect(nodes(tree).flatMap((n) => (n.type === 'inlineCode' ? [n.value] : []))).toEqual(
        state === 'running' ? ['echo @everyone `</details>`'] : ['agent', '@codex retry'],
      );
      expect(pingable(body)).toEqual([]);
      const ours = state === 'running' ? [] : ['<details><summary>Plan as the agent left it (0 of 2 steps checked off)</summary>', '</details>'];
      expect(htmlNodes(body).filter((h) => !h.startsWith('<!-- codex-cloud') && !/^<\/?sub>$/.test(h))).toEqual(ours);
    }
  });

  it('a hostile summary cannot ping, hide the rest of the comment or close our markup', () => {
    const answer = [
      'Done, @everyone. See #1 and octo/other#2.',
      '',
      '</details>',
      '',
      '<!-- codex-cloud:task=someone-else -->',
      '',
      '<img src="https://evil.example/pixel">',
      '',
      '```js',
      'const who = "@alice"; // stays as code',
      '```',
      '',
      '<!-- an unclosed comment that would hide everything after it',
    ].join('\n');
    const body = render({ state: 'no_changes', answer, usage });
    expect(pingable(body)).toEqual([]);
    expect(htmlNodes(body)).toEqual(['<!-- codex-cloud:task=task-01J9 -->', '<sub>', '</sub>']);
    expect(body).toContain('const who = "@alice"; // stays as code');
    expect(body.trimEnd().endsWith('</sub>')).toBe(true);
    expect(taskIdFromComment(body)).toBe('task-01J9');
  });

  it('stays under the GitHub limit with huge inputs, keeping the footer and closing a cut fence', () => {
    const huge = 'x'.repeat(20_000);
    const body = render({
      state: 'succeeded',
      answer: `## Summary\n\n${'<b>@a</b> '.repeat(20_000)}\n\n\`\`\`\n${'code line\n'.repeat(20_000)}`,
      plan: Array.from({ length: 500 }, (_, i) => ({ step: `${i} ${'@<'.repeat(5000)}`, status: 'pending' as const })),
      pullRequest: { number: 1, url: 'https://github.com/o/r/pull/1', title: huge },
      failure: { phase: huge, reason: huge },
      model: huge,
      requester: huge,
      usage,
    });
    expect(body.length).toBeLessThanOrEqual(GITHUB_COMMENT_MAX_CHARS);
    expect(body.length).toBeGreaterThan(50_000);
    expect(body).toContain('_(truncated)_');
    expect(body).toContain('- … and 470 more steps');
    expect(body.trimEnd().endsWith('</sub>')).toBe(true);
    expect(htmlNodes(body).filter((h) => !h.startsWith('<!-- codex-cloud'))).toEqual([
      '<details><summary>Plan as the agent left it (0 of 500 steps checked off)</summary>',
      '</details>',
      '<sub>',
      '</sub>',
    ]);
    expect(pingable(body)).toEqual([]);

    const failed = render({ state: 'failed', failure: { phase: 'setup', reason: '`'.repeat(200_000) } });
    // 1500 backticks need a fence of 1501.
    expect(failed.length).toBeLessThan(5000);
    expect(nodes(fromMarkdown(failed)).filter((n) => n.type === 'code')).toHaveLength(1);
  });
});

describe('helpers', () => {
  it('codeSpan fences backticks safely', () => {
    expect(codeSpan('a')).toBe('`a`');
    expect(codeSpan('a `b` c')).toBe('``a `b` c``');
    expect(codeSpan('`x')).toBe('`` `x ``');
    expect(codeSpan('line1\nline2')).toBe('`line1 line2`');
    for (const text of ['``` x', 'a ` b', '`', 'x\n\n@y']) {
      const code = nodes(fromMarkdown(`p ${codeSpan(text)} q`)).filter((n) => n.type === 'inlineCode');
      expect(code).toHaveLength(1);
    }
  });

  it('formatElapsed', () => {
    expect(formatElapsed(0)).toBe('0s');
    expect(formatElapsed(59_999)).toBe('59s');
    expect(formatElapsed(83_000)).toBe('1m 23s');
    expect(formatElapsed(2 * 3600_000 + 5 * 60_000)).toBe('2h 5m');
    expect(formatElapsed(-5)).toBe('0s');
  });

  it('sanitizeMarkdown keeps code, escapes HTML and closes a fence it cut', () => {
    const out = sanitizeMarkdown('Hi @bob <b>x</b>\n\n```\n<b>@bob</b>\n', 1000);
    expect(out).toBe('Hi @\u200dbob &lt;b&gt;x&lt;/b&gt;\n\n```\n<b>@bob</b>\n```');
    const cut = sanitizeMarkdown(`\`\`\`\n${'y\n'.repeat(100)}`, 50);
    expect(cut.length).toBeLessThan(80);
    const code = nodes(fromMarkdown(`${cut}\n\nafter`)).filter((n) => n.type === 'code');
    expect(code).toHaveLength(1);
    expect(nodes(fromMarkdown(`${cut}\n\nafter`)).some((n) => n.type === 'text' && n.value === 'after')).toBe(true);
  });
});

/** A fake `edit` whose calls stay pending until the test settles them. */
function controlledEdit(): {
  edit: (body: string) => Promise<void>;
  calls: string[];
  written: string[];
  maxInFlight: () => number;
  settle: (error?: Error) => Promise<void>;
  pending: () => number;
} {
  const calls: string[] = [];
  const written: string[] = [];
  const waiting: Array<{ body: string; resolve: () => void; reject: (e: Error) => void }> = [];
  let inFlight = 0;
  let max = 0;
  return {
    calls,
    written,
    maxInFlight: () => max,
    pending: () => waiting.length,
    edit: (body) =>
      new Promise<void>((resolve, reject) => {
        calls.push(body);
        inFlight++;
        max = Math.max(max, inFlight);
        waiting.push({ body, resolve, reject });
      }).finally(() => {
        inFlight--;
      }),
    settle: async (error) => {
      const next = waiting.shift();
      if (!next) throw new Error('no edit in flight');
      if (error) next.reject(error);
      else {
        written.push(next.body);
        next.resolve();
      }
      // Let the updater react.
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error('condition not reached');
}

describe('ProgressCommentUpdater', () => {
  it('coalesces rapid updates: one edit in flight, the latest body wins, identical bodies skipped', async () => {
    const fake = controlledEdit();
    const updater = new ProgressCommentUpdater({ edit: fake.edit, minIntervalMs: 0 });
    for (let i = 0; i < 100; i++) updater.update(`body ${i}`);
    expect(fake.calls).toEqual(['body 0']);
    await fake.settle();
    await until(() => fake.calls.length === 2);
    expect(fake.calls).toEqual(['body 0', 'body 99']);
    updater.update('body 99');
    await fake.settle();
    updater.update('body 99');
    await updater.flush();
    expect(fake.calls).toEqual(['body 0', 'body 99']);
    expect(fake.maxInFlight()).toBe(1);
  });

  it('with a slow real edit, many updates over time make few edits and end on the latest', async () => {
    const calls: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const updater = new ProgressCommentUpdater({
      minIntervalMs: 20,
      edit: async (body) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 30));
        calls.push(body);
        inFlight--;
      },
    });
    for (let i = 0; i < 30; i++) {
      updater.update(`state ${i}`);
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    await updater.flush();
    expect(calls.at(-1)).toBe('state 29');
    expect(calls.length).toBeLessThanOrEqual(5);
    expect(maxInFlight).toBe(1);
  });

  it('waits out the minimum interval, and flush writes the final body', async () => {
    const fake = controlledEdit();
    const updater = new ProgressCommentUpdater({ edit: fake.edit, minIntervalMs: 200 });
    updater.update('running');
    await fake.settle();
    updater.update('running 2');
    expect(fake.calls).toEqual(['running']);
    const flushed = updater.flush('final');
    let done = false;
    void flushed.then(() => (done = true));
    await until(() => fake.pending() === 1);
    expect(fake.calls).toEqual(['running', 'final']);
    expect(done).toBe(false);
    await fake.settle();
    await flushed;
    expect(fake.written).toEqual(['running', 'final']);
  });

  it('a failed edit is logged and retried on the next update; update never throws', async () => {
    const warnings: unknown[] = [];
    const fake = controlledEdit();
    const updater = new ProgressCommentUpdater({
      edit: fake.edit,
      minIntervalMs: 0,
      log: { warn: (obj, msg) => warnings.push({ obj, msg }) },
    });
    updater.update('a');
    await fake.settle(new Error('HTTP 502'));
    expect(warnings).toEqual([{ obj: { err: 'HTTP 502' }, msg: expect.stringContaining('failed') }]);
    expect(fake.calls).toEqual(['a']);
    updater.update('a');
    await until(() => fake.pending() === 1);
    expect(fake.calls).toEqual(['a', 'a']);
    await fake.settle();
    await updater.flush();
    expect(fake.written).toEqual(['a']);
  });

  it('flush retries a failed edit once, then rejects; a throwing edit does not wedge it', async () => {
    let failuresLeft = 1;
    const calls: string[] = [];
    const flaky = new ProgressCommentUpdater({
      minIntervalMs: 0,
      edit: (body) => {
        calls.push(body);
        if (failuresLeft-- > 0) throw new Error('socket hang up'); // synchronous throw
        return Promise.resolve();
      },
    });
    await flaky.flush('final');
    expect(calls).toEqual(['final', 'final']);

    const broken = new ProgressCommentUpdater({
      minIntervalMs: 0,
      edit: async () => {
        throw new Error('HTTP 404');
      },
    });
    expect(() => broken.update('x')).not.toThrow();
    await expect(broken.flush()).rejects.toThrow('HTTP 404');
  });
});

describe('notices', () => {
  test('a warning shows while the task is active, neutralised, and disappears at the end', () => {
    const running = render({ state: 'running', phase: 'checkout', notice: 'RunTask failed (RESOURCE:MEMORY); retrying in 4 s @everyone' });
    expect(running).toContain('⚠️ RunTask failed (RESOURCE:MEMORY); retrying in 4 s');
    expect(pingable(running)).toEqual([]);
    const done = render({ state: 'succeeded', notice: 'RunTask failed', pullRequest: { number: 3, url: 'https://github.com/o/r/pull/3', title: 'x' } });
    expect(done).not.toContain('RunTask failed');
  });
});

describe('partial work', () => {
  test('a failed task that published partial work links its draft pull request', () => {
    const body = render({
      state: 'failed',
      failure: { phase: 'agent', reason: 'the agent stopped early: the turn limit (60) was reached' },
      pullRequest: { number: 12, url: 'https://github.com/o/r/pull/12', title: '[partial] Add pagination' },
    });
    expect(body).toContain('The partial work is in the draft pull request [#12: \\[partial\\] Add pagination](https://github.com/o/r/pull/12)');
    expect(body).toContain('turn limit (60)');
  });
});

describe('pull request work', () => {
  const sha = 'c'.repeat(40);
  test('a pushed commit: its short SHA linked, the branch, the files listed (at most 30)', () => {
    const files = Array.from({ length: 32 }, (_, i) => `src/f${i}.ts`);
    const body = render({ state: 'succeeded', pushed: { sha, url: `https://github.com/o/r/commit/${sha}`, branch: 'feature', files, rebased: false }, answer: 'Done.' });
    expect(body).toContain(`Pushed commit [\`ccccccc\`](https://github.com/o/r/commit/${sha}) to \`feature\`:`);
    expect(body).toContain('- `src/f29.ts`');
    expect(body).not.toContain('src/f30.ts');
    expect(body).toContain('- … and 2 more');
    expect(body).not.toContain('re-applied');
  });

  test('a rebased push says so; a SHA that is not 40 hex is not shown', () => {
    expect(render({ state: 'succeeded', pushed: { sha, url: 'https://x/c', branch: 'b', files: ['a'], rebased: true } })).toContain('re-applied on top of commits pushed meanwhile');
    expect(render({ state: 'succeeded', pushed: { sha: 'not-a-sha', url: 'https://x/c', branch: 'b', files: ['a'], rebased: false } })).not.toContain('Pushed commit');
  });

  test('a fork pull request: the new pull request is linked and the reply says why', () => {
    const body = render({ state: 'succeeded', pullRequest: { number: 13, url: 'https://github.com/o/r/pull/13', title: 'Fix' }, forkOf: { number: 12, branch: 'codex/pr-12-fix' } });
    expect(body).toContain('comes from a fork, which I cannot push to');
    expect(body).toContain('`codex/pr-12-fix`');
    expect(body).toContain('[#13: Fix](https://github.com/o/r/pull/13)');
  });

  test('file names and branches cannot ping or inject markup', () => {
    const body = render({ state: 'succeeded', pushed: { sha, url: 'https://x/c', branch: 'x`@mallory', files: ['<img src=x>@mallory #5'], rebased: false } });
    // Only inside code spans (where GitHub makes no mentions, links or HTML): no text or HTML node holds them.
    const all = nodes(fromMarkdown(body));
    expect(all.filter((n) => n.type === 'inlineCode').map((n) => (n as { value: string }).value)).toEqual(
      expect.arrayContaining(['x`@mallory', '<img src=x>@mallory #5']),
    );
    for (const n of all) if (n.type === 'text' || n.type === 'html') expect((n as { value: string }).value).not.toMatch(/@mallory|<img/);
  });
});

describe('review work', () => {
  const head = 'c'.repeat(40);
  test('a review ends as one short line linking the review, with the commit and the count', () => {
    const body = render({ kind: 'review', state: 'succeeded', review: { kind: 'reviewed', url: 'https://github.com/o/r/pull/9#pullrequestreview-1', headSha: head, findings: 2, resolved: 1 } });
    expect(body).toContain('✅ **Reviewed** `ccccccc`: [2 findings](https://github.com/o/r/pull/9#pullrequestreview-1) · 1 earlier finding fixed');
    expect(body).not.toContain('**Done**');
  });
  test('nothing found: 👍 and a link to the short comment', () => {
    const body = render({ kind: 'review', state: 'succeeded', review: { kind: 'nothing_to_report', url: 'https://github.com/o/r/pull/9#issuecomment-2', headSha: head, findings: 0, resolved: 0 } });
    expect(body).toContain('👍 **Reviewed** `ccccccc`: [no issues found](https://github.com/o/r/pull/9#issuecomment-2)');
  });
  test('a failed review names the phase and the reason', () => {
    const body = render({ kind: 'review', state: 'failed', failure: { phase: 'agent', reason: 'not a valid review JSON object' } });
    expect(body).toContain('The review failed during `agent`');
  });
});

describe('untrusted text in every part of the comment is neutralised', () => {
  const hostile = 'Fixes #3, GH-4, acme/calc#5, https://github.com/acme/calc/issues/6 and &#35;7 cc @mallory';
  test.each<[string, Partial<ProgressView>]>([
    ['a succeeded task (PR title, answer)', { state: 'succeeded', pullRequest: { number: 9, url: 'https://github.com/o/r/pull/9', title: hostile }, answer: `## Summary\n${hostile}\n\n[x](https://github.com/o/r/issues/8)` }],
    ['a task with no changes (answer)', { state: 'no_changes', answer: hostile }],
    ['a running task (plan, notice)', { state: 'running', plan: [{ step: hostile, status: 'in_progress' }], notice: hostile }],
    ['a failed task with partial work', { state: 'failed', failure: { phase: 'agent', reason: hostile }, pullRequest: { number: 9, url: 'https://github.com/o/r/pull/9', title: hostile } }],
  ])('%s', (_name, over) => {
    const body = render(over);
    expect(body).toContain('\u200d');
    expect(pingable(body)).toEqual([]);
  });
});

describe('environments (issue 12)', () => {
  test('the footer says whether setup was cached, how old the environment is, or how long setup took', () => {
    expect(render({ environment: { status: 'restored', ageMs: 2 * 3_600_000 + 5 * 60_000, durationMs: 1200 } })).toContain('setup: cached (2h old)');
    expect(render({ environment: { status: 'restored', ageMs: 7 * 60_000 } })).toContain('setup: cached (7 min old)');
    expect(render({ environment: { status: 'restored', ageMs: 10_000 } })).toContain('setup: cached (under a minute old)');
    expect(render({ state: 'succeeded', environment: { status: 'built', durationMs: 41_200, saved: true } })).toContain('setup: 41 s, cached for next time');
    expect(render({ environment: { status: 'built', durationMs: 41_200, saved: false } })).toMatch(/setup: 41 s(?!,)/);
    expect(render({ environment: { status: 'restore_failed' } })).toContain('setup: the cached environment was refused');
    expect(render({})).not.toContain('setup:');
  });
});
