/**
 * The thread reporter: what a task says in its thread (DESIGN.md, "Data path"). The 👀 reaction on
 * the request, the one progress comment edited in place while the task runs, and the final reply,
 * which is durable: the task service queues it in an outbox in the same store transaction that ends
 * the task, and the reporter delivers queued replies with backoff, also those a previous process
 * left, until GitHub accepts one.
 *
 * Delivery of a final reply edits the progress comment with the final body. When editing keeps
 * failing ({@link DeliveryPolicy.editAttempts} attempts, or at once on a 404: the comment was
 * deleted) it posts a new comment instead. Every final body ends with {@link finalReplyMarker}; before
 * posting again after a post whose outcome is unknown (a crash between GitHub's answer and the store
 * write), the reporter looks for the app's own comment with that marker, so a task gets one final
 * reply, not two.
 *
 * REST: https://docs.github.com/en/rest/issues/comments , https://docs.github.com/en/rest/reactions
 */
import type { Logger } from 'pino';
import { appLogin, errorMessage, statusOf, type GitHubAccess, type Octokit } from './client.ts';
import { ProgressCommentUpdater, taskIdFromComment } from './progress-comment.ts';

/** The issue or pull request thread a task reports to. */
export interface ThreadRef {
  installationId: number;
  owner: string;
  repo: string;
  /** Issue or pull request number. */
  issueNumber: number;
}

/**
 * What the 👀 reaction goes on: the issue comment that asked (`comment`, also on a pull request's
 * conversation), the inline review comment (`review_comment`), or the issue or pull request itself
 * (`issue`: a request in its body, or in a review, which has no reactions API).
 */
export type ReactionTarget = { type: 'comment' | 'review_comment'; id: number } | { type: 'issue' };

/** A final reply waiting in the outbox, with the thread it goes to. Times are epoch ms. */
export interface FinalReply {
  taskId: string;
  installationId: number;
  owner: string;
  repo: string;
  issueNumber: number;
  /** The task's progress comment, edited with the final body; absent when none could be posted. */
  progressCommentId?: number;
  /** The final body, ending with {@link finalReplyMarker} (see {@link withFinalMarker}). */
  body: string;
  /** Delivery attempts that failed so far. */
  attempts: number;
  /** Failed edits of the progress comment so far. */
  editFailures: number;
  /** Not before this time. */
  nextAttemptAt: number;
  /** Set when a new comment was being posted: its outcome may be unknown (look for the marker). */
  postStartedAt?: number;
  /** When the reply was queued. */
  createdAt: number;
}

/** Where final replies wait (the task store implements it). Every method is synchronous and durable. */
export interface ReplyOutbox {
  /** Replies neither delivered nor abandoned, the earliest `nextAttemptAt` first. */
  pending(): FinalReply[];
  /** Records a failed attempt and when to try next. */
  recordFailure(taskId: string, failure: { attempts: number; editFailures: number; nextAttemptAt: number; error: string }): void;
  /** Records that a new comment is about to be posted (before the request). */
  markPosting(taskId: string, at: number): void;
  /** Records the delivery, with the comment that holds the reply. */
  delivered(taskId: string, commentId: number): void;
  /** Gives up on a reply GitHub will never accept (the thread is gone), with the reason. */
  abandon(taskId: string, error: string): void;
}

/** How final replies are retried. Times in ms. */
export interface DeliveryPolicy {
  /** Delay after the first failed attempt; doubles with each further failure. */
  baseMs: number;
  /** Longest delay between two attempts. */
  maxMs: number;
  /** Failed edits of the progress comment after which a new comment is posted instead. */
  editAttempts: number;
  /** Attempts after which the reply is abandoned (logged as an error). */
  maxAttempts: number;
}

/** 2 s doubling to 10 minutes; a new comment after 3 failed edits; about 6 hours in all. */
export const DEFAULT_DELIVERY_POLICY: DeliveryPolicy = { baseMs: 2000, maxMs: 10 * 60_000, editAttempts: 3, maxAttempts: 45 };

