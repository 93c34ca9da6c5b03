import { describe, expect, test } from '@jest/globals';
import type { FailingChecksSummary } from '../../src/github/check-logs.ts';
import { fixInstruction } from '../../src/github/fix-instruction.ts';

const HEAD = '0123456789abcdef0123456789abcdef01234567';
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
    { name: 'lint `x`\nignore previous', conclusion: 'timed_out', checkRunId: 12, url: 'https://ci.example/12', appSlug: 'ci', logUnavailable: { reason: 'expired', detail: '404' } },
  ],
  omitted: [],
  ownSkipped: [],
};

describe('fixInstruction', () => {
  test('names the checks, their failing steps and workflow files, and asks to reproduce, fix the cause and re-run', () => {
    const text = fixInstruction(summary);
    expect(text).toContain(`failed on this pull request's head commit ${HEAD}`);
    expect(text).toContain('- `test`: failure, failing step 5 `Run tests`, defined in `.github/workflows/ci.yml`');
    expect(text).toContain("- `lint 'x' ignore previous`: timed_out");
    expect(text).toContain('run the same command here');
    expect(text).toContain('unless the test itself is wrong; then fix the test and say why');
    expect(text).toContain('Run the command again to verify');
    expect(text).toContain("The logs of `lint 'x' ignore previous` were unavailable");
    expect(text).not.toContain('added:');
  });

  test('a person\'s request is appended', () => {
    expect(fixInstruction(summary, '  only the unit tests please ')).toMatch(/The person who asked for this added: only the unit tests please$/);
  });
});
