/**
 * The "Checks run" section the app writes itself, from the TaskResult rather than from the model's
 * words: the last run of each distinct check command the agent ran (tests, linters, type checkers,
 * builds) with its exit code and duration, how the setup phase went, and a plain note when the
 * model's summary claims passing tests that the last test run does not support. Shown in the pull
 * request body and in the final reply, next to the model's summary. GitHub-flavoured markdown
 * (https://github.github.com/gfm/); command text and reasons are untrusted and shown inert.
 */
import type { CommandRecord, SetupStatus } from '../contract.ts';
import { codeSpan, escapeInline } from './progress-comment.ts';

/** Most check commands listed (the last ones run are kept). */
export const MAX_LISTED_CHECKS = 30;
/** Longest command shown, characters (longer ones are cut with `…`). */
const MAX_COMMAND_CHARS = 200;
/** Longest setup reason shown, characters. */
const MAX_REASON_CHARS = 300;

/** Cuts `text` to at most `max` UTF-16 units without splitting a surrogate pair, marking the cut with `…`. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A command as a reader would type it: `bash -lc <script>` shows the script; other argv are shell-quoted. */
export function displayCommand(argv: readonly string[]): string {
  if (argv.length === 3 && /^(?:\/(?:usr\/)?bin\/)?(?:ba|z)?sh$/.test(argv[0]!) && /^-l?c$/.test(argv[1]!)) return argv[2]!;
  return argv.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** A duration for people: `850 ms`, `12.3 s`, `4m 05s`, `1h 02m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * Test runners, as they appear in a command line: `npm test`, `npm run test:unit`, `yarn test`,
 * `pnpm test`, `bun test`, `deno test`, `node --test`, `jest`, `vitest`, `mocha`, `ava`, `tap`,
 * `pytest`, `python -m pytest|unittest`, `tox`, `nox`, `go test`, `cargo test|nextest`, `make test|check`,
 * `rspec`, `phpunit`, `mvn test`, `gradle test`, `ctest`, `dotnet test`, `mix test`.
 */
const TEST_COMMAND = new RegExp(
  [
    String.raw`\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?test(?:[:\w-]*)?\b`,
    String.raw`\b(?:bun|deno|go|cargo|dotnet|mix|mvn|gradle|gradlew)\s+(?:\S+\s+)*?test\b`,
    String.raw`\bcargo\s+nextest\b`,
    String.raw`\bnode\s+(?:\S+\s+)*?--test\b`,
    String.raw`(?:^|[\s/\x60'"(])(?:jest|vitest|mocha|ava|tap|pytest|py\.test|tox|nox|rspec|phpunit|ctest)(?=[\s\x60'")]|$)`,
    String.raw`\bpython[\d.]*\s+-m\s+(?:pytest|unittest)\b`,
    String.raw`\bmake\s+(?:\S+\s+)*?(?:test|tests|check)\b`,
  ].join('|'),
);

/** Linters, type checkers and builds: checks that are not tests. */
const OTHER_CHECK = /(?:^|[\s/`'"(])(?:tsc|eslint|prettier|biome|ruff|flake8|pylint|mypy|pyright|black|isort|clippy|gofmt|golangci-lint|rubocop|shellcheck)(?=[\s`'")]|$)|\bgo\s+(?:vet|build)\b|\bcargo\s+(?:check|build|clippy|fmt)\b|\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?(?:lint|typecheck|type-check|check|build|format)(?:[:\w-]*)?\b/;

/** Programs that read, search or print: a command line starting with one runs no check, whatever it names. */
const READERS = new Set([
  'cat', 'sed', 'rg', 'grep', 'egrep', 'fgrep', 'ls', 'find', 'fd', 'head', 'tail', 'less', 'more', 'echo', 'printf',
  'wc', 'nl', 'awk', 'git', 'diff', 'tree', 'stat', 'file', 'which', 'type', 'cd', 'pwd', 'true', 'jq',
]);

/** The simple commands of a command line (split on `&&`, `||`, `;`, `|` and newlines), without the readers'. */
function segments(argv: readonly string[]): string[] {
  return displayCommand(argv)
    .split(/&&|\|\||[;|\n]/)
    .map((seg) => seg.trim())
    .filter((seg) => seg !== '' && !READERS.has((seg.split(/\s+/)[0] ?? '').split('/').at(-1)!));
}

/** Whether the command (argv) runs tests. */
export function isTestCommand(argv: readonly string[]): boolean {
  return segments(argv).some((seg) => TEST_COMMAND.test(seg));
}

/** Whether the command (argv) is a check: a test run, a linter, a type checker or a build. */
export function isCheckCommand(argv: readonly string[]): boolean {
  return segments(argv).some((seg) => TEST_COMMAND.test(seg) || OTHER_CHECK.test(seg));
}

/**
 * The last run of each distinct command of the agent phase (same argv in the same directory), in
 * the order of those last runs.
 */
export function lastRuns(commands: readonly CommandRecord[]): CommandRecord[] {
  const last = new Map<string, CommandRecord>();
  for (const c of commands) {
    if (c.phase !== 'agent') continue;
    const key = JSON.stringify([c.workdir, c.command]);
    last.delete(key);
    last.set(key, c);
  }
  return [...last.values()];
}

function failed(c: CommandRecord): boolean {
  return c.timedOut || c.exitCode !== 0;
}

function outcome(c: CommandRecord): string {
  return c.timedOut ? 'timed out' : c.exitCode === null ? 'was killed' : `exited ${c.exitCode}`;
}

/** Lines saying that something failed or did not pass are no claim of success. */
const NEGATION = /\bfail(?:s|ed|ing|ure|ures)?\b|\bbroken\b|\bskipped\b|❌|\b(?:not|never|cannot|can't|couldn't|didn't|doesn't|don't|won't|unable to)\b[^.\n]{0,30}\b(?:pass|succeed|run|green)/i;
const PASS_WORD = String.raw`(?:pass(?:es|ed|ing)?|succeed(?:s|ed)?|green|ok)\b`;
const CLAIM_PATTERNS = [
  new RegExp(String.raw`\btests?\b[^\n]{0,60}?\b${PASS_WORD}`, 'i'),
  new RegExp(String.raw`\b${PASS_WORD}[^\n]{0,20}\btests?\b`, 'i'),
  /✅[^\n]{0,30}\btests?\b|\btests?\b[^\n]{0,30}✅/i,
];

/**
 * Whether the model's summary claims that tests pass: a line such as "All tests pass", "tests
 * passed", "`npm test` (passed)", "✅ tests", "`pytest`: ok" that does not also say something failed.
 */
export function claimsTestsPass(summary: string): boolean {
  return summary.split('\n').some((line) => {
    if (NEGATION.test(line)) return false;
    if (CLAIM_PATTERNS.some((p) => p.test(line))) return true;
    // A test command named on the line, with a pass word: "`pytest -q` (passed)".
    return TEST_COMMAND.test(line) && new RegExp(String.raw`\b${PASS_WORD}|✅`, 'i').test(line);
  });
}

/**
 * The plain note for a summary that claims passing tests the commands do not support: the last run
 * of a test command failed, or no test command ran at all. `''` when the claim holds or none is made.
 * E.g. "**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported."
 */
export function testClaimNote(summary: string, commands: readonly CommandRecord[]): string {
  if (!claimsTestsPass(summary)) return '';
  const tests = lastRuns(commands).filter((c) => isTestCommand(c.command));
  if (!tests.length) return "**Note:** no test command was run in this task; the summary's claim that tests pass is not supported.";
  const bad = tests.filter(failed);
  if (!bad.length) return '';
  const runs = bad.map((c) => `${codeSpan(cut(displayCommand(c.command), MAX_COMMAND_CHARS))} ${outcome(c)}`);
  const list = runs.length === 1 ? runs[0] : `${runs.slice(0, -1).join(', ')} and ${runs.at(-1)}`;
  return `**Note:** the last run of ${list}; the summary's claim that tests pass is not supported.`;
}

/** Input of {@link checksRunSection}. */
export interface ChecksRunInput {
  /** The TaskResult's commands (all phases; the agent phase's are listed). */
  commands: readonly CommandRecord[];
  /** The TaskResult's setup status, when the runner reports one. */
  setup?: SetupStatus;
  /** The task's failure, when the setup phase failed without a setup status (older runners). */
  failure?: { phase: string; reason: string };
  /** The model's summary, checked for claims of passing tests (untrusted; not shown here). */
  summary?: string;
}

function setupLine(input: ChecksRunInput): string | undefined {
  const setup = input.setup ?? (input.failure?.phase === 'setup' ? { status: 'failed' as const, reason: input.failure.reason } : undefined);
  if (!setup) return undefined;
  const reason = setup.reason?.trim() ? `: ${escapeInline(cut(setup.reason.trim().split('\n')[0]!, MAX_REASON_CHARS))}` : '';
  if (setup.status === 'succeeded') return '- Setup (dependency install): ✅ succeeded';
  if (setup.status === 'skipped') return `- Setup (dependency install): ⏭️ skipped${reason}`;
  return `- Setup (dependency install): ❌ failed${reason}. Commands that need the dependencies may have failed because of it.`;
}

/**
 * Renders the section:
 * ```
 * ### Checks run
 * - `npm test` · ❌ exit 1 · 3.2 s
 * - `npx tsc --noEmit` · ✅ exit 0 · 5.0 s
 * - Setup (dependency install): ❌ failed: npm (package-lock.json) exited with 1; …
 *
 * **Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.
 * ```
 * Lists the last run of each distinct check command of the agent phase (see {@link isCheckCommand};
 * at most {@link MAX_LISTED_CHECKS}, the latest), says so when there is none, counts the other
 * commands (reading, searching), states the setup outcome, and adds {@link testClaimNote}.
 */
export function checksRunSection(input: ChecksRunInput): string {
  const runs = lastRuns(input.commands);
  const checks = runs.filter((c) => isCheckCommand(c.command));
  const shown = checks.slice(-MAX_LISTED_CHECKS);
  const lines = shown.map((c) => {
    const result = c.timedOut ? '⏱️ timed out' : c.exitCode === 0 ? '✅ exit 0' : c.exitCode === null ? '❌ killed' : `❌ exit ${c.exitCode}`;
    const where = c.workdir && c.workdir !== '.' ? ` · in ${codeSpan(cut(c.workdir, 100))}` : '';
    return `- ${codeSpan(cut(displayCommand(c.command), MAX_COMMAND_CHARS))} · ${result} · ${formatDuration(c.durationMs)}${where}`;
  });
  if (!checks.length) lines.push('- No tests or other checks were run by the agent.');
  if (checks.length > shown.length) lines.push(`- _${checks.length - shown.length} earlier checks not shown._`);
  const others = runs.length - checks.length;
  if (others > 0) lines.push(`- _${others} other command${others === 1 ? '' : 's'} (reading, searching, editing): see the task log._`);
  const setup = setupLine(input);
  if (setup) lines.push(setup);
  const note = input.summary === undefined ? '' : testClaimNote(input.summary, input.commands);
  return ['### Checks run', '', ...lines, ...(note ? ['', note] : [])].join('\n');
}
