/**
 * The progress comment: one GitHub comment per task, edited in place as the task moves through its
 * states (DESIGN.md, "Data path"). {@link renderProgressComment} turns a {@link ProgressView} into
 * GitHub-flavoured markdown; {@link ProgressCommentUpdater} coalesces the edits so that a chatty task
 * does not hit GitHub's rate limits while the final state is never lost.
 *
 * Everything that came from the model or from GitHub users (plan steps, command text, summaries,
 * failure reasons, titles) is treated as hostile: it cannot ping people or link other issues
 * (mentions, `#123`, `GH-123`, `owner/repo#123` and issue URLs are broken by neutralize.ts), cannot inject HTML (`<details>`, comments, images) and cannot
 * escape the structure of the comment (code spans and fences are sized to their content).
 * Markdown reference: https://github.github.com/gfm/ ; comment size limit (65,536 characters):
 * https://docs.github.com/en/rest/issues/comments#update-an-issue-comment
 */
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Nodes } from 'mdast';
import type { PlanStep } from '../contract.ts';
import { escapeMarkdownText, isIssueUrl, neutralizeReferences } from './neutralize.ts';

/** Largest body GitHub accepts for a comment, in UTF-16 code units (GitHub counts characters). */
export const GITHUB_COMMENT_MAX_CHARS = 65_536;
/** What {@link renderProgressComment} stays under: the GitHub limit with a safety margin. */
export const PROGRESS_COMMENT_MAX_CHARS = 65_000;

const COMMAND_MAX_CHARS = 100;
const REASON_MAX_CHARS = 1500;
const PLAN_STEP_MAX_CHARS = 200;
const PLAN_MAX_STEPS = 30;
const DEFAULT_MENTION = '@codex';
/** Files listed under a pushed commit at most. */
const MAX_LISTED_FILES = 30;

/** The display state of one task, as the progress comment shows it. */
export interface ProgressView {
  taskId: string;
  kind: 'task' | 'review' | 'fix';
  state: 'queued' | 'running' | 'publishing' | 'succeeded' | 'no_changes' | 'failed' | 'cancelled';
  /** 1-based position in the queue, when queued. */
  queuePosition?: number;
  /** The runner's current phase, when running. */
  phase?: 'checkout' | 'setup' | 'agent' | 'result';
  /** The agent's live plan (from `update_plan`), untrusted text. */
  plan?: PlanStep[];
  /** The last command the runner started or finished (untrusted text); `running` while it runs. */
  lastCommand?: { command: string[]; exitCode: number | null; running: boolean };
  /** When the task was requested, epoch ms. */
  startedAt: number;
  /** The time to compute the elapsed time against, epoch ms. */
  now: number;
  /** The task log page (contains its secret key); http(s) only, other schemes are dropped. */
  logUrl?: string;
  /** GitHub login of the requester. */
  requester?: string;
  /** GitHub login of whoever cancelled the task, when cancelled. */
  cancelledBy?: string;
  /** The pull request the task opened (task), pushed to (fix) or reviewed (review). */
  pullRequest?: { number: number; url: string; title: string };
  /**
   * Pull request work: the commit pushed to the pull request's branch (`sha` 40 hex, `url` its web
   * page, the changed `files`, `rebased` when it was re-applied onto a head that moved meanwhile).
   */
  pushed?: { sha: string; url: string; branch: string; files: string[]; rebased: boolean };
  /**
   * Fork pull request work: the pull request it was for (`pullRequest` is then the new one, opened
   * from `branch` of the base repository because the app cannot push to the fork).
   */
  forkOf?: { number: number; branch: string };
  /**
   * Review work: what was published on the reviewed commit `headSha` (40 hex): a review with
   * `findings` posted (`kind: 'reviewed'`) or, with nothing to post, a 👍 comment; `url` links it.
   */
  review?: { kind: 'reviewed' | 'nothing_to_report'; url: string; headSha: string; findings: number; resolved: number };
  /** The agent's summary markdown: the answer for `no_changes`, the summary on success (untrusted). */
  answer?: string;
  /** Which phase failed (`checkout`, `setup`, `agent`, `result`, `publishing`, …) and why (untrusted). */
  failure?: { phase: string; reason: string };
  /** Token usage as the Responses API reports it, and completed model requests. */
  usage?: { inputTokens: number; cachedInputTokens: number; outputTokens: number; turns: number };
  /** Model name. */
  model?: string;
  /** How people address the app, for retry hints; default `@codex`. */
  mention?: string;
  /** The latest warning while the task is active (e.g. a RunTask retry), untrusted text. */
  notice?: string;
  /**
   * The app's own "Checks run" section for a finished task: markdown rendered by `checksRunSection`
   * (checks-run.ts) from the TaskResult's commands and setup status, which makes its untrusted parts
   * inert; shown as given, after the answer (or the failure), in a final state only.
   */
  checks?: string;
  /** The runner's last `environment` event (issue 12), shown as `setup: cached (2h old)`. */
  environment?: EnvironmentNote;
}

