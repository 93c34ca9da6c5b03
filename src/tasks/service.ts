/**
 * The task service: accepts task requests, keeps them in the durable store, runs them through a
 * queue with a concurrency limit on a runner backend, keeps the progress comment current, publishes
 * the result and always ends with a final reply in the thread (DESIGN.md, "Data path").
 */
import { randomBytes, randomUUID } from 'node:crypto';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { ProbotOctokit } from 'probot';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../contract.ts';
import type { TaskTokens } from '../gateway/task-tokens.ts';
import { renderProgressComment, ProgressCommentUpdater, type ProgressView } from '../github/progress-comment.ts';
import { branchName, createBranch, createCommit, openPullRequest } from '../github/publish.ts';
import { pullRequestBody } from '../github/pull-request-body.ts';
import { validateChanges } from '../github/validate-result.ts';
import type { RunnerBackend, RunnerExecution } from '../runners/backend.ts';
import type { TaskStore } from './store.ts';
import { FINAL_STATES, type TaskRecord, type TaskRequest, type TaskState } from './types.ts';

/** An authenticated Octokit as Probot creates it. */
export type Octokit = InstanceType<typeof ProbotOctokit>;

/** How the service reaches GitHub. */
export interface GitHubAccess {
  /** An Octokit authenticated as the installation. */
  forInstallation(installationId: number): Promise<Octokit>;
  /** An Octokit authenticated as the App (JWT), to mint scoped installation tokens. */
  asApp(): Promise<Octokit>;
}

/** Dependencies and settings of {@link TaskService}. */
export interface TaskServiceOptions {
  store: TaskStore;
  backend: RunnerBackend;
  tokens: TaskTokens;
  github: GitHubAccess;
  log: Logger;
  /** Public base URL of the app (task log links). */
  publicUrl: string;
  /** Base URL runners use to reach the model gateway, e.g. `http://127.0.0.1:3000/v1`. */
  gatewayUrl: string;
  /** Runners at once (default 2). */
  concurrency: number;
  /** The mention, for the hints in replies (e.g. `@codex`). */
  mention: string;
  /** Retry policy of the runner's model requests. */
  modelRetry?: { retries: number; baseMs: number };
  /** Minimum interval between two edits of a progress comment, ms. */
  progressIntervalMs?: number;
}

/** Listener of a task's live events (task log page). */
export type TaskListener = (event: ProgressEvent | { type: 'state'; state: string }) => void;

interface LiveTask {
  view: ProgressView;
  updater?: ProgressCommentUpdater;
  execution?: RunnerExecution;
  cancelRequested?: string;
}

/** The backend's hard limit for a runner: the task's wall-clock limit plus 5 minutes of grace, ms. */
function backstopMs(request: TaskRequest): number {
  return request.settings.timeoutMs + 5 * 60_000;
}

function errorMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'status' in error && 'message' in error) {
    return `GitHub API error ${(error as { status: number }).status}: ${(error as { message: string }).message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Runs tasks; one instance per app process. */
export class TaskService {
  private readonly opts: TaskServiceOptions;
  private readonly queue: PQueue;
  private readonly live = new Map<string, LiveTask>();
  private readonly waiting: string[] = [];
  private readonly listeners = new Map<string, Set<TaskListener>>();
  private readonly log: Logger;

  constructor(opts: TaskServiceOptions) {
    this.opts = opts;
    this.queue = new PQueue({ concurrency: opts.concurrency });
    this.log = opts.log;
  }

  /** The store (for the task log page and tests). */
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

  /** Resolves when no task is queued or running (tests, benchmarks, shutdown). */
  async idle(): Promise<void> {
    await this.queue.onIdle();
  }

  /** One log line per state change: task id, repository, issue, delivery id, from and to. */
  private logTransition(task: TaskRecord, from: TaskState | null, to: TaskState, detail?: string): void {
    this.log.info(
      {
        taskId: task.id,
        repository: `${task.request.owner}/${task.request.repo}`,
        issue: task.request.issueNumber,
        deliveryId: task.deliveryId,
        ...(from ? { from } : {}),
        to,
        ...(detail ? { detail } : {}),
      },
      'task transition',
    );
  }

  private transition(task: TaskRecord, state: TaskState, patch: Parameters<TaskStore['update']>[1] = {}, detail?: string): TaskRecord {
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
    const octokit = await this.opts.github.forInstallation(request.installationId);
    await this.admit(octokit, task, this.track(task));
    return task;
  }

  /** Puts a queued task in the waiting line, shows its place in the progress comment, queues it. */
  private async admit(octokit: Octokit, task: TaskRecord, live: LiveTask): Promise<void> {
    this.waiting.push(task.id);
    live.view.queuePosition = this.queuePosition(task.id);
    await this.postProgressComment(octokit, task, live);
    this.enqueue(task.id);
  }

  private queuePosition(taskId: string): number | undefined {
    const free = this.opts.concurrency - this.queue.pending;
    const index = this.waiting.indexOf(taskId);
    if (index < 0) return undefined;
    const position = index + 1 - Math.max(0, free);
    return position > 0 ? position : undefined;
  }

  /**
   * Adds 👀 to the request (the comment, or the issue), as soon as the trigger has gated it.
   * Idempotent on GitHub (a second POST answers 200 with the existing reaction). Never throws.
   */
  async acknowledge(octokit: Octokit, request: Pick<TaskRequest, 'owner' | 'repo' | 'issueNumber' | 'reactTo'>): Promise<void> {
    try {
      if (request.reactTo.type === 'comment') {
        await octokit.rest.reactions.createForIssueComment({ owner: request.owner, repo: request.repo, comment_id: request.reactTo.id, content: 'eyes' });
      } else {
        await octokit.rest.reactions.createForIssue({ owner: request.owner, repo: request.repo, issue_number: request.issueNumber, content: 'eyes' });
      }
    } catch (error) {
      this.log.warn({ err: errorMessage(error), repository: `${request.owner}/${request.repo}` }, 'could not add the 👀 reaction');
    }
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
          requester: task.request.requester.login,
          model: task.request.settings.model,
          mention: this.opts.mention,
          phase: task.phase,
        },
      };
      this.live.set(task.id, live);
    }
    return live;
  }

  private async postProgressComment(octokit: Octokit, task: TaskRecord, live: LiveTask): Promise<void> {
    const { owner, repo, issueNumber } = task.request;
    live.view.now = Date.now();
    const body = renderProgressComment(live.view);
    try {
      if (task.progressCommentId) {
        await octokit.rest.issues.updateComment({ owner, repo, comment_id: task.progressCommentId, body });
      } else {
        const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body });
        this.opts.store.update(task.id, { progressCommentId: data.id });
        task.progressCommentId = data.id;
      }
    } catch (error) {
      this.log.warn({ taskId: task.id, err: errorMessage(error) }, 'could not write the progress comment');
    }
    const commentId = task.progressCommentId;
    if (commentId && !live.updater) {
      live.updater = new ProgressCommentUpdater({
        edit: async (text: string) => {
          await octokit.rest.issues.updateComment({ owner, repo, comment_id: commentId, body: text });
        },
        minIntervalMs: this.opts.progressIntervalMs,
        log: this.log,
      });
    }
  }

  private refresh(taskId: string): void {
    const live = this.live.get(taskId);
    if (!live?.updater) return;
    live.view.now = Date.now();
    live.updater.update(renderProgressComment(live.view));
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
      await this.execute(taskId).catch((error: unknown) => {
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
      const index = this.waiting.indexOf(task.id);
      if (index >= 0) this.waiting.splice(index, 1);
      await this.finish(task, 'cancelled', { cancelledBy: by });
    } else {
      await live.execution?.cancel(`cancelled by @${by}`);
    }
    return task;
  }

  private async execute(taskId: string): Promise<void> {
    let task = this.opts.store.get(taskId);
    if (!task || task.state !== 'queued') return;
    const live = this.track(task);
    if (live.cancelRequested) return;
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
      const baseRef = repository.default_branch;
      const { data: ref } = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${baseRef}` });
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
      });
      const spec = TaskSpec.parse({
        id: task.id,
        kind: request.kind,
        repository: { cloneUrl: repository.clone_url, fullName: `${owner}/${repo}`, token: cloneToken.token, baseRef, baseSha: ref.object.sha },
        instruction: request.instruction,
        context: request.context,
        requester: request.requester.login,
        model: {
          baseUrl: this.opts.gatewayUrl,
          apiKey: taskToken,
          name: request.settings.model,
          ...(this.opts.modelRetry ? { maxRetries: this.opts.modelRetry.retries, retryBaseMs: this.opts.modelRetry.baseMs } : {}),
          ...(request.settings.reasoningEffort ? { reasoningEffort: request.settings.reasoningEffort } : {}),
        },
        limits: {
          wallTimeMs: request.settings.timeoutMs,
          maxTokens: request.settings.maxTokens,
          ...(request.settings.maxTurns ? { maxTurns: request.settings.maxTurns } : {}),
        },
        setup: { ...(request.settings.setupScript ? { script: request.settings.setupScript } : {}), autoInstall: request.settings.autoInstall },
      });
      execution = await this.opts.backend.start({
        spec,
        onEvent: (event) => this.onEvent(taskId, event),
        timeoutMs: backstopMs(request),
      });
      live.execution = execution;
      this.opts.store.update(task.id, { backend: this.opts.backend.name, externalId: execution.externalId });
      if (live.cancelRequested) await execution.cancel(`cancelled by @${live.cancelRequested}`);
    } catch (error) {
      this.opts.tokens.revoke(taskId);
      await this.finish(task, 'failed', { failure: { phase: 'starting', reason: errorMessage(error) } });
      return;
    }
    await this.settle(taskId, live, execution);
  }

  /** Waits for a runner's result (never rejects), revokes the task token and publishes. */
  private async settle(taskId: string, live: LiveTask, execution: RunnerExecution): Promise<void> {
    const result = await execution.result;
    live.execution = undefined;
    this.opts.tokens.revoke(taskId);
    await this.publish(this.opts.store.get(taskId)!, result);
  }

  private onEvent(taskId: string, event: ProgressEvent): void {
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

  /** Publishes a runner's result and ends the task with its final reply. */
  private async publish(task: TaskRecord, result: TaskResult): Promise<void> {
    const live = this.track(task);
    task = this.transition(task, 'publishing', { result });
    live.view.state = 'publishing';
    live.view.usage = { inputTokens: result.usage.inputTokens, cachedInputTokens: result.usage.cachedInputTokens, outputTokens: result.usage.outputTokens, turns: result.usage.turns };
    this.refresh(task.id);
    const { request } = task;
    if (result.status === 'cancelled') {
      await this.finish(task, 'cancelled', { cancelledBy: live.cancelRequested });
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
      const { owner, repo } = request;
      const title = result.pullRequest.title || request.issueTitle;
      const commit = await createCommit(octokit, {
        owner,
        repo,
        baseSha: result.baseSha,
        changes: result.changes,
        message: result.commitMessage || title,
        coAuthors: [request.requester],
      });
      const { data: repository } = await octokit.rest.repos.get({ owner, repo });
      const branch = await createBranch(octokit, { owner, repo, branch: branchName(request.issueNumber, title), sha: commit.commitSha });
      const body = pullRequestBody({
        summary: result.pullRequest.body || result.summary,
        issueNumber: request.issueNumber,
        commands: result.commands,
        model: request.settings.model,
        usage: result.usage,
        taskUrl: this.logUrl(task),
        requester: request.requester.login,
      });
      const pr = await openPullRequest(octokit, {
        owner,
        repo,
        head: branch,
        base: repository.default_branch,
        title: partial ? `[partial] ${title}` : title,
        body,
        draft: partial || request.settings.draftPullRequests,
      });
      const pullRequest = { number: pr.number, url: pr.url, title };
      if (partial) {
        await this.finish(task, 'failed', { failure: result.failure, pullRequest, answer: result.summary });
      } else {
        await this.finish(task, 'succeeded', { pullRequest, answer: result.pullRequest.body || result.summary });
      }
    } catch (error) {
      await this.finish(task, 'failed', { failure: { phase: 'publishing', reason: errorMessage(error) } });
    }
  }

  /** Moves the task to a final state and writes the final reply (never lost: flushed and retried). */
  private async finish(
    task: TaskRecord,
    state: 'succeeded' | 'no_changes' | 'failed' | 'cancelled',
    outcome: { failure?: { phase: string; reason: string }; pullRequest?: { number: number; url: string; title: string }; answer?: string; cancelledBy?: string },
  ): Promise<void> {
    const current = this.opts.store.get(task.id) ?? task;
    const updated = this.transition(current, state, {
      finishedAt: Date.now(),
      ...(outcome.failure ? { failure: outcome.failure } : {}),
      ...(outcome.pullRequest ? { pullRequest: outcome.pullRequest } : {}),
    }, outcome.failure ? `${outcome.failure.phase}: ${outcome.failure.reason.split('\n')[0]}` : outcome.cancelledBy ? `cancelled by ${outcome.cancelledBy}` : undefined);
    const live = this.track(updated);
    Object.assign(live.view, {
      state,
      failure: outcome.failure,
      pullRequest: outcome.pullRequest,
      answer: outcome.answer,
      queuePosition: undefined,
      notice: undefined,
      cancelledBy: outcome.cancelledBy,
    });
    live.view.now = Date.now();
    const body = renderProgressComment(live.view);
    try {
      if (live.updater) {
        live.updater.update(body);
        await live.updater.flush();
      } else {
        const octokit = await this.opts.github.forInstallation(task.request.installationId);
        await this.postProgressComment(octokit, updated, live);
      }
    } catch (error) {
      this.log.error({ taskId: task.id, err: errorMessage(error) }, 'could not write the final reply');
    }
    this.live.delete(task.id);
    this.listeners.delete(task.id);
  }

  /**
   * Start-up reconciliation: queued tasks go back in the queue; tasks a previous process left
   * running are resumed when the backend can (ECS), otherwise they fail with a reply saying so;
   * tasks left publishing with a stored result are published again.
   */
  async reconcile(): Promise<void> {
    for (const task of this.opts.store.listByState(['queued', 'running', 'publishing'])) {
      try {
        const live = this.track(task);
        const octokit = await this.opts.github.forInstallation(task.request.installationId);
        if (task.state === 'queued') {
          await this.admit(octokit, task, live);
          continue;
        }
        await this.postProgressComment(octokit, task, live);
        if (task.state === 'publishing' && task.result) {
          void this.publish(task, task.result);
          continue;
        }
        const execution =
          task.externalId && this.opts.backend.resume && task.backend === this.opts.backend.name
            ? await this.opts.backend.resume(task.id, task.externalId, {
                onEvent: (event) => this.onEvent(task.id, event),
                lastPhase: task.phase,
                timeoutMs: backstopMs(task.request),
              })
            : undefined;
        if (!execution) {
          this.opts.tokens.revoke(task.id);
          await this.finish(task, 'failed', {
            failure: { phase: task.phase ?? 'starting', reason: 'the app restarted while the task was running, and its runner could not be recovered' },
          });
          continue;
        }
        live.execution = execution;
        void this.queue.add(() => this.settle(task.id, live, execution));
      } catch (error) {
        this.log.error({ taskId: task.id, err: errorMessage(error) }, 'could not reconcile task');
      }
    }
  }
}
