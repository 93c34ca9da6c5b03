/**
 * The review publisher: a review task's findings become ONE GitHub review on the reviewed head commit
 * (`POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews`, event `COMMENT`,
 * https://docs.github.com/en/rest/pulls/reviews#create-a-review-for-a-pull-request), with an inline
 * comment per finding whose lines are in the diff and the others listed in the body under "Outside
 * the diff" (never dropped, never sent where GitHub would answer 422 and reject the whole review).
 *
 * - Findings below `minPriority` are not posted; the body counts them in a collapsed section.
 * - Nothing at or above `minPriority`: no review; a 👍 on the request (or the pull request) and one
 *   short comment naming the reviewed commit.
 * - Re-reviews: the app's earlier findings are read back from its own inline comments (a hidden
 *   `<!-- codex-finding:<id> -->` marker at the start; only comments by the app's bot count). A new
 *   finding on the same path and lines with the same title as an open earlier one is not posted again.
 *   Each earlier finding the reviewer lists in `resolved_findings` gets a "Fixed in `<sha7>`" reply in
 *   its thread, which also closes it for later runs.
 * - Model text (titles, bodies, the verdict) is made inert: one-line escaped titles, sanitised
 *   markdown bodies (no mentions, references or raw HTML, so no forged markers), code-span paths.
 * - Crash-safe with a `runKey` (the task id): a second run finds the review (or the comment) the first
 *   one posted by its hidden marker instead of posting another.
 */
import { createHash } from 'node:crypto';
import type { CommandRecord, EarlierFinding, ReviewFinding, ReviewVerdict } from '../../contract.ts';
import type { Octokit } from '../client.ts';
import { GITHUB_COMMENT_MAX_CHARS, codeSpan, escapeInline, sanitizeMarkdown } from '../progress-comment.ts';
import { diffIndexFromFiles, isPathIgnored, placeFinding, type DiffIndex, type FindingPlacement, type OutsideReason, type PullRequestFile } from '../review-diff.ts';

/** A priority, 0 (P0, highest) to 3 (P3). */
export type Priority = 0 | 1 | 2 | 3;

/** Badges by priority: GitHub renders these emoji everywhere (also on GitHub Enterprise Server without internet). */
const BADGE: Record<Priority, string> = { 0: '🔴', 1: '🟠', 2: '🟡', 3: '🟢' };
/** Longest finding body in a comment, UTF-16 units (before sanitising). */
const FINDING_BODY_MAX_CHARS = 8_000;
/** Longest finding body inside the review body ("Outside the diff"), UTF-16 units. */
const OUTSIDE_BODY_MAX_CHARS = 2_000;
/** Review body limit with margin (GitHub refuses bodies over 65,536 characters). */
const REVIEW_BODY_MAX_CHARS = GITHUB_COMMENT_MAX_CHARS - 1_536;
/** Commands listed in the body at most. */
const COMMANDS_MAX = 40;

const FINDING_MARKER = /^<!-- codex-finding:([A-Za-z0-9_-]{1,64}) -->\n/;
const TITLE_LINE = /^\S+ \*\*P([0-3])\*\* \*\*(.*)\*\*$/;
const FIXED_REPLY = /^Fixed in `[0-9a-f]{7,40}`/;

/** The hidden marker at the start of a review (or comment) body of run `runKey`. */
function runMarker(runKey: string): string {
  return `<!-- codex-review:${runKey.replace(/[^A-Za-z0-9_.:-]/g, '_')} -->`;
}

function sha7(sha: string): string {
  return sha.slice(0, 7);
}

function priorityLabel(p: number): string {
  return `P${p}`;
}

/**
 * A finding's stable id: 12 hex characters of SHA-256 over the reviewed head, path, lines and title.
 * It goes into the comment's hidden marker and is what `resolved_findings` lists in later reviews.
 */
export function findingId(finding: Pick<ReviewFinding, 'path' | 'line' | 'startLine' | 'title'>, headSha: string): string {
  const lines = `${finding.startLine ?? finding.line}-${finding.line}`;
  return createHash('sha256').update(`${headSha}\n${finding.path}\n${lines}\n${finding.title}`).digest('hex').slice(0, 12);
}

