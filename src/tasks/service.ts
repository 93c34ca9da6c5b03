/**
 * The task service: accepts task requests, keeps them in the durable store, dispatches them through
 * a queue with a concurrency limit to a runner backend, and moves each through its states (DESIGN.md,
 * "Data path"): queued → running → publishing → succeeded | no_changes | failed | cancelled.
 *
 * What it delegates: the TaskSpec to spec.ts, start-up reconciliation to reconcile.ts, everything said
 * in the thread (👀, progress comment, the durable final reply) to github/thread-reporter.ts, and
 * publishing to github/publishers/: by target (DESIGN.md, "Thread targets"), issue work becomes a new
 * pull request (pull-request.ts), pull request work one commit on the pull request's branch
 * (push-to-branch.ts `pushToBranch`), or, when the head is in a fork the app cannot write to, a new
 * pull request from a base-repository branch on top of the fork's head (`openFromForkHead`). The
 * final reply is queued in the store's outbox in the same transaction that moves the task to its
 * final state.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { ProgressEvent, TaskResult } from '../contract.ts';
import type { TaskTokens } from '../gateway/task-tokens.ts';
import { errorMessage, statusOf, type GitHubAccess, type Octokit } from '../github/client.ts';
import { environmentSpecFor } from '../github/environment-spec.ts';
import { proxyUrlWithCredentials, type ProxyGrants } from '../proxy/grants.ts';
import { blockedHostsOf, isBlockedHostEvent } from '../proxy/blocked-hosts.ts';
import { checksRunSection } from '../github/checks-run.ts';
import { codeSpan, renderProgressComment, type ProgressView } from '../github/progress-comment.ts';
import { publishPullRequest, workTitle } from '../github/publishers/pull-request.ts';
import { findPushedCommit, openFromForkHead, pushToBranch, type PushOutcome } from '../github/publishers/push-to-branch.ts';
import { listEarlierFindings, publishReview, toEarlierFindings, type ReviewOrigin } from '../github/publishers/review.ts';
import { pullRequestBody } from '../github/pull-request-body.ts';
import { ThreadReporter, withFinalMarker, type DeliveryPolicy, type ReactionTarget } from '../github/thread-reporter.ts';
import { validateChanges } from '../github/validate-result.ts';
import type { RunnerBackend, RunnerExecution } from '../runners/backend.ts';
import { fixCommitMessageOf, fixFinalReply } from './fix-outcome.ts';
import { reconcileTasks } from './reconcile.ts';
import { buildTaskSpec, type TaskSpecSources } from './spec.ts';
import type { TaskPatch, TaskStore } from './store.ts';
import { FINAL_STATES, type TaskOrigin, type TaskRecord, type TaskRequest, type TaskState, type TaskTarget } from './types.ts';

/** Dependencies and settings of {@link TaskService}. */
export interface TaskServiceOptions {
  /** The agent proxy (app.ts, CODEX_AGENT_PROXY_PORT): credentials for tasks with `agent_network.allow`. */
  agentProxy?: { grants: ProxyGrants; url: string };
  store: TaskStore;
  backend: RunnerBackend;
  tokens: TaskTokens;
  github: GitHubAccess;
  /** The App's login (`<slug>[bot]`), shared with the triggers (default: read through `github`). */
  botLogin?: () => Promise<string>;
  log: Logger;
  /** Public base URL of the app (task log links). */
  publicUrl: string;
  /** Base URL runners use to reach the model gateway, e.g. `http://127.0.0.1:3000/v1`. */
  gatewayUrl: string;
  /** Runners at once. */
  concurrency: number;
  /** The mention, for the hints in replies (e.g. `@codex`). */
  mention: string;
  /** Retry policy of the runner's model requests (`baseMs`: first delay, ms). */
  modelRetry?: { retries: number; baseMs: number };
  /** Minimum interval between two edits of a progress comment, ms. */
  progressIntervalMs?: number;
  /** Retry policy of final replies (default: thread-reporter.ts's DEFAULT_DELIVERY_POLICY). */
  replyDelivery?: Partial<DeliveryPolicy>;
  /**
   * Called once when a task reaches its final state, after its final reply is queued, with the commit
   * it pushed to a pull request's branch (if any); e.g. the autofix gate frees the pull request.
   * Must not throw.
   */
  onFinal?: (task: TaskRecord, outcome: { pushedSha?: string }) => void;
  /**
   * Environments (issue 12): the largest archive, bytes (`CODEX_ENV_MAX_MB`). Absent: tasks carry no
   * TaskSpec `environment` and setup always runs.
   */
  environments?: { maxArchiveBytes: number };
}

/** Listener of a task's live events (task log page). */
export type TaskListener = (event: ProgressEvent | { type: 'state'; state: string }) => void;

/** The outcome a final state carries (texts from the runner are untrusted; the reply escapes them). */
interface Outcome {
  failure?: { phase: string; reason: string };
  pullRequest?: { number: number; url: string; title: string };
  /** Pull request work: the commit pushed to the pull request's branch. */
  pushed?: ProgressView['pushed'];
  /** Fork pull request work: the pull request the new one was opened for. */
  forkOf?: ProgressView['forkOf'];
  answer?: string;
  cancelledBy?: string;
  /** Review work: the review (or the 👍 comment) published. */
  review?: ProgressView['review'];
}

/** What the service keeps in memory about an active task. */
interface LiveTask {
  view: ProgressView;
  execution?: RunnerExecution;
  /** Login of whoever asked `@codex stop`. */
  cancelRequested?: string;
  /** Why {@link TaskService.abort} ended the task. */
  abortReason?: string;
}

