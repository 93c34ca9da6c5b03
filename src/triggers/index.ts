/**
 * The registration table: every webhook event the app answers and its trigger module. Each event
 * runs the same way: its payload is checked with the trigger's zod schema (payload.ts), normalised
 * into one shape (normalize.ts), then handled by the shared path (mention-request.ts). Adding an
 * event is one module and one row here; `app.yml` lists the events (keep them in step).
 */
import type { Context, Probot } from 'probot';
import type { CheckFailureEvent, CheckFailures, CheckFailureTrigger } from './check-failure.ts';
import { checkSuiteTrigger } from './check-suite.ts';
import { issueCommentTrigger } from './issue-comment.ts';
import { issuesOpenedTrigger } from './issues-opened.ts';
import { handleMention, type TriggerDeps } from './mention-request.ts';
import type { Trigger, TriggerEvent } from './normalize.ts';
import { guardTrigger, readPayload } from './payload.ts';
import { pullRequestOpenedTrigger } from './pull-request-opened.ts';
import { pullRequestReviewTrigger } from './pull-request-review.ts';
import { pullRequestReviewCommentTrigger } from './pull-request-review-comment.ts';
import { workflowRunTrigger } from './workflow-run.ts';
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
 * Event → trigger, for the events that report failing checks (automatic fixes, check-failure.ts):
 * same guard and schema check, then {@link CheckFailures.handle} instead of the mention path.
 */
export const CHECK_FAILURE_TRIGGERS: Readonly<Record<CheckFailureEvent, CheckFailureTrigger>> = {
  'check_suite.completed': checkSuiteTrigger as CheckFailureTrigger,
  'workflow_run.completed': workflowRunTrigger as CheckFailureTrigger,
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

/** Runs one failure delivery through `trigger` (schema check, normalisation, `failures.handle`). Never throws. */
export async function runCheckFailureTrigger(
  deps: Pick<TriggerDeps, 'log'>,
  failures: CheckFailures,
  trigger: CheckFailureTrigger,
  context: Pick<Context, 'id' | 'payload' | 'octokit' | 'config'>,
): Promise<void> {
  const ref = { deliveryId: context.id, eventName: trigger.event };
  await guardTrigger(ref, deps.log, async () => {
    const payload = readPayload(trigger.schema, context.payload, ref, deps.log);
    if (payload === undefined) return;
    const failure = trigger.normalize(payload);
    if (!failure) return;
    await failures.handle({ ...failure, deliveryId: context.id, readConfig: (file) => context.config(file), octokit: context.octokit });
  });
}

/**
 * Subscribes every trigger of {@link TRIGGERS} on the Probot app, the automatic reviews
 * (review-auto.ts: `pull_request` opened, reopened, ready_for_review, synchronize; an event may have
 * both a mention trigger and an automatic review, which Probot runs side by side), and with
 * `failures` the triggers of {@link CHECK_FAILURE_TRIGGERS}.
 */
export function registerTriggers(app: Pick<Probot, 'on'>, deps: TriggerDeps, failures?: CheckFailures): void {
  for (const [event, trigger] of Object.entries(TRIGGERS) as Array<[TriggerEvent, Trigger]>) {
    app.on(event, (context) => runTrigger(deps, trigger, context as unknown as Context));
  }
  registerAutoReviews(app, deps);
  if (!failures) return;
  for (const [event, trigger] of Object.entries(CHECK_FAILURE_TRIGGERS) as Array<[CheckFailureEvent, CheckFailureTrigger]>) {
    app.on(event, (context) => runCheckFailureTrigger(deps, failures, trigger, context as unknown as Context));
  }
}