/** A finding the app posted earlier as an inline comment on the pull request. */
export interface PostedFinding {
  id: string;
  /** The inline comment that starts the finding's thread. */
  commentId: number;
  path: string;
  /** The comment's `line` (RIGHT side); null when GitHub reports the comment as outdated. */
  line: number | null;
  startLine: number | null;
  /** The line when it was posted (`original_line`), for outdated comments. */
  originalLine: number | null;
  priority: Priority;
  /** The title as rendered (escaped markdown), for comparisons with new findings. */
  renderedTitle: string;
  /** The title as plain text (escapes and joiners removed), for the reviewer. */
  title: string;
  /** False once the app replied "Fixed in …" in the thread. */
  open: boolean;
  /** The review the comment belongs to (`pull_request_review_id`). */
  reviewId: number | null;
}

/** A review comment as `GET /pulls/{n}/comments` lists it (the fields used here). */
interface ReviewCommentJson {
  id: number;
  body: string;
  path: string;
  line?: number | null;
  start_line?: number | null;
  original_line?: number | null;
  in_reply_to_id?: number;
  pull_request_review_id?: number | null;
  user: { login: string } | null;
}

/**
 * Reads the app's earlier findings back from the pull request's review comments: top-level comments
 * by `botLogin` that start with the finding marker; a thread is closed when the bot replied in it
 * "Fixed in `<sha>`". Comments by anyone else are ignored, marker or not.
 */
export function earlierFindingsFrom(comments: readonly ReviewCommentJson[], botLogin: string): PostedFinding[] {
  const byBot = comments.filter((c) => c.user?.login === botLogin);
  const fixedThreads = new Set(byBot.filter((c) => c.in_reply_to_id !== undefined && FIXED_REPLY.test(c.body)).map((c) => c.in_reply_to_id));
  const out: PostedFinding[] = [];
  for (const c of byBot) {
    if (c.in_reply_to_id !== undefined) continue;
    const marker = FINDING_MARKER.exec(c.body);
    if (!marker) continue;
    const titleLine = TITLE_LINE.exec(c.body.slice(marker[0].length).split('\n')[0] ?? '');
    if (!titleLine) continue;
    const renderedTitle = titleLine[2]!;
    out.push({
      id: marker[1]!,
      commentId: c.id,
      path: c.path,
      line: c.line ?? null,
      startLine: c.start_line ?? null,
      originalLine: c.original_line ?? c.line ?? null,
      priority: Number(titleLine[1]) as Priority,
      renderedTitle,
      title: renderedTitle.replace(/\\(.)/g, '$1').replace(/\u200d/g, ''),
      open: !fixedThreads.has(c.id),
      reviewId: c.pull_request_review_id ?? null,
    });
  }
  return out;
}

/**
 * The app's earlier findings on a pull request (all review comments, paginated).
 * @throws the Octokit RequestError of a failed request.
 */
export async function listEarlierFindings(
  octokit: Octokit,
  pr: { owner: string; repo: string; pullNumber: number; botLogin: string },
): Promise<PostedFinding[]> {
  const comments = await octokit.paginate(octokit.rest.pulls.listReviewComments, { owner: pr.owner, repo: pr.repo, pull_number: pr.pullNumber, per_page: 100 });
  return earlierFindingsFrom(comments as ReviewCommentJson[], pr.botLogin);
}

/**
 * The open earlier findings as a re-review's TaskSpec carries them (`review.earlierFindings`):
 * outdated comments (no current `line`) keep the line they were posted on.
 */
export function toEarlierFindings(posted: readonly PostedFinding[]): EarlierFinding[] {
  return posted.flatMap((f): EarlierFinding[] => {
    const line = f.line ?? f.originalLine;
    if (!f.open || line === null) return [];
    const startLine = f.line !== null && f.startLine !== null && f.startLine < line ? f.startLine : undefined;
    return [{ id: f.id, title: f.title, path: f.path, line, ...(startLine !== undefined ? { startLine } : {}) }];
  });
}

/** A finding with its id and where it goes. */
export interface PlannedFinding {
  id: string;
  finding: ReviewFinding;
  placement: FindingPlacement;
}

