/**
 * What a mention on an issue does, whichever event carried it (a new comment or a new issue):
 * parse the command, gate the sender, read the repository config, then start, retry or stop a task.
 * Every accepted request ends with a reply in the thread.
 */
import type { Logger } from 'pino';
import { loadRepoConfig, RepoConfigError, type RepoConfig } from '../config/repo-config.ts';
import { gateSender, type Sender } from '../github/permissions.ts';
import { issueThreadContext } from '../github/thread-context.ts';
import type { Octokit } from '../github/client.ts';
import type { TaskService } from '../tasks/service.ts';
import { FINAL_STATES, type TaskOrigin, type TaskSettings } from '../tasks/types.ts';
import { parseMention } from './mention.ts';

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
}

/** A mention found in an event, normalised. */
export interface IssueMention {
  deliveryId: string;
  /** Trigger key of this request: one request, one task. */
  triggerKey: string;
  installationId: number;
  owner: string;
  repo: string;
  issue: { number: number; title: string; body: string | null; author?: string; url?: string };
  sender: Sender & { id: number };
  /** The text that holds the mention (comment body or issue body). */
  text: string;
  /** What triggered the request (👀 goes there). */
  origin: TaskOrigin;
  /** Comment id of the request, to limit the context to what came before it. */
  commentId?: number;
  /** Probot's `context.config`, to read `.github/codex.yml`. */
  readConfig: (file: string) => Promise<unknown>;
  octokit: Octokit;
}

// Replies that are not tasks (refusals, config errors, stop/retry answers) are deduplicated per
// request in the task store, so a redelivered webhook does not reply twice, even after a restart.
async function postReply(replies: Pick<TaskService['store'], 'recordReply'>, m: IssueMention, body: string, log: Logger): Promise<void> {
  if (!replies.recordReply(m.triggerKey)) return;
  try {
    await m.octokit.rest.issues.createComment({ owner: m.owner, repo: m.repo, issue_number: m.issue.number, body });
  } catch (error) {
    log.error({ err: (error as Error).message, repository: `${m.owner}/${m.repo}`, issue: m.issue.number }, 'could not reply');
  }
}

// Identical lookups in flight at the same time (a burst of mentions in one repository) share one
// GitHub request: the permission of one user, the config of one repository. Nothing is kept once
// the request settles, so no answer is older than the request that produced it.
const inflight = new Map<string, Promise<unknown>>();
function shared<T>(key: string, load: () => Promise<T>): Promise<T> {
  let pending = inflight.get(key) as Promise<T> | undefined;
  if (!pending) {
    pending = load().finally(() => inflight.delete(key));
    inflight.set(key, pending);
  }
  return pending;
}

/** Resolves the task settings from the app's defaults and the repository's config. */
export function resolveSettings(app: TriggerSettings, repo: RepoConfig): TaskSettings {
  const timeoutMs = repo.limits?.timeout_minutes ? Math.min(repo.limits.timeout_minutes * 60_000, app.timeoutMs) : app.timeoutMs;
  const maxTokens = repo.limits?.max_tokens ? Math.min(repo.limits.max_tokens, app.maxTokens) : app.maxTokens;
  return {
    model: repo.model ?? app.model,
    reasoningEffort: repo.reasoning_effort ?? app.reasoningEffort,
    setupScript: repo.setup,
    autoInstall: repo.auto_install ?? true,
    maxTurns: repo.limits?.max_turns,
    timeoutMs,
    maxTokens,
    allowWorkflowChanges: repo.allow_workflow_changes ?? false,
    draftPullRequests: repo.draft_pull_requests ?? false,
  };
}

