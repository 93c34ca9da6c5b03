/**
 * The thread a pull request mention came from, as context for the agent: the pull request (title and
 * body), its changed files with their stats, the app's own latest review findings (so "@codex fix
 * these" works), for an inline review comment the lines it is about, and the conversation (comments,
 * review threads, review bodies), latest first, bounded in count and bytes.
 *
 * All of it is untrusted text: hidden HTML comments and invisible characters are stripped, and only
 * items by authors with write access are marked `trust: 'instruction'`; the rest is `data`.
 *
 * APIs: https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files,
 * https://docs.github.com/en/rest/pulls/comments#list-review-comments-on-a-pull-request,
 * https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request,
 * https://docs.github.com/en/rest/issues/comments#list-issue-comments.
 */
import { sanitizeUntrusted } from '../agent/instructions.ts';
import type { ContextItem } from '../contract.ts';
import { taskIdFromComment } from './progress-comment.ts';
import type { GitHubClient } from './publish.ts';

/** Bounds of {@link pullRequestContext}. Bytes are UTF-8 bytes of an item's title and body. */
export interface PullRequestContextLimits {
  /** Changed files listed at most (GitHub lists up to 3,000). Default 100. */
  maxFiles: number;
  /** Conversation items (comments, review comments, review bodies) kept at most, newest first. Default 40. */
  maxItems: number;
  /** Bytes of conversation items kept at most in all. Default 64 KiB. */
  maxBytes: number;
  /** Bytes of one item's body at most (longer ones are cut with a marker). Default 12,000. */
  maxItemBytes: number;
  /** Lines of a review thread's diff hunk shown with the thread (the commented lines are last). Default 6. */
  threadHunkLines: number;
}

/** Default {@link PullRequestContextLimits}. */
export const DEFAULT_PR_CONTEXT_LIMITS: PullRequestContextLimits = {
  maxFiles: 100,
  maxItems: 40,
  maxBytes: 64 * 1024,
  maxItemBytes: 12_000,
  threadHunkLines: 6,
};

/**
 * What triggered the task, left out of the conversation (it is the request itself). For an inline
 * review comment, its location as in the `pull_request_review_comment` webhook's `comment`
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review_comment):
 * lines are 1-based, `side` is `RIGHT` (the head's lines) or `LEFT` (the base's), `line` is null when
 * the comment is outdated (then `originalLine` is used).
 */
export type PullRequestTrigger =
  | { kind: 'comment'; id: number }
  | { kind: 'review'; id: number }
  | {
      kind: 'review_comment';
      id: number;
      path: string;
      line: number | null;
      originalLine?: number | null;
      startLine?: number | null;
      side?: 'LEFT' | 'RIGHT' | null;
      /** The diff hunk up to the commented line (GitHub's `diff_hunk`). */
      diffHunk: string;
      /** The commit the comment was made on (`commit_id`). */
      commitId?: string;
      /** `file` for a comment on a whole file. Default `line`. */
      subjectType?: 'line' | 'file';
      /** The thread's root comment when the trigger is a reply (`in_reply_to_id`). */
      inReplyTo?: number;
      url?: string;
    };

/** Inputs of {@link pullRequestContext}. */
export interface PullRequestContextOptions {
  owner: string;
  repo: string;
  pull: {
    number: number;
    title: string;
    body: string | null;
    author?: string;
    url?: string;
    /** GitHub's `changed_files`, to say how many files are not listed. */
    changedFiles?: number;
  };
  /** The app's login (`<slug>[bot]`): its progress comments are left out, its latest review is kept. */
  botLogin: string;
  /**
   * Whether `login` has write access to the repository (e.g. `gateSender(...) === 'allowed'`);
   * called at most once per login. Bots and the app itself are never asked (always data).
   */
  isWriter: (login: string) => Promise<boolean>;
  trigger?: PullRequestTrigger;
  limits?: Partial<PullRequestContextLimits>;
}

