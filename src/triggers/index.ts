/**
 * The registration table: every webhook event the app answers and its trigger module. Each event
 * runs the same way: its payload is checked with the trigger's zod schema (payload.ts), normalised
 * into one shape (normalize.ts), then handled by the shared path (mention-request.ts). Adding an
 * event is one module and one row here; `app.yml` lists the events (keep them in step).
 */
import type { Context, Probot } from 'probot';
import { issueCommentTrigger } from './issue-comment.ts';
import { issuesOpenedTrigger } from './issues-opened.ts';
import { handleMention, type TriggerDeps } from './mention-request.ts';
import type { Trigger, TriggerEvent } from './normalize.ts';
import { guardTrigger, readPayload } from './payload.ts';
import { pullRequestOpenedTrigger } from './pull-request-opened.ts';
import { pullRequestReviewTrigger } from './pull-request-review.ts';
import { pullRequestReviewCommentTrigger } from './pull-request-review-comment.ts';
import { registerAutoReviews } from './review-auto.ts';

/** Event → trigger. */
export const TRIGGERS: Readonly<Record<TriggerEvent, Trigger>> = {
  'issue_comment.created': issueCommentTrigger as Trigger,
  'issues.opened': issuesOpenedTrigger as Trigger,
  'pull_request.opened': pullRequestOpenedTrigger as Trigger,
  'pull_request_review.submitted': pullRequestReviewTrigger as Trigger,
  'pull_request_review_comment.created': pullRequestReviewCommentTrigger as Trigger,
};

/**
 * Runs one delivery through `trigger`: schema check, normalisation, the shared path. Never throws
 * (see `guardTrigger`): a payload that does not match is one log line, nothing else.
 */
export async function runTrigger(deps: TriggerDeps, trigger: Trigger, context: Pick<Context, 'id' | 'payload' | 'octokit' | 'config'>): Promise<void> {
  const ref = { deliveryId: context.id, eventName: trigger.event };
  await guardTrigger(ref, deps.log, async () => {
    const payload = readPayload(trigger.schema, context.payload, ref, deps.log);
    if (payload === undefined) return;
    const mention = trigger.normalize(payload);
    if (!mention) return;
    await handleMention(deps, {
      ...mention,
      deliveryId: context.id,
      readConfig: (file) => context.config(file),
      octokit: context.octokit,
    });
  });
}

/**
 * Subscribes every trigger of {@link TRIGGERS} on the Probot app, and the automatic reviews
 * (review-auto.ts: `pull_request` opened, reopened, ready_for_review, synchronize; an event may have
 * both a mention trigger and an automatic review, which Probot runs side by side).
 */
export function registerTriggers(app: Pick<Probot, 'on'>, deps: TriggerDeps): void {
  for (const [event, trigger] of Object.entries(TRIGGERS) as Array<[TriggerEvent, Trigger]>) {
    app.on(event, (context) => runTrigger(deps, trigger, context as unknown as Context));
  }
  registerAutoReviews(app, deps);
}
