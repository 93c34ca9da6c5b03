/**
 * `pull_request.opened`: a new pull request whose body mentions the app (like a new issue's).
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request
 */
import { z } from 'zod';
import type { Trigger } from './normalize.ts';
import { WebhookInstallation, WebhookPullRequest, WebhookRepository, WebhookUser } from './payload.ts';

/** The fields of a `pull_request` payload this trigger reads. */
export const PullRequestOpenedPayload = z.object({
  pull_request: WebhookPullRequest,
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});

/** The trigger: the pull request is the target and the origin (👀 on the pull request). */
export const pullRequestOpenedTrigger: Trigger<typeof PullRequestOpenedPayload> = {
  event: 'pull_request.opened',
  schema: PullRequestOpenedPayload,
  normalize({ pull_request: pull, repository, installation, sender }) {
    if (!installation) return undefined;
    return {
      triggerKey: `pull_request:${pull.id}`,
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      target: { type: 'pull_request', number: pull.number, title: pull.title, pull },
      origin: { type: 'pull_request', id: pull.id },
      sender: { login: sender.login, id: sender.id, type: sender.type },
      body: pull.body ?? '',
    };
  },
};
