import { describe, expect, test } from '@jest/globals';
import { cutJobLog, errorLineIndices, failingStep, parseJobLog, selectLogWindows } from '../../src/github/job-log.ts';
import { ASSERTION_MESSAGE, FAILING_STEP_NAME, TEST_STEP_LINES, failingTestJobSteps } from '../support/ci-logs.ts';
import { actionsJobLog } from '../support/github-stand-in.ts';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('parseJobLog', () => {
  test('removes the BOM, the timestamps, ANSI colour codes and CRs, and keeps the times', () => {
    const lines = parseJobLog('\uFEFF2025-03-01T10:00:00.1234567Z \u001b[31mred\u001b[0m line\r\n2025-03-01T10:00:01.5000000Z ##[group]Run npm test\nno timestamp\n');
    expect(lines).toEqual([
      { text: 'red line', at: Date.parse('2025-03-01T10:00:00.123Z') },
      { text: '##[group]Run npm test', at: Date.parse('2025-03-01T10:00:01.500Z') },
      { text: 'no timestamp' },
    ]);
    expect(parseJobLog('')).toEqual([]);
  });
});

describe('error lines', () => {
  test('strong patterns win over weak ones; GitHub\'s closing exit-code line is weak', () => {
    const lines = ['compiling', '0 errors so far', 'FAIL test/a.test.js', '##[error]Process completed with exit code 1.'];
    expect(errorLineIndices(lines)).toEqual([2]);
    expect(errorLineIndices(['ok', 'an error happened', '##[error]Process completed with exit code 2.'])).toEqual([1, 2]);
    for (const line of ['Traceback (most recent call last):', "TypeError: x is not a function", 'error[E0308]: mismatched types', 'src/a.ts(3,1): error TS2322: no', "thread 'main' panicked at src/main.rs:2:5", '  ✕ adds (3 ms)', '##[error]Unhandled']) {
      expect(errorLineIndices(['fine', line])).toEqual([1]);
    }
  });

  test('the failing step is the first failure, else timed out, else cancelled', () => {
    const s = (number: number, conclusion: string) => ({ number, name: `s${number}`, conclusion });
    expect(failingStep([s(1, 'success'), s(2, 'cancelled'), s(3, 'failure'), s(4, 'failure')])?.number).toBe(3);
    expect(failingStep([s(1, 'success'), s(2, 'cancelled'), s(3, 'timed_out')])?.number).toBe(3);
    expect(failingStep([s(1, 'success'), s(2, 'cancelled')])?.number).toBe(2);
    expect(failingStep([s(1, 'success')])).toBeUndefined();
  });
});

describe('selectLogWindows', () => {
  test('everything is shown when it fits', () => {
    expect(selectLogWindows(['a', 'b'], 100)).toEqual({ text: 'a\nb', shown: [0, 1], errors: [] });
  });

  test('without errors: the head and as much of the end as fits, with an omission marker', () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `line ${i}`);
    const { text } = selectLogWindows(lines, 2000);
    expect(bytes(text)).toBeLessThanOrEqual(2000);
    expect(text.startsWith('line 0\nline 1')).toBe(true);
    expect(text.endsWith('line 999')).toBe(true);
    expect(text).toMatch(/\[… [\d,]+ lines omitted …\]/);
  });

  test('very long lines are cut', () => {
    const { text } = selectLogWindows(['x'.repeat(5000), 'Error: boom'], 100_000);
    expect(text.split('\n')[0]).toHaveLength(500);
  });
});

describe('cutJobLog on a realistic 3,000-line log', () => {
  const built = actionsJobLog(failingTestJobSteps(), Date.parse('2025-03-01T10:00:00Z'));

  test('keeps the failing step, its command and the assertion error, within 12 KiB, and drops the rest', () => {
    expect(built.log.split('\n').length).toBeGreaterThan(TEST_STEP_LINES + 200);
    const cut = cutJobLog(built.log, { steps: built.steps });
    expect(cut.scope).toBe('step_times');
    expect(cut.step).toEqual({ number: 5, name: FAILING_STEP_NAME });
    expect(cut.stepLines).toBeGreaterThanOrEqual(TEST_STEP_LINES);
    expect(bytes(cut.text)).toBeLessThanOrEqual(12 * 1024);
    expect(cut.shownLines).toBeLessThan(200);
    expect(cut.text).toContain(ASSERTION_MESSAGE);
    expect(cut.text).toContain('Expected: 1.5');
    expect(cut.text).toContain('Received: 15');
    expect(cut.text).toContain('at Object.<anonymous> (test/unit/parse-amount.test.js:13:12)');
    expect(cut.text).toContain('##[group]Run npm test');
    expect(cut.text).toContain('Tests:       1 failed');
    expect(cut.text).toContain('##[error]Process completed with exit code 1.');
    expect(cut.text).toMatch(/\[… [\d,]+ lines omitted …\]/);
    // Timestamps and colour codes are gone; other steps are not included.
    expect(cut.text).not.toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    expect(cut.text).not.toContain('\u001b');
    expect(cut.text).not.toContain('npm warn deprecated');
    expect(cut.text).not.toContain('Post job cleanup.');
    // Most of the 3,000 passing lines are left out.
    expect((cut.text.match(/handles case/g) ?? []).length).toBeLessThan(60);
    expect(cut.errorLines[0]).toBeGreaterThan(2000);
  });

  test('without the steps, the ##[group]Run markers find the failing step', () => {
    const cut = cutJobLog(built.log);
    expect(cut.scope).toBe('step_markers');
    expect(cut.step).toBeUndefined();
    expect(cut.text).toContain(ASSERTION_MESSAGE);
    expect(cut.text).not.toContain('npm warn deprecated');
    expect(cut.text).not.toContain('Post job cleanup.');
    expect(bytes(cut.text)).toBeLessThanOrEqual(12 * 1024);
  });

  test('a log without markers or times is cut as a whole', () => {
    const raw = ['starting', ...Array.from({ length: 3000 }, (_, i) => `ok ${i}`), 'Error: the thing broke', 'done'].join('\n');
    const cut = cutJobLog(raw, { maxBytes: 4096 });
    expect(cut.scope).toBe('whole_log');
    expect(cut.text).toContain('Error: the thing broke');
    expect(bytes(cut.text)).toBeLessThanOrEqual(4096);
  });
});