/** The backend's hard limit for a runner: the task's wall-clock limit plus 5 minutes of grace, ms. */
function backstopMs(request: TaskRequest): number {
  return request.settings.timeoutMs + 5 * 60_000;
}

/**
 * Where 👀 goes for an origin: the comment or review comment itself; the issue or pull request for
 * a request in its body and for a review (GitHub has no reactions API for reviews).
 */
export function reactionTarget(origin: TaskOrigin): ReactionTarget {
  if (origin.type === 'comment' || origin.type === 'review_comment') return { type: origin.type, id: origin.id };
  return { type: 'issue' };
}

/** The first 7 hex digits of a commit SHA. */
const short = (sha: string) => sha.slice(0, 7);

/** At most `max` characters of untrusted `text`, for a failure reason. */
function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Runs tasks; one instance per app process. */
export class TaskService {
  private readonly opts: TaskServiceOptions;
  private readonly queue: PQueue;
  private readonly reporter: ThreadReporter;
  private readonly live = new Map<string, LiveTask>();
  private readonly waiting: string[] = [];
  private readonly listeners = new Map<string, Set<TaskListener>>();
  private readonly log: Logger;

  constructor(opts: TaskServiceOptions) {
    this.opts = opts;
    this.queue = new PQueue({ concurrency: opts.concurrency });
    this.log = opts.log;
    this.reporter = new ThreadReporter({
      github: opts.github,
      outbox: opts.store.outbox,
      log: opts.log,
      progressIntervalMs: opts.progressIntervalMs,
      delivery: opts.replyDelivery,
      ...(opts.botLogin ? { botLogin: opts.botLogin } : {}),
    });
  }

  /** The store (for the task log page, the triggers and tests). */
  get store(): TaskStore {
    return this.opts.store;
  }

  /** The task log link of a task. */
  logUrl(task: Pick<TaskRecord, 'id' | 'logKey'>): string {
    return `${this.opts.publicUrl.replace(/\/$/, '')}/tasks/${task.id}?key=${task.logKey}`;
  }

