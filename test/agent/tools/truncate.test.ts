import { describe, expect, it } from '@jest/globals';
import { formatToolOutput, omissionMarker, truncateMiddle } from '../../../src/agent/tools/truncate.ts';
import type { RunResult } from '../../../src/agent/sandbox.ts';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Splits a truncated text into head, omitted count and tail around the marker line. The newline
 * before the marker belongs to the head when the original has it there, else to the marker.
 */
function parts(out: string, original: string): { head: string; omitted: number; tail: string } {
  const m = /\[\.\.\. (\d+) bytes omitted \.\.\.\]\n/.exec(out);
  if (m === null) throw new Error(`no marker in ${JSON.stringify(out.slice(0, 200))}`);
  let head = out.slice(0, m.index);
  if (!original.startsWith(head)) head = head.slice(0, -1);
  return { head, omitted: Number(m[1]), tail: out.slice(m.index + m[0].length) };
}

function result(over: Partial<RunResult>): RunResult {
  return {
    exitCode: 0, signal: null, output: '', outputBytes: 0, droppedBytes: 0, durationMs: 1234,
    timedOut: false, aborted: false, ...over,
  };
}

describe('truncateMiddle', () => {
  it('returns text within the budget unchanged', () => {
    expect(truncateMiddle('hello\nworld\n', 100)).toBe('hello\nworld\n');
    const exact = 'x'.repeat(10 * 1024);
    expect(truncateMiddle(exact)).toBe(exact);
  });

  it('keeps head and tail within the byte budget and counts the omitted bytes', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i} ${'abc'.repeat(10)}`).join('\n') + '\n';
    const out = truncateMiddle(text, 4096);
    expect(bytes(out)).toBeLessThanOrEqual(4096);
    expect(out.startsWith('line 0 ')).toBe(true);
    expect(out.endsWith('line 1999 ' + 'abc'.repeat(10) + '\n')).toBe(true);
    const p = parts(out, text);
    // head and tail are exact slices of the original, and the count adds up.
    expect(text.startsWith(p.head)).toBe(true);
    expect(text.endsWith(p.tail)).toBe(true);
    expect(bytes(p.head) + p.omitted + bytes(p.tail)).toBe(bytes(text));
    // both halves get a fair share of the budget
    expect(bytes(p.head)).toBeGreaterThan(1500);
    expect(bytes(p.tail)).toBeGreaterThan(1500);
  });

  it('cuts on line boundaries when lines are available', () => {
    const text = Array.from({ length: 500 }, (_, i) => `${String(i).padStart(4, '0')}:${'y'.repeat(60)}`).join('\n');
    const out = truncateMiddle(text, 2000);
    const p = parts(out, text);
    expect(p.head.endsWith('\n')).toBe(true);
    for (const line of p.head.trimEnd().split('\n')) expect(line).toMatch(/^\d{4}:y{60}$/);
    for (const line of p.tail.split('\n')) expect(line).toMatch(/^\d{4}:y{60}$/);
    expect(out).toContain(`\n${omissionMarker(p.omitted)}\n`);
  });

  it('never splits a multi-byte character when there are no newlines', () => {
    const text = '€😀ж'.repeat(3000); // 3 + 4 + 2 bytes per group, no newlines
    for (const max of [1000, 1001, 1002, 1003, 4097]) {
      const out = truncateMiddle(text, max);
      expect(bytes(out)).toBeLessThanOrEqual(max);
      expect(out).not.toContain('\uFFFD');
      expect(Buffer.from(out, 'utf8').toString('utf8')).toBe(out);
      const p = parts(out, text);
      expect(bytes(p.head) + p.omitted + bytes(p.tail)).toBe(bytes(text));
      expect(text.startsWith(p.head)).toBe(true);
      expect(text.endsWith(p.tail)).toBe(true);
    }
  });

  it('returns at most the marker when the budget is tiny, and rejects bad budgets', () => {
    const out = truncateMiddle('z'.repeat(1000), 20);
    expect(bytes(out)).toBeLessThanOrEqual(20);
    expect(truncateMiddle('z'.repeat(1000), 0)).toBe('');
    expect(() => truncateMiddle('abc', -1)).toThrow(RangeError);
    expect(() => truncateMiddle('abc', 1.5)).toThrow(RangeError);
  });
});

describe('formatToolOutput', () => {
  it('shows exit code, wall time and the output', () => {
    const s = formatToolOutput(result({ exitCode: 2, durationMs: 1500, output: 'boom\n', outputBytes: 5 }));
    expect(s).toBe('Exit code: 2\nWall time: 1.5 seconds\nOutput:\nboom\n');
  });

  it('reports a timeout and a killing signal', () => {
    const s = formatToolOutput(result({ exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 60_000, output: 'partial' }));
    expect(s).toContain('Exit code: none (killed by SIGKILL)');
    expect(s).toContain('Wall time: 60.0 seconds');
    expect(s).toMatch(/Timed out: .*time limit/);
    expect(s).not.toContain('Aborted');
    expect(s.endsWith('Output:\npartial')).toBe(true);
  });

  it('reports an abort', () => {
    expect(formatToolOutput(result({ exitCode: null, signal: 'SIGTERM', aborted: true }))).toContain('Aborted:');
  });

  it('truncates long output to the budget and gives the total size', () => {
    const output = Array.from({ length: 5000 }, (_, i) => `row ${i}`).join('\n');
    const s = formatToolOutput(result({ output, outputBytes: bytes(output) }));
    const body = s.slice(s.indexOf('Output:\n') + 'Output:\n'.length);
    expect(bytes(body)).toBeLessThanOrEqual(10 * 1024);
    expect(body).toMatch(/\[\.\.\. \d+ bytes omitted \.\.\.\]/);
    expect(body.startsWith('row 0\n')).toBe(true);
    expect(body.endsWith('row 4999')).toBe(true);
    expect(s).toContain(`Total output bytes: ${bytes(output)}`);
  });

  it('gives the real total when the capture already dropped bytes', () => {
    const s = formatToolOutput(result({ output: `a\n${omissionMarker(999)}\nb`, outputBytes: 1003, droppedBytes: 999 }));
    expect(s).toContain('Total output bytes: 1003');
  });
});
