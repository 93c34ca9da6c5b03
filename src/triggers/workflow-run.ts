/**
 * `workflow_run.completed`: a GitHub Actions workflow run finished. A failed run on the head of a pull
 * request may start an automatic fix (check-failure.ts), for repositories that use Actions; the
 * gate counts a run and its check suite as one failure (one attempt per check and head).
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
 */
import { z } from 'zod';
import type { CheckFailureTrigger } from './check-failure.ts';
import { WebhookPullRef } from './check-suite.ts';
import { GitHubId, WebhookInstallation, WebhookRepository } from './payload.ts';

/** The fields of a `workflow_run` payload this trigger reads. */
export const WorkflowRunPayload = z.object({
  workflow_run: z.object({
    id: GitHubId,
    head_sha: z.string().regex(/^[0-9a-f]{40}$/),
    conclusion: z.string().max(50).nullish(),
    pull_requests: z.array(WebhookPullRef).max(100).nullish(),
  }),
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
});

/** The trigger: the run's head, conclusion and pull requests. */
export const workflowRunTrigger: CheckFailureTrigger<typeof WorkflowRunPayload> = {
  event: 'workflow_run.completed',
  schema: WorkflowRunPayload,
  normalize({ workflow_run: run, repository, installation }) {
    if (!installation) return undefined;
    return {
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      headSha: run.head_sha,
      conclusion: run.conclusion ?? null,
      pullNumbers: [...new Set((run.pull_requests ?? []).map((p) => p.number))],
    };
  },
};
