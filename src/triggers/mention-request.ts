/**
 * What a mention does, whichever event carried it (normalize.ts): on an issue (a comment, a new
 * issue) or a pull request (a conversation comment, an inline review comment, a review, a new pull
 * request). Check for the mention, gate the sender, parse the command, read the repository config and
 * the thread, then start, retry or stop a task. Every accepted request ends with a reply in the thread.
 */
import type { Logger } from 'pino';
import { agentNetworkAllowlist, loadRepoConfig, RepoConfigError, type RepoConfig } from '../config/repo-config.ts';
import { neutralizeReferences } from '../github/neutralize.ts';
import { gateSender } from '../github/permissions.ts';
import { pullRequestContext, type PullRequestTrigger } from '../github/pull-request-context.ts';
import { issueThreadContext } from '../github/thread-context.ts';
import type { Octokit } from '../github/client.ts';
import type { TaskService } from '../tasks/service.ts';
import { FINAL_STATES, type TaskRequest, type TaskSettings, type TaskTarget } from '../tasks/types.ts';
import type { ContextItem } from '../contract.ts';
import { requestedFix } from './fix-request.ts';
import { mayMention, MentionParseError, parseMention, type MentionCommand } from './mention.ts';
import { pullRequestTarget, type NormalizedMention, type PullRequestPayload } from './normalize.ts';
import { WebhookPullRequest } from './payload.ts';
import { requestReview, type ReviewMentionHooks } from './review-request.ts';
import type { SharedLookups } from './shared-lookups.ts';

/** App-wide defaults and limits that repository config refines. */
export interface TriggerSettings {
  mention: string;
  allowedBots: string[];
  model: string;
  reasoningEffort?: TaskSettings['reasoningEffort'];
  /** Runner wall-clock limit, ms (also the cap of a repository's `limits.timeout_minutes`). */
  timeoutMs: number;
  /** Token budget per task (also the cap of a repository's `limits.max_tokens`). */
  maxTokens: number;
}

/** What the triggers need. */
export interface TriggerDeps {
  service: TaskService;
  settings: TriggerSettings;
  /** The app's own login (`<slug>[bot]`). */
  botLogin: () => Promise<string>;
  log: Logger;
  /**
   * Requested fixes of failing checks (fix-request.ts): this App's id, and what to tell the autofix
   * gate when a person asks (attempt counts start over). Absent: mentions never become fix tasks.
   */
  fixes?: { appId: number; personAsked: (repo: string, pullNumber: number) => void };
  /**
   * The deliveries waiting for their 👀 (src/server/acknowledgements-first.ts): a mention's reads and
   * writes that can wait (thread, config, the task) start once no other delivery waits. Absent: no
   * ordering between deliveries.
   */
  acknowledgements?: AcknowledgementOrder;
  /** Identical permission and config lookups in flight share one GitHub request. Absent: each is its own. */
  lookups?: SharedLookups;
}

/** What the triggers need of the app's acknowledgement order (by `X-GitHub-Delivery`). */
export interface AcknowledgementOrder {
  /** The delivery is acknowledged (its 👀 request settled) or needs no 👀. Idempotent. */
  done(deliveryId: string): void;
  /** Resolves once no other delivery waits for its 👀 (or after a maximum wait). Never rejects. */
  othersDone(deliveryId: string): Promise<void>;
}

/** A normalised mention with what handling it needs from its delivery. */
export interface MentionRequest extends NormalizedMention {
  /** `X-GitHub-Delivery`. */
  deliveryId: string;
  /** Probot's `context.config`, to read `.github/codex.yml` (from the default branch). */
  readConfig: (file: string) => Promise<unknown>;
  octokit: Octokit;
}

// Replies that are not tasks (refusals, config errors, stop/retry answers) are deduplicated per
// request in the task store, so a redelivered webhook does not reply twice, even after a restart.
async function postReply(replies: Pick<TaskService['store'], 'recordReply'>, m: MentionRequest, body: string, log: Logger): Promise<void> {
  if (!replies.recordReply(m.triggerKey)) return;
  try {
    await m.octokit.rest.issues.createComment({ owner: m.owner, repo: m.repo, issue_number: m.target.number, body });
  } catch (error) {
    log.error({ err: (error as Error).message, repository: `${m.owner}/${m.repo}`, issue: m.target.number }, 'could not reply');
  }
}


