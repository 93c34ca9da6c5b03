/**
 * Automatic fixes of failing checks (DESIGN.md, "Fix"; `autofix:` in `.github/codex.yml`): a check
 * suite or workflow run of a pull request's head completed with `failure` or `timed_out`
 * (check-suite.ts, workflow-run.ts normalise the events into a {@link CheckFailure}). For each open
 * pull request of this repository whose head it is, the autofix gate (autofix/gate.ts) decides
 * against the attempts stored durably: run a fix task (kind `fix`, no requester, no origin), wait for
 * the running one, post the one comment that the cap was reached, or skip (disabled, the App's own
 * checks, a fork, a stale head, already attempted…). When a fix task ends, {@link CheckFailures.taskEnded}
 * frees the pull request and evaluates again the failure that arrived meanwhile.
 *
 * The checks, their logs and the workflow files are read here with the installation token
 * (`checks: read`, `actions: read`, `contents: read`), never by the runner.
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AutofixGate } from '../autofix/gate.ts';
import { autofixSettings, loadRepoConfig, RepoConfigError, type RepoConfig } from '../config/repo-config.ts';
import { FAILING_CONCLUSIONS, failingCheckNames, failingChecksContext } from '../github/check-logs.ts';
import { errorMessage, type GitHubAccess, type Octokit } from '../github/client.ts';
import { fixInstruction } from '../github/fix-instruction.ts';
import { capReachedComment } from '../github/publishers/fix-message.ts';
import type { TaskService } from '../tasks/service.ts';
import type { TaskRecord } from '../tasks/types.ts';
import { resolveSettings, type TriggerSettings } from './mention-request.ts';
import { pullRequestTarget } from './normalize.ts';
import { WebhookPullRequest } from './payload.ts';

/** The events that report failing checks (`event.action`, as Probot names them). */
export type CheckFailureEvent = 'check_suite.completed' | 'workflow_run.completed';

/** A completed check suite or workflow run, normalised. */
export interface CheckFailure {
  installationId: number;
  owner: string;
  repo: string;
  /** The commit the checks ran on (40 hex). */
  headSha: string;
  /** The suite's or run's conclusion (`failure`, `timed_out`, `success`, …; null while running). */
  conclusion: string | null;
  /** Numbers of the pull requests the event names (GitHub lists same-repository pull requests only). */
  pullNumbers: number[];
  /** Id of the GitHub App that created the check suite (GitHub Actions for workflow runs). */
  appId?: number;
}

/** One trigger of a failure event: like `Trigger` (normalize.ts), with a {@link CheckFailure} as its result. */
export interface CheckFailureTrigger<S extends z.ZodType = z.ZodType> {
  event: CheckFailureEvent;
  schema: S;
  normalize(payload: z.infer<S>): CheckFailure | undefined;
}

/** What {@link CheckFailures} needs. */
export interface CheckFailuresDeps {
  service: TaskService;
  gate: AutofixGate;
  github: GitHubAccess;
  settings: TriggerSettings;
  /** This App's id: its own check suites and runs never trigger a fix. */
  appId: number;
  log: Logger;
}

/** A failure event with what handling it needs from its delivery. */
export interface CheckFailureRequest extends CheckFailure {
  /** `X-GitHub-Delivery`. */
  deliveryId: string;
  /** Reads `.github/<file>` of the default branch (Probot's `context.config`). */
  readConfig: (file: string) => Promise<unknown>;
  octokit: Octokit;
}

/** Reads `.github/<file>` of the default branch the way Probot's `context.config` does (null when absent). */
function configReader(octokit: Octokit, owner: string, repo: string): (file: string) => Promise<unknown> {
  return async (file) => {
    const { config, files } = await octokit.config.get({ owner, repo, path: `.github/${file}` });
    return files.some((f) => f.config !== null) ? config : null;
  };
}

/** Automatic fixes of failing checks; one instance per app process. */
export class CheckFailures {
  readonly #deps: CheckFailuresDeps;

  constructor(deps: CheckFailuresDeps) {
    this.#deps = deps;
  }

  /**
   * Handles a completed check suite or workflow run. Never throws: failures are logged (one line).
   */
  async handle(f: CheckFailureRequest): Promise<void> {
    const { log, appId } = this.#deps;
    const where = { repository: `${f.owner}/${f.repo}`, headSha: f.headSha, deliveryId: f.deliveryId };
    if (!f.conclusion || !FAILING_CONCLUSIONS.includes(f.conclusion)) return;
    if (f.appId === appId) {
      log.info(where, 'autofix: the App\'s own checks are ignored');
      return;
    }
    if (!f.pullNumbers.length) {
      log.info(where, 'autofix: no pull request of this repository has this head; ignored');
      return;
    }
    try {
      const repoConfig = await this.#config(f.readConfig, where);
      if (!repoConfig || !autofixSettings(repoConfig).enabled) return;
      for (const pullNumber of f.pullNumbers) {
        await this.#evaluate({ ...f, pullNumber, repoConfig });
      }
    } catch (error) {
      log.error({ ...where, err: errorMessage(error) }, 'autofix: could not handle the failure');
    }
  }