/** Cuts `text` to at most `maxBytes` UTF-8 bytes (on a character boundary) with a marker. */
export function clipBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const cut = Buffer.from(text).subarray(0, maxBytes).toString('utf8').replace(/\uFFFD+$/, '');
  return `${cut}\n[… truncated]`;
}

const bytesOf = (item: ContextItem): number => Buffer.byteLength(item.body) + Buffer.byteLength(item.title ?? '');

/** `lines 10–12` / `line 12` of a comment location. */
function lineText(line: number, startLine: number | null | undefined): string {
  return startLine && startLine !== line ? `lines ${startLine}–${line}` : `line ${line}`;
}

/**
 * The item telling the agent which lines an inline review comment is about: path, line range, side,
 * commit, and the diff hunk whose last lines are the commented ones.
 */
export function reviewCommentTargetItem(trigger: Extract<PullRequestTrigger, { kind: 'review_comment' }>): ContextItem {
  const side = trigger.side ?? 'RIGHT';
  const version = side === 'LEFT' ? 'the base version (LEFT side of the diff: removed or unchanged lines)' : 'the head version (RIGHT side of the diff: added or unchanged lines)';
  const at = trigger.commitId ? ` at commit ${trigger.commitId.slice(0, 12)}` : '';
  const line = trigger.line ?? trigger.originalLine ?? null;
  let sentence: string;
  if (trigger.subjectType === 'file' || line === null) {
    sentence = `The request is a review comment on the file \`${trigger.path}\` as a whole${at}.`;
  } else {
    const outdated = trigger.line === null ? ' The comment is outdated: the branch changed since, so these lines may have moved.' : '';
    sentence =
      `The request is an inline review comment on \`${trigger.path}\`, ${lineText(line, trigger.startLine)} of ${version}${at}. ` +
      `It is about those lines: the diff hunk below ends with them.${outdated}`;
  }
  const hunk = trigger.diffHunk ? `\n\nDiff hunk of \`${trigger.path}\`:\n${trigger.diffHunk}` : '';
  return {
    kind: 'review_comment_location',
    title: `${trigger.path}${line !== null && trigger.subjectType !== 'file' ? ` ${lineText(line, trigger.startLine)} (${side})` : ''}`,
    body: `${sentence}${hunk}`,
    ...(trigger.url ? { url: trigger.url } : {}),
  };
}

/** One changed file as GitHub lists it. */
interface PullFile {
  filename: string;
  status: string;
  additions: number;
  deletions: number;
  previous_filename?: string | undefined;
}

const STATUS_LETTER: Record<string, string> = { added: 'A', removed: 'D', modified: 'M', renamed: 'R', copied: 'C', changed: 'T', unchanged: ' ' };

/**
 * The changed-files item: one line per file, `M src/x.ts (+3 −1)`, renames as `R old → new`, at most
 * `maxFiles`, then how many more there are.
 */
export function changedFilesItem(files: PullFile[], opts: { maxFiles: number; total?: number }): ContextItem {
  const shown = files.slice(0, opts.maxFiles);
  const lines = shown.map((f) => {
    const name = f.previous_filename && f.previous_filename !== f.filename ? `${f.previous_filename} → ${f.filename}` : f.filename;
    return `${STATUS_LETTER[f.status] ?? '?'} ${name} (+${f.additions} −${f.deletions})`;
  });
  const total = Math.max(opts.total ?? files.length, files.length);
  if (total > shown.length) lines.push(`… and ${total - shown.length} more files not listed`);
  return { kind: 'changed_files', title: `${total} changed file${total === 1 ? '' : 's'}`, body: lines.join('\n') };
}

/** A unit of the conversation: a comment, a review body, or a whole review thread; sorted by `latest`. */
interface Unit {
  latest: number;
  /** Tie-breaker for equal times (GitHub timestamps have second precision): the newest id. */
  id: number;
  items: Array<{ item: Omit<ContextItem, 'trust'>; author: string | undefined }>;
}

