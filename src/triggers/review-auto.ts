/**
 * Automatic reviews (`review:` in `.github/codex.yml`, read from the default branch): a pull request
 * opened, reopened or marked ready for review is reviewed when `review.auto` is true; each push
 * (`synchronize`) too when `review.on_push` is also true, as an incremental review of the commits
 * since the last reviewed head. Drafts are skipped unless `review.drafts`; authors in
 * `review.authors_ignore` are skipped. Pull requests from forks are reviewed like any other (the head
 * is untrusted either way: guidelines come from the base branch, commands run without network).
 *
 * Nobody asked: no permission check on a person, no 👀 (the progress comment is the acknowledgement),
 * no requester. A head that already has a review task from the app (asked or automatic, not failed or
 * cancelled) is not reviewed again automatically; a redelivered event is the same request (its trigger
 * key names the pull request and the head) and makes no second task.
 * Payload: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request
 */
import type { Context, Probot } from 'probot';
import { z } from 'zod';
import { loadRepoConfig, RepoConfigError, type RepoConfig } from '../config/repo-config.ts';
import type { Octokit } from '../github/client.ts';
import type { TaskRecord } from '../tasks/types.ts';
import type { TriggerDeps } from './mention-request.ts';
import { parseMention } from './mention.ts';
import { pullRequestTarget } from './normalize.ts';
import { guardTrigger, readPayload, WebhookInstallation, WebhookPullRequest, WebhookRepository, WebhookUser } from './payload.ts';
import { resolveReviewSettings, reviewContext, reviewRequest } from './review-request.ts';

/** The `pull_request` actions that may start an automatic review. */
export const AUTO_REVIEW_EVENTS = ['pull_request.opened', 'pull_request.reopened', 'pull_request.ready_for_review', 'pull_request.synchronize'] as const;
/** One of {@link AUTO_REVIEW_EVENTS}. */
export type AutoReviewEvent = (typeof AUTO_REVIEW_EVENTS)[number];

/** The fields of a `pull_request` payload an automatic review reads. */
export const AutoReviewPayload = z.object({
  action: z.string().max(50),
  pull_request: WebhookPullRequest.extend({ draft: z.boolean().nullish() }),
  repository: WebhookRepository,
  installation: WebhookInstallation.optional(),
  sender: WebhookUser,
});
type AutoReviewPayload = z.infer<typeof AutoReviewPayload>;

/** Why an event starts no review (logged), or undefined when it does. */
export function autoReviewSkip(event: AutoReviewEvent, payload: AutoReviewPayload, config: RepoConfig): string | undefined {
  const { review } = config;
  const pull = payload.pull_request;
  if (!review.auto) return 'review.auto is off';
  if (event === 'pull_request.synchronize' && !review.on_push) return 'review.on_push is off';
  if (pull.state !== 'open') return 'the pull request is not open';
  if (pull.draft && !review.drafts) return 'draft pull request (review.drafts is off)';
  const author = pull.user?.login.toLowerCase();
  if (author && review.authors_ignore.some((login) => login.toLowerCase() === author)) return 'author in review.authors_ignore';
  return undefined;
}

/**
 * Whether a new pull request's body is itself `@codex review …` (the mention trigger of the same
 * event starts that review; an automatic one beside it would review the head twice). A body too
 * long or complex to parse counts as no request.
 */
function asksForReview(body: string, mention: string): boolean {
  try {
    return parseMention(body, { mention })?.command === 'review';
  } catch {
    return false;
  }
}

/** Whether a task reviews `headSha` (the head it was dispatched on, else the one it was asked for) and did not fail. */
function reviewsHead(task: TaskRecord, headSha: string): boolean {
  if (task.state === 'failed' || task.state === 'cancelled') return false;
  const head = task.headSha ?? (task.request.target.type === 'pull_request' ? task.request.target.headSha : undefined);
  return head === headSha;
}

/** The head of the newest review of the pull request that was published (for an incremental review). */
function lastReviewedHead(tasks: readonly TaskRecord[]): string | undefined {
  return tasks.find((t) => t.state === 'succeeded' && t.headSha)?.headSha;
}

/**
 * Handles one `pull_request` delivery for automatic reviews. Never throws (see `guardTrigger`).
 */
export async function runAutoReview(
  deps: TriggerDeps,
  event: AutoReviewEvent,
  context: { id: string; payload: unknown; octokit: Octokit; config: (file: string) => Promise<unknown> },
): Promise<void> {
  const ref = { deliveryId: context.id, eventName: event };
  await guardTrigger(ref, deps.log, async () => {
    const payload = readPayload(AutoReviewPayload, context.payload, ref, deps.log);
    if (!payload?.installation) return;
    const owner = payload.repository.owner.login;
    const repo = payload.repository.name;
    const pull = payload.pull_request;
    const where = { repository: `${owner}/${repo}`, pull: pull.number, deliveryId: context.id, event };
    let config: RepoConfig;
    try {
      config = await loadRepoConfig({ config: context.config });
    } catch (error) {
      if (error instanceof RepoConfigError) {
        deps.log.warn({ ...where, err: error.message }, 'invalid repository config; no automatic review');
        return;
      }
      throw error;
    }
    const skip = autoReviewSkip(event, payload, config);
    if (skip) {
      deps.log.info({ ...where, reason: skip }, 'no automatic review');
      return;
    }
    if (event === 'pull_request.opened' && asksForReview(pull.body ?? '', deps.settings.mention)) {
      deps.log.info({ ...where }, 'the pull request body asks for a review; the mention path runs it');
      return;
    }
    const earlier = deps.service.store.reviewTasks(owner, repo, pull.number);
    if (earlier.some((t) => reviewsHead(t, pull.head.sha))) {
      deps.log.info({ ...where, headSha: pull.head.sha }, 'head already reviewed; no automatic review');
      return;
    }
    const botLogin = await deps.botLogin();
    const sinceSha = event === 'pull_request.synchronize' ? lastReviewedHead(earlier) : undefined;
    await deps.service.submit({
      // One request per pull request and head, whatever the deliveries and actions that carry it.
      triggerKey: `review:${owner}/${repo}#${pull.number}@${pull.head.sha}`.toLowerCase(),
      deliveryId: context.id,
      kind: 'review',
      installationId: payload.installation.id,
      owner,
      repo,
      target: pullRequestTarget(owner, repo, pull),
      instruction: '',
      context: reviewContext(pull),
      settings: resolveReviewSettings(deps.settings, config),
      review: reviewRequest(config, { botLogin, automatic: true, ...(sinceSha ? { sinceSha } : {}) }),
    });
  });
}

/** Subscribes {@link runAutoReview} to every event of {@link AUTO_REVIEW_EVENTS}. */
export function registerAutoReviews(app: Pick<Probot, 'on'>, deps: TriggerDeps): void {
  for (const event of AUTO_REVIEW_EVENTS) {
    app.on(event, (context) => {
      const c = context as unknown as Pick<Context, 'id' | 'payload' | 'octokit' | 'config'>;
      return runAutoReview(deps, event, { id: c.id, payload: c.payload, octokit: c.octokit as unknown as Octokit, config: (file) => c.config(file) });
    });
  }
}
