/**
 * The body of a pull request the app opens: the agent's summary, the `Closes #N` link to the issue, the
 * app's own "Checks run" section (checks-run.ts: the last run of each check, the setup outcome, a
 * note on unsupported claims of passing tests), and a footer with the model, token usage, time and the
 * task log. GitHub-flavoured markdown (https://github.github.com/gfm/).
 */
import type { CommandRecord, SetupStatus, Usage } from '../contract.ts';
import { checksRunSection, cut, displayCommand, formatDuration as duration } from './checks-run.ts';
import { sanitizeMarkdown } from './progress-comment.ts';

/** GitHub refuses pull request bodies longer than this many characters. */
export const PULL_REQUEST_BODY_LIMIT = 65_536;
/** Most commands listed in the body (the last ones run are kept). */
export const MAX_LISTED_COMMANDS = 30;
/** Longest command shown, characters (longer ones are cut with `…`). */
const MAX_COMMAND_CHARS = 200;

/** Options of {@link pullRequestBody}. */
export interface PullRequestBodyOptions {
  /**
   * The agent's final message (markdown with `## Summary` and `## Testing`); untrusted: shown with
   * mentions and issue references neutralised and raw HTML made literal (`sanitizeMarkdown`).
   */
  summary: string;
  /** The issue the work answers; adds `Closes #N` (GitHub closes it when the PR merges). */
  issueNumber?: number;
  /** Commands of the task; the last run of each distinct `agent`-phase check is listed under "Checks run". */
  commands: CommandRecord[];
  /** How the setup phase went (TaskResult `setup`), stated under "Checks run". */
  setup?: SetupStatus;
  /** Model name, e.g. `gpt-5-codex`. */
  model: string;
  /** Token and time usage of the task. */
  usage: Usage;
  /** Link to the task's log (http or https). */
  taskUrl?: string;
  /** GitHub login of who asked for the work (without `@`). */
  requester?: string;
}

/**
 * A markdown code span showing `text` literally: backticks inside are handled with a longer fence and
 * padding spaces (CommonMark "code spans"), line breaks shown as `⏎`.
 */
export function codeSpan(text: string): string {
  const flat = text.replace(/\r?\n/g, '⏎');
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length));
  if (!longest && !/^ | $/.test(flat) && flat) return `\`${flat}\``;
  const fence = '`'.repeat(longest + 1);
  return `${fence} ${flat} ${fence}`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The collapsed list of agent-phase commands (each with its exit code and duration), or `''` when there are none. */
export function commandsSection(commands: CommandRecord[]): string {
  const agent = commands.filter((c) => c.phase === 'agent');
  if (!agent.length) return '';
  const failed = agent.filter((c) => c.timedOut || c.exitCode !== 0).length;
  const shown = agent.slice(-MAX_LISTED_COMMANDS);
  const lines = shown.map((c) => {
    const outcome = c.timedOut ? '⏱️ timed out' : c.exitCode === 0 ? '✅ exit 0' : c.exitCode === null ? '❌ killed' : `❌ exit ${c.exitCode}`;
    const where = c.workdir && c.workdir !== '.' ? ` · in ${codeSpan(cut(c.workdir, 100))}` : '';
    return `- ${codeSpan(cut(displayCommand(c.command), MAX_COMMAND_CHARS))} · ${outcome} · ${duration(c.durationMs)}${where}`;
  });
  const omitted = agent.length - shown.length;
  const title = `Commands run by the agent (${agent.length}${failed ? `, ${failed} failed` : ''})`;
  return [
    '<details>',
    `<summary>${title}</summary>`,
    '',
    ...(omitted ? [`_${omitted} earlier command${omitted === 1 ? '' : 's'} not shown._`, ''] : []),
    ...lines,
    '',
    '</details>',
  ].join('\n');
}