interface ReviewCommentJson {
  id: number;
  body: string;
  path: string;
  line?: number | null;
  original_line?: number | null;
  start_line?: number | null;
  side?: string | null;
  diff_hunk: string;
  in_reply_to_id?: number;
  pull_request_review_id: number | null;
  created_at: string;
  html_url: string;
  user: { login: string; type?: string } | null;
}

/**
 * Builds the context of a pull request thread, in this order:
 * 1. `pull_request`: title and body (with `trust` by its author);
 * 2. `changed_files`: the files with their stats (`GET /pulls/{n}/files`, at most `maxFiles`);
 * 3. `review_comment_location` for an inline review comment trigger (path, lines, side, diff hunk);
 * 4. `codex_review`: the app's latest review (its body and its inline findings), if any;
 * 5. the conversation, latest first: `comment`s, `review`s (non-empty bodies) and review threads
 *    (`review_comment` items, a thread's comments together and oldest first, the thread placed by its
 *    latest comment; the trigger's own thread first), at most `maxItems` items and `maxBytes` bytes.
 * The trigger itself, the app's progress comments and the app's own comments are left out of the
 * conversation. Bodies are sanitised (hidden HTML comments, invisible characters) and cut at
 * `maxItemBytes`; each conversation item carries `trust`.
 * @throws Octokit RequestError when listing fails (e.g. 404 unknown pull request), or what `isWriter` throws.
 */