/** What the progress comment shows of a task's environment: the `environment` progress event's fields. */
export interface EnvironmentNote {
  status: 'restored' | 'built' | 'restore_failed';
  /** Restore or setup time, ms. */
  durationMs?: number;
  /** Age of the restored environment, ms. */
  ageMs?: number;
  /** Whether the environment built by setup is cached for the next task. */
  saved?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Marker

/**
 * The hidden marker that starts every progress comment: `<!-- codex-cloud:task=<id> -->`, the id
 * percent-encoded (so it can never close the HTML comment).
 */
export function progressMarker(taskId: string): string {
  return `<!-- codex-cloud:task=${encodeURIComponent(taskId)} -->`;
}

/**
 * Reads the task id from a comment body that starts with {@link progressMarker}; undefined for any
 * other comment. Only trust it on comments written by the app itself.
 */
export function taskIdFromComment(body: string): string | undefined {
  const match = /^<!-- codex-cloud:task=([^\s>]+) -->/.exec(body);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// Escaping

/** Cuts `text` to at most `max` UTF-16 units, ending with `…`, never splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/**
 * Escapes untrusted plain text for use inside a markdown line: one line, no markdown or HTML
 * syntax (backslash escapes), no mentions or issue references.
 */
export function escapeInline(text: string): string {
  const oneLine = text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]+/gu, ' ').trim();
  return neutralizeReferences(oneLine.replace(/[\\`*_[\]<>#|~$&!]/g, '\\$&'));
}

/**
 * A markdown code span holding `text` on one line: the backtick fence is longer than any backtick run
 * inside, padded with spaces when the text starts or ends with a backtick (GFM §6.1). Mentions and
 * HTML are inert inside code spans.
 */
export function codeSpan(text: string): string {
  const oneLine = text.replace(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]+/gu, ' ');
  if (oneLine.trim() === '') return '` `';
  const longest = Math.max(0, ...Array.from(oneLine.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = /^[` ]|[` ]$/.test(oneLine) ? ' ' : '';
  return `${fence}${pad}${oneLine}${pad}${fence}`;
}

/** A fenced code block holding `text`; the fence is longer than any backtick run inside (GFM §4.5). */
export function codeBlock(text: string): string {
  const body = text.replace(/\r\n?/g, '\n').replace(/[^\P{Cc}\n\t]/gu, '');
  const longest = Math.max(0, ...Array.from(body.matchAll(/`+/g), (m) => m[0].length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}text\n${body}\n${fence}`;
}

/** Keeps the head and the tail of a long text (a failure's end usually says the most). */
function headAndTail(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = Math.floor(max / 3);
  const tail = max - head;
  let start = text.slice(0, head);
  if (/[\ud800-\udbff]$/.test(start)) start = start.slice(0, -1);
  let end = text.slice(text.length - tail);
  if (/^[\udc00-\udfff]/.test(end)) end = end.slice(1);
  return `${start}\n… (${text.length - start.length - end.length} characters omitted) …\n${end}`;
}

/**
 * Makes untrusted markdown (the agent's summary) safe to embed: parses it (CommonMark, via
 * mdast-util-from-markdown) and, outside code, neutralises mentions and issue references (see
 * neutralize.ts) and turns raw HTML (tags, comments, `<details>` closers) into literal text.
 * References hidden behind character references or escapes (`&#35;12`, `&commat;bob`, `GH\-12`
 * render as `#12`, `@bob`, `GH-12`) are caught on the decoded text: such a text is written back
 * escaped. Links and link definitions whose destination is an issue, pull request or discussion URL
 * become literal text with the URL broken. Cuts the source to `maxChars` first
 * (adding a note) and closes a code fence the cut left open. The result can grow a little beyond
 * `maxChars` (entities, joiners); callers with a hard limit measure it.
 */
export function sanitizeMarkdown(markdown: string, maxChars: number): string {
  let source = markdown.replace(/\r\n?/g, '\n').trim();
  let truncated = false;
  if (source.length > maxChars) {
    source = truncate(source, Math.max(1, maxChars)).trimEnd();
    truncated = true;
  }
  const tree = fromMarkdown(source);
  const edits: Array<{ start: number; end: number; text: string }> = [];
  let openFence: string | undefined;
  const visit = (node: Nodes): void => {
    const start = node.position?.start.offset;
    const end = node.position?.end.offset;
    if (node.type === 'text' && start !== undefined && end !== undefined) {
      const raw = source.slice(start, end);
      // Escapes and character references decode to other characters: judge the decoded text then.
      const text = /[&\\]/.test(raw) ? escapeMarkdownText(neutralizeReferences(node.value)) : neutralizeReferences(raw);
      edits.push({ start, end, text });
    } else if (node.type === 'html' && start !== undefined && end !== undefined) {
      edits.push({ start, end, text: neutralizeReferences(literalHtml(source.slice(start, end))) });
    } else if ((node.type === 'link' || node.type === 'definition') && isIssueUrl(node.url) && start !== undefined && end !== undefined) {
      // `[see](https://github.com/o/r/issues/1)`, `[x]: https://…`, `<https://…/pull/2>`: shown as
      // literal text (a leading `[` escaped, `<` as a reference) with the reference broken. Children
      // are not visited.
      const literal = neutralizeReferences(literalHtml(source.slice(start, end)));
      edits.push({ start, end, text: literal.startsWith('[') ? `\\${literal}` : literal });
      return;
    } else if (node.type === 'code' && end === source.length && start !== undefined) {
      const raw = source.slice(start, end);
      const open = /^ {0,3}(`{3,}|~{3,})/.exec(raw);
      if (open) {
        const lines = raw.split('\n');
        const fenceChar = open[1]![0]!;
        const closer = new RegExp(`^ {0,3}\\${fenceChar}{${open[1]!.length},}\\s*$`);
        if (lines.length < 2 || !closer.test(lines.at(-1)!)) openFence = open[1];
      }
    }
    if ('children' in node) for (const child of node.children) visit(child);
  };
  visit(tree);
  const pieces: string[] = [];
  let at = 0;
  for (const edit of edits.sort((a, b) => a.start - b.start)) {
    pieces.push(source.slice(at, edit.start), edit.text);
    at = edit.end;
  }
  pieces.push(source.slice(at));
  let out = pieces.join('');
  if (openFence) out += `\n${openFence}`;
  if (truncated) out += '\n\n_(truncated)_';
  return out;
}

/** Markdown source shown literally where it stands: `&`, `<` and `>` as character references. */
function literalHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Returns `url` normalised when it is an absolute http(s) URL, else undefined. */
function safeUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
    return parsed.href.replace(/\(/g, '%28').replace(/\)/g, '%29');
  } catch {
    return undefined;
  }
}

function link(text: string, url: string | undefined): string {
  const href = safeUrl(url);
  return href ? `[${text}](${href})` : text;
}

// ---------------------------------------------------------------------------------------------------
// Formatting

/** Formats a duration in ms as `45s`, `1m 23s` or `2h 5m`. Negative values count as 0. */
export function formatElapsed(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** Formats a token count as `950`, `12.3k` or `1.2M`. */
export function formatTokens(n: number): string {
  const trim = (x: number): string => x.toFixed(1).replace(/\.0$/, '');
  if (n < 1000) return String(Math.round(n));
  if (n < 1_000_000) return `${trim(n / 1000)}k`;
  return `${trim(n / 1_000_000)}M`;
}

/**
 * One line on a task's environment: `setup: cached (2h old)`, `setup: 41 s, cached for next time`,
 * `setup: 41 s`, or `setup: the cached environment was refused`. Numbers only: nothing untrusted.
 */
export function environmentText(note: EnvironmentNote): string | undefined {
  const seconds = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '' : `${Math.max(0, Math.round(ms / 1000))} s`);
  switch (note.status) {
    case 'restored': {
      const age = note.ageMs;
      if (age === undefined || !Number.isFinite(age)) return 'setup: cached';
      const minutes = Math.floor(Math.max(0, age) / 60_000);
      const old = minutes < 1 ? 'under a minute old' : minutes < 60 ? `${minutes} min old` : `${Math.floor(minutes / 60)}h old`;
      return `setup: cached (${old})`;
    }
    case 'built': {
      const took = seconds(note.durationMs);
      return `setup: ${took || 'done'}${note.saved ? ', cached for next time' : ''}`;
    }
    case 'restore_failed':
      return 'setup: the cached environment was refused';
    default:
      return undefined;
  }
}

/** Shows `bash -lc "script"` as the script, like a person typed it. */
function commandText(argv: string[]): string {
  const shown =
    argv.length === 3 && /^(?:\/(?:usr\/)?bin\/)?(?:ba)?sh$/.test(argv[0]!) && /^-l?c$/.test(argv[1]!)
      ? argv[2]!
      : argv.join(' ');
  return truncate(shown.replace(/\s*\n\s*/g, ' ⏎ ').trim(), COMMAND_MAX_CHARS);
}

const PHASE_NAMES = ['checkout', 'setup', 'agent', 'publishing'] as const;

/** Index into PHASE_NAMES of a runner phase or `publishing`; `result` belongs to the agent step. */
function phaseIndex(phase: string | undefined): number | undefined {
  if (phase === 'result') return 2;
  const i = PHASE_NAMES.indexOf(phase as (typeof PHASE_NAMES)[number]);
  return i >= 0 ? i : undefined;
}

/** `✓ checkout → ✓ setup → **agent** → publishing`, or with `✗ **setup**` for a failed phase. */
function phaseLine(current: number, failed = false): string {
  return PHASE_NAMES.map((name, i) => {
    if (i < current) return `✓ ${name}`;
    if (i === current) return failed ? `✗ **${name}**` : `**${name}**`;
    return name;
  }).join(' → ');
}

/** The plan as a checklist; a finished task's plan is shown as the model left it, with no step marked as in progress. */
function planChecklist(plan: PlanStep[], finished = false): string {
  const lines = plan.slice(0, PLAN_MAX_STEPS).map((s) => {
    const text = escapeInline(truncate(s.step, PLAN_STEP_MAX_CHARS)) || '(empty step)';
    if (s.status === 'completed') return `- [x] ${text}`;
    if (s.status === 'in_progress' && !finished) return `- [ ] **${text}** ← _in progress_`;
    return `- [ ] ${text}`;
  });
  if (plan.length > PLAN_MAX_STEPS) lines.push(`- … and ${plan.length - PLAN_MAX_STEPS} more steps`);
  return lines.join('\n');
}

function safeMention(mention: string | undefined): string {
  return mention && /^@[A-Za-z0-9][A-Za-z0-9-]*(?:\[bot\])?$/.test(mention) ? mention : DEFAULT_MENTION;
}

const NOUN = { task: 'task', review: 'review', fix: 'fix' } as const;

// ---------------------------------------------------------------------------------------------------
// Rendering

/**
 * Renders the progress comment for `view` as GitHub-flavoured markdown of at most
 * {@link PROGRESS_COMMENT_MAX_CHARS} characters, starting with {@link progressMarker}. Pure: the same
 * view gives the same body (so unchanged progress does not cause an edit).
 */
export function renderProgressComment(view: ProgressView): string {
  const elapsed = formatElapsed(view.now - view.startedAt);
  const noun = NOUN[view.kind] ?? 'task';
  const mention = safeMention(view.mention);
  const blocks: string[] = [];
  let answerSlot = -1;

  switch (view.state) {
    case 'queued': {
      const position =
        view.queuePosition !== undefined && Number.isSafeInteger(view.queuePosition) && view.queuePosition > 0
          ? ` · position ${view.queuePosition} in the queue`
          : '';
      blocks.push(`⏳ **Queued**${position} · waiting ${elapsed}`);
      break;
    }
    case 'running':
    case 'publishing': {
      const current = view.state === 'publishing' ? 3 : (phaseIndex(view.phase) ?? 0);
      const word = view.state === 'publishing' ? 'Publishing' : 'Working';
      blocks.push(`🔄 **${word}** · ${phaseLine(current)} · ${elapsed}`);
      break;
    }
    case 'succeeded':
      if (view.review && /^[0-9a-f]{40}$/.test(view.review.headSha)) {
        // A review: one short line linking what was published.
        const r = view.review;
        const commit = codeSpan(r.headSha.slice(0, 7));
        const fixed = r.resolved > 0 ? ` · ${r.resolved} earlier ${r.resolved === 1 ? 'finding' : 'findings'} fixed` : '';
        blocks.push(
          r.kind === 'reviewed'
            ? `✅ **Reviewed** ${commit}: ${link(`${r.findings} ${r.findings === 1 ? 'finding' : 'findings'}`, r.url)}${fixed} · ${elapsed}`
            : `👍 **Reviewed** ${commit}: ${link('no issues found', r.url)}${fixed} · ${elapsed}`,
        );
        break;
      }
      blocks.push(`✅ **Done** · ${elapsed}`);
      break;
    case 'no_changes':
      blocks.push(`💬 **Finished with no changes** · ${elapsed}`);
      break;
    case 'failed': {
      const index = phaseIndex(view.failure?.phase);
      blocks.push(`❌ **Failed** · ${index === undefined ? '' : `${phaseLine(index, true)} · `}${elapsed}`);
      break;
    }
    case 'cancelled':
      blocks.push(`⏹️ **Cancelled** · ${elapsed}`);
      break;
  }

  const active = view.state === 'queued' || view.state === 'running' || view.state === 'publishing';
  const plan = view.plan ?? [];
  if (active && view.notice?.trim()) blocks.push(`⚠️ ${escapeInline(truncate(view.notice.trim().split('\n')[0]!, 300))}`);

  const pushed = view.pushed && /^[0-9a-f]{40}$/.test(view.pushed.sha) ? view.pushed : undefined;
  if ((view.state === 'succeeded' || view.state === 'failed') && pushed) {
    const files = pushed.files.slice(0, MAX_LISTED_FILES).map((f) => `- ${codeSpan(truncate(f, 200))}`);
    if (pushed.files.length > MAX_LISTED_FILES) files.push(`- … and ${pushed.files.length - MAX_LISTED_FILES} more`);
    const onto = pushed.rebased ? ' (re-applied on top of commits pushed meanwhile)' : '';
    const what = view.state === 'failed' ? 'The partial work is in commit' : 'Pushed commit';
    blocks.push(`${what} ${link(codeSpan(pushed.sha.slice(0, 7)), pushed.url)} to ${codeSpan(truncate(pushed.branch, 200))}${onto}:\n\n${files.join('\n')}`);
  }
  if (view.forkOf && Number.isSafeInteger(view.forkOf.number) && view.pullRequest && (view.state === 'succeeded' || view.state === 'failed')) {
    blocks.push(
      `This pull request comes from a fork, which I cannot push to: the changes are in a new pull request from ${codeSpan(truncate(view.forkOf.branch, 200))}, on top of its head.`,
    );
  }
  if (view.state === 'succeeded' && view.pullRequest && Number.isSafeInteger(view.pullRequest.number)) {
    const verb = view.kind === 'fix' ? 'Pushed commits to' : view.kind === 'review' ? 'Reviewed' : 'Opened';
    const label = `#${view.pullRequest.number}: ${escapeInline(truncate(view.pullRequest.title, 256))}`;
    blocks.push(`${verb} ${link(label, view.pullRequest.url)}`);
  }
  if ((view.state === 'succeeded' || view.state === 'no_changes') && view.answer?.trim()) {
    answerSlot = blocks.length;
    blocks.push('');
  }
  if (view.state === 'failed' && view.pullRequest && Number.isSafeInteger(view.pullRequest.number)) {
    // The agent stopped early (a limit) with partial work, published as a draft for review.
    const label = `#${view.pullRequest.number}: ${escapeInline(truncate(view.pullRequest.title, 256))}`;
    blocks.push(`The partial work is in the draft pull request ${link(label, view.pullRequest.url)}.`);
  }
  if (view.state === 'failed') {
    const phase = view.failure?.phase ? ` during ${codeSpan(truncate(view.failure.phase, 40))}` : '';
    blocks.push(`The ${noun} failed${phase}:`);
    const reason = view.failure?.reason?.trim() || 'no reason was given';
    blocks.push(codeBlock(headAndTail(reason, REASON_MAX_CHARS)));
    blocks.push(`To try again, comment ${codeSpan(`${mention} retry`)}.`);
  }
  if (!active && view.checks?.trim()) blocks.push(view.checks.trim());
  if (view.state === 'cancelled') {
    const by = view.cancelledBy ? ` by ${escapeInline(`@${view.cancelledBy}`)}` : '';
    blocks.push(`The ${noun} was cancelled${by}.`);
    blocks.push(
      `To start again, comment ${codeSpan(`${mention} retry`)}, or mention ${codeSpan(mention)} with a new request.`,
    );
  }

  if (plan.length > 0) {
    if (active) {
      blocks.push(`**Plan**\n\n${planChecklist(plan)}`);
    } else {
      const done = plan.filter((s) => s.status === 'completed').length;
      blocks.push(`<details><summary>Plan as the agent left it (${done} of ${plan.length} steps checked off)</summary>\n\n${planChecklist(plan, true)}\n\n</details>`);
    }
  }

  if (view.state === 'running' && view.lastCommand && view.lastCommand.command.length > 0) {
    const { exitCode, running } = view.lastCommand;
    const outcome = running ? 'running…' : exitCode === null ? 'killed' : `exit ${exitCode}`;
    blocks.push(`Last command: ${codeSpan(commandText(view.lastCommand.command))} (${outcome})`);
  }

  const footer: string[] = [];
  const logHref = safeUrl(view.logUrl);
  if (logHref) footer.push(`[Task log](${logHref})`);
  if (view.requester) footer.push(`requested by ${escapeInline(`@${truncate(view.requester, 64)}`)}`);
  if (view.usage) {
    const u = view.usage;
    const cached = u.cachedInputTokens > 0 ? ` (${formatTokens(u.cachedInputTokens)} cached)` : '';
    footer.push(`${formatTokens(u.inputTokens)} input tokens${cached}`);
    footer.push(`${formatTokens(u.outputTokens)} output tokens`);
    footer.push(`${u.turns} ${u.turns === 1 ? 'turn' : 'turns'}`);
  }
  if (view.model) footer.push(escapeInline(truncate(view.model, 64)));
  // Environments (issue 12).
  const environment = view.environment ? environmentText(view.environment) : undefined;
  if (environment) footer.push(environment);
  if (footer.length > 0) blocks.push(`<sub>${footer.join(' · ')}</sub>`);

  const assemble = (answer: string): string => {
    if (answerSlot >= 0) blocks[answerSlot] = answer;
    return `${progressMarker(view.taskId)}\n${blocks.join('\n\n')}\n`;
  };
  let body = assemble('');
  if (answerSlot >= 0) {
    const budget = PROGRESS_COMMENT_MAX_CHARS - body.length;
    let max = budget;
    let answer = sanitizeMarkdown(view.answer ?? '', max);
    while (answer.length > budget && max > 0) {
      max = Math.floor((max * budget) / answer.length) - 64;
      answer = max > 0 ? sanitizeMarkdown(view.answer ?? '', max) : '_(the summary is too long to show)_';
    }
    body = assemble(answer);
  }
  // The parts other than the answer are bounded well under the limit; this is a last resort.
  return body.length <= PROGRESS_COMMENT_MAX_CHARS ? body : truncate(body, PROGRESS_COMMENT_MAX_CHARS);
}

// ---------------------------------------------------------------------------------------------------
// Updater

/** The part of a logger (pino, Probot's `context.log`) the updater uses. */
export interface ProgressLog {
  warn(obj: object, msg: string): void;
}

/** Options of {@link ProgressCommentUpdater}. */
export interface ProgressCommentUpdaterOptions {
  /** Writes the comment body (e.g. `octokit.rest.issues.updateComment`); rejects on failure. */
  edit: (body: string) => Promise<void>;
  /** Least time between the starts of two edits, ms; default 1500. */
  minIntervalMs?: number;
  /** Where failed edits are reported (the message only; bodies are not logged). */
  log?: ProgressLog;
}

/**
 * Coalesces progress comment edits: at most one edit in flight, at most one edit started per
 * `minIntervalMs`, the latest body wins (intermediate ones are skipped), a body equal to the one
 * already written or queued is skipped. A failed edit is logged and written again on the next
 * {@link update} or {@link flush}. Use {@link flush} for the final state.
 */
export class ProgressCommentUpdater {
  readonly #edit: (body: string) => Promise<void>;
  readonly #minIntervalMs: number;
  readonly #log: ProgressLog | undefined;
  /** The body GitHub has, as far as we know (undefined after a failed edit: unknown). */
  #written: string | undefined;
  /** The latest body not yet written. */
  #pending: string | undefined;
  /** The edit under way (resolves to whether it succeeded) and its body. */
  #inFlight: Promise<boolean> | undefined;
  #inFlightBody: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastStart = Number.NEGATIVE_INFINITY;
  /** The pending body's last edit failed: wait for update() or flush() before trying again. */
  #failed = false;
  #lastError: unknown;

  constructor(opts: ProgressCommentUpdaterOptions) {
    this.#edit = opts.edit;
    this.#minIntervalMs = opts.minIntervalMs ?? 1500;
    this.#log = opts.log;
  }

  /** Asks for `body` to be written soon. Never throws; returns at once. */
  update(body: string): void {
    const latest = this.#pending ?? this.#inFlightBody ?? this.#written;
    if (body === latest && !this.#failed) return;
    this.#pending = body;
    this.#failed = false;
    this.#schedule();
  }

  /**
   * Resolves once the latest body given to {@link update} (or `body`, when given, which becomes the
   * latest) is written, waiting out the edit in flight and the minimum interval. A failing edit is
   * tried once more.
   * @throws the edit's error when the second attempt fails too.
   */
  async flush(body?: string): Promise<void> {
    if (body !== undefined) this.update(body);
    let failures = 0;
    for (;;) {
      if (this.#inFlight) {
        if (!(await this.#inFlight) && ++failures >= 2) throw this.#lastError;
        continue;
      }
      if (this.#pending === undefined) return;
      this.#failed = false;
      const wait = this.#lastStart + this.#minIntervalMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      if (!this.#inFlight) this.#start();
    }
  }

  #schedule(): void {
    if (this.#inFlight || this.#timer || this.#pending === undefined || this.#failed) return;
    const wait = this.#lastStart + this.#minIntervalMs - Date.now();
    if (wait <= 0) {
      this.#start();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#start();
    }, wait);
  }

  #start(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const body = this.#pending;
    if (this.#inFlight || body === undefined) return;
    this.#pending = undefined;
    if (body === this.#written) return;
    this.#lastStart = Date.now();
    this.#inFlightBody = body;
    const attempt = async (): Promise<boolean> => {
      try {
        await this.#edit(body);
        this.#written = body;
        return true;
      } catch (error) {
        this.#lastError = error;
        this.#written = undefined;
        this.#log?.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'progress comment edit failed; it is retried on the next update',
        );
        if (this.#pending === undefined) {
          this.#pending = body;
          this.#failed = true;
        }
        return false;
      }
    };
    // `.then` runs after the assignment below even when `edit` throws synchronously.
    this.#inFlight = attempt().then((ok) => {
      this.#inFlight = undefined;
      this.#inFlightBody = undefined;
      this.#schedule();
      return ok;
    });
  }
}