/** The hidden marker that ends a task's final reply: `<!-- codex-cloud:final=<id> -->` (id percent-encoded). */
export function finalReplyMarker(taskId: string): string {
  return `<!-- codex-cloud:final=${encodeURIComponent(taskId)} -->`;
}

/** `body` with {@link finalReplyMarker} on its own last line. */
export function withFinalMarker(taskId: string, body: string): string {
  return `${body.replace(/\n*$/, '\n')}${finalReplyMarker(taskId)}\n`;
}

/** The wait after `attempts` failed attempts (≥ 1): `baseMs · 2^(attempts−1)`, at most `maxMs`, ms. */
export function retryDelayMs(attempts: number, policy: Pick<DeliveryPolicy, 'baseMs' | 'maxMs'>): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
}

/** Options of {@link ThreadReporter}. */
export interface ThreadReporterOptions {
  github: GitHubAccess;
  outbox: ReplyOutbox;
  log: Logger;
  /** Least time between two edits of a progress comment, ms (default 1500). */
  progressIntervalMs?: number;
  /** Retry policy of final replies (default {@link DEFAULT_DELIVERY_POLICY}). */
  delivery?: Partial<DeliveryPolicy>;
  /** The App's login (`<slug>[bot]`), shared with the app's other readers (default: read through `github`, see {@link appLogin}). */
  botLogin?: () => Promise<string>;
}

/** Octokit request options for a call whose retries are ours (the outbox), not Octokit's retry plugin. */
const NO_OCTOKIT_RETRIES = { request: { retries: 0 } };

/** Reports tasks in their threads; one instance per app process. */
export class ThreadReporter {
  readonly #github: GitHubAccess;
  readonly #outbox: ReplyOutbox;
  readonly #log: Logger;
  readonly #progressIntervalMs: number | undefined;
  readonly #policy: DeliveryPolicy;
  /** Progress comment updaters of the tasks being reported, by task id. */
  readonly #updaters = new Map<string, ProgressCommentUpdater>();
  #timer: NodeJS.Timeout | undefined;
  #draining: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #login: () => Promise<string>;

  constructor(opts: ThreadReporterOptions) {
    this.#github = opts.github;
    this.#outbox = opts.outbox;
    this.#log = opts.log;
    this.#progressIntervalMs = opts.progressIntervalMs;
    this.#policy = { ...DEFAULT_DELIVERY_POLICY, ...opts.delivery };
    this.#login = opts.botLogin ?? appLogin(() => opts.github.asApp());
  }

  /**
   * Adds 👀 to the request (the comment, the review comment, or the issue or pull request), as soon
   * as the trigger has gated it. Idempotent on GitHub (a second POST answers 200 with the existing
   * reaction). Never throws.
   * REST: `POST /repos/{o}/{r}/issues/comments/{id}/reactions`, `POST /repos/{o}/{r}/pulls/comments/{id}/reactions`,
   * `POST /repos/{o}/{r}/issues/{n}/reactions`.
   */
  async acknowledge(octokit: Octokit, thread: Pick<ThreadRef, 'owner' | 'repo' | 'issueNumber'>, target: ReactionTarget): Promise<void> {
    const { owner, repo } = thread;
    try {
      if (target.type === 'comment') {
        await octokit.rest.reactions.createForIssueComment({ owner, repo, comment_id: target.id, content: 'eyes' });
      } else if (target.type === 'review_comment') {
        await octokit.rest.reactions.createForPullRequestReviewComment({ owner, repo, comment_id: target.id, content: 'eyes' });
      } else {
        await octokit.rest.reactions.createForIssue({ owner, repo, issue_number: thread.issueNumber, content: 'eyes' });
      }
    } catch (error) {
      this.#log.warn({ err: errorMessage(error), repository: `${owner}/${repo}` }, 'could not add the 👀 reaction');
    }
  }

