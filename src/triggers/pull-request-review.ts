/**
 * `pull_request_review.submitted`: a review whose body mentions the app ("@codex address these").
 * GitHub has no reactions API for reviews: 👀 goes on the pull request.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review
 */
import { z } from 'zod';
import type { Trigger } from './normalize.ts';
import { WebhookInstallation, WebhookPullRequest, WebhookRepository, WebhookReview, WebhookUser } from './payload.ts';

/** The fields of a `pull_request_review` payload this trigger reads. */
export const PullRequestReviewPayload = z.object({
  review: WebhookReview,
  pull_request: WebhookPullRequest,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** The trigger: the review is the origin; the pull request the target. A review without a body is no request. */
export const pullRequestReviewTrigger: Trigger<typeof PullRequestReviewPayload> = {
  event: 'pull_request_review.submitted',
  schema: PullRequestReviewPayload,
  normalize({ review, pull_request: pull, repository, installation, sender }) {
    if (!installation || !review.body) return undefined;
    const author = review.user ?? sender;
    return {
      triggerKey: `pull_request_review:${review.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      target: { type: 'pull_request', number: pull.number, title: pull.title, pull },
      origin: { type: 'review', id: review.id },
      sender: { login: author.login, id: author.id, type: author.type },
      body: review.body,
    };
  },
};