/**
 * The fields of a task request that come from the mention itself (trigger and delivery, thread,
 * origin of the 👀, requester), shared by every kind of request a mention makes.
 */
export function requestFromMention(m: MentionRequest, target: TaskTarget): Pick<TaskRequest, 'triggerKey' | 'deliveryId' | 'installationId' | 'owner' | 'repo' | 'target' | 'origin' | 'requester'> {
  return {
    triggerKey: m.triggerKey,
    deliveryId: m.deliveryId,
    installationId: m.installationId,
    owner: m.owner,
    repo: m.repo,
    target,
    origin: m.origin,
    requester: { login: m.sender.login, id: m.sender.id },
  };
}

/** Resolves the task settings from the app's defaults and the repository's config. */
export function resolveSettings(app: TriggerSettings, repo: RepoConfig): TaskSettings {
  const timeoutMs = repo.limits?.timeout_minutes ? Math.min(repo.limits.timeout_minutes * 60_000, app.timeoutMs) : app.timeoutMs;
  const maxTokens = repo.limits?.max_tokens ? Math.min(repo.limits.max_tokens, app.maxTokens) : app.maxTokens;
  const agentNetworkAllow = agentNetworkAllowlist(repo);
  return {
    model: repo.model ?? app.model,
    reasoningEffort: repo.reasoning_effort ?? app.reasoningEffort,
    setupScript: repo.setup,
    autoInstall: repo.auto_install ?? true,
    ...(repo.maintenance ? { maintenance: repo.maintenance } : {}),
    maxTurns: repo.limits?.max_turns,
    timeoutMs,
    ...(agentNetworkAllow ? { agentNetworkAllow } : {}),
    ...(repo.setup_timeout_minutes ? { setupTimeoutMs: Math.min(repo.setup_timeout_minutes * 60_000, timeoutMs) } : {}),
    maxTokens,
    allowWorkflowChanges: repo.allow_workflow_changes ?? false,
    draftPullRequests: repo.draft_pull_requests ?? false,
  };
}

/**
 * Handles one mention. Never throws: failures are logged (one line, no payload) and, where possible,
 * answered.
 *
 * Order, cheapest and least trusting first: the text must hold the mention at all ({@link mayMention},
 * linear, no markdown), the app's own events are dropped, then the sender must pass the
 * permission check, and only then is the markdown parsed (bounded, see `mention.ts`). A sender
 * without write access therefore gets the refusal whenever the mention stands on a line that is
 * not quoted, even where the markdown would put it in code; their text is never parsed.
 */
