/**
 * Cuts a GitHub Actions job log down to what a model needs to fix the failure: the failing step, and
 * within it the lines around the first errors, within a byte budget, with explicit omission markers.
 *
 * The log format (what `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs` redirects to,
 * https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run): UTF-8,
 * often with a BOM, every line prefixed with an ISO 8601 timestamp with 7 fractional digits
 * (`2025-01-01T10:00:00.1234567Z `); a `run:` step starts with `##[group]Run <first command line>`, its
 * header (command, shell, env) ends with `##[endgroup]`; workflow commands show as `##[error]`,
 * `##[warning]`, `##[debug]`; a failed step ends with `##[error]Process completed with exit code N.`
 * Lines may carry ANSI colour codes (SGR escapes), removed here with Node's
 * `util.stripVTControlCharacters`.
 *
 * Pure functions: no I/O.
 */
import { stripVTControlCharacters } from 'node:util';

/** Default budget of a cut log, UTF-8 bytes (~12 KiB). */
export const DEFAULT_JOB_LOG_BYTES = 12 * 1024;
/** Longest line kept, characters (longer lines are cut with `…`, e.g. minified bundles in a stack trace). */
export const MAX_LOG_LINE_CHARS = 500;

/** One log line, cleaned: no timestamp, no ANSI codes, no `\r`. */
export interface LogLine {
  text: string;
  /** Epoch ms of the line's timestamp, when it had one. */
  at?: number;
}

/** A job step as `GET /actions/jobs/{job_id}` lists it (times at second precision, ISO 8601). */
export interface JobStep {
  name: string;
  number: number;
  conclusion: string | null;
  started_at?: string | null;
  completed_at?: string | null;
}

/** Result of {@link cutJobLog}. */
export interface CutJobLog {
  /** The cut log: cleaned lines with `[… N lines omitted …]` markers; at most the budget in UTF-8 bytes. */
  text: string;
  /** The step the log was cut to (the first failed one), when known. */
  step?: { number: number; name: string };
  /** How the failing step's lines were found: by the steps' times, by `##[group]Run` markers, or not at all (whole log). */
  scope: 'step_times' | 'step_markers' | 'whole_log';
  /** Lines in the whole log and in the failing step's part of it. */
  totalLines: number;
  stepLines: number;
  /** Lines of the step shown. */
  shownLines: number;
  /** 1-based line numbers (within the step's part) of the error lines that anchored the cut, at most 10. */
  errorLines: number[];
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) ?/;

/**
 * Splits a raw job log into cleaned lines: BOM and `\r` removed, the leading timestamp parsed into
 * `at` and removed, ANSI escape sequences removed.
 */
export function parseJobLog(raw: string): LogLine[] {
  const text = raw.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').replace(/\n$/, '');
  if (!text) return [];
  return text.split('\n').map((line) => {
    const m = TIMESTAMP.exec(line.replace(/^\uFEFF/, ''));
    if (!m) return { text: stripVTControlCharacters(line) };
    const at = Date.parse(m[1]!);
    const rest = stripVTControlCharacters(line.replace(/^\uFEFF/, '').slice(m[0].length));
    return Number.isNaN(at) ? { text: rest } : { text: rest, at };
  });
}

/**
 * Lines that mark an error, strongest first. A "strong" match anchors the cut; the weak ones
 * (`error` anywhere, a non-zero exit code, GitHub's closing `##[error]Process completed with exit code`)
 * are used only when there is no strong one.
 */