/** What one review run will publish (pure: see {@link planReview}). */
export interface ReviewPlan {
  /** At or above the threshold, new, in the diff: inline comments, by priority then confidence. */
  inline: PlannedFinding[];
  /** At or above the threshold, new, not in the diff: listed in the body, same order. */
  outside: Array<PlannedFinding & { placement: { kind: 'outside'; reason: OutsideReason } }>;
  /** Below the threshold: counted (and listed collapsed) in the body. */
  belowThreshold: PlannedFinding[];
  /** Already posted by an earlier review on the same lines with the same title, still open. */
  duplicates: PlannedFinding[];
  /** Earlier open findings the reviewer says the head fixes: each gets a "Fixed in" reply. */
  resolved: PostedFinding[];
  /** On files `review.paths_ignore` excludes: not published at all. */
  ignored: PlannedFinding[];
}

function byPriorityThenConfidence(a: PlannedFinding, b: PlannedFinding): number {
  return (
    a.finding.priority - b.finding.priority ||
    (b.finding.confidence ?? 0.5) - (a.finding.confidence ?? 0.5) ||
    a.finding.path.localeCompare(b.finding.path) ||
    a.finding.line - b.finding.line
  );
}

/**
 * Decides where every finding goes. Ordering: priority (P0 first), then confidence (highest first),
 * then path and line. Identical findings (same id) are kept once; findings on ignored paths are dropped
 * first, then the threshold applies, then open earlier findings on the same lines with the same
 * title are recognised as duplicates.
 */
export function planReview(input: {
  findings: readonly ReviewFinding[];
  diff: DiffIndex;
  headSha: string;
  minPriority: Priority;
  earlier: readonly PostedFinding[];
  resolvedIds: readonly string[];
  /** `review.paths_ignore` glob patterns: findings on matching files are dropped (see `isPathIgnored`). */
  pathsIgnore?: readonly string[] | undefined;
}): ReviewPlan {
  const seen = new Set<string>();
  const all: PlannedFinding[] = [];
  for (const finding of input.findings) {
    const id = findingId(finding, input.headSha);
    if (seen.has(id)) continue;
    seen.add(id);
    all.push({ id, finding, placement: placeFinding(input.diff, finding) });
  }
  all.sort(byPriorityThenConfidence);
  const resolvedIds = new Set(input.resolvedIds);
  const open = input.earlier.filter((e) => e.open);
  const resolved = open.filter((e) => resolvedIds.has(e.id));
  const stillOpen = open.filter((e) => !resolvedIds.has(e.id));
  const plan: ReviewPlan = { inline: [], outside: [], belowThreshold: [], duplicates: [], resolved, ignored: [] };
  for (const p of all) {
    if (input.pathsIgnore?.length && isPathIgnored(p.finding.path, input.pathsIgnore)) {
      plan.ignored.push(p);
      continue;
    }
    if (p.finding.priority > input.minPriority) {
      plan.belowThreshold.push(p);
      continue;
    }
    const placement = p.placement;
    if (placement.kind === 'inline') {
      const title = escapeInline(p.finding.title);
      const dup = stillOpen.some(
        (e) => e.path === placement.path && e.line === placement.line && (e.startLine ?? null) === (placement.start_line ?? null) && e.renderedTitle === title,
      );
      if (dup) plan.duplicates.push(p);
      else plan.inline.push(p);
    } else {
      plan.outside.push({ ...p, placement });
    }
  }
  return plan;
}

function linesText(f: Pick<ReviewFinding, 'startLine' | 'line'>): string {
  return f.startLine !== undefined && f.startLine < f.line ? `lines ${f.startLine}–${f.line}` : `line ${f.line}`;
}

const OUTSIDE_REASON: Record<OutsideReason, string> = {
  file_not_in_diff: 'file not changed by this pull request',
  lines_not_in_diff: 'lines not changed by this pull request',
  removed: 'file deleted by this pull request',
  binary: 'binary file',
  too_large: 'diff too large for GitHub to show',
  renamed_only: 'file renamed without changes',
};

/**
 * An inline comment's body: the hidden finding marker, the priority badge with the bold title, the
 * body; when the finding's range reached outside the diff, a note with its full range. Confidence
 * is not shown.
 */
export function renderFindingComment(p: PlannedFinding): string {
  const { finding } = p;
  const title = escapeInline(finding.title) || '(untitled)';
  const lines = [`<!-- codex-finding:${p.id} -->`, `${BADGE[finding.priority as Priority]} **${priorityLabel(finding.priority)}** **${title}**`];
  const body = finding.body.trim() ? sanitizeMarkdown(finding.body, FINDING_BODY_MAX_CHARS) : '';
  if (body) lines.push('', body);
  if (p.placement.kind === 'inline' && p.placement.clipped) lines.push('', `<sub>The finding covers ${linesText(finding)}; shown on the part inside the diff.</sub>`);
  return lines.join('\n');
}