export async function handleMention(deps: TriggerDeps, m: MentionRequest): Promise<void> {
  const { log, settings } = deps;
  const reply = (target: MentionRequest, body: string, logger: Logger) => postReply(deps.service.store, target, body, logger);
  if (!mayMention(m.body, { mention: settings.mention })) return;
  const where = { repository: `${m.owner}/${m.repo}`, issue: m.target.number, target: m.target.type, deliveryId: m.deliveryId, sender: m.sender.login };
  let botLogin: string;
  try {
    botLogin = await deps.botLogin();
  } catch (error) {
    log.error({ ...where, err: (error as Error).message }, 'could not read the app\'s own login; event dropped');
    return;
  }
  if (m.sender.login.toLowerCase() === botLogin.toLowerCase()) return;
  const retryHint = `Mention ${settings.mention} again to retry.`;
  // This delivery's 👀 is settled, or it is known to add none (at the latest when handling ends).
  const acknowledgedNow = () => deps.acknowledgements?.done(m.deliveryId);
  const share = <T>(key: string, load: () => Promise<T>): Promise<T> => (deps.lookups ? deps.lookups.run(key, load) : load());
  try {
    const gate = (sender: { login: string; type?: string }) =>
      share(`gate:${m.installationId}:${m.owner}/${m.repo}:${sender.login.toLowerCase()}:${sender.type ?? ''}`, () =>
        gateSender(m.octokit, { owner: m.owner, repo: m.repo }, sender, { botLogin, allowedBots: settings.allowedBots }),
      );
    const verdict = await gate(m.sender);
    if (verdict === 'self' || verdict === 'bot') {
      log.info({ ...where, verdict }, 'mention ignored');
      return;
    }
    if (verdict === 'denied') {
      acknowledgedNow();
      log.info({ ...where, verdict }, 'mention refused');
      await reply(m, `Sorry @${m.sender.login}, only people with write access to this repository can ask ${settings.mention} to work on it.`, log);
      return;
    }

    let command: MentionCommand | null;
    try {
      command = parseMention(m.body, { mention: settings.mention });
    } catch (error) {
      acknowledgedNow();
      if (!(error instanceof MentionParseError)) throw error;
      log.warn({ ...where, reason: error.reason, length: m.body.length }, 'mention not parsed');
      await reply(m, `Sorry @${m.sender.login}, I can't read this request: ${error.message}. Shorten or simplify it, then mention ${settings.mention} again.`, log);
      return;
    }
    if (!command) return;
    // Stop and review answer on their own path (a review adds its 👀 there).
    if (command.command === 'stop' || command.command === 'review') acknowledgedNow();

    if (command.command === 'stop') {
      const task = await deps.service.cancel(m.owner, m.repo, m.target.number, m.sender.login);
      if (!task) await reply(m, `There is no running ${settings.mention} task in this thread to stop.`, log);
      return;
    }
    // Reviews (review-request.ts): on a pull request a `review` task; on an issue a short answer.
    const loadConfig = () => share(`config:${m.installationId}:${m.owner}/${m.repo}`, () => loadRepoConfig({ config: m.readConfig }));
    const reviewHooks = (focus: string): ReviewMentionHooks => ({
      focus,
      botLogin,
      reply: (body) => reply(m, body, log),
      loadConfig,
      resolveTarget: () => resolveTarget(m),
      log,
    });
    if (command.command === 'review') {
      if (m.target.type === 'issue') {
        await reply(m, `\`${settings.mention} review\` works on pull requests. On an issue, describe the change you want.`, log);
        return;
      }
      await requestReview(deps, m, reviewHooks(command.instruction));
      return;
    }

    // Acknowledge at once: 👀 as soon as the sender passed the gate, while the repository config
    // and the thread (independent reads) are fetched together.
    const acknowledged = deps.service.acknowledge(m.octokit, { owner: m.owner, repo: m.repo, target: { number: m.target.number }, origin: m.origin });
    void acknowledged.then(acknowledgedNow);
    // What follows can wait for the other mentions' 👀 (in a burst, each 👀 would wait for all of it).
    await deps.acknowledgements?.othersDone(m.deliveryId);
    const resolved = resolveTarget(m);
    const thread = resolved.then(({ pull }) =>
      pull
        ? pullRequestContext(m.octokit, {
            owner: m.owner,
            repo: m.repo,
            pull: {
              number: pull.number,
              title: pull.title,
              body: pull.body ?? null,
              ...(pull.user?.login ? { author: pull.user.login } : {}),
              ...(pull.html_url ? { url: pull.html_url } : {}),
              ...(pull.changed_files !== undefined ? { changedFiles: pull.changed_files } : {}),
            },
            botLogin,
            isWriter: async (login) => (await gate({ login })) === 'allowed',
            ...(contextTrigger(m) ? { trigger: contextTrigger(m) } : {}),
          })
        : issueContext(m, botLogin),
    );
    thread.catch(() => undefined); // awaited below; this only keeps an early return from leaving it unhandled

    let repoConfig: RepoConfig;
    try {
      repoConfig = await loadConfig();
    } catch (error) {
      if (error instanceof RepoConfigError) {
        log.warn({ ...where, err: error.message }, 'invalid repository config');
        await reply(m, `I can't start: \`.github/codex.yml\` is invalid.\n\n${neutralizeReferences(error.message)}\n\nFix the file on the default branch, then mention ${settings.mention} again.`, log);
        return;
      }
      throw error;
    }

    let instruction = command.instruction;
    if (command.command === 'retry') {
      const previous = deps.service.store.latestForThread(m.owner, m.repo, m.target.number);
      if (!previous) {
        await reply(m, `There is no earlier ${settings.mention} task in this thread to retry.`, log);
        return;
      }
      if (!FINAL_STATES.has(previous.state)) {
        await reply(m, `The last ${settings.mention} task in this thread is still ${previous.state}; use \`${settings.mention} stop\` first to run it again.`, log);
        return;
      }
      if (previous.request.kind === 'review' && m.target.type === 'pull_request') {
        await requestReview(deps, m, reviewHooks(previous.request.review?.focus?.text ?? ''));
        return;
      }
      instruction = previous.request.fix?.request ?? previous.request.instruction;
    }

    const { target } = await resolved;
    const context = await thread;
    // A request about the pull request's failing checks becomes a fix task (fix-request.ts).
    const fix = deps.fixes ? await requestedFix(m.octokit, { owner: m.owner, repo: m.repo, target, instruction, appId: deps.fixes.appId }) : undefined;
    if (fix?.fix) deps.fixes!.personAsked(`${m.owner}/${m.repo}`, target.number);
    await acknowledged;
    // Recording the task and posting its progress comment can wait for mentions that came since.
    await deps.acknowledgements?.othersDone(m.deliveryId);
    await deps.service.submit({
      ...requestFromMention(m, target),
      kind: fix?.fix ? 'fix' : 'task',
      instruction: fix?.instruction ?? instruction,
      context: fix ? [...context, ...fix.items] : context,
      settings: resolveSettings(settings, repoConfig),
      ...(fix?.fix ? { fix: fix.fix } : {}),
      ...(command.fresh ? { fresh: true } : {}),
    });
  } catch (error) {
    const status = (error as { status?: number }).status;
    log.error({ ...where, err: (error as Error).message, status }, 'could not handle the mention');
    await reply(
      m,
      `Sorry, I couldn't start this task: ${status ? `GitHub answered ${status} (${(error as Error).message})` : (error as Error).message}. ${retryHint}`,
      log,
    );
  } finally {
    acknowledgedNow();
  }
}

