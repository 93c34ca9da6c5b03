/**
 * The texts of a CI fix (pure): the commit message pushed to the pull request's branch, the reply that
 * says what failed and what was done, the reply when the agent could not reproduce or fix the failure,
 * and the comment that says automatic fixing stopped at its cap. GitHub-flavoured markdown
 * (https://github.github.com/gfm/); check names and step names come from the repository's workflows
 * and are shown as code spans, the agent's summary through `sanitizeMarkdown` (no mentions, no raw
 * HTML), links only when they are http(s).
 */
import type { CommandRecord, FileChange } from '../../contract.ts';
import type { FailingCheck, FailingChecksSummary } from '../check-logs.ts';
import { GITHUB_COMMENT_MAX_CHARS, codeSpan, sanitizeMarkdown } from '../progress-comment.ts';
import { commandsSection } from '../pull-request-body.ts';

/** Longest commit subject, characters (git's convention is ~72). */
export const FIX_SUBJECT_MAX_CHARS = 72;
/** Most changed paths listed in a commit message body. */
const MAX_LISTED_PATHS = 30;
/** Room for the agent's summary in a reply, characters (the rest of the reply is small). */
const MAX_SUMMARY_CHARS = 40_000;

/**
 * `Fix failing checks: <names>`: as many names as fit in {@link FIX_SUBJECT_MAX_CHARS}, then
 * `and N more`. Names are made one-line.
 */
export function fixCommitSubject(checkNames: readonly string[]): string {
  const names = [...new Set(checkNames.map((n) => n.replace(/\s+/g, ' ').trim()).filter(Boolean))];
  const base = 'Fix failing checks: ';
  if (!names.length) return 'Fix failing checks';
  for (let shown = names.length; shown >= 1; shown--) {
    const rest = names.length - shown;
    const subject = `${base}${names.slice(0, shown).join(', ')}${rest ? ` and ${rest} more` : ''}`;
    if (subject.length <= FIX_SUBJECT_MAX_CHARS) return subject;
  }
  const first = names[0]!;
  const more = names.length > 1 ? ` and ${names.length - 1} more` : '';
  return `${base}${first.slice(0, Math.max(1, FIX_SUBJECT_MAX_CHARS - base.length - more.length - 1))}…${more}`;
}

function failedLine(check: FailingCheck): string {
  const step = check.job?.failingStep ? `, step ${check.job.failingStep.number} "${check.job.failingStep.name}"` : '';
  return `- ${check.name} (${check.conclusion}${step})`;
}

/**
 * The fix commit's message: the subject ({@link fixCommitSubject}), then `Failing checks:` (name,
 * conclusion, failing step), `Changes:` (action and path of each file, at most 30 listed) and, when the
 * agent proposed a message, its body (after its first line), cut to 2,000 characters.
 * Pass it to `pushToBranch`, whose `commitMessage` (publish.ts) makes mentions and issue references
 * inert and adds the `Co-authored-by` trailers.
 */
export function fixCommitMessage(opts: { checks: readonly FailingCheck[]; changes: readonly FileChange[]; agentMessage?: string }): string {
  const parts = [fixCommitSubject(opts.checks.map((c) => c.name))];
  if (opts.checks.length) parts.push(`Failing checks:\n${opts.checks.map(failedLine).join('\n')}`);
  if (opts.changes.length) {
    const listed = opts.changes.slice(0, MAX_LISTED_PATHS).map((c) => `- ${c.action === 'delete' ? 'delete' : c.action} ${c.path}`);
    const more = opts.changes.length - listed.length;
    parts.push(`Changes:\n${listed.join('\n')}${more > 0 ? `\n- … and ${more} more files` : ''}`);
  }
  const body = (opts.agentMessage ?? '').replace(/\r\n?/g, '\n').split('\n').slice(1).join('\n').trim();
  if (body) parts.push(body.length > 2000 ? `${body.slice(0, 1999)}…` : body);
  return parts.join('\n\n');
}

function safeUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined;
    return parsed.href.replace(/[()<> ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    return undefined;
  }
}

function link(text: string, url: string | undefined): string {
  const href = safeUrl(url);
  return href ? `[${text}](${href})` : text;
}

/** One line per failing check: name, conclusion, the job log read (or the check), the failing step. */
function checksList(summary: FailingChecksSummary): string {
  const lines = summary.checks.map((check) => {
    const parts = [`- ${codeSpan(check.name)} (${check.conclusion})`];
    if (check.job) {
      parts.push(check.job.logRead ? link('job log', check.job.url) : `${link('job', check.job.url)} (log unavailable)`);
      if (check.job.failingStep) parts.push(`failing step ${check.job.failingStep.number} ${codeSpan(check.job.failingStep.name)}`);
    } else {
      parts.push(link('check', check.url));
    }
    return parts.join(' · ');
  });
  if (summary.omitted.length) lines.push(`- and ${summary.omitted.length} more not read: ${summary.omitted.map(codeSpan).join(', ')}`);
  return lines.join('\n');
}