export async function pullRequestContext(octokit: GitHubClient, opts: PullRequestContextOptions): Promise<ContextItem[]> {
  const limits = { ...DEFAULT_PR_CONTEXT_LIMITS, ...opts.limits };
  const { owner, repo, botLogin } = opts;
  const number = opts.pull.number;
  const clean = (text: string | null | undefined) => clipBytes(sanitizeUntrusted(text ?? ''), limits.maxItemBytes);
  const isBot = (login: string | undefined, type?: string) => !login || type === 'Bot' || login.endsWith('[bot]');
  const isSelf = (login: string | undefined) => !!login && login.toLowerCase() === botLogin.toLowerCase();

  const writer = new Map<string, Promise<boolean>>();
  const trustOf = async (login: string | undefined): Promise<'instruction' | 'data'> => {
    if (!login || isBot(login) || isSelf(login)) return 'data';
    let known = writer.get(login.toLowerCase());
    if (!known) {
      known = opts.isWriter(login);
      writer.set(login.toLowerCase(), known);
    }
    return (await known) ? 'instruction' : 'data';
  };

  const items: ContextItem[] = [
    {
      kind: 'pull_request',
      title: sanitizeUntrusted(opts.pull.title),
      body: clean(opts.pull.body),
      ...(opts.pull.author ? { author: opts.pull.author } : {}),
      ...(opts.pull.url ? { url: opts.pull.url } : {}),
      trust: await trustOf(opts.pull.author),
    },
  ];

  let listed = 0;
  const files = await octokit.paginate(octokit.rest.pulls.listFiles, { owner, repo, pull_number: number, per_page: 100 }, (res, done) => {
    listed += res.data.length;
    if (listed >= limits.maxFiles) done();
    return res.data;
  });
  items.push(changedFilesItem(files, { maxFiles: limits.maxFiles, ...(opts.pull.changedFiles === undefined ? {} : { total: opts.pull.changedFiles }) }));

  const trigger = opts.trigger;
  if (trigger?.kind === 'review_comment') items.push(reviewCommentTargetItem(trigger));

  const [comments, reviewComments, reviews] = await Promise.all([
    octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: number, per_page: 100 }),
    octokit.paginate(octokit.rest.pulls.listReviewComments, { owner, repo, pull_number: number, per_page: 100 }) as Promise<ReviewCommentJson[]>,
    octokit.paginate(octokit.rest.pulls.listReviews, { owner, repo, pull_number: number, per_page: 100 }),
  ]);

  // The app's latest review: its body and its inline findings, kept whole (up to maxItemBytes).
  const ownReview = reviews.filter((r) => isSelf(r.user?.login) && r.state !== 'PENDING').at(-1);
  if (ownReview) {
    const findings = reviewComments
      .filter((c) => c.pull_request_review_id === ownReview.id && !c.in_reply_to_id)
      .map((c) => `- \`${c.path}\` ${lineText(c.line ?? c.original_line ?? 0, c.start_line)}: ${sanitizeUntrusted(c.body).trim()}`);
    const body = [sanitizeUntrusted(ownReview.body ?? '').trim(), findings.length ? `Inline findings:\n${findings.join('\n')}` : '']
      .filter(Boolean)
      .join('\n\n');
    items.push({
      kind: 'codex_review',
      author: botLogin,
      title: `latest review by this app${ownReview.commit_id ? ` on commit ${ownReview.commit_id.slice(0, 12)}` : ''}`,
      body: clipBytes(body || '(no findings)', limits.maxItemBytes),
      url: ownReview.html_url,
      trust: 'data',
    });
  }
  const ownFindingIds = new Set(reviewComments.filter((c) => ownReview && c.pull_request_review_id === ownReview.id).map((c) => c.id));

  const time = (iso: string | null | undefined) => (iso ? Date.parse(iso) : 0);
  const units: Unit[] = [];
  for (const c of comments) {
    const login = c.user?.login;
    if (trigger?.kind === 'comment' && c.id === trigger.id) continue;
    if (isSelf(login) || taskIdFromComment(c.body ?? '') !== undefined) continue;
    units.push({ latest: time(c.created_at), id: c.id, items: [{ author: login, item: { kind: 'comment', author: login, body: clean(c.body), url: c.html_url } }] });
  }
  for (const r of reviews) {
    const login = r.user?.login;
    if (isSelf(login) || !r.body?.trim() || (trigger?.kind === 'review' && r.id === trigger.id)) continue;
    units.push({
      latest: time(r.submitted_at),
      id: r.id,
      items: [{ author: login, item: { kind: 'review', author: login, title: `review: ${r.state}`, body: clean(r.body), url: r.html_url } }],
    });
  }
  const threads = new Map<number, ReviewCommentJson[]>();
  for (const c of reviewComments) {
    const root = c.in_reply_to_id ?? c.id;
    threads.set(root, [...(threads.get(root) ?? []), c]);
  }
  const triggerRoot = trigger?.kind === 'review_comment' ? (trigger.inReplyTo ?? trigger.id) : undefined;
  for (const [root, thread] of threads) {
    const kept = thread.filter((c) => !(trigger?.kind === 'review_comment' && c.id === trigger.id) && !ownFindingIds.has(c.id) && !(isSelf(c.user?.login) && c.id !== root));
    if (!kept.length) continue;
    const first = thread[0]!;
    const where = `${first.path} ${lineText(first.line ?? first.original_line ?? 0, first.start_line)}`;
    const hunkTail = first.diff_hunk.split('\n').slice(-limits.threadHunkLines).join('\n');
    const unitItems = kept.map((c, i) => {
      const login = c.user?.login;
      const head = i === 0 && c.id === root ? `${clean(c.body)}\n\n(diff at ${where}:)\n${hunkTail}` : clean(c.body);
      const title = c.id === root ? `review thread on ${where}` : `reply in the review thread on ${where}`;
      return { author: login, item: { kind: 'review_comment', author: login, title, body: clipBytes(head, limits.maxItemBytes), url: c.html_url } };
    });
    // The trigger's own thread comes first whatever its age.
    const latest = root === triggerRoot ? Number.POSITIVE_INFINITY : Math.max(...kept.map((c) => time(c.created_at)));
    units.push({ latest, id: Math.max(...kept.map((c) => c.id)), items: unitItems });
  }
  units.sort((a, b) => b.latest - a.latest || b.id - a.id);

  let count = 0;
  let bytes = 0;
  for (const unit of units) {
    for (const { item, author } of unit.items) {
      const size = bytesOf(item as ContextItem);
      if (count >= limits.maxItems || bytes + size > limits.maxBytes) return items;
      count++;
      bytes += size;
      items.push({ ...(item as ContextItem), trust: await trustOf(author) });
    }
  }
  return items;
}