/** Handles one mention. Never throws: failures are logged and, where possible, answered. */
export async function handleIssueMention(deps: TriggerDeps, m: IssueMention): Promise<void> {
  const { log, settings } = deps;
  const reply = (target: IssueMention, body: string, logger: Logger) => postReply(deps.service.store, target, body, logger);
  const botLogin = await deps.botLogin();
  if (m.sender.login.toLowerCase() === botLogin.toLowerCase()) return;
  const command = parseMention(m.text, { mention: settings.mention });
  if (!command) return;
  const where = { repository: `${m.owner}/${m.repo}`, issue: m.issue.number, deliveryId: m.deliveryId, sender: m.sender.login };
  const retryHint = `Mention ${settings.mention} again to retry.`;
  try {
    const verdict = await shared(`gate:${m.installationId}:${m.owner}/${m.repo}:${m.sender.login.toLowerCase()}:${m.sender.type ?? ''}`, () =>
      gateSender(m.octokit, { owner: m.owner, repo: m.repo }, m.sender, { botLogin, allowedBots: settings.allowedBots }),
    );
    if (verdict === 'self' || verdict === 'bot') {
      log.info({ ...where, verdict }, 'mention ignored');
      return;
    }
    if (verdict === 'denied') {
      log.info({ ...where, verdict }, 'mention refused');
      await reply(m, `Sorry @${m.sender.login}, only people with write access to this repository can ask ${settings.mention} to work on it.`, log);
      return;
    }

    if (command.command === 'stop') {
      const task = await deps.service.cancel(m.owner, m.repo, m.issue.number, m.sender.login);
      if (!task) await reply(m, `There is no running ${settings.mention} task in this thread to stop.`, log);
      return;
    }
    if (command.command === 'review') {
      await reply(m, `\`${settings.mention} review\` works on pull requests. On an issue, describe the change you want.`, log);
      return;
    }

    // Acknowledge at once: 👀 as soon as the sender passed the gate, while the repository config
    // and the thread (two independent reads) are fetched together.
    const acknowledged = deps.service.acknowledge(m.octokit, { owner: m.owner, repo: m.repo, target: { type: 'issue', number: m.issue.number, title: m.issue.title }, origin: m.origin });
    const thread = issueThreadContext(m.octokit, { owner: m.owner, repo: m.repo, ...m.issue }, { botLogin, beforeCommentId: m.commentId });
    thread.catch(() => undefined); // awaited below; this only keeps an early return from leaving it unhandled

    let repoConfig: RepoConfig;
    try {
      repoConfig = await shared(`config:${m.installationId}:${m.owner}/${m.repo}`, () => loadRepoConfig({ config: m.readConfig }));
    } catch (error) {
      if (error instanceof RepoConfigError) {
        log.warn({ ...where, err: error.message }, 'invalid repository config');
        await reply(m, `I can't start: \`.github/codex.yml\` is invalid.\n\n${error.message}\n\nFix the file on the default branch, then mention ${settings.mention} again.`, log);
        return;
      }
      throw error;
    }

    let instruction = command.instruction;
    if (command.command === 'retry') {
      const previous = deps.service.store.latestForThread(m.owner, m.repo, m.issue.number);
      if (!previous) {
        await reply(m, `There is no earlier ${settings.mention} task in this thread to retry.`, log);
        return;
      }
      if (!FINAL_STATES.has(previous.state)) {
        await reply(m, `The last ${settings.mention} task in this thread is still ${previous.state}; use \`${settings.mention} stop\` first to run it again.`, log);
        return;
      }
      instruction = previous.request.instruction;
    }

    const context = await thread;
    await acknowledged;
    await deps.service.submit({
      triggerKey: m.triggerKey,
      deliveryId: m.deliveryId,
      kind: 'task',
      installationId: m.installationId,
      owner: m.owner,
      repo: m.repo,
      target: { type: 'issue', number: m.issue.number, title: m.issue.title },
      origin: m.origin,
      requester: { login: m.sender.login, id: m.sender.id },
      instruction,
      context,
      settings: resolveSettings(settings, repoConfig),
    });
  } catch (error) {
    const status = (error as { status?: number }).status;
    log.error({ ...where, err: (error as Error).message, status }, 'could not handle the mention');
    await reply(
      m,
      `Sorry, I couldn't start this task: ${status ? `GitHub answered ${status} (${(error as Error).message})` : (error as Error).message}. ${retryHint}`,
      log,
    );
  }
}