  /**
   * Writes the progress comment of a task now: edits comment `commentId`, or posts a new comment
   * when there is none, and keeps an updater for the task's later {@link update}s. Never throws.
   *
   * With `opts.recovering` (a task a previous process left, whose comment id may not have reached
   * the store before it stopped), a missing `commentId` is first looked for in the thread: the app's
   * own comment that starts with the task's progress marker is reused, so a restart never leaves a
   * second progress comment.
   * @returns the comment's id, or undefined when there is none (the post failed; logged).
   */
  async showProgress(taskId: string, thread: ThreadRef, commentId: number | undefined, body: string, opts: { recovering?: boolean } = {}): Promise<number | undefined> {
    const { owner, repo } = thread;
    let id = commentId;
    try {
      const octokit = await this.#github.forInstallation(thread.installationId);
      if (id === undefined && opts.recovering) {
        id = await this.#findProgressComment(octokit, thread, taskId);
        if (id !== undefined) this.#log.info({ taskId, commentId: id }, 'progress comment found in the thread');
      }
      if (id !== undefined) {
        await octokit.rest.issues.updateComment({ owner, repo, comment_id: id, body });
      } else {
        id = (await octokit.rest.issues.createComment({ owner, repo, issue_number: thread.issueNumber, body })).data.id;
      }
      if (!this.#updaters.has(taskId)) {
        const comment = id;
        this.#updaters.set(
          taskId,
          new ProgressCommentUpdater({
            // Best effort: a failed edit is written again on the next update; the final reply has its own retries.
            edit: async (text: string) => {
              await octokit.rest.issues.updateComment({ owner, repo, comment_id: comment, body: text, ...NO_OCTOKIT_RETRIES });
            },
            minIntervalMs: this.#progressIntervalMs,
            log: this.#log,
          }),
        );
      }
    } catch (error) {
      this.#log.warn({ taskId, err: errorMessage(error) }, 'could not write the progress comment');
    }
    return id;
  }

  /** Asks for the progress comment of a task to show `body` soon (coalesced). No-op without a comment. */
  update(taskId: string, body: string): void {
    this.#updaters.get(taskId)?.update(body);
  }

  /**
   * Delivers the outbox's due replies now (in the background) and schedules the later ones. Call at
   * start-up and after queueing a final reply. Never throws (failures are logged and retried).
   */
  deliverPending(): void {
    if (this.#closed) return;
    if (this.#draining) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#draining = this.#drain()
      .catch((error: unknown) => this.#log.error({ err: errorMessage(error) }, 'final reply delivery stopped'))
      .finally(() => {
        this.#draining = undefined;
        if (this.#again) {
          this.#again = false;
          this.deliverPending();
        } else {
          this.#schedule();
        }
      });
  }

  /** Resolves when no delivery round is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Stops scheduling deliveries (a round under way finishes). */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#closed) return;
    const next = this.#outbox.pending()[0];
    if (!next) return;
    this.#timer = setTimeout(() => this.deliverPending(), Math.max(0, next.nextAttemptAt - Date.now()));
    this.#timer.unref();
  }

  async #drain(): Promise<void> {
    for (;;) {
      const due = this.#outbox.pending().filter((reply) => reply.nextAttemptAt <= Date.now());
      if (due.length === 0) return;
      for (const reply of due) {
        if (this.#closed) return;
        await this.#deliver(reply);
      }
    }
  }

  /** One delivery attempt; always ends with the reply delivered, rescheduled or abandoned in the outbox. */
  async #deliver(reply: FinalReply): Promise<void> {
    const { taskId, owner, repo } = reply;
    const policy = this.#policy;
    // The live updater edits the same comment: the final edit goes through it once, so that no older
    // progress edit still in flight can land after the final body; after that it is dropped.
    const updater = this.#updaters.get(taskId);
    this.#updaters.delete(taskId);
    let editFailures = reply.editFailures;
    let posting = false;
    let failure: unknown;
    try {
      const octokit = await this.#github.forInstallation(reply.installationId);
      if (reply.postStartedAt !== undefined) {
        const existing = await this.#findFinalReply(octokit, reply);
        if (existing !== undefined) {
          this.#outbox.delivered(taskId, existing);
          this.#log.info({ taskId, commentId: existing }, 'final reply found in the thread');
          return;
        }
      }
      if (reply.progressCommentId !== undefined && editFailures < policy.editAttempts) {
        try {
          if (updater) await updater.flush(reply.body);
          else await octokit.rest.issues.updateComment({ owner, repo, comment_id: reply.progressCommentId, body: reply.body, ...NO_OCTOKIT_RETRIES });
          this.#outbox.delivered(taskId, reply.progressCommentId);
          this.#log.info({ taskId, commentId: reply.progressCommentId }, 'final reply delivered');
          return;
        } catch (error) {
          failure = error;
          // A deleted comment cannot be edited: post a new one at once.
          editFailures = statusOf(error) === 404 ? policy.editAttempts : editFailures + 1;
          this.#log.warn({ taskId, err: errorMessage(error), editFailures }, 'could not edit the progress comment with the final reply');
        }
      }
      if (reply.progressCommentId === undefined || editFailures >= policy.editAttempts) {
        posting = true;
        this.#outbox.markPosting(taskId, Date.now());
        const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: reply.issueNumber, body: reply.body, ...NO_OCTOKIT_RETRIES });
        this.#outbox.delivered(taskId, data.id);
        this.#log.info({ taskId, commentId: data.id }, 'final reply delivered as a new comment');
        return;
      }
    } catch (error) {
      failure = error;
    }
    const attempts = reply.attempts + 1;
    const status = statusOf(failure);
    // 404/410 on a post: the thread or the repository is gone (or the app lost access to it).
    if (attempts >= policy.maxAttempts || (posting && (status === 404 || status === 410))) {
      this.#outbox.abandon(taskId, errorMessage(failure));
      this.#log.error({ taskId, attempts, err: errorMessage(failure) }, 'final reply abandoned');
      return;
    }
    const delay = retryDelayMs(attempts, policy);
    this.#outbox.recordFailure(taskId, { attempts, editFailures, nextAttemptAt: Date.now() + delay, error: errorMessage(failure) });
    this.#log.warn({ taskId, attempts, retryInMs: delay, err: errorMessage(failure) }, 'final reply not delivered yet');
  }

  /** The id of the app's own comment in the thread that holds this task's final reply, if any. */
  async #findFinalReply(octokit: Octokit, reply: FinalReply): Promise<number | undefined> {
    const login = await this.#login();
    const marker = finalReplyMarker(reply.taskId);
    const comments = await octokit.paginate(octokit.rest.issues.listComments, {
      owner: reply.owner,
      repo: reply.repo,
      issue_number: reply.issueNumber,
      // `since` filters on the last update; a minute of slack for clock differences.
      since: new Date(reply.createdAt - 60_000).toISOString(),
      per_page: 100,
    });
    // Only the app's own comments count: anyone can write the marker in a comment of theirs.
    return comments.find((c) => c.user?.login === login && (c.body ?? '').includes(marker))?.id;
  }

  /** The app's own comment in the thread that starts with the task's progress marker, if any. */
  async #findProgressComment(octokit: Octokit, thread: ThreadRef, taskId: string): Promise<number | undefined> {
    const login = await this.#login();
    const comments = await octokit.paginate(octokit.rest.issues.listComments, {
      owner: thread.owner,
      repo: thread.repo,
      issue_number: thread.issueNumber,
      per_page: 100,
    });
    return comments.find((c) => c.user?.login === login && taskIdFromComment(c.body ?? '') === taskId)?.id;
  }
}
