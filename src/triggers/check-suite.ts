/**
 * `check_suite.completed`: every check run of one app's suite on a commit finished. A failed suite of
 * another app (a CI service, GitHub Actions) on the head of a pull request may start an automatic
 * fix (check-failure.ts); the App's own suites never do.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_suite
 */
import { z } from 'zod';
import type { CheckFailureTrigger } from './check-failure.ts';
import { GitHubId, WebhookInstallation, WebhookRepository } from './payload.ts';

/** A pull request as a check suite or workflow run lists it (`pull_requests[]`: same-repository pull requests only). */
export const WebhookPullRef = z.object({ number: GitHubId });

/** The fields of a `check_suite` payload this trigger reads. */
export const CheckSuitePayload = z.object({
  check_suite: z.object({
    id: GitHubId,
    head_sha: z.string().regex(/^[0-9a-f]{40}$/),
    conclusion: z.string().max(50).nullish(),
    app: z.object({ id: GitHubId }).nullish(),
    pull_requests: z.array(WebhookPullRef).max(100).nullish(),
  }),
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
});

/** The trigger: the suite's head, conclusion, app and pull requests. */
export const checkSuiteTrigger: CheckFailureTrigger<typeof CheckSuitePayload> = {
  event: 'check_suite.completed',
  schema: CheckSuitePayload,
  normalize({ check_suite: suite, repository, installation }) {
    if (!installation) return undefined;
    return {
      installationId: installation.id,
      owner: repository.owner.login,
      repo: repository.name,
      headSha: suite.head_sha,
      conclusion: suite.conclusion ?? null,
      pullNumbers: [...new Set((suite.pull_requests ?? []).map((p) => p.number))],
      ...(suite.app ? { appId: suite.app.id } : {}),
    };
  },
};
