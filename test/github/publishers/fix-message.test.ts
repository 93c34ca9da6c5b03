import { describe, expect, test } from '@jest/globals';
import type { CommandRecord, FileChange } from '../../../src/contract.ts';
import type { FailingChecksSummary } from '../../../src/github/check-logs.ts';
import {
  FIX_SUBJECT_MAX_CHARS,
  capReachedComment,
  fixCommitMessage,
  fixCommitSubject,
  fixReply,
  logsUnavailableNote,
  notFixedReply,
} from '../../../src/github/publishers/fix-message.ts';

const HEAD = '0123456789abcdef0123456789abcdef01234567';
const COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';
const summary: FailingChecksSummary = {
  headSha: HEAD,
  checks: [
    {
      name: 'test',
      conclusion: 'failure',
      checkRunId: 11,
      url: 'https://github.com/o/r/actions/runs/5/job/11',
      appSlug: 'github-actions',
      job: { id: 11, runId: 5, url: 'https://github.com/o/r/actions/runs/5/job/11', failingStep: { number: 5, name: 'Run tests' }, workflowPath: '.github/workflows/ci.yml', logRead: true },
    },
    { name: 'typecheck', conclusion: 'timed_out', checkRunId: 12, url: 'https://ci.example/runs/12', appSlug: 'stand-in-ci' },
  ],
  omitted: [],
  ownSkipped: [],
};
const commands: CommandRecord[] = [
  { phase: 'setup', command: ['npm', 'ci'], workdir: '.', exitCode: 0, durationMs: 9000, timedOut: false },
  { phase: 'agent', command: ['bash', '-lc', 'npm test'], workdir: '.', exitCode: 1, durationMs: 4100, timedOut: false },
  { phase: 'agent', command: ['bash', '-lc', 'npm test'], workdir: '.', exitCode: 0, durationMs: 3900, timedOut: false },
];
const change = (path: string, action: FileChange['action'] = 'modify'): FileChange =>
  action === 'delete' ? { action, path } : { action, path, mode: '100644', contentBase64: '' };

describe('fix commit message', () => {
  test('subject names the checks, shortened with "and N more" to fit 72 characters', () => {
    expect(fixCommitSubject(['test', 'lint'])).toBe('Fix failing checks: test, lint');
    expect(fixCommitSubject(['test', 'test'])).toBe('Fix failing checks: test');
    expect(fixCommitSubject([])).toBe('Fix failing checks');
    const many = ['unit tests (ubuntu-latest, 20)', 'unit tests (windows-latest, 22)', 'lint', 'e2e'];
    const subject = fixCommitSubject(many);
    expect(subject.length).toBeLessThanOrEqual(FIX_SUBJECT_MAX_CHARS);
    expect(subject).toBe('Fix failing checks: unit tests (ubuntu-latest, 20) and 3 more');
    expect(fixCommitSubject(['x'.repeat(200)]).length).toBeLessThanOrEqual(FIX_SUBJECT_MAX_CHARS);
  });

  test('body lists what failed and what changed, then the agent\'s own explanation', () => {
    const message = fixCommitMessage({
      checks: summary.checks,
      changes: [change('src/parse.js'), change('test/old.test.js', 'delete'), change('src/new.js', 'add')],
      agentMessage: 'Parse decimal commas\n\nparseAmount dropped the comma instead of reading it as a decimal point.',
    });
    expect(message).toBe(
      [
        'Fix failing checks: test, typecheck',
        '',
        'Failing checks:',
        '- test (failure, step 5 "Run tests")',
        '- typecheck (timed_out)',
        '',
        'Changes:',
        '- modify src/parse.js',
        '- delete test/old.test.js',
        '- add src/new.js',
        '',
        'parseAmount dropped the comma instead of reading it as a decimal point.',
      ].join('\n'),
    );
    const long = fixCommitMessage({ checks: [], changes: Array.from({ length: 35 }, (_, i) => change(`f${i}`)) });
    expect(long).toContain('- … and 5 more files');
  });
});

