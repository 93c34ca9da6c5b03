import { describe, expect, test } from '@jest/globals';
import type { CommandRecord } from '../../src/contract.ts';
import {
  checksRunSection,
  claimsTestsPass,
  isCheckCommand,
  isTestCommand,
  lastRuns,
  testClaimNote,
} from '../../src/github/checks-run.ts';

function cmd(command: string[], exitCode: number | null, extra: Partial<CommandRecord> = {}): CommandRecord {
  return { phase: 'agent', command, workdir: '.', exitCode, durationMs: 2500, timedOut: false, ...extra };
}
const sh = (script: string) => ['bash', '-lc', script];

describe('isTestCommand / isCheckCommand', () => {
  test.each([
    ['npm', 'test'], ['npm', 'run', 'test:unit'], ['yarn', 'test'], ['pnpm', 'test', '--', '-t', 'x'], ['npx', 'jest', 'src'],
    ['npx', 'vitest', 'run'], ['node', '--test'], ['node', '--experimental-vm-modules', '--test', 'a.js'], ['pytest', '-q'],
    ['python3', '-m', 'pytest'], ['python', '-m', 'unittest', 'discover'], ['go', 'test', './...'], ['go', '-C', 'x', 'test'],
    ['cargo', 'test'], ['make', 'test'], ['make', '-j4', 'check'], ['./node_modules/.bin/mocha'], ['bundle', 'exec', 'rspec'],
    ['bun', 'test'], ['deno', 'test'], ['tox'], ['mvn', '-q', 'test'],
  ])('%s … runs tests', (...argv) => {
    expect(isTestCommand(argv)).toBe(true);
    expect(isCheckCommand(argv)).toBe(true);
  });

  test('a test command inside bash -lc counts', () => {
    expect(isTestCommand(sh('cd pkg && npm test 2>&1 | tail -20'))).toBe(true);
  });

  test.each([
    ['rg', '-n', 'test'], ['cat', 'test/math.test.js'], ['sed', '-n', '1,50p', 'tests/test_x.py'], ['ls', 'test'],
    ['git', 'diff'], ['npm', 'ci'], ['node', 'index.js'], ['grep', '-rn', 'pytest', '.'],
  ])('%s … does not run tests', (...argv) => {
    expect(isTestCommand(argv)).toBe(false);
  });

  test('linters, type checkers and builds are checks but not tests', () => {
    for (const argv of [['npx', 'tsc', '--noEmit'], ['npm', 'run', 'lint'], ['ruff', 'check', '.'], ['go', 'vet', './...'], ['cargo', 'clippy'], ['mypy', 'src']]) {
      expect(isCheckCommand(argv)).toBe(true);
      expect(isTestCommand(argv)).toBe(false);
    }
    expect(isCheckCommand(['rg', '-n', 'eslint'])).toBe(false);
  });
});

describe('lastRuns', () => {
  test('keeps the last run of each command per directory, in the order of those last runs, agent phase only', () => {
    const runs = lastRuns([
      cmd(['npm', 'ci'], 0, { phase: 'setup' }),
      cmd(['npm', 'test'], 1),
      cmd(['npx', 'tsc'], 0),
      cmd(['npm', 'test'], 0, { workdir: 'pkg' }),
      cmd(['npm', 'test'], 2),
    ]);
    expect(runs.map((c) => [c.command.join(' '), c.workdir, c.exitCode])).toEqual([
      ['npx tsc', '.', 0],
      ['npm test', 'pkg', 0],
      ['npm test', '.', 2],
    ]);
  });
});

describe('claimsTestsPass', () => {
  test.each([
    'All tests pass.',
    '- tests passed',
    '- `npm test` (passed)',
    '- `pytest -q`: all green',
    '✅ tests',
    'Tests: ✅',
    'The test suite passes with the fix; no regressions.',
    'Ran the tests: 12 passing',
  ])('%s is a claim', (summary) => {
    expect(claimsTestsPass(`# Title\n\n## Testing\n${summary}`)).toBe(true);
  });

  test.each([
    'Tests fail because of a missing dependency.',
    '- `npm test` (failed: could not install jest)',
    'I could not run the tests in the sandbox, so nothing passes for sure.',
    'Tests did not pass.',
    '❌ tests',
    'No changes.',
    'Added a test for the edge case.',
  ])('%s is no claim', (summary) => {
    expect(claimsTestsPass(summary)).toBe(false);
  });
});

