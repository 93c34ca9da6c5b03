/**
 * `issue_comment.created` on an issue: a mention in a new comment.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment
 */
import type { Context } from 'probot';
import { handleIssueMention, type TriggerDeps } from './issue-mention.ts';

/** Handles the event; comments on pull requests are left to the pull request triggers. */
export async function onIssueComment(deps: TriggerDeps, context: Context<'issue_comment.created'>): Promise<void> {
  const { comment, issue, repository, installation } = context.payload;
  if (issue.pull_request || !installation) return;
  await handleIssueMention(deps, {
    deliveryId: context.id,
    triggerKey: `issue_comment:${comment.id}`,
    installationId: installation.id,
    owner: repository.owner.login,
    repo: repository.name,
    issue: { number: issue.number, title: issue.title, body: issue.body ?? null, author: issue.user?.login, url: issue.html_url },
    sender: { login: comment.user?.login ?? context.payload.sender.login, id: comment.user?.id ?? context.payload.sender.id, type: comment.user?.type },
    text: comment.body ?? '',
    origin: { type: 'comment', id: comment.id },
    commentId: comment.id,
    readConfig: (file) => context.config(file),
    octokit: context.octokit,
  });
}