  /** Subscribes to a task's live events; returns the unsubscribe function. */
  subscribe(taskId: string, listener: TaskListener): () => void {
    let set = this.listeners.get(taskId);
    if (!set) this.listeners.set(taskId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private notify(taskId: string, event: ProgressEvent | { type: 'state'; state: string }): void {
    for (const listener of this.listeners.get(taskId) ?? []) {
      try {
        listener(event);
      } catch {
        // a broken page connection must not hurt the task
      }
    }
  }

  /** Queue figures for /healthz: tasks waiting for a runner slot and runners at work. */
  stats(): { queued: number; running: number } {
    return { queued: this.waiting.length, running: this.queue.pending };
  }

  /** Resolves when no task is queued or running and no reply delivery round is under way (tests, shutdown). */
  async idle(): Promise<void> {
    await this.queue.onIdle();
    await this.reporter.idle();
  }

  /** Stops scheduling reply deliveries (pending ones are delivered by the next process). */
  close(): void {
    this.reporter.close();
  }

  /** One log line per state change: task id, repository, issue, delivery id, from and to. */
  private logTransition(task: TaskRecord, from: TaskState | null, to: TaskState, detail?: string): void {
    this.log.info(
      {
        taskId: task.id,
        repository: `${task.request.owner}/${task.request.repo}`,
        target: `${task.request.target.type}#${task.request.target.number}`,
        deliveryId: task.deliveryId,
        ...(from ? { from } : {}),
        to,
        ...(detail ? { detail } : {}),
      },
      'task transition',
    );
  }

  private transition(task: TaskRecord, state: TaskState, patch: TaskPatch = {}, detail?: string): TaskRecord {
    const updated = this.opts.store.update(task.id, patch, state, detail);
    this.logTransition(task, task.state, state, detail);
    this.notify(task.id, { type: 'state', state });
    return updated;
  }

  /**
   * Accepts a request: records it (once per trigger key), posts the progress comment and queues it.
   * The trigger has already acknowledged it with {@link acknowledge}. A second delivery of the same
   * request returns undefined and does nothing else.
   */
  async submit(request: TaskRequest): Promise<TaskRecord | undefined> {
    const id = `task_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
    const { task, created } = this.opts.store.create(id, randomBytes(24).toString('base64url'), request);
    if (!created) {
      this.log.info({ taskId: task.id, deliveryId: request.deliveryId, triggerKey: request.triggerKey }, 'duplicate request ignored');
      return undefined;
    }
    this.logTransition(task, null, 'queued');
    await this.admit(task, this.track(task));
    return task;
  }

  /**
   * Adds 👀 to the request's origin (see {@link reactionTarget}), as soon as the trigger has gated
   * it. Idempotent on GitHub. Never throws; does nothing without an origin.
   */
  async acknowledge(octokit: Octokit, request: Pick<TaskRequest, 'owner' | 'repo' | 'origin'> & { target: Pick<TaskTarget, 'number'> }): Promise<void> {
    if (!request.origin) return;
    await this.reporter.acknowledge(octokit, { owner: request.owner, repo: request.repo, issueNumber: request.target.number }, reactionTarget(request.origin));
  }

  /** Puts a queued task in the waiting line, shows its place in the progress comment, queues it. */
  private async admit(task: TaskRecord, live: LiveTask, recovering = false): Promise<void> {
    this.waiting.push(task.id);
    live.view.queuePosition = this.queuePosition(task.id);
    await this.showProgress(task, live, recovering);
    this.enqueue(task.id);
  }

  private queuePosition(taskId: string): number | undefined {
    const free = this.opts.concurrency - this.queue.pending;
    const index = this.waiting.indexOf(taskId);
    if (index < 0) return undefined;
    const position = index + 1 - Math.max(0, free);
    return position > 0 ? position : undefined;
  }

  private track(task: TaskRecord): LiveTask {
    let live = this.live.get(task.id);
    if (!live) {
      live = {
        view: {
          taskId: task.id,
          kind: task.request.kind,
          state: task.state,
          startedAt: task.createdAt,
          now: Date.now(),
          logUrl: this.logUrl(task),
          requester: task.request.requester?.login,
          model: task.request.settings.model,
          mention: this.opts.mention,
          phase: task.phase,
        },
      };
      this.live.set(task.id, live);
    }
    return live;
  }

  /**
   * Writes the progress comment now (posting it if the task has none yet) and stores its id.
   * `recovering`: the task comes from a previous process (see ThreadReporter.showProgress).
   */
  private async showProgress(task: TaskRecord, live: LiveTask, recovering = false): Promise<void> {
    const { installationId, owner, repo, target } = task.request;
    live.view.now = Date.now();
    const thread = { installationId, owner, repo, issueNumber: target.number };
    const id = await this.reporter.showProgress(task.id, thread, task.progressCommentId, renderProgressComment(live.view), { recovering });
    if (id !== undefined && id !== task.progressCommentId) {
      this.opts.store.update(task.id, { progressCommentId: id });
      task.progressCommentId = id;
    }
  }

  private refresh(taskId: string): void {
    const live = this.live.get(taskId);
    if (!live) return;
    live.view.now = Date.now();
    this.reporter.update(taskId, renderProgressComment(live.view));
  }

  private enqueue(taskId: string): void {
    void this.queue.add(async () => {
      const index = this.waiting.indexOf(taskId);
      if (index >= 0) this.waiting.splice(index, 1);
      for (const other of this.waiting) {
        const live = this.live.get(other);
        if (live) {
          live.view.queuePosition = this.queuePosition(other);
          this.refresh(other);
        }
      }
      await this.dispatch(taskId).catch((error: unknown) => {
        this.log.error({ taskId, err: errorMessage(error) }, 'task crashed');
      });
    });
  }

  /** Cancels the newest queued or running task of a thread. @returns the task, or undefined if none was active. */
  async cancel(owner: string, repo: string, issueNumber: number, by: string): Promise<TaskRecord | undefined> {
    const task = this.opts.store.latestForThread(owner, repo, issueNumber);
    if (!task || FINAL_STATES.has(task.state)) return undefined;
    const live = this.track(task);
    live.cancelRequested = by;
    if (task.state === 'queued') {
      await this.finish(task, 'cancelled', { cancelledBy: by });
    } else {
      await live.execution?.cancel(`cancelled by @${by}`);
    }
    return task;
  }

  /**
   * What the app itself states in the final reply, beside the model's summary: the checks the runner
   * ran (checks-run.ts) and the hosts the agent proxy refused (from the task's events).
   */
  private appAccount(task: TaskRecord, outcome: Outcome): string | undefined {
    const parts: string[] = [];
    if (task.result) {
      const { commands, setup, failure, summary } = task.result;
      parts.push(checksRunSection({ commands, setup, failure: outcome.failure ?? failure, summary: outcome.answer ?? summary }));
    }
    const blocked = blockedHostsOf(this.opts.store.events(task.id));
    if (blocked.length > 0) {
      const shown = blocked.slice(0, 20).map((host) => codeSpan(host)).join(', ');
      parts.push(`**Blocked network requests** (hosts not in \`agent_network.allow\`): ${shown}${blocked.length > 20 ? ` and ${blocked.length - 20} more` : ''}`);
    }
    return parts.length > 0 ? parts.join('\n\n') : undefined;
  }

  /** Revokes what a task's runner holds: its gateway task token and its agent-proxy credentials. */
  private revokeCredentials(taskId: string): void {
    this.opts.tokens.revoke(taskId);
    this.opts.agentProxy?.grants.revoke(taskId);
  }

  /**
   * Ends a task as failed with `reason` (e.g. its token budget was overshot): its task token is
   * revoked at once, a queued task fails without running, a running task's runner is stopped and the
   * task then fails with `reason` whatever the runner returns. A task already publishing or ended is
   * left as it is. Never throws for an unknown task.
   */
  async abort(taskId: string, reason: string): Promise<void> {
    const task = this.opts.store.get(taskId);
    if (!task || FINAL_STATES.has(task.state)) return;
    this.revokeCredentials(taskId);
    if (task.state === 'publishing') {
      this.log.warn({ taskId, reason }, 'abort ignored: the task is already publishing');
      return;
    }
    const live = this.track(task);
    if (live.abortReason) return;
    live.abortReason = reason;
    this.log.warn({ taskId, reason }, 'aborting task');
    if (task.state === 'queued') {
      await this.finish(task, 'failed', { failure: { phase: 'starting', reason } });
    } else {
      // Settles the runner's result, which then ends the task with `reason` (see settleResult).
      await live.execution?.cancel(reason);
    }
  }

  /** Resolves the base commit, stores it, and starts the runner; then waits for its result. */
  private async dispatch(taskId: string): Promise<void> {
    let task = this.opts.store.get(taskId);
    if (!task || task.state !== 'queued') return;
    const live = this.track(task);
    const { request } = task;
    const { owner, repo } = request;
    task = this.transition(task, 'running', { startedAt: Date.now() });
    live.view.state = 'running';
    live.view.queuePosition = undefined;
    live.view.startedAt = task.startedAt ?? Date.now();
    this.refresh(task.id);

    let execution: RunnerExecution;
    try {
      const octokit = await this.opts.github.forInstallation(request.installationId);
      const { data: repository } = await octokit.rest.repos.get({ owner, repo });
      const dispatched = await this.resolveDispatch(octokit, request, repository.default_branch);
      // Stored before the runner starts: the only commit a result may be based on and a commit may sit on.
      task = this.opts.store.update(task.id, { baseSha: dispatched.baseSha, baseRef: dispatched.baseRef, ...(dispatched.pull ? { headSha: dispatched.pull.headSha } : {}) });
      const app = await this.opts.github.asApp();
      // A read-only token for this one repository: the runner can clone, nothing more.
      const { data: cloneToken } = await app.rest.apps.createInstallationAccessToken({
        installation_id: request.installationId,
        repositories: [repo],
        permissions: { contents: 'read' },
      });
      const taskToken = this.opts.tokens.issue(task.id, {
        budgetTokens: request.settings.maxTokens,
        ttlMs: request.settings.timeoutMs + 15 * 60_000,
        // The gateway refuses any other model and forces this effort: the runner cannot choose.
        model: request.settings.model,
        ...(request.settings.reasoningEffort ? { reasoningEffort: request.settings.reasoningEffort } : {}),
      });
      // A review runs without network, whatever agent_network allows (DESIGN.md, "Review").
      const allow = request.kind === 'review' ? undefined : request.settings.agentNetworkAllow;
      const proxy = this.opts.agentProxy;
      if (allow && !proxy) this.log.warn({ taskId }, 'agent_network is set but the app has no agent proxy (CODEX_AGENT_PROXY_PORT): the agent stays offline');
      const network =
        allow && proxy
          ? { proxyUrl: proxyUrlWithCredentials(proxy.url, task.id, proxy.grants.issue(task.id, { allow, ttlMs: request.settings.timeoutMs + 15 * 60_000 })), allow }
          : undefined;
      const review = request.kind === 'review' ? await this.reviewDispatch(octokit, request, dispatched.pull?.headSha) : undefined;
      const environment = await this.environmentOf(octokit, request, repository.id, dispatched);
      const spec = buildTaskSpec({
        ...(environment ? { environment } : {}),
        taskId: task.id,
        ...(network ? { network } : {}),
        request: review ? { ...request, review: review.request } : request,
        ...(review ? { earlierFindings: review.earlierFindings } : {}),
        repository: { cloneUrl: repository.clone_url, baseRef: dispatched.baseRef, baseSha: dispatched.baseSha },
        ...(dispatched.pull ? { pullRequest: dispatched.pull } : {}),
        ...(dispatched.agentsDocs ? { agentsDocs: dispatched.agentsDocs } : {}),
        cloneToken: cloneToken.token,
        taskToken,
        gatewayUrl: this.opts.gatewayUrl,
        modelRetry: this.opts.modelRetry,
      });
      execution = await this.opts.backend.start({
        spec,
        onEvent: (event) => this.onEvent(taskId, event),
        timeoutMs: backstopMs(request),
      });
      live.execution = execution;
      this.opts.store.update(task.id, { backend: this.opts.backend.name, externalId: execution.externalId });
      if (live.abortReason) await execution.cancel(live.abortReason);
      else if (live.cancelRequested) await execution.cancel(`cancelled by @${live.cancelRequested}`);
    } catch (error) {
      this.revokeCredentials(taskId);
      await this.finish(task, 'failed', { failure: { phase: 'starting', reason: errorMessage(error) } });
      return;
    }
    await this.settle(taskId, live, execution);
  }

  // --- Review tasks (kind `review`) -----------------------------------------------------------------

  /**
   * What a review needs at dispatch: the app's open earlier findings on the pull request (for
   * `resolved_findings`), and the incremental base checked: a `sinceSha` that is not an ancestor of
   * the head (a force-push rewrote it) is dropped, so the whole pull request is reviewed.
   * @throws Error when the request has no review block; Octokit RequestError on API errors.
   */
  private async reviewDispatch(
    octokit: Octokit,
    request: TaskRequest,
    headSha: string | undefined,
  ): Promise<{ request: NonNullable<TaskRequest['review']>; earlierFindings: ReturnType<typeof toEarlierFindings> }> {
    const { owner, repo, target, review } = request;
    if (!review || target.type !== 'pull_request') throw new Error('a review task needs a pull request and its review settings');
    const posted = await listEarlierFindings(octokit, { owner, repo, pullNumber: target.number, botLogin: review.botLogin });
    let sinceSha = review.sinceSha;
    if (sinceSha && headSha) {
      const ahead = await octokit.rest.repos
        .compareCommitsWithBasehead({ owner, repo, basehead: `${sinceSha}...${headSha}`, per_page: 1 })
        .then(({ data }) => data.status === 'ahead')
        .catch((error: unknown) => {
          if (statusOf(error) === 404) return false;
          throw error;
        });
      if (!ahead) sinceSha = undefined;
    }
    const { sinceSha: _dropped, ...rest } = review;
    return { request: { ...rest, ...(sinceSha ? { sinceSha } : {}) }, earlierFindings: toEarlierFindings(posted) };
  }

  /**
   * Publishes a review task's result (publishers/review.ts): ONE review on the dispatched head with
   * the findings at or above `min_priority` (inline where the diff has their lines, the others in its
   * body), or, with nothing to post, a 👍 and a short comment; "Fixed in" replies to earlier findings
   * the reviewer says are resolved. No commit, no branch. A failed review (e.g. no valid review JSON
   * after the restate request) ends the task with the runner's reason.
   */
  private async publishReviewResult(task: TaskRecord, headSha: string, result: TaskResult): Promise<void> {
    const { request } = task;
    const review = request.review;
    if (result.status !== 'succeeded' || !review || !result.review) {
      const failure = result.failure ?? { phase: 'agent', reason: review ? result.summary || 'the review produced no verdict' : 'the review settings are missing from the request' };
      await this.finish(task, 'failed', { failure });
      return;
    }
    try {
      const octokit = await this.opts.github.forInstallation(request.installationId);
      const origin: ReviewOrigin =
        request.origin?.type === 'comment'
          ? { kind: 'issue_comment', commentId: request.origin.id }
          : request.origin?.type === 'review_comment'
            ? { kind: 'review_comment', commentId: request.origin.id }
            : { kind: 'pull_request' };
      const outcome = await publishReview(octokit, {
        owner: request.owner,
        repo: request.repo,
        pullNumber: request.target.number,
        headSha,
        findings: result.findings,
        verdict: result.review,
        minPriority: review.minPriority,
        origin,
        botLogin: review.botLogin,
        commands: result.commands,
        runKey: task.id,
        pathsIgnore: review.pathsIgnore,
      });
      const { plan } = outcome;
      await this.finish(task, 'succeeded', {
        review: { kind: outcome.kind, url: outcome.url, headSha, findings: plan.inline.length + plan.outside.length, resolved: plan.resolved.length },
      });
    } catch (error) {
      await this.finish(task, 'failed', { failure: { phase: 'publishing', reason: errorMessage(error) } });
    }
  }

  // --- end of review tasks ---------------------------------------------------------------------------

  /**
   * What a task is dispatched on, read from GitHub now: for issue work the default branch and its
   * head; for pull request work the pull request as it is now (base branch and commit, head branch and
   * commit, number of commits) and, when the head is in a fork, the AGENTS.md of the base commit (the
   * fork's own is untrusted and not read by the runner).
   * @throws Error when the pull request is closed; Octokit RequestError on API errors.
   */
  private async resolveDispatch(
    octokit: Octokit,
    request: TaskRequest,
    defaultBranch: string,
  ): Promise<{ baseRef: string; baseSha: string; pull?: NonNullable<TaskSpecSources['pullRequest']>; agentsDocs?: TaskSpecSources['agentsDocs'] }> {
    const { owner, repo, target } = request;
    if (target.type === 'issue') {
      const { data: ref } = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${defaultBranch}` });
      return { baseRef: defaultBranch, baseSha: ref.object.sha };
    }
    const { data: pull } = await octokit.rest.pulls.get({ owner, repo, pull_number: target.number });
    if (pull.state !== 'open') throw new Error(`pull request #${target.number} is ${pull.merged ? 'merged' : 'closed'}`);
    // A fix is about the checks of one commit: on a newer head they run again, so the fix does not.
    if (request.fix && pull.head.sha !== request.fix.headSha) {
      throw new Error(`the pull request's head moved from ${short(request.fix.headSha)} to ${short(pull.head.sha)} since the checks failed; its checks run again on the new head`);
    }
    const fork = isFork(pull.head.repo?.full_name, owner, repo);
    const result = {
      baseRef: pull.base.ref,
      baseSha: pull.base.sha,
      pull: {
        number: target.number,
        headRef: pull.head.ref,
        headSha: pull.head.sha,
        fork,
        ...(pull.commits > 0 ? { commits: pull.commits } : {}),
      },
    };
    if (!fork) return result;
    return { ...result, agentsDocs: await readAgentsMd(octokit, owner, repo, pull.base.sha) };
  }

  /**
   * The TaskSpec `environment` of a task (issue 12): keyed on the commit the runner checks out, in
   * scope `default` for work on the repository's own branches and `pull/<n>` for a pull request
   * from a fork (its setup must not prepare the environment of other tasks). Undefined when the app
   * has environments off, or when GitHub's tree listing was truncated or could not be read (the task
   * then runs its setup, uncached).
   */
  private async environmentOf(
    octokit: Octokit,
    request: TaskRequest,
    repositoryId: number,
    dispatched: { baseSha: string; pull?: NonNullable<TaskSpecSources['pullRequest']> },
  ): Promise<TaskSpecSources['environment']> {
    const config = this.opts.environments;
    if (!config) return undefined;
    const { owner, repo, settings } = request;
    try {
      return await environmentSpecFor({
        octokit,
        owner,
        repo,
        repositoryId,
        sha: dispatched.pull?.headSha ?? dispatched.baseSha,
        scope: dispatched.pull?.fork ? `pull/${dispatched.pull.number}` : 'default',
        setupScript: settings.setupScript,
        autoInstall: settings.autoInstall,
        fresh: request.fresh ?? false,
        maxBytes: config.maxArchiveBytes,
      });
    } catch (error) {
      this.log.warn({ owner, repo, err: errorMessage(error) }, 'could not read the tree for the environment key: setup runs uncached');
      return undefined;
    }
  }

  /** Waits for a runner's result (never rejects), revokes the task token and settles the result. */
  private async settle(taskId: string, live: LiveTask, execution: RunnerExecution): Promise<void> {
    const result = await execution.result;
    live.execution = undefined;
    this.revokeCredentials(taskId);
    await this.settleResult(this.opts.store.get(taskId)!, result);
  }

  private onEvent(taskId: string, event: ProgressEvent): void {
    // A runner's events are its own account; a blocked-host record is the app's proxy's, listed in the
    // final reply as the app's statement, so a runner cannot make one up.
    if (isBlockedHostEvent(event)) return;
    this.opts.store.appendEvent(taskId, event);
    const live = this.live.get(taskId);
    if (live) {
      switch (event.type) {
        case 'phase':
          if (event.status === 'started') {
            live.view.phase = event.phase;
            this.opts.store.update(taskId, { phase: event.phase });
          }
          break;
        case 'plan':
          live.view.plan = event.plan;
          break;
        case 'command_begin':
          live.view.lastCommand = { command: event.command, exitCode: null, running: true };
          break;
        case 'command_end':
          live.view.lastCommand = { command: event.command, exitCode: event.exitCode, running: false };
          break;
        case 'log':
          if (event.level !== 'info') live.view.notice = event.message;
          break;
        case 'environment':
          // On ECS the agent task restores what this task's own setup task just built: "built" stays.
          if (event.status === 'restored' && live.view.environment?.status === 'built') break;
          live.view.environment = {
            status: event.status,
            ...(event.durationMs !== undefined ? { durationMs: event.durationMs } : {}),
            ...(event.ageMs !== undefined ? { ageMs: event.ageMs } : {}),
            ...(event.saved !== undefined ? { saved: event.saved } : {}),
          };
          break;
        case 'model_request':
          // A retry is worth showing; a request that went through clears it.
          live.view.notice = event.status === 'retrying' ? `model request retried: ${event.reason ?? ''}` : live.view.notice?.startsWith('model request retried') ? undefined : live.view.notice;
          break;
        default:
          break;
      }
      this.refresh(taskId);
    }
    this.notify(taskId, event);
  }

  /**
   * Checks a runner's result against what the app dispatched, publishes what it holds and ends the
   * task with its final reply. The runner is trusted for its changes and texts only: a result for
   * another task or on another base commit is refused.
   */
  private async settleResult(task: TaskRecord, result: TaskResult, resumed = false): Promise<void> {
    if (FINAL_STATES.has(task.state)) return;
    const live = this.track(task);
    task = this.transition(task, 'publishing', { result });
    live.view.state = 'publishing';
    live.view.usage = { inputTokens: result.usage.inputTokens, cachedInputTokens: result.usage.cachedInputTokens, outputTokens: result.usage.outputTokens, turns: result.usage.turns };
    this.refresh(task.id);
    const { request } = task;
    if (live.abortReason) {
      await this.finish(task, 'failed', { failure: { phase: task.phase ?? 'agent', reason: live.abortReason } });
      return;
    }
    if (result.status === 'cancelled') {
      await this.finish(task, 'cancelled', { cancelledBy: live.cancelRequested });
      return;
    }
    if (result.id !== task.id) {
      await this.finish(task, 'failed', { failure: { phase: 'result', reason: `the runner's result is for task ${clip(result.id)}, not ${task.id}` } });
      return;
    }
    // Changes are against the commit the runner checked out: the pull request's head for pull request
    // work, the base otherwise. Only the commit the app dispatched (stored) is accepted.
    const dispatchedSha = request.target.type === 'pull_request' ? task.headSha : task.baseSha;
    if (!dispatchedSha || !task.baseSha || !task.baseRef) {
      await this.finish(task, 'failed', { failure: { phase: 'result', reason: 'the commit this task was dispatched on is not known (the task predates the app upgrade)' } });
      return;
    }
    if (result.baseSha !== dispatchedSha) {
      await this.finish(task, 'failed', {
        failure: { phase: 'result', reason: `the runner's result is based on ${clip(result.baseSha)}, not the dispatched ${dispatchedSha}; nothing was published` },
      });
      return;
    }
    if (request.kind === 'review') {
      await this.publishReviewResult(task, dispatchedSha, result);
      return;
    }
    const partial = result.status === 'failed' && result.changes.length > 0 && result.failure?.phase === 'agent';
    if (result.status === 'no_changes' || (result.status === 'failed' && !partial)) {
      if (result.status === 'no_changes') await this.finish(task, 'no_changes', { answer: result.summary });
      else await this.finish(task, 'failed', { failure: result.failure ?? { phase: 'agent', reason: result.summary } });
      return;
    }
    try {
      const check = validateChanges(result.changes, { allowWorkflowChanges: request.settings.allowWorkflowChanges });
      if (!check.ok) {
        await this.finish(task, 'failed', {
          failure: { phase: 'publishing', reason: `the changes were refused:\n${check.errors.map((e) => `- ${e}`).join('\n')}` },
        });
        return;
      }
      const octokit = await this.opts.github.forInstallation(request.installationId);
      if (request.target.type === 'pull_request') {
        await this.publishToPullRequest(octokit, task, request.target, dispatchedSha, result, partial, resumed);
        return;
      }
      const pullRequest = await publishPullRequest(
        octokit,
        {
          owner: request.owner,
          repo: request.repo,
          issueNumber: request.target.number,
          issueTitle: request.target.title,
          requester: request.requester,
          baseRef: task.baseRef,
          baseSha: task.baseSha,
          result,
          partial,
          draft: request.settings.draftPullRequests,
          model: request.settings.model,
          taskUrl: this.logUrl(task),
        },
        { branch: task.branch, commitSha: task.commitSha },
        (checkpoint) => this.opts.store.update(task.id, checkpoint),
      );
      const published = { number: pullRequest.number, url: pullRequest.url, title: pullRequest.title };
      if (partial) await this.finish(task, 'failed', { failure: result.failure, pullRequest: published, answer: result.summary });
      else await this.finish(task, 'succeeded', { pullRequest: published, answer: result.pullRequest.body || result.summary });
    } catch (error) {
      await this.finish(task, 'failed', { failure: { phase: 'publishing', reason: errorMessage(error) } });
    }
  }

  /**
   * Publishes pull request work and ends the task. Same repository: one commit on the pull request's
   * branch on top of the dispatched head (re-applied onto a moved head when the files do not
   * overlap), never forced; when the branch moved onto our files the task fails with a reply saying
   * so and how to retry, nothing pushed. Fork: the app cannot push there, so a new pull request from
   * a `codex/pr-<n>-<slug>` branch of this repository on top of the fork's head, linked in the reply.
   * @throws Octokit RequestError on API errors (the caller fails the task).
   */
  private async publishToPullRequest(
    octokit: Octokit,
    task: TaskRecord,
    target: Extract<TaskTarget, { type: 'pull_request' }>,
    headSha: string,
    result: TaskResult,
    partial: boolean,
    resumed: boolean,
  ): Promise<void> {
    const { request } = task;
    const { owner, repo } = request;
    const coAuthors = request.requester ? [request.requester] : [];
    const title = workTitle(result, target.title);
    const message = request.fix ? fixCommitMessageOf(request.fix, result) : result.commitMessage || title;
    const failure = partial ? result.failure : undefined;
    if (target.fork) {
      const opened = await openFromForkHead(octokit, {
        owner,
        repo,
        pullNumber: target.number,
        pullTitle: target.title,
        baseRef: task.baseRef ?? target.baseRef,
        dispatchedHeadSha: headSha,
        changes: result.changes,
        message,
        coAuthors,
        title: partial ? `[partial] ${title}` : title,
        body: pullRequestBody({
          summary: `Changes for #${target.number}, on top of its head ${headSha} (the pull request comes from a fork, which this app cannot push to).\n\n${result.pullRequest.body || result.summary}`,
          commands: result.commands,
          model: request.settings.model,
          usage: result.usage,
          ...(result.setup ? { setup: result.setup } : {}),
          taskUrl: this.logUrl(task),
          ...(request.requester ? { requester: request.requester.login } : {}),
        }),
        draft: partial || request.settings.draftPullRequests,
      });
      this.opts.store.update(task.id, { branch: opened.branch, commitSha: opened.commitSha });
      const pullRequest = { number: opened.number, url: opened.url, title };
      await this.finish(task, partial ? 'failed' : 'succeeded', { pullRequest, forkOf: { number: target.number, branch: opened.branch }, answer: result.pullRequest.body || result.summary, ...(failure ? { failure } : {}) });
      return;
    }
    const push = { owner, repo, branch: target.headRef, dispatchedHeadSha: headSha, changes: result.changes };
    // A process that died after the ref update but before recording it left our commit on the branch.
    const earlier = resumed ? await findPushedCommit(octokit, push) : undefined;
    const outcome: PushOutcome = earlier
      ? { kind: 'pushed', ...earlier, rebased: earlier.parentSha !== headSha }
      : await pushToBranch(octokit, { ...push, message, coAuthors });
    if (outcome.kind === 'branch_missing') {
      await this.finish(task, 'failed', { failure: { phase: 'publishing', reason: `the branch ${outcome.branch} no longer exists (deleted or merged); nothing was pushed` } });
      return;
    }
    if (outcome.kind === 'branch_moved') {
      const why = outcome.rewritten
        ? 'it was rewritten (force-pushed) and no longer contains that commit'
        : outcome.unknown
          ? 'too many files changed on it to tell whether they overlap these changes'
          : `the new commits change the same files: ${outcome.overlapping.join(', ')}`;
      await this.finish(task, 'failed', {
        failure: {
          phase: 'publishing',
          reason: `The branch ${outcome.branch} moved while the task ran (from ${short(outcome.dispatchedHeadSha)} to ${short(outcome.currentHeadSha)}) and ${why}. Nothing was pushed. Retry to run the task again on the new head.`,
        },
      });
      return;
    }
    this.opts.store.update(task.id, { branch: target.headRef, commitSha: outcome.commitSha });
    const { data: repository } = await octokit.rest.repos.get({ owner, repo });
    const pushed = {
      sha: outcome.commitSha,
      url: `${repository.html_url}/commit/${outcome.commitSha}`,
      branch: target.headRef,
      files: result.changes.map((c) => c.path),
      rebased: outcome.rebased,
    };
    await this.finish(task, partial ? 'failed' : 'succeeded', { pushed, answer: result.pullRequest.body || result.summary, ...(failure ? { failure } : {}) });
  }

  /**
   * Moves the task to a final state and queues its final reply in the same store transaction; the
   * thread reporter delivers it (retried, also after a restart). A task already ended is left alone.
   */
  private async finish(task: TaskRecord, state: 'succeeded' | 'no_changes' | 'failed' | 'cancelled', outcome: Outcome): Promise<void> {
    const current = this.opts.store.get(task.id) ?? task;
    if (FINAL_STATES.has(current.state)) return;
    const waitingAt = this.waiting.indexOf(task.id);
    if (waitingAt >= 0) this.waiting.splice(waitingAt, 1);
    const live = this.track(current);
    Object.assign(live.view, {
      state,
      failure: outcome.failure,
      pullRequest: outcome.pullRequest,
      pushed: outcome.pushed,
      forkOf: outcome.forkOf,
      answer: outcome.answer,
      review: outcome.review,
      queuePosition: undefined,
      notice: undefined,
      cancelledBy: outcome.cancelledBy,
      // The app's own account of the checks the runner ran (not the model's words), for tasks that ran.
      checks: this.appAccount(current, outcome),
    });
    live.view.now = Date.now();
    const body = withFinalMarker(task.id, current.request.fix ? this.fixReplyBody(current, state, outcome, live.view.checks) : renderProgressComment(live.view));
    const detail = outcome.failure
      ? `${outcome.failure.phase}: ${outcome.failure.reason.split('\n')[0]}`
      : outcome.cancelledBy
        ? `cancelled by ${outcome.cancelledBy}`
        : undefined;
    this.transition(
      current,
      state,
      {
        finishedAt: Date.now(),
        ...(outcome.failure ? { failure: outcome.failure } : {}),
        ...(outcome.pullRequest ? { pullRequest: outcome.pullRequest } : {}),
        finalReply: { body },
      },
      detail,
    );
    this.live.delete(task.id);
    this.listeners.delete(task.id);
    this.reporter.deliverPending();
    try {
      this.opts.onFinal?.(current, { ...(outcome.pushed ? { pushedSha: outcome.pushed.sha } : {}) });
    } catch (error) {
      this.log.error({ taskId: task.id, err: errorMessage(error) }, 'the final-state listener failed');
    }
  }

  /**
   * The final reply of a fix task (see fix-outcome.ts): the pushed fix, or why nothing was pushed,
   * followed by the app's own account (`appAccount`, see {@link appAccount}) when there is one and
   * the task log link.
   */
  private fixReplyBody(task: TaskRecord, state: 'succeeded' | 'no_changes' | 'failed' | 'cancelled', outcome: Outcome, appAccount: string | undefined): string {
    const fix = task.request.fix!;
    const result = task.result;
    const reason = state === 'cancelled' ? `cancelled${outcome.cancelledBy ? ` by ${outcome.cancelledBy}` : ''}` : `${outcome.failure?.phase ?? 'agent'}: ${outcome.failure?.reason ?? 'unknown'}`;
    const body =
      outcome.pushed && (state === 'succeeded' || state === 'failed')
        ? fixFinalReply(fix, { state, pushed: outcome.pushed }, result)
        : state === 'no_changes'
          ? fixFinalReply(fix, { state }, result)
          : fixFinalReply(fix, { state: state === 'cancelled' ? 'cancelled' : 'failed', reason }, result);
    // The task log link, as in every progress comment (the key is in the link only).
    return [body, appAccount, `<sub>[Task log](${this.logUrl(task)})</sub>`].filter(Boolean).join('\n\n');
  }

  /**
   * Start-up reconciliation (see reconcile.ts): delivers the final replies a previous process left in
   * the outbox, requeues queued tasks, re-attaches or fails running ones, republishes publishing ones.
   */
  async reconcile(): Promise<void> {
    this.reporter.deliverPending();
    const { backend } = this.opts;
    await reconcileTasks(this.opts.store.listByState(['queued', 'running', 'publishing']), { name: backend.name, canResume: backend.resume !== undefined }, {
      log: this.log,
      requeue: (task) => this.admit(task, this.track(task), true),
      republish: async (task, result) => {
        await this.showProgress(task, this.track(task), true);
        void this.settleResult(task, result, true).catch((error: unknown) => this.log.error({ taskId: task.id, err: errorMessage(error) }, 'task crashed'));
      },
      resume: async (task, externalId) => {
        const live = this.track(task);
        await this.showProgress(task, live, true);
        const execution = await backend.resume!(task.id, externalId, {
          onEvent: (event) => this.onEvent(task.id, event),
          lastPhase: task.phase,
          timeoutMs: backstopMs(task.request),
        });
        if (!execution) return false;
        live.execution = execution;
        void this.queue.add(() => this.settle(task.id, live, execution));
        return true;
      },
      fail: async (task, failure) => {
        this.revokeCredentials(task.id);
        await this.showProgress(task, this.track(task), true);
        await this.finish(task, 'failed', { failure });
      },
    });
  }
}

/** Whether a pull request's head repository (`head.repo.full_name`; null when the fork was deleted) is another repository. */
function isFork(headRepo: string | undefined | null, owner: string, repo: string): boolean {
  return !headRepo || headRepo.toLowerCase() !== `${owner}/${repo}`.toLowerCase();
}

/**
 * The root AGENTS.md of `ref` (`GET /repos/{o}/{r}/contents/AGENTS.md?ref=`), as the runner's
 * guidance for fork pull requests: an empty list when the file does not exist.
 * @throws Octokit RequestError on other API errors.
 */
async function readAgentsMd(octokit: Octokit, owner: string, repo: string, ref: string): Promise<Array<{ path: string; content: string }>> {
  try {
    const { data } = await octokit.rest.repos.getContent({ owner, repo, path: 'AGENTS.md', ref });
    if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) return [];
    return [{ path: 'AGENTS.md', content: Buffer.from(data.content, 'base64').toString('utf8') }];
  } catch (error) {
    if (statusOf(error) === 404) return [];
    throw error;
  }
}
