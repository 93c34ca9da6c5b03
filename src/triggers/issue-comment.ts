/**
 * `issue_comment.created`: a mention in a new comment on an issue, or in a pull request's
 * conversation (GitHub sends pull request conversation comments as issue comments; `issue.pull_request`
 * is then set).
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment
 */
import { z } from 'zod';
import type { Trigger } from './normalize.ts';
import { GitHubId, WebhookInstallation, WebhookIssue, WebhookRepository, WebhookUser } from './payload.ts';

/** The fields of an `issue_comment` payload this trigger reads. */
export const IssueCommentPayload = z.object({
  comment: z.object({ id: GitHubId, body: z.string().nullish(), user: WebhookUser.nullish() }),
  issue: WebhookIssue,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** The trigger: the comment is the origin; on a pull request the target is read after the gate. */
export const issueCommentTrigger: Trigger<typeof IssueCommentPayload> = {
  event: 'issue_comment.created',
  schema: IssueCommentPayload,
  normalize({ comment, issue, repository, installation, sender }) {
    if (!installation) return undefined;
    const author = comment.user ?? sender;
    return {
      triggerKey: `issue_comment:${comment.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      target:
        issue.pull_request != null
          ? { type: 'pull_request', number: issue.number, title: issue.title }
          : { type: 'issue', number: issue.number, title: issue.title, body: issue.body ?? null, author: issue.user?.login, url: issue.html_url },
      origin: { type: 'comment', id: comment.id },
      sender: { login: author.login, id: author.id, type: author.type },
      body: comment.body ?? '',
    };
  },
};