/** The note about logs that could not be read, or '' when every log was read. */
export function logsUnavailableNote(summary: FailingChecksSummary): string {
  const missing = summary.checks.filter((c) => c.logUnavailable);
  if (!missing.length) return '';
  const why = (c: FailingCheck): string => (c.logUnavailable!.reason === 'expired' ? 'expired or deleted' : c.logUnavailable!.reason === 'forbidden' ? 'not accessible' : 'could not be downloaded');
  const names = missing.map((c) => `${codeSpan(c.name)} (${why(c)})`).join(', ');
  return `> [!NOTE]\n> The logs of ${names} were unavailable, so the agent worked from the check output and annotations only.`;
}

function summarySection(agentSummary: string): string {
  const text = sanitizeMarkdown(agentSummary, MAX_SUMMARY_CHARS).trim();
  return text;
}

function fit(parts: string[]): string {
  const body = parts.filter(Boolean).join('\n\n');
  return body.length <= GITHUB_COMMENT_MAX_CHARS ? body : `${body.slice(0, GITHUB_COMMENT_MAX_CHARS - 2)}\n…`;
}

/** Inputs of {@link fixReply}. */
export interface FixReplyOptions {
  /** What failed (from `failingChecksContext`). */
  summary: FailingChecksSummary;
  /** The pushed commit: SHA and web URL. */
  commit: { sha: string; url: string };
  /** The agent's final message (markdown; untrusted). */
  agentSummary: string;
  /** The task's commands (only the agent phase's are listed, with exit codes). */
  commands: CommandRecord[];
  /** Automatic attempts: which attempt this was and the cap. Absent for a requested fix. */
  attempt?: { number: number; max: number };
}

/**
 * The reply after a fix was pushed: which checks failed (each linking the job log that was read, or
 * the check), the commit, the note when logs were unavailable, the agent's summary, and the commands
 * it ran with their exit codes (collapsed).
 */
export function fixReply(opts: FixReplyOptions): string {
  const names = opts.summary.checks.map((c) => codeSpan(c.name)).join(', ') || 'the failing checks';
  const attempt = opts.attempt ? ` (automatic attempt ${opts.attempt.number} of ${opts.attempt.max})` : '';
  return fit([
    `Pushed ${link(`\`${opts.commit.sha.slice(0, 7)}\``, opts.commit.url)} to fix ${names}${attempt}. The checks run again on it.`,
    `**What failed** on \`${opts.summary.headSha.slice(0, 7)}\`:\n${checksList(opts.summary)}`,
    logsUnavailableNote(opts.summary),
    summarySection(opts.agentSummary),
    commandsSection(opts.commands),
  ]);
}

/** Inputs of {@link notFixedReply}. */
export interface NotFixedReplyOptions {
  summary: FailingChecksSummary;
  /** What the agent found (its final message; untrusted). */
  agentSummary: string;
  commands: CommandRecord[];
  /** `no_changes`: the agent changed nothing (could not reproduce, or the failure is not in the code); `failed`: the task failed. */
  outcome: 'no_changes' | 'failed';
  /** For `failed`: why, one line. */
  reason?: string;
}

/** The reply when no fix was pushed: what failed, what the agent found, the commands it ran; no commit. */
export function notFixedReply(opts: NotFixedReplyOptions): string {
  const names = opts.summary.checks.map((c) => codeSpan(c.name)).join(', ') || 'the failing checks';
  const head =
    opts.outcome === 'no_changes'
      ? `Could not fix ${names}: the agent did not change anything (it could not reproduce the failure, or found nothing to fix in the code). Nothing was pushed.`
      : `Could not fix ${names}: the task failed${opts.reason ? ` (${opts.reason.replace(/\s+/g, ' ').slice(0, 300)})` : ''}. Nothing was pushed.`;
  return fit([
    head,
    `**What failed** on \`${opts.summary.headSha.slice(0, 7)}\`:\n${checksList(opts.summary)}`,
    logsUnavailableNote(opts.summary),
    opts.agentSummary.trim() ? `**What the agent found**\n\n${summarySection(opts.agentSummary)}` : '',
    commandsSection(opts.commands),
  ]);
}

/**
 * The one comment when automatic fixing stops: `checks` still fail after `maxAttempts` automatic
 * attempts; nothing more is tried automatically until a person pushes or asks (`@codex fix ci`;
 * `mention` is the app's mention, `CODEX_MENTION`, default `@codex`, shown as code so it pings no one).
 */
export function capReachedComment(opts: { checks: readonly string[]; maxAttempts: number; mention?: string }): string {
  const names = opts.checks.map(codeSpan).join(', ');
  const attempts = `${opts.maxAttempts} automatic fix attempt${opts.maxAttempts === 1 ? '' : 's'}`;
  return [
    `Automatic fixing stopped: ${names} still ${opts.checks.length === 1 ? 'fails' : 'fail'} after ${attempts} (\`autofix.max_attempts\`).`,
    `No further automatic attempts will be made on this pull request until someone pushes a commit or asks with \`${opts.mention ?? '@codex'} fix ci\`.`,
  ].join('\n\n');
}
