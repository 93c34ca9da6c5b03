/**
 * `issues.opened`: a new issue whose body mentions the app.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
 */
import { z } from 'zod';
import type { Trigger } from './normalize.ts';
import { WebhookInstallation, WebhookIssue, WebhookRepository, WebhookUser } from './payload.ts';

/** The fields of an `issues` payload this trigger reads. */
export const IssuesOpenedPayload = z.object({
  issue: WebhookIssue,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** The trigger: the issue is the target and the origin (👀 on the issue). */
export const issuesOpenedTrigger: Trigger<typeof IssuesOpenedPayload> = {
  event: 'issues.opened',
  schema: IssuesOpenedPayload,
  normalize({ issue, repository, installation, sender }) {
    if (!installation) return undefined;
    return {
      triggerKey: `issues:${issue.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      target: { type: 'issue', number: issue.number, title: issue.title, body: issue.body ?? null, author: issue.user?.login, url: issue.html_url },
      origin: { type: 'issue', id: issue.id },
      sender: { login: sender.login, id: sender.id, type: sender.type },
      body: issue.body ?? '',
    };
  },
};