describe('testClaimNote', () => {
  test('a claim with a failing last test run is called unsupported, naming the command and its exit', () => {
    const commands = [cmd(['npm', 'test'], 0), cmd(['npx', 'tsc'], 0), cmd(['npm', 'test'], 1)];
    expect(testClaimNote('All tests pass', commands)).toBe(
      "**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.",
    );
  });

  test('several failing test commands are listed; a timeout and a kill are said as such', () => {
    const commands = [cmd(['pytest'], null, { timedOut: true }), cmd(['go', 'test', './...'], null), cmd(['cargo', 'test'], 101)];
    expect(testClaimNote('tests passed', commands)).toBe(
      "**Note:** the last run of `pytest` timed out, `go test ./...` was killed and `cargo test` exited 101; the summary's claim that tests pass is not supported.",
    );
  });

  test('a claim with no test run at all is unsupported too', () => {
    expect(testClaimNote('All tests pass', [cmd(['rg', 'x'], 0)])).toMatch(/^\*\*Note:\*\* no test command was run in this task/);
  });

  test('no note when the last test runs passed (an earlier failure was fixed) or nothing is claimed', () => {
    expect(testClaimNote('All tests pass', [cmd(['npm', 'test'], 1), cmd(['npm', 'test'], 0)])).toBe('');
    expect(testClaimNote('Fixed the bug.', [cmd(['npm', 'test'], 1)])).toBe('');
  });
});

describe('checksRunSection', () => {
  test('lists the last run of each check, counts the other commands, and notes an unsupported claim', () => {
    const section = checksRunSection({
      commands: [
        cmd(['npm', 'ci'], 0, { phase: 'setup' }),
        cmd(['rg', '-n', 'add'], 0),
        cmd(['npm', 'test'], 1),
        cmd(['sed', '-n', '1,20p', 'a.js'], 0),
        cmd(sh('npx tsc --noEmit'), 0, { durationMs: 65_000 }),
        cmd(['npm', 'test'], 1, { durationMs: 800 }),
      ],
      setup: { status: 'succeeded' },
      summary: '## Testing\n- `npm test` (passed)',
    });
    expect(section).toBe([
      '### Checks run',
      '',
      '- `npx tsc --noEmit` · ✅ exit 0 · 1m 05s',
      '- `npm test` · ❌ exit 1 · 800 ms',
      '- _2 other commands (reading, searching, editing): see the task log._',
      '- Setup (dependency install): ✅ succeeded',
      '',
      "**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.",
    ].join('\n'));
  });

  test('a skipped or failed setup is stated with its reason, untrusted text made inert', () => {
    expect(checksRunSection({ commands: [], setup: { status: 'skipped', reason: 'python: python3 is not installed' } })).toBe(
      '### Checks run\n\n- No tests or other checks were run by the agent.\n- Setup (dependency install): ⏭️ skipped: python: python3 is not installed',
    );
    const failed = checksRunSection({ commands: [], setup: { status: 'failed', reason: 'the setup script exited with 3:\n@octocat <b>x</b> fixes #1' } });
    expect(failed).toContain('- Setup (dependency install): ❌ failed: the setup script exited with 3:. Commands that need the dependencies may have failed because of it.');
    // Without a setup status (an older runner), a task failed at setup still says so, one line, inert.
    const legacy = checksRunSection({ commands: [], failure: { phase: 'setup', reason: 'npm ci exited with 1 @octocat <img src=x>' } });
    expect(legacy).toContain('❌ failed: npm ci exited with 1 ');
    expect(legacy).not.toContain('@octocat');
    expect(legacy).not.toMatch(/(?<!\\)<img/);
    expect(checksRunSection({ commands: [], failure: { phase: 'agent', reason: 'x' } })).not.toContain('Setup');
  });
});