/** The footer line: requester, model, tokens, time, task log link. */
function footer(opts: PullRequestBodyOptions): string {
  const { usage } = opts;
  const parts = ['Codex Cloud'];
  if (opts.requester) parts.push(`requested by @${opts.requester}`);
  parts.push(`model ${codeSpan(cut(opts.model, 100))}`);
  parts.push(
    `${count(usage.inputTokens)} input tokens (${count(usage.cachedInputTokens)} cached), ${count(usage.outputTokens)} output, ` +
      `${count(usage.turns)} turn${usage.turns === 1 ? '' : 's'}`,
  );
  parts.push(duration(usage.totalMs));
  if (opts.taskUrl && /^https?:\/\//i.test(opts.taskUrl) && opts.taskUrl.length <= 2000) {
    let href = opts.taskUrl;
    try {
      href = new URL(opts.taskUrl).href;
    } catch {
      /* keep as given */
    }
    parts.push(`[task log](${href.replace(/[()<> ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)})`);
  }
  return `<sub>${parts.join(' · ')}</sub>`;
}

/**
 * Closes constructs a cut could leave open (a fenced code block, an HTML comment), which would
 * otherwise swallow what follows the summary.
 */
function closeOpenBlocks(text: string): string {
  let out = text;
  if (out.lastIndexOf('<!--') > out.lastIndexOf('-->')) out += ' -->';
  let fence: string | undefined;
  for (const line of out.split('\n')) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (!m) continue;
    const marker = m[1]!;
    if (!fence) fence = marker;
    else if (marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
  }
  if (fence) out += `\n${fence}`;
  return out;
}

/**
 * Renders the pull request body:
 * ```
 * <summary>
 *
 * Closes #N
 *
 * ### Checks run
 * - `npm test` · ✅ exit 0 · 1.2 s
 * - Setup (dependency install): ✅ succeeded
 *
 * ---
 * <sub>Codex Cloud · requested by @login · model `m` · 1,234 input tokens (1,000 cached), 56 output, 3 turns · 2m 05s · [task log](url)</sub>
 * ```
 * Commands are shown as code spans cut to 200 characters (backticks and line breaks cannot break the
 * markdown); see {@link checksRunSection}. The whole
 * body stays within {@link PULL_REQUEST_BODY_LIMIT} characters: a summary too long is cut (closing an
 * open code fence or HTML comment) with a note saying so.
 */
export function pullRequestBody(opts: PullRequestBodyOptions): string {
  const tail: string[] = [];
  if (opts.issueNumber !== undefined) tail.push(`Closes #${opts.issueNumber}`);
  tail.push(checksRunSection({ commands: opts.commands, setup: opts.setup, summary: opts.summary }));
  tail.push(`---\n${footer(opts)}`);
  const rest = tail.join('\n\n');

  // The summary is the model's text: it must not ping people or close other issues on merge
  // (`Fixes #12`), so mentions and issue references are neutralised and raw HTML made literal.
  const summary = sanitizeMarkdown(opts.summary, PULL_REQUEST_BODY_LIMIT).replace(/\r\n?/g, '\n').trim();
  const room = PULL_REQUEST_BODY_LIMIT - rest.length - 2;
  const shown = summary.length > room ? shortenSummary(summary, room) : summary;
  return shown ? `${shown}\n\n${rest}` : rest;
}

/** Cuts `summary` (longer than `room`) at a line break near the end where possible, with a note, within `room`. */
function shortenSummary(summary: string, room: number): string {
  const note = (shown: number): string =>
    `\n\n_The summary was cut to fit GitHub's limit on pull request bodies (${count(shown)} of ${count(summary.length)} characters shown); the task log has the rest._`;
  let keep = room - note(summary.length).length;
  for (;;) {
    if (keep <= 0) return '';
    let end = keep;
    const code = summary.charCodeAt(end - 1);
    if (code >= 0xd800 && code <= 0xdbff) end--;
    let head = summary.slice(0, end);
    const lastBreak = head.lastIndexOf('\n');
    if (lastBreak > end * 0.8) head = head.slice(0, lastBreak);
    head = head.trimEnd();
    const out = `${closeOpenBlocks(head)}${note(head.length)}`;
    if (out.length <= room) return out;
    // Closing an open fence or comment took more room than was left: cut further.
    keep -= out.length - room;
  }
}
