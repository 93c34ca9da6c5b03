/**
 * Review requests (DESIGN.md, "Review"): what a `review` task is given at trigger time, whether asked
 * for (`@codex review [focus]` on a pull request, through the shared mention path) or automatic
 * (`review.auto` in `.github/codex.yml`, see review-auto.ts). Settings come from the `review:` keys
 * (`model`, `max_turns`, `timeout_minutes`, `min_priority`, `paths_ignore`, `focus`) over the app's
 * and the repository's defaults.
 */
import type { Logger } from 'pino';
import { RepoConfigError, type RepoConfig } from '../config/repo-config.ts';
import { neutralizeReferences } from '../github/neutralize.ts';
import type { ContextItem } from '../contract.ts';
import type { ReviewRequest, TaskSettings, TaskTarget } from '../tasks/types.ts';
import { requestFromMention, resolveSettings, type MentionRequest, type TriggerDeps, type TriggerSettings } from './mention-request.ts';
import type { PullRequestPayload } from './normalize.ts';

/** Model requests (turns) of a review when `review.max_turns` is not set: reviews are cheaper than fixes. */
export const REVIEW_DEFAULT_MAX_TURNS = 40;
/** Wall-clock budget of a review when `review.timeout_minutes` is not set, minutes (capped by the app's task limit). */
export const REVIEW_DEFAULT_TIMEOUT_MINUTES = 20;

/**
 * The settings of a review task: the task settings of the repository (resolveSettings) with the
 * review's own model (`review.model`, else `model`, else the app's), turns (`review.max_turns`,
 * default {@link REVIEW_DEFAULT_MAX_TURNS}) and wall-clock limit (`review.timeout_minutes`, default
 * {@link REVIEW_DEFAULT_TIMEOUT_MINUTES}; never more than the app's task limit), in ms.
 */
export function resolveReviewSettings(app: TriggerSettings, repo: RepoConfig): TaskSettings {
  const base = resolveSettings(app, repo);
  const minutes = repo.review.timeout_minutes ?? REVIEW_DEFAULT_TIMEOUT_MINUTES;
  return {
    ...base,
    model: repo.review.model ?? base.model,
    maxTurns: repo.review.max_turns ?? REVIEW_DEFAULT_MAX_TURNS,
    timeoutMs: Math.min(minutes * 60_000, app.timeoutMs),
  };
}

/** `P0`…`P3` as 0…3. */
function priorityNumber(p: RepoConfig['review']['min_priority']): ReviewRequest['minPriority'] {
  return Number(p.slice(1)) as ReviewRequest['minPriority'];
}

/** The review block of a request from the repository's `review:` keys. */
export function reviewRequest(
  repo: RepoConfig,
  opts: { botLogin: string; automatic: boolean; focus?: ReviewRequest['focus']; sinceSha?: string },
): ReviewRequest {
  return {
    minPriority: priorityNumber(repo.review.min_priority),
    pathsIgnore: repo.review.paths_ignore,
    ...(repo.review.focus ? { standingFocus: repo.review.focus } : {}),
    ...(opts.focus && opts.focus.text.trim() ? { focus: opts.focus } : {}),
    ...(opts.sinceSha ? { sinceSha: opts.sinceSha } : {}),
    automatic: opts.automatic,
    botLogin: opts.botLogin,
  };
}

/** The pull request's own text for the reviewer: data, never instructions (its author is not the requester). */
export function reviewContext(pull: PullRequestPayload): ContextItem[] {
  return [
    {
      kind: 'pull_request',
      ...(pull.user?.login ? { author: pull.user.login } : {}),
      title: pull.title,
      body: pull.body ?? '',
      ...(pull.html_url ? { url: pull.html_url } : {}),
      trust: 'data',
    },
  ];
}

/** What {@link requestReview} needs from the shared mention path. */
export interface ReviewMentionHooks {
  /** The requester's focus text (`@codex review <focus>`; '' for none). */
  focus: string;
  botLogin: string;
  /** Replies in the thread (deduplicated per request). */
  reply: (body: string) => Promise<void>;
  /** The repository config (default branch). @throws RepoConfigError when invalid. */
  loadConfig: () => Promise<RepoConfig>;
  /** The pull request as it is now. */
  resolveTarget: () => Promise<{ target: TaskTarget; pull?: PullRequestPayload }>;
  log: Logger;
}

/**
 * `@codex review [focus]` on a pull request (conversation comment, review body, inline comment), by a
 * sender who passed the write-access gate: 👀 on the request, then a `review` task. Always runs, even
 * when the head was reviewed already (somebody asked). The focus of a writer is an instruction.
 * @throws Octokit RequestError when the pull request cannot be read (the caller replies).
 */
export async function requestReview(deps: TriggerDeps, m: MentionRequest, hooks: ReviewMentionHooks): Promise<void> {
  const acknowledged = deps.service.acknowledge(m.octokit, { owner: m.owner, repo: m.repo, target: { number: m.target.number }, origin: m.origin });
  const resolved = hooks.resolveTarget();
  resolved.catch(() => undefined); // awaited below
  let repoConfig: RepoConfig;
  try {
    repoConfig = await hooks.loadConfig();
  } catch (error) {
    if (!(error instanceof RepoConfigError)) throw error;
    hooks.log.warn({ repository: `${m.owner}/${m.repo}`, deliveryId: m.deliveryId, err: error.message }, 'invalid repository config');
    await hooks.reply(`I can't start: \`.github/codex.yml\` is invalid.\n\n${neutralizeReferences(error.message)}\n\nFix the file on the default branch, then mention ${deps.settings.mention} again.`);
    return;
  }
  const { target, pull } = await resolved;
  if (target.type !== 'pull_request' || !pull) return;
  await acknowledged;
  const focus = hooks.focus.trim();
  await deps.service.submit({
    ...requestFromMention(m, target),
    kind: 'review',
    instruction: focus,
    context: reviewContext(pull),
    settings: resolveReviewSettings(deps.settings, repoConfig),
    review: reviewRequest(repoConfig, {
      botLogin: hooks.botLogin,
      automatic: false,
      ...(focus ? { focus: { text: focus, requester: m.sender.login, trust: 'instruction' as const } } : {}),
    }),
  });
}
