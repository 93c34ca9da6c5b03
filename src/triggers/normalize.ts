/**
 * The one shape every trigger turns its event into (DESIGN.md, "Thread targets"):
 * `{target, origin, sender, body}` plus the keys the shared path needs (trigger key, installation,
 * repository) and hints for the thread context. After this, a mention on an issue and one on a pull
 * request (conversation comment, inline review comment, review, new pull request) take the same path
 * (`mention-request.ts`): mention pre-check, gate, parse, config, context, task.
 */
import type { PullRequestTrigger } from '../github/pull-request-context.ts';
import type { Sender } from '../github/permissions.ts';
import type { TaskOrigin, TaskTarget } from '../tasks/types.ts';
import type { WebhookPullRequest, WebhookReviewComment } from './payload.ts';
import type { z } from 'zod';

/** A pull request as the triggers read it from a payload or `GET /pulls/{n}`. */
export type PullRequestPayload = z.infer<typeof WebhookPullRequest>;

/**
 * What a mention is about. An issue carries what its context needs; a pull request carries the
 * payload's pull request when the event has one (`pull_request*` events), and only its number and
 * title for a conversation comment (`issue_comment` on a pull request): the shared path then reads the
 * pull request through the API after the gate.
 */
export type MentionTarget =
  | { type: 'issue'; number: number; title: string; body: string | null; author?: string; url?: string }
  | { type: 'pull_request'; number: number; title: string; pull?: PullRequestPayload };

/** A mention found in an event, normalised. */
export interface NormalizedMention {
  /** Identifies the request (e.g. `issue_comment:<id>`): one request, one task, whatever the deliveries. */
  triggerKey: string;
  installationId: number;
  owner: string;
  repo: string;
  target: MentionTarget;
  /** What asked: 👀 goes there; also left out of the thread context. */
  origin: TaskOrigin;
  /** Who asked (the comment's, review's or pull request's author). */
  sender: Sender & { id: number };
  /** The text that holds the mention (comment, review or issue/pull request body). */
  body: string;
  /** For an inline review comment: the lines it is about, for the agent's context. */
  reviewComment?: Extract<PullRequestTrigger, { kind: 'review_comment' }>;
}

/**
 * The task target of a pull request payload (`owner/repo`: the base repository, where the app is
 * installed). A head in another repository, or in a deleted fork (`head.repo` null), is a fork.
 */
export function pullRequestTarget(owner: string, repo: string, pull: PullRequestPayload): Extract<TaskTarget, { type: 'pull_request' }> {
  const headRepo = pull.head.repo?.full_name ?? '';
  return {
    type: 'pull_request',
    number: pull.number,
    title: pull.title,
    baseRef: pull.base.ref,
    baseSha: pull.base.sha,
    headRef: pull.head.ref,
    headSha: pull.head.sha,
    headRepo,
    fork: headRepo.toLowerCase() !== `${owner}/${repo}`.toLowerCase(),
    maintainerCanModify: pull.maintainer_can_modify === true,
    ...(pull.commits ? { commits: pull.commits } : {}),
  };
}

/** The context hint of an inline review comment: its path, lines, side and diff hunk. */
export function reviewCommentTrigger(comment: z.infer<typeof WebhookReviewComment>): Extract<PullRequestTrigger, { kind: 'review_comment' }> {
  return {
    kind: 'review_comment',
    id: comment.id,
    path: comment.path,
    line: comment.line ?? null,
    originalLine: comment.original_line ?? null,
    startLine: comment.start_line ?? null,
    side: comment.side ?? null,
    diffHunk: comment.diff_hunk ?? '',
    ...(comment.commit_id ? { commitId: comment.commit_id } : {}),
    ...(comment.subject_type ? { subjectType: comment.subject_type } : {}),
    ...(comment.in_reply_to_id ? { inReplyTo: comment.in_reply_to_id } : {}),
    ...(comment.html_url ? { url: comment.html_url } : {}),
  };
}

/** The webhook events (`event.action`, as Probot names them) the app answers. */
export type TriggerEvent =
  | 'issue_comment.created'
  | 'issues.opened'
  | 'pull_request.opened'
  | 'pull_request_review.submitted'
  | 'pull_request_review_comment.created';

/**
 * One trigger: the event it handles, the zod schema of the payload fields it reads (checked before
 * anything else; see payload.ts) and its normaliser. `normalize` is pure: it returns undefined for
 * an event that cannot be a request (no installation, a comment on an issue that is neither, …).
 */
export interface Trigger<S extends z.ZodType = z.ZodType> {
  event: TriggerEvent;
  schema: S;
  normalize(payload: z.infer<S>): NormalizedMention | undefined;
}
