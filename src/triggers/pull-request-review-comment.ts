/**
 * `pull_request_review_comment.created`: a mention in an inline comment on a pull request's diff
 * (`@codex use a constant here` on a line). The task's context says which file, lines and side the
 * comment is about, with the diff hunk.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review_comment
 */
import { z } from 'zod';
import { reviewCommentTrigger, type Trigger } from './normalize.ts';
import { WebhookInstallation, WebhookPullRequest, WebhookRepository, WebhookReviewComment, WebhookUser } from './payload.ts';

/** The fields of a `pull_request_review_comment` payload this trigger reads. */
export const PullRequestReviewCommentPayload = z.object({
  comment: WebhookReviewComment,
  pull_request: WebhookPullRequest,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** The trigger: the review comment is the origin (👀 on it); the pull request the target. */
export const pullRequestReviewCommentTrigger: Trigger<typeof PullRequestReviewCommentPayload> = {
  event: 'pull_request_review_comment.created',
  schema: PullRequestReviewCommentPayload,
  normalize({ comment, pull_request: pull, repository, installation, sender }) {
    if (!installation) return undefined;
    const author = comment.user ?? sender;
    return {
      triggerKey: `pull_request_review_comment:${comment.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      target: { type: 'pull_request', number: pull.number, title: pull.title, pull },
      origin: { type: 'review_comment', id: comment.id },
      sender: { login: author.login, id: author.id, type: author.type },
      body: comment.body ?? '',
      reviewComment: reviewCommentTrigger(comment),
    };
  },
};