  /**
   * A task ended: for an automatic fix, frees its pull request in the gate (remembering the commit
   * it pushed) and evaluates again, against the pull request's head now, a failure that arrived
   * while it ran. Never throws.
   */
  taskEnded(task: TaskRecord, outcome: { pushedSha?: string }): void {
    const auto = task.request.fix?.automatic;
    if (!auto) return;
    const { owner, repo, target, installationId } = task.request;
    const deferred = this.#deps.gate.finish({ repo: `${owner}/${repo}`, pullNumber: target.number }, auto.attemptId, outcome.pushedSha ? { pushedSha: outcome.pushedSha } : {});
    if (!deferred) return;
    void (async () => {
      const octokit = await this.#deps.github.forInstallation(installationId);
      const readConfig = configReader(octokit, owner, repo);
      const where = { repository: `${owner}/${repo}`, headSha: deferred.headSha, deliveryId: task.deliveryId };
      const repoConfig = await this.#config(readConfig, where);
      if (!repoConfig || !autofixSettings(repoConfig).enabled) return;
      await this.#evaluate({ installationId, owner, repo, headSha: deferred.headSha, deliveryId: task.deliveryId, octokit, pullNumber: target.number, repoConfig });
    })().catch((error: unknown) => this.#deps.log.error({ taskId: task.id, err: errorMessage(error) }, 'autofix: could not evaluate the deferred failure'));
  }

  /** The repository's config, or undefined (logged) when it is invalid. */
  async #config(readConfig: (file: string) => Promise<unknown>, where: Record<string, unknown>): Promise<RepoConfig | undefined> {
    try {
      return await loadRepoConfig({ config: readConfig });
    } catch (error) {
      if (!(error instanceof RepoConfigError)) throw error;
      this.#deps.log.warn({ ...where, err: error.message }, 'autofix: invalid repository config; nothing done');
      return undefined;
    }
  }

  /** Asks the gate about one pull request and acts on its decision. @throws Octokit RequestError. */
  async #evaluate(x: {
    installationId: number;
    owner: string;
    repo: string;
    headSha: string;
    deliveryId: string;
    octokit: Octokit;
    pullNumber: number;
    repoConfig: RepoConfig;
  }): Promise<void> {
    const { service, gate, appId, log, settings } = this.#deps;
    const { owner, repo, headSha, octokit, pullNumber } = x;
    const autofix = autofixSettings(x.repoConfig);
    const key = { repo: `${owner}/${repo}`, pullNumber };
    const where = { repository: key.repo, pullNumber, headSha, deliveryId: x.deliveryId };
    const { data } = await octokit.rest.pulls.get({ owner, repo, pull_number: pullNumber });
    const parsed = WebhookPullRequest.safeParse(data);
    if (!parsed.success) throw new Error(`pull request #${pullNumber} could not be read (unexpected API response)`);
    const pull = parsed.data;
    const target = pullRequestTarget(owner, repo, pull);
    const relevant = !target.fork && pull.state === 'open' && pull.head.sha === headSha;
    // The cheap listing only when the policy could act on it (no logs read yet).
    const failing = relevant ? await failingCheckNames(octokit, { owner, repo, headSha, appId }) : [];
    const decision = gate.evaluate(
      { repo: key.repo, pullNumber, pullOpen: pull.state === 'open', fork: target.fork, pullHeadSha: pull.head.sha, eventHeadSha: headSha, failingChecks: failing, fromOwnApp: false, headPushedByApp: false },
      autofix,
    );
    log.info({ ...where, decision: decision.action, ...(decision.action === 'skip' ? { reason: decision.reason } : {}) }, 'autofix decision');
    if (decision.action === 'cap_reached') {
      if (decision.comment) {
        await octokit.rest.issues.createComment({ owner, repo, issue_number: pullNumber, body: capReachedComment({ checks: decision.checks, maxAttempts: decision.maxAttempts, mention: settings.mention }) });
      }
      return;
    }
    if (decision.action !== 'run') return;
    const { attemptId } = decision;
    let submitted = false;
    try {
      const selected = new Set(decision.checks);
      const { items, summary } = await failingChecksContext(octokit, { owner, repo, headSha, appId, include: (name) => selected.has(name) });
      if (!summary.checks.length) {
        log.info(where, 'autofix: the failing checks are gone; nothing to fix');
        return;
      }
      const task = await service.submit({
        // One task per attempt: the gate already made redeliveries `already_attempted`, and a second
        // attempt on the same head (another check, evaluated after the first ended) is a new task.
        triggerKey: `autofix:${key.repo}#${pullNumber}:${attemptId}`,
        deliveryId: x.deliveryId,
        kind: 'fix',
        installationId: x.installationId,
        owner,
        repo,
        target,
        instruction: fixInstruction(summary),
        context: items,
        settings: resolveSettings(settings, x.repoConfig),
        fix: { headSha, summary, automatic: { attemptId, number: decision.attempt, max: autofix.max_attempts } },
      });
      submitted = task !== undefined;
    } finally {
      // Nothing started: the pull request must not stay marked as running.
      if (!submitted) gate.finish(key, attemptId);
    }
  }
}
