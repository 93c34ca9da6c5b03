/**
 * `issues.opened`: a new issue whose body mentions the app.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
 */
import type { Context } from 'probot';
import { z } from 'zod';
import { handleIssueMention, type TriggerDeps } from './issue-mention.ts';
import { guardTrigger, readPayload, WebhookInstallation, WebhookIssue, WebhookRepository, WebhookUser } from './payload.ts';

/** The fields of an `issues` payload this trigger reads. */
export const IssuesOpenedPayload = z.object({
  issue: WebhookIssue,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** Handles the event. Never throws: a payload that does not match {@link IssuesOpenedPayload} is logged and ignored. */
export async function onIssueOpened(deps: TriggerDeps, context: Context<'issues.opened'>): Promise<void> {
  const ref = { deliveryId: context.id, eventName: 'issues.opened' };
  await guardTrigger(ref, deps.log, async () => {
    const payload = readPayload(IssuesOpenedPayload, context.payload, ref, deps.log);
    if (!payload) return;
    const { issue, repository, installation, sender } = payload;
    if (!installation) return;
    await handleIssueMention(deps, {
      deliveryId: context.id,
      triggerKey: `issues:${issue.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      issue: { number: issue.number, title: issue.title, body: issue.body ?? null, author: issue.user?.login, url: issue.html_url },
      sender: { login: sender.login, id: sender.id, type: sender.type },
      text: issue.body ?? '',
      reactTo: { type: 'issue' },
      readConfig: (file) => context.config(file),
      octokit: context.octokit,
    });
  });
}
