/**
 * `issue_comment.created` on an issue: a mention in a new comment.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment
 */
import type { Context } from 'probot';
import { z } from 'zod';
import { handleIssueMention, type TriggerDeps } from './issue-mention.ts';
import { GitHubId, guardTrigger, readPayload, WebhookInstallation, WebhookIssue, WebhookRepository, WebhookUser } from './payload.ts';

/** The fields of an `issue_comment` payload this trigger reads. */
export const IssueCommentPayload = z.object({
  comment: z.object({ id: GitHubId, body: z.string().nullish(), user: WebhookUser.nullish() }),
  issue: WebhookIssue,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/**
 * Handles the event; comments on pull requests are left to the pull request triggers. Never throws:
 * a payload that does not match {@link IssueCommentPayload} is logged and ignored.
 */
export async function onIssueComment(deps: TriggerDeps, context: Context<'issue_comment.created'>): Promise<void> {
  const ref = { deliveryId: context.id, eventName: 'issue_comment.created' };
  await guardTrigger(ref, deps.log, async () => {
    const payload = readPayload(IssueCommentPayload, context.payload, ref, deps.log);
    if (!payload) return;
    const { comment, issue, repository, installation, sender } = payload;
    if (issue.pull_request != null || !installation) return;
    const author = comment.user ?? sender;
    await handleIssueMention(deps, {
      deliveryId: context.id,
      triggerKey: `issue_comment:${comment.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      issue: { number: issue.number, title: issue.title, body: issue.body ?? null, author: issue.user?.login, url: issue.html_url },
      sender: { login: author.login, id: author.id, type: author.type },
      text: comment.body ?? '',
      reactTo: { type: 'comment', id: comment.id },
      commentId: comment.id,
      readConfig: (file) => context.config(file),
      octokit: context.octokit,
    });
  });
}
