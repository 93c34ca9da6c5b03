/**
 * zod schemas of the webhook payload fields the triggers read, and the guard every trigger runs
 * under. A payload is signed by GitHub, but its shape is still checked field by field: a payload the
 * app does not understand is logged (one line: event, delivery id and the paths that did not match,
 * never the payload) and ignored, so GitHub gets a 2xx and nothing else happens.
 * Payloads: https://docs.github.com/en/webhooks/webhook-events-and-payloads
 */
import type { Logger } from 'pino';
import { z } from 'zod';

/** A GitHub database id: a positive safe integer. */
export const GitHubId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/**
 * A login as it appears in payloads: letters, digits, `-`, `_` and `.` (enterprise managed users),
 * with GitHub Apps' `[bot]` suffix; at most 100 characters. Logins end up in replies (`@login`) and
 * log lines, so nothing else is accepted.
 */
const Login = z
  .string()
  .max(100)
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?(?:\[bot\])?$/);

/** A user object (`sender`, `comment.user`, `issue.user`): the fields the triggers read. */
export const WebhookUser = z.object({ login: Login, id: GitHubId, type: z.string().max(50).optional() });

/** `repository`: name and owner. */
export const WebhookRepository = z.object({
  name: z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/),
  owner: z.object({ login: Login }),
});

/** `installation` as App deliveries carry it. */
export const WebhookInstallation = z.object({ id: GitHubId });

/** `issue`: the fields a mention on an issue reads. */
export const WebhookIssue = z.object({
  id: GitHubId,
  number: GitHubId,
  title: z.string(),
  body: z.string().nullish(),
  user: z.object({ login: Login }).nullish(),
  html_url: z.string().max(2048).optional(),
  /** Present (an object) when the issue is a pull request. */
  pull_request: z.unknown().optional(),
});

/** A branch name or commit in a pull request's `base`/`head`. */
const GitSha = z.string().regex(/^[0-9a-f]{40}$/);
const RefName = z.string().min(1).max(255);

/**
 * `pull_request` (in `pull_request`, `pull_request_review` and `pull_request_review_comment` payloads,
 * and the REST pull request object): the fields the pull request triggers read. `head.repo` is null
 * when the fork was deleted. `commits` and `changed_files` are absent from review payloads.
 */
export const WebhookPullRequest = z.object({
  id: GitHubId,
  number: GitHubId,
  title: z.string(),
  body: z.string().nullish(),
  state: z.string().max(20),
  user: z.object({ login: Login }).nullish(),
  html_url: z.string().max(2048).optional(),
  base: z.object({ ref: RefName, sha: GitSha }),
  head: z.object({ ref: RefName, sha: GitSha, repo: z.object({ full_name: z.string().max(200) }).nullable() }),
  maintainer_can_modify: z.boolean().nullish(),
  commits: z.number().int().nonnegative().optional(),
  changed_files: z.number().int().nonnegative().optional(),
});

/** `comment` of `pull_request_review_comment`: an inline comment on the diff and where it is. */
export const WebhookReviewComment = z.object({
  id: GitHubId,
  body: z.string().nullish(),
  user: WebhookUser.nullish(),
  path: z.string().max(4096),
  line: z.number().int().positive().nullish(),
  original_line: z.number().int().positive().nullish(),
  start_line: z.number().int().positive().nullish(),
  side: z.enum(['LEFT', 'RIGHT']).nullish(),
  diff_hunk: z.string().nullish(),
  commit_id: z.string().max(64).optional(),
  subject_type: z.enum(['line', 'file']).nullish(),
  in_reply_to_id: GitHubId.optional(),
  html_url: z.string().max(2048).optional(),
});

/** `review` of `pull_request_review`. */
export const WebhookReview = z.object({ id: GitHubId, body: z.string().nullish(), user: WebhookUser.nullish(), html_url: z.string().max(2048).optional() });

/** Where in a payload a schema did not match, e.g. `comment.user.login, issue.number` (no values). */
function mismatchPaths(error: z.ZodError): string {
  const paths = [...new Set(error.issues.map((issue) => issue.path.join('.') || '(root)'))];
  return paths.slice(0, 10).join(', ').slice(0, 500);
}

/** Identifies an event in log lines. */
export interface EventRef {
  /** `X-GitHub-Delivery`. */
  deliveryId: string;
  /** Event and action, e.g. `issue_comment.created`. */
  eventName: string;
}

/**
 * Validates `payload` with `schema`.
 * @returns the parsed fields, or `undefined` (after one log line naming the paths) when it does not match.
 */
export function readPayload<T extends z.ZodType>(schema: T, payload: unknown, ref: EventRef, log: Logger): z.infer<T> | undefined {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return parsed.data;
  log.warn({ ...ref, paths: mismatchPaths(parsed.error) }, 'webhook payload not understood; ignored');
  return undefined;
}

/**
 * Runs a trigger so that nothing it throws reaches Probot (whose error handler would log the whole
 * event and answer 500): an error becomes one log line with its message, cut to 300 characters.
 */
export async function guardTrigger(ref: EventRef, log: Logger, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    log.error({ ...ref, err: String((error as Error)?.message ?? error).slice(0, 300) }, 'trigger failed; event dropped');
  }
}