/** Inputs of {@link renderReviewBody}. */
export interface ReviewBodyInput {
  plan: ReviewPlan;
  headSha: string;
  minPriority: Priority;
  verdict?: ReviewVerdict | undefined;
  /** The commands the reviewer ran (the runner's records, not the model's words). */
  commands?: readonly CommandRecord[] | undefined;
  runKey?: string | undefined;
}

function countsByPriority(items: readonly PlannedFinding[]): string {
  const counts = new Map<number, number>();
  for (const p of items) counts.set(p.finding.priority, (counts.get(p.finding.priority) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([p, n]) => `${n} × ${priorityLabel(p)}`)
    .join(', ');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function commandsSection(commands: readonly CommandRecord[] | undefined): string[] {
  const ran = (commands ?? []).filter((c) => c.phase === 'agent');
  if (!ran.length) return ['<sub>The reviewer ran no commands.</sub>'];
  const rows = ran.slice(0, COMMANDS_MAX).map((c) => {
    const outcome = c.timedOut ? 'timed out' : c.exitCode === null ? 'killed' : `exit ${c.exitCode}`;
    return `- ${codeSpan(c.command.join(' ').slice(0, 300))} → ${outcome}`;
  });
  if (ran.length > COMMANDS_MAX) rows.push(`- … and ${ran.length - COMMANDS_MAX} more`);
  return ['<details><summary>Commands the reviewer ran</summary>', '', ...rows, '', '</details>'];
}

/** The verdict in one line: the model's verdict and its explanation (escaped, one line, cut). */
function verdictLine(verdict: ReviewVerdict | undefined, posted: number): string {
  const icon = verdict ? (verdict.correctness === 'correct' ? '✅' : '⚠️') : posted ? '⚠️' : '✅';
  const word = verdict ? (verdict.correctness === 'correct' ? 'Looks correct' : 'Changes needed') : posted ? 'Findings to look at' : 'No findings';
  const explanation = verdict?.explanation.trim() ? ` — ${escapeInline(verdict.explanation.slice(0, 400))}` : '';
  return `${icon} **${word}**${explanation}`;
}

/**
 * The review body: run marker, verdict line, reviewed commit and counts, "Outside the diff" with path,
 * lines and body of each, the findings below the threshold in a collapsed section, the earlier
 * findings fixed, the commands the reviewer ran with their exit codes (from the runner's records).
 * Finding bodies are left out of "Outside the diff" when the body would pass GitHub's size limit.
 */
export function renderReviewBody(input: ReviewBodyInput, withOutsideBodies = true): string {
  const { plan } = input;
  const posted = [...plan.inline, ...plan.outside];
  const out: string[] = [];
  if (input.runKey) out.push(runMarker(input.runKey));
  out.push(verdictLine(input.verdict, posted.length), '');
  const counts = posted.length
    ? `${plural(posted.length, 'finding')} (${countsByPriority(posted)}): ${plan.inline.length} inline, ${plan.outside.length} outside the diff.`
    : `No new findings at ${priorityLabel(input.minPriority)} or above.`;
  out.push(`Reviewed commit: ${input.headSha} · ${counts}`);
  if (plan.duplicates.length) out.push(`${plural(plan.duplicates.length, 'finding')} already reported on the same lines not repeated.`);
  if (plan.resolved.length) out.push(`${plural(plan.resolved.length, 'earlier finding')} fixed by this commit (answered in ${plan.resolved.length === 1 ? 'its thread' : 'their threads'}).`);
  if (plan.outside.length) {
    out.push('', '### Outside the diff');
    for (const p of plan.outside) {
      const f = p.finding;
      out.push(`- ${BADGE[f.priority as Priority]} **${priorityLabel(f.priority)}** **${escapeInline(f.title) || '(untitled)'}** — ${codeSpan(f.path)} ${linesText(f)} (${OUTSIDE_REASON[p.placement.reason]})`);
      if (withOutsideBodies && f.body.trim()) {
        const body = sanitizeMarkdown(f.body, OUTSIDE_BODY_MAX_CHARS);
        out.push('', ...body.split('\n').map((l) => (l ? `  ${l}` : '')), '');
      }
    }
  }
  if (plan.belowThreshold.length) {
    out.push(
      '',
      `<details><summary>${plural(plan.belowThreshold.length, 'finding')} below ${priorityLabel(input.minPriority)} not posted (${countsByPriority(plan.belowThreshold)})</summary>`,
      '',
      ...plan.belowThreshold.map((p) => `- ${BADGE[p.finding.priority as Priority]} **${priorityLabel(p.finding.priority)}** ${escapeInline(p.finding.title) || '(untitled)'} — ${codeSpan(p.finding.path)} ${linesText(p.finding)}`),
      '',
      '</details>',
    );
  }
  out.push('', ...commandsSection(input.commands));
  const body = out.join('\n');
  if (body.length > REVIEW_BODY_MAX_CHARS) {
    if (withOutsideBodies) return renderReviewBody(input, false);
    return `${body.slice(0, REVIEW_BODY_MAX_CHARS - 40).replace(/[\ud800-\udbff]$/, '')}\n\n_(cut at GitHub's size limit)_`;
  }
  return body;
}

/** Where the request came from, for the 👍: the comment that asked, or the pull request (automatic reviews, a review body). */
export type ReviewOrigin = { kind: 'issue_comment'; commentId: number } | { kind: 'review_comment'; commentId: number } | { kind: 'pull_request' };

/** Arguments of {@link publishReview}. */
export interface ReviewPublication {
  owner: string;
  repo: string;
  pullNumber: number;
  /** The reviewed head commit (the SHA the task was dispatched on): the review's `commit_id`. */
  headSha: string;
  /** The runner's findings (validated TaskResult). */
  findings: readonly ReviewFinding[];
  verdict?: ReviewVerdict | undefined;
  /** Post findings at or above this priority (config `review.min_priority`). */
  minPriority: Priority;
  origin: ReviewOrigin;
  /** The app's bot login (`<slug>[bot]`): only its comments are read back as earlier findings. */
  botLogin: string;
  /** The commands the reviewer ran (TaskResult.commands). */
  commands?: readonly CommandRecord[] | undefined;
  /** The task id: makes a repeated run find what the first posted instead of posting again. */
  runKey?: string | undefined;
  /** The pull request's files (`GET /pulls/{n}/files`); fetched when absent. */
  files?: readonly PullRequestFile[] | undefined;
  /** The app's earlier findings ({@link listEarlierFindings}); fetched when absent. */
  earlier?: readonly PostedFinding[] | undefined;
  /** `review.paths_ignore`: findings on matching files are not published. */
  pathsIgnore?: readonly string[] | undefined;
}

/** What {@link publishReview} did. */
export type ReviewOutcome =
  | {
      kind: 'reviewed';
      reviewId: number;
      /** The review's `html_url`. */
      url: string;
      /** True when a previous run with the same `runKey` had already posted it. */
      reused: boolean;
      plan: ReviewPlan;
    }
  | {
      /** Nothing at or above the threshold: 👍 and a short comment. */
      kind: 'nothing_to_report';
      commentId: number;
      url: string;
      reused: boolean;
      plan: ReviewPlan;
    };

/** The short comment when nothing is posted. */
function renderNothingToReport(input: { headSha: string; minPriority: Priority; plan: ReviewPlan; runKey?: string | undefined }): string {
  const { plan } = input;
  const lines: string[] = [];
  if (input.runKey) lines.push(runMarker(input.runKey));
  const still = plan.duplicates.length ? ` (${plural(plan.duplicates.length, 'earlier finding')} still open)` : '';
  lines.push(`👍 No new issues at ${priorityLabel(input.minPriority)} or above in ${input.headSha}${still}.`);
  const notes: string[] = [];
  if (plan.belowThreshold.length) notes.push(`${plural(plan.belowThreshold.length, 'lower-priority finding')} not posted (${countsByPriority(plan.belowThreshold)})`);
  if (plan.resolved.length) notes.push(`${plural(plan.resolved.length, 'earlier finding')} fixed`);
  if (notes.length) lines.push(`<sub>${notes.join('; ')}.</sub>`);
  return lines.join('\n');
}

async function react(octokit: Octokit, pub: ReviewPublication): Promise<void> {
  const { owner, repo } = pub;
  const origin = pub.origin;
  if (origin.kind === 'issue_comment') await octokit.rest.reactions.createForIssueComment({ owner, repo, comment_id: origin.commentId, content: '+1' });
  else if (origin.kind === 'review_comment') await octokit.rest.reactions.createForPullRequestReviewComment({ owner, repo, comment_id: origin.commentId, content: '+1' });
  else await octokit.rest.reactions.createForIssue({ owner, repo, issue_number: pub.pullNumber, content: '+1' });
}

/**
 * Publishes a review run (see the module comment). Requests: the pull request's files and review
 * comments (paginated, unless given), then exactly one `POST …/reviews` (or, with nothing to post, a
 * 👍 reaction and one issue comment), then one reply per resolved earlier finding. With `runKey`, the
 * reviews (or issue comments) are listed first to find a previous run's post.
 * @throws the Octokit RequestError of a failed request (nothing is half-posted: the review with all
 *   its comments is one request; replies come after it and are skipped on a retry once posted).
 */
export async function publishReview(octokit: Octokit, pub: ReviewPublication): Promise<ReviewOutcome> {
  const { owner, repo, pullNumber } = pub;
  const marker = pub.runKey ? runMarker(pub.runKey) : undefined;
  let previous: { id: number; html_url: string } | undefined;
  if (marker) {
    const reviews = await octokit.paginate(octokit.rest.pulls.listReviews, { owner, repo, pull_number: pullNumber, per_page: 100 });
    previous = reviews.find((r) => r.user?.login === pub.botLogin && (r.body ?? '').startsWith(marker));
  }
  const files = pub.files ?? (await octokit.paginate(octokit.rest.pulls.listFiles, { owner, repo, pull_number: pullNumber, per_page: 100 }));
  const earlier = pub.earlier ?? (await listEarlierFindings(octokit, { owner, repo, pullNumber, botLogin: pub.botLogin }));
  const plan = planReview({
    findings: pub.findings,
    diff: diffIndexFromFiles(files),
    headSha: pub.headSha,
    minPriority: pub.minPriority,
    // A retried run's own comments are not earlier findings.
    earlier: previous ? earlier.filter((e) => e.reviewId !== previous.id) : earlier,
    resolvedIds: pub.verdict?.resolvedFindings ?? [],
    pathsIgnore: pub.pathsIgnore,
  });
  let outcome: ReviewOutcome;
  if (previous) {
    outcome = { kind: 'reviewed', reviewId: previous.id, url: previous.html_url, reused: true, plan };
  } else if (plan.inline.length + plan.outside.length > 0) {
    const { data } = await octokit.rest.pulls.createReview({
      owner,
      repo,
      pull_number: pullNumber,
      commit_id: pub.headSha,
      event: 'COMMENT',
      body: renderReviewBody({ plan, headSha: pub.headSha, minPriority: pub.minPriority, verdict: pub.verdict, commands: pub.commands, runKey: pub.runKey }),
      comments: plan.inline.map((p) => {
        const place = p.placement as Extract<FindingPlacement, { kind: 'inline' }>;
        return {
          path: place.path,
          line: place.line,
          side: 'RIGHT' as const,
          ...(place.start_line !== undefined ? { start_line: place.start_line, start_side: 'RIGHT' as const } : {}),
          body: renderFindingComment(p),
        };
      }),
    });
    outcome = { kind: 'reviewed', reviewId: data.id, url: data.html_url, reused: false, plan };
  } else {
    let existing: { id: number; html_url: string } | undefined;
    if (marker) {
      const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: pullNumber, per_page: 100 });
      existing = comments.find((c) => c.user?.login === pub.botLogin && (c.body ?? '').startsWith(marker));
    }
    if (existing) {
      outcome = { kind: 'nothing_to_report', commentId: existing.id, url: existing.html_url, reused: true, plan };
    } else {
      if (plan.duplicates.length === 0) await react(octokit, pub);
      const { data } = await octokit.rest.issues.createComment({
        owner,
        repo,
        issue_number: pullNumber,
        body: renderNothingToReport({ headSha: pub.headSha, minPriority: pub.minPriority, plan, runKey: pub.runKey }),
      });
      outcome = { kind: 'nothing_to_report', commentId: data.id, url: data.html_url, reused: false, plan };
    }
  }
  for (const f of plan.resolved) {
    await octokit.rest.pulls.createReplyForReviewComment({ owner, repo, pull_number: pullNumber, comment_id: f.commentId, body: `Fixed in \`${sha7(pub.headSha)}\`.` });
  }
  return outcome;
}