export const STRONG_ERROR_PATTERNS: readonly RegExp[] = [
  /##\[error\](?!Process completed with exit code)/,
  /\bAssertionError\b/,
  /^\s*Traceback \(most recent call last\)/,
  /\bFAIL(?:ED)?\b/,
  /[✕✖✗×]\s/,
  /\b[A-Z]\w*Error:|\bError:/,
  /\berror(?:\[[A-Z]?\d+\])?:/i,
  /\berror TS\d+:/,
  /\bpanicked at\b/,
  /^npm ERR!|^npm error\b/,
];
/** Weak error patterns (see {@link STRONG_ERROR_PATTERNS}). */
export const WEAK_ERROR_PATTERNS: readonly RegExp[] = [/\berror\b/i, /exit(?:ed with)? (?:code|status) [1-9]\d*/i, /##\[error\]/];

/** 0-based indices of error lines: the strong matches, or the weak ones when there are none. */
export function errorLineIndices(lines: readonly string[]): number[] {
  const strong: number[] = [];
  const weak: number[] = [];
  lines.forEach((line, i) => {
    if (STRONG_ERROR_PATTERNS.some((re) => re.test(line))) strong.push(i);
    else if (WEAK_ERROR_PATTERNS.some((re) => re.test(line))) weak.push(i);
  });
  return strong.length ? strong : weak;
}

/** The step to cut to: the first `failure`, else the first `timed_out`, else the first `cancelled`. */
export function failingStep(steps: readonly JobStep[]): JobStep | undefined {
  for (const conclusion of ['failure', 'timed_out', 'cancelled']) {
    const step = steps.find((s) => s.conclusion === conclusion);
    if (step) return step;
  }
  return undefined;
}

/**
 * The part of the log that belongs to `step`: the lines whose timestamps fall within the step's
 * started_at…completed_at (the API gives whole seconds, so the end is widened by one second).
 * @returns undefined when the step has no times or no line falls in them.
 */
function linesByTime(lines: LogLine[], step: JobStep): LogLine[] | undefined {
  const start = step.started_at ? Date.parse(step.started_at) : Number.NaN;
  const end = step.completed_at ? Date.parse(step.completed_at) : Number.NaN;
  if (Number.isNaN(start) || Number.isNaN(end)) return undefined;
  let inside = lines.filter((l) => l.at !== undefined && l.at >= start && l.at < end + 1000);
  // Whole seconds overlap the neighbours: a `Run` header within the first second starts the step, and
  // GitHub's closing `##[error]Process completed with exit code N.` ends a failed one.
  const header = inside.findIndex((l) => /^##\[group\]Run /.test(l.text));
  if (header > 0 && inside[header]!.at! < start + 1000) inside = inside.slice(header);
  const closing = inside.findLastIndex((l) => /^##\[error\]Process completed with exit code/.test(l.text));
  if (closing >= 0) inside = inside.slice(0, closing + 1);
  return inside.length ? inside : undefined;
}

/**
 * The part of the log between `##[group]Run …` markers that holds the first `##[error]` (up to GitHub's
 * closing `##[error]Process completed with exit code N.`), or without one the last `Run` section.
 */
function linesByMarkers(lines: LogLine[]): LogLine[] | undefined {
  const starts = lines.flatMap((l, i) => (/^##\[group\]Run /.test(l.text) ? [i] : []));
  if (!starts.length) return undefined;
  const sections = starts.map((from, k) => lines.slice(from, starts[k + 1] ?? lines.length));
  const withError = sections.find((s) => s.some((l) => l.text.startsWith('##[error]')));
  if (!withError) return sections.at(-1);
  const closing = withError.findLastIndex((l) => /^##\[error\]Process completed with exit code/.test(l.text));
  return closing >= 0 ? withError.slice(0, closing + 1) : withError;
}

function bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function clipLine(text: string): string {
  if (text.length <= MAX_LOG_LINE_CHARS) return text;
  let end = MAX_LOG_LINE_CHARS - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

function omission(n: number): string {
  return `[… ${n.toLocaleString('en-US')} line${n === 1 ? '' : 's'} omitted …]`;
}

/** Bytes kept free for omission markers. */
const MARKER_RESERVE = 240;

/**
 * Picks the lines to show from `lines` within `maxBytes` (UTF-8, markers included), in this order of
 * priority: a window around the first error (8 lines before, 40 after), the last 12 lines, the first
 * 6 (a step's `Run` header), then smaller windows around later errors (3 before, 12 after), up to 10
 * errors. Without any error line: the first 6 and as many of the last lines as fit. Gaps are shown as
 * `[… N lines omitted …]`. Everything fits: everything is shown.
 * @returns the text and the 0-based indices shown.
 */
export function selectLogWindows(lines: readonly string[], maxBytes: number): { text: string; shown: number[]; errors: number[] } {
  const clipped = lines.map(clipLine);
  const errors = errorLineIndices(clipped).slice(0, 10);
  const all = clipped.join('\n');
  if (bytes(all) <= maxBytes) return { text: all, shown: clipped.map((_, i) => i), errors };
  const n = clipped.length;
  type Window = { from: number; to: number; backwards?: boolean };
  const windows: Window[] = [];
  if (errors.length) {
    const [first, ...rest] = errors as [number, ...number[]];
    windows.push({ from: first - 8, to: first + 40 }, { from: n - 12, to: n }, { from: 0, to: 6 });
    for (const e of rest) windows.push({ from: e - 3, to: e + 12 });
  } else {
    windows.push({ from: 0, to: 6 }, { from: 0, to: n, backwards: true });
  }
  const included = new Array<boolean>(n).fill(false);
  let used = 0;
  const budget = Math.max(0, maxBytes - MARKER_RESERVE);
  outer: for (const w of windows) {
    const from = Math.max(0, w.from);
    const to = Math.min(n, w.to);
    for (let k = 0; k < to - from; k++) {
      const i = w.backwards ? to - 1 - k : from + k;
      if (included[i]) continue;
      const cost = bytes(clipped[i]!) + 1;
      if (used + cost > budget) {
        if (w.backwards) break outer;
        break;
      }
      included[i] = true;
      used += cost;
    }
  }
  const out: string[] = [];
  const shown: number[] = [];
  let gap = 0;
  for (let i = 0; i < n; i++) {
    if (!included[i]) {
      gap++;
      continue;
    }
    if (gap) out.push(omission(gap));
    gap = 0;
    out.push(clipped[i]!);
    shown.push(i);
  }
  if (gap) out.push(omission(gap));
  let text = out.join('\n');
  // Markers are short, but a pathological number of gaps could exceed the reserve: cut from the end.
  while (bytes(text) > maxBytes && out.length > 1) {
    out.splice(out.length - 2, 2, omission(1));
    text = out.join('\n');
  }
  return { text, shown, errors };
}

/**
 * Cuts a raw GitHub Actions job log (see the module doc) to the failing step and the lines around its
 * first errors, at most `maxBytes` UTF-8 bytes (default {@link DEFAULT_JOB_LOG_BYTES}), timestamps and
 * ANSI colour codes removed. The failing step is found by the steps' times (`steps` from the job API),
 * else by the `##[group]Run` markers; failing both, the whole log is cut.
 */
export function cutJobLog(raw: string, opts: { steps?: readonly JobStep[]; maxBytes?: number } = {}): CutJobLog {
  const lines = parseJobLog(raw);
  const step = opts.steps ? failingStep(opts.steps) : undefined;
  let scope: CutJobLog['scope'] = 'whole_log';
  let part: LogLine[] | undefined = step ? linesByTime(lines, step) : undefined;
  if (part) scope = 'step_times';
  else if ((part = linesByMarkers(lines))) scope = 'step_markers';
  else part = lines;
  const { text, shown, errors } = selectLogWindows(
    part.map((l) => l.text),
    opts.maxBytes ?? DEFAULT_JOB_LOG_BYTES,
  );
  return {
    text,
    ...(step ? { step: { number: step.number, name: step.name } } : {}),
    scope,
    totalLines: lines.length,
    stepLines: part.length,
    shownLines: shown.length,
    errorLines: errors.map((i) => i + 1),
  };
}
