/**
 * `issues.opened`: a new issue whose body mentions the app.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#issues
 */
import type { Context } from 'probot';
import { handleIssueMention, type TriggerDeps } from './issue-mention.ts';

/** Handles the event. */
export async function onIssueOpened(deps: TriggerDeps, context: Context<'issues.opened'>): Promise<void> {
  const { issue, repository, installation, sender } = context.payload;
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
    origin: { type: 'issue', id: issue.id },
    readConfig: (file) => context.config(file),
    octokit: context.octokit,
  });
}