describe('replies', () => {
  test('fix reply: the commit, each check with the job log read, the commands with exit codes', () => {
    const reply = fixReply({
      summary,
      commit: { sha: COMMIT, url: `https://github.com/o/r/commit/${COMMIT}` },
      agentSummary: '## Summary\nRead "1,5" as 1.5. Thanks @alice, fixes #3.\n\n## Testing\n- `npm test` passes',
      commands,
      attempt: { number: 1, max: 2 },
    });
    expect(reply).toContain(`Pushed [\`fedcba9\`](https://github.com/o/r/commit/${COMMIT}) to fix \`test\`, \`typecheck\` (automatic attempt 1 of 2).`);
    expect(reply).toContain('- `test` (failure) · [job log](https://github.com/o/r/actions/runs/5/job/11) · failing step 5 `Run tests`');
    expect(reply).toContain('- `typecheck` (timed_out) · [check](https://ci.example/runs/12)');
    expect(reply).toContain('**What failed** on `0123456`');
    expect(reply).toContain('`npm test` · ❌ exit 1');
    expect(reply).toContain('`npm test` · ✅ exit 0');
    expect(reply).not.toContain('npm ci');
    expect(reply).not.toMatch(/@alice/);
    expect(reply).not.toMatch(/#3\b/);
    expect(reply).not.toContain('[!NOTE]');
  });

  test('unavailable logs are said, and the job is linked without claiming its log was read', () => {
    const missing: FailingChecksSummary = {
      ...summary,
      checks: [{ ...summary.checks[0]!, job: { ...summary.checks[0]!.job!, logRead: false }, logUnavailable: { reason: 'expired', detail: 'GitHub answered 404' } }],
    };
    expect(logsUnavailableNote(missing)).toBe(
      '> [!NOTE]\n> The logs of `test` (expired or deleted) were unavailable, so the agent worked from the check output and annotations only.',
    );
    const reply = fixReply({ summary: missing, commit: { sha: COMMIT, url: 'javascript:alert(1)' }, agentSummary: 'ok', commands: [] });
    expect(reply).toContain('[job](https://github.com/o/r/actions/runs/5/job/11) (log unavailable)');
    expect(reply).toContain('logs of `test` (expired or deleted) were unavailable');
    expect(reply).toContain('Pushed `fedcba9` to fix `test`.');
    expect(reply).not.toContain('javascript:');
  });

  test('not fixed: what the agent found, no commit', () => {
    const reply = notFixedReply({ summary, agentSummary: 'The test fails only on Windows runners; cannot reproduce on Linux.', commands, outcome: 'no_changes' });
    expect(reply).toMatch(/^Could not fix `test`, `typecheck`: the agent did not change anything .*Nothing was pushed\./);
    expect(reply).toContain('**What the agent found**\n\nThe test fails only on Windows runners');
    expect(reply).toContain('❌ exit 1');
    const failed = notFixedReply({ summary, agentSummary: '', commands: [], outcome: 'failed', reason: 'time limit\nreached' });
    expect(failed).toContain('the task failed (time limit reached). Nothing was pushed.');
    expect(failed).not.toContain('What the agent found');
  });

  test('check names cannot break out of their code spans or ping anyone', () => {
    const evil: FailingChecksSummary = { ...summary, checks: [{ ...summary.checks[1]!, name: '`x` @everyone <img src=x>' }] };
    const reply = notFixedReply({ summary: evil, agentSummary: '', commands: [], outcome: 'no_changes' });
    expect(reply).toContain('`` `x` @everyone <img src=x> ``');
  });

  test('cap comment: once, naming the checks and how to resume', () => {
    expect(capReachedComment({ checks: ['test'], maxAttempts: 2 })).toBe(
      'Automatic fixing stopped: `test` still fails after 2 automatic fix attempts (`autofix.max_attempts`).\n\n' +
        'No further automatic attempts will be made on this pull request until someone pushes a commit or asks with `@codex fix ci`.',
    );
    expect(capReachedComment({ checks: ['test', 'lint'], maxAttempts: 1, mention: '@bot' })).toContain('`test`, `lint` still fail after 1 automatic fix attempt (');
  });
});