/**
 * The task target of a mention; for a pull request also its payload, read through the API
 * (`GET /repos/{o}/{r}/pulls/{n}`) when the event did not carry it (a conversation comment).
 * @throws Error when the API's pull request does not match the schema; Octokit RequestError.
 */
async function resolveTarget(m: MentionRequest): Promise<{ target: TaskTarget; pull?: PullRequestPayload }> {
  if (m.target.type === 'issue') return { target: { type: 'issue', number: m.target.number, title: m.target.title } };
  let pull = m.target.pull;
  if (!pull) {
    const { data } = await m.octokit.rest.pulls.get({ owner: m.owner, repo: m.repo, pull_number: m.target.number });
    const parsed = WebhookPullRequest.safeParse(data);
    if (!parsed.success) throw new Error(`pull request #${m.target.number} could not be read (unexpected API response)`);
    pull = parsed.data;
  }
  return { target: pullRequestTarget(m.owner, m.repo, pull), pull };
}

/** What the pull request context leaves out and points at: the comment, review or review comment that asked. */
function contextTrigger(m: MentionRequest): PullRequestTrigger | undefined {
  if (m.reviewComment) return m.reviewComment;
  if (m.origin.type === 'comment') return { kind: 'comment', id: m.origin.id };
  if (m.origin.type === 'review') return { kind: 'review', id: m.origin.id };
  return undefined;
}

/** The context of an issue: the issue and the comments before the one that asked. */
function issueContext(m: MentionRequest, botLogin: string): Promise<ContextItem[]> {
  if (m.target.type !== 'issue') throw new Error('issueContext: not an issue');
  const { number, title, body, author, url } = m.target;
  return issueThreadContext(
    m.octokit,
    { owner: m.owner, repo: m.repo, number, title, body, author, url },
    { botLogin, ...(m.origin.type === 'comment' ? { beforeCommentId: m.origin.id } : {}) },
  );
}
