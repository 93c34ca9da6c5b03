/**
 * Truncation of command output before it goes to the model, and the text the model sees for one
 * command run. Lengths are UTF-8 bytes throughout (what the API bills and what the byte limits in
 * DESIGN.md mean), never UTF-16 code units.
 */
import type { RunResult } from '../sandbox.ts';

/** Default byte budget for one tool output shown to the model (10 KiB, as in the Codex CLI). */
export const DEFAULT_TOOL_OUTPUT_BYTES = 10 * 1024;

/**
 * The line that stands in for removed text: `[... 12345 bytes omitted ...]`, without newlines.
 * @param omittedBytes number of UTF-8 bytes removed (a non-negative integer).
 */
export function omissionMarker(omittedBytes: number): string {
  return `[... ${omittedBytes} bytes omitted ...]`;
}

/**
 * Index of the first byte of the UTF-8 character at or after byte `i` of `buf` (skips continuation
 * bytes); buf.length when none.
 */
export function charStartAtOrAfter(buf: Buffer, i: number): number {
  while (i < buf.length && ((buf[i] ?? 0) & 0xc0) === 0x80) i++;
  return i;
}

/**
 * Index of the first byte of the UTF-8 character at or before byte `i` of `buf` (`i` may equal
 * buf.length, which is returned as is): cutting there never splits a character.
 */
export function charStartAtOrBefore(buf: Buffer, i: number): number {
  while (i > 0 && i < buf.length && ((buf[i] ?? 0) & 0xc0) === 0x80) i--;
  return i;
}

/**
 * Shortens `text` to at most `maxBytes` UTF-8 bytes by removing its middle: the head and the tail
 * each get about half the budget, cut on line boundaries when a newline lies in the second half of
 * the head (or first half of the tail), otherwise on a character boundary (never inside a multi-byte
 * character). The removed part is replaced by a line `[... N bytes omitted ...]` (see
 * {@link omissionMarker}), where N counts the removed bytes; the marker is included in the budget.
 * Text that already fits is returned unchanged. If the budget cannot hold head, tail and marker,
 * only the marker is returned, or '' when even that does not fit.
 *
 * @param text any string (lone surrogates are encoded as U+FFFD, as Buffer does).
 * @param maxBytes budget in UTF-8 bytes, an integer >= 0; default 10 KiB.
 * @throws RangeError when maxBytes is negative or not an integer.
 */
export function truncateMiddle(text: string, maxBytes: number = DEFAULT_TOOL_OUTPUT_BYTES): string {
  if (!Number.isInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
  }
  const total = Buffer.byteLength(text, 'utf8');
  if (total <= maxBytes) return text;
  const buf = Buffer.from(text, 'utf8');

  // Reserve room for the marker line with its two surrounding newlines; the number printed in it
  // is at most `total`, so this is an upper bound on its size.
  const reserve = Buffer.byteLength(`\n${omissionMarker(total)}\n`);
  const budget = maxBytes - reserve;
  if (budget <= 0) {
    const marker = omissionMarker(total);
    return Buffer.byteLength(marker) <= maxBytes ? marker : '';
  }

  const headBudget = Math.floor(budget / 2);
  const tailBudget = budget - headBudget;

  // Head: [0, headEnd). Prefer ending just after a newline in the second half of the head.
  let headEnd = charStartAtOrBefore(buf, headBudget);
  const lastNl = headEnd > 0 ? buf.lastIndexOf(0x0a, headEnd - 1) : -1;
  if (lastNl >= 0 && lastNl + 1 >= headEnd / 2) headEnd = lastNl + 1;

  // Tail: [tailStart, total). Prefer starting just after a newline in the first half of the tail.
  let tailStart = charStartAtOrAfter(buf, total - tailBudget);
  const firstNl = buf.indexOf(0x0a, tailStart);
  if (firstNl >= 0 && firstNl + 1 < total && firstNl + 1 - tailStart <= (total - tailStart) / 2) {
    tailStart = firstNl + 1;
  }

  const head = buf.subarray(0, headEnd).toString('utf8');
  const tail = buf.subarray(tailStart).toString('utf8');
  const omitted = tailStart - headEnd;
  const before = head.length === 0 || head.endsWith('\n') ? '' : '\n';
  return `${head}${before}${omissionMarker(omitted)}\n${tail}`;
}

/**
 * The text the model receives for one command run (the `shell` tool's output), in the layout the
 * Codex CLI uses so that codex models read it naturally:
 * ```
 * Exit code: 0            (or "Exit code: none (killed by SIGKILL)")
 * Wall time: 1.2 seconds
 * Timed out: ...          (only when the time limit killed it)
 * Aborted: ...            (only when the run was cancelled)
 * Total output bytes: N   (only when the output below is shortened)
 * Output:
 * <output, shortened with truncateMiddle>
 * ```
 * @param r the sandbox's result for the command.
 * @param maxBytes byte budget for the output part (default 10 KiB), see {@link truncateMiddle}.
 */
export function formatToolOutput(r: RunResult, maxBytes: number = DEFAULT_TOOL_OUTPUT_BYTES): string {
  const lines: string[] = [];
  if (r.exitCode !== null) lines.push(`Exit code: ${r.exitCode}`);
  else lines.push(`Exit code: none (killed by ${r.signal ?? 'a signal'})`);
  lines.push(`Wall time: ${(r.durationMs / 1000).toFixed(1)} seconds`);
  if (r.timedOut) {
    lines.push('Timed out: the command exceeded its time limit and was killed with all its processes.');
  }
  if (r.aborted) lines.push('Aborted: the run was cancelled and the command was killed.');
  const shown = truncateMiddle(r.output, maxBytes);
  if (shown !== r.output || r.droppedBytes > 0) lines.push(`Total output bytes: ${r.outputBytes}`);
  lines.push('Output:');
  return `${lines.join('\n')}\n${shown}`;
}
