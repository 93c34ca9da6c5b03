/**
 * The Probot application: wires the webhook triggers to the task service and mounts the app's own
 * HTTP routes (health check, model gateway, task log pages) on Probot's server.
 */
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { ApplicationFunction, Probot } from 'probot';
import { AutofixGate } from './autofix/gate.ts';
import { sqliteAutofixAttempts } from './autofix/sqlite-attempts.ts';
import type { AppConfig } from './config/env.ts';
import { createModelGateway } from './gateway/gateway.ts';
import { appLogin } from './github/client.ts';
import { TaskTokens } from './gateway/task-tokens.ts';
import { AgentProxy } from './proxy/agent-proxy.ts';
import { blockedHostEvent } from './proxy/blocked-hosts.ts';
import { ProxyGrants } from './proxy/grants.ts';
import type { RunnerBackend } from './runners/backend.ts';
import { EnvironmentCache } from './runners/environment-cache.ts';
import { defaultRunnerCommand, LocalRunnerBackend } from './runners/local.ts';
import { assertCanRunAs, hideFromRunnerUser, resolveRunnerUser, type RunnerUser } from './runners/runner-user.ts';
import { TaskService } from './tasks/service.ts';
import { SqliteTaskStore, type TaskStore } from './tasks/store.ts';
import { CheckFailures } from './triggers/check-failure.ts';
import { registerTriggers } from './triggers/index.ts';
import type { AcknowledgementOrder, TriggerDeps } from './triggers/mention-request.ts';
import { SharedLookups } from './triggers/shared-lookups.ts';
import { createTaskPageHandler } from './web/task-page.ts';

/** What the app function built, for the server's start-up and shutdown. */
export interface CodexAppHandle {
  service?: TaskService;
  store?: TaskStore;
  backend?: RunnerBackend;
  /**
   * The agent-phase network proxy when `CODEX_AGENT_PROXY_PORT` is set: issue a task's grant with
   * `grants.issue` (its secret goes into TaskSpec `network.proxyUrl` through
   * `proxyUrlWithCredentials(url, …)`), revoke it when the task ends, close the proxy on shutdown.
   */
  agentProxy?: { proxy: AgentProxy; grants: ProxyGrants; url: string };
}

/** Options of {@link codexApp}. */
export interface CodexAppOptions {
  config: AppConfig;
  log: Logger;
  /** Filled in when Probot loads the app. */
  handle: CodexAppHandle;
  /** Runner backend override (default: from `config.runner`). */
  backend?: RunnerBackend;
  /**
   * The deliveries waiting for their 👀, shared with the inbox worker (serve.ts): the triggers let
   * every pending 👀 go before their work that can wait. Absent: no ordering between deliveries.
   */
  acknowledgements?: AcknowledgementOrder;
}

/**
 * Builds the runner backend the configuration asks for. For the local backend with
 * `CODEX_RUNNER_USER`, checks that runners can be started as that user and hides the data
 * directory from it; without one, warns when the app runs as root (the runner then shares the app's
 * user, and an escape from the sandbox could read the app's environment).
 * @throws RunnerUserError when `CODEX_RUNNER_USER` is unknown, root, or cannot be switched to.
 */
export async function createBackend(config: AppConfig, store: TaskStore, log: Logger): Promise<RunnerBackend> {
  if (config.runner.backend === 'local') {
    const workRoot = path.join(config.dataDir, 'work');
    let runAs: RunnerUser | undefined;
    if (config.runner.user) {
      runAs = await resolveRunnerUser(config.runner.user);
      const program = config.runner.command ? [] : defaultRunnerCommand().slice(1, 2);
      await hideFromRunnerUser(config.dataDir, workRoot, [process.execPath, ...program]);
      await assertCanRunAs(runAs, process.execPath, program);
      log.info({ runnerUser: config.runner.user, uid: runAs.uid, gid: runAs.gid }, 'local runners run as another user');
    } else if (process.getuid?.() === 0) {
      log.warn(
        'the app runs as root and CODEX_RUNNER_USER is not set: local runners run as root too, so an escape from the sandbox ' +
          "could read the app's environment and files; set CODEX_RUNNER_USER to an unprivileged user (see README)",
      );
    }
    // Environments (issue 12): the archives setup produced, under the data directory.
    const environments = config.environments
      ? new EnvironmentCache({
          dir: path.join(config.dataDir, 'environments'),
          ...config.environments,
          ...(runAs ? { owner: { uid: runAs.uid, gid: runAs.gid } } : {}),
          warn: (message) => log.warn(message),
        })
      : undefined;
    return new LocalRunnerBackend({
      workRoot,
      command: config.runner.command,
      ...(runAs ? { runAs } : {}),
      ...(environments ? { environments } : {}),
      ...(config.runner.nice !== undefined ? { nice: config.runner.nice } : {}),
      standby: config.runner.standby,
    });
  }
  // Loaded only when used, so that the local setup does not load the AWS SDK.
  const { createEcsBackend } = await import('./runners/ecs-factory.ts');
  if (config.runner.environmentBucket && config.environments) {
    const { S3EcsEnvironments } = await import('./runners/ecs-environments.ts');
    const environments = S3EcsEnvironments.fromConfig(config.runner.environmentBucket, {
      ...config.environments,
      ...(config.runner.region ? { region: config.runner.region } : {}),
    });
    return createEcsBackend(config, store, log, { environments });
  }
  return createEcsBackend(config, store, log);
}

function healthz(handle: CodexAppHandle) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/healthz') return false;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ status: 'ok', tasks: handle.service?.stats() ?? null }));
    return true;
  };
}

/** The Probot application function. */
export function codexApp(opts: CodexAppOptions): ApplicationFunction {
  return async (app: Probot, { addHandler }) => {
    const { config, log, handle } = opts;
    const dbFile = path.join(config.dataDir, 'codex-cloud.db');
    const store = new SqliteTaskStore(dbFile);
    const tokens = new TaskTokens({ persistence: store.tokens });
    const backend = opts.backend ?? (await createBackend(config, store, log));
    // The agent-phase network proxy (`agent_network` in .github/codex.yml), on its own port; each
    // refused host lands once in the task's events.
    if (config.agentProxy) {
      const grants = new ProxyGrants();
      const proxy = new AgentProxy({
        grants,
        onBlocked: (taskId, host, reason) => {
          store.appendEvent(taskId, blockedHostEvent(host, reason));
          log.info({ taskId, host, reason }, 'agent proxy refused a host');
        },
      });
      const port = await proxy.listen(config.agentProxy.port, config.agentProxy.host);
      const url = config.agentProxy.url ?? `http://127.0.0.1:${port}`;
      handle.agentProxy = { proxy, grants, url };
      log.info({ port, host: config.agentProxy.host, url }, 'agent proxy listening');
    }

    const gatewayUrl = config.runner.backend === 'local' ? `http://127.0.0.1:${config.port}/v1` : `${config.publicUrl.replace(/\/$/, '')}/v1`;
    // Automatic fixes of failing checks: attempts are stored in the task database (own tables, own
    // connection: the store's is private), so they survive restarts.
    const autofixDb = new DatabaseSync(dbFile);
    autofixDb.exec('PRAGMA busy_timeout = 5000;');
    const autofixGate = new AutofixGate(sqliteAutofixAttempts(autofixDb));
    let failures: CheckFailures | undefined;
    // The App's login, read once for the triggers and the thread reporter.
    const botLogin = appLogin(() => app.auth());
    const service = new TaskService({
      ...(handle.agentProxy ? { agentProxy: handle.agentProxy } : {}),
      store,
      backend,
      tokens,
      github: { forInstallation: (id) => app.auth(id), asApp: () => app.auth() },
      botLogin,
      log,
      publicUrl: config.publicUrl,
      gatewayUrl,
      concurrency: config.concurrency,
      mention: config.mention,
      modelRetry: config.modelRetry,
      onFinal: (task, outcome) => failures?.taskEnded(task, outcome),
      // Environments where the backend keeps them: locally, or on ECS with CODEX_ENV_BUCKET.
      ...(config.environments && (config.runner.backend === 'local' || config.runner.environmentBucket) ? { environments: { maxArchiveBytes: config.environments.maxArchiveBytes } } : {}),
    });
    Object.assign(handle, { service, store, backend });

    const deps: TriggerDeps = {
      service,
      lookups: new SharedLookups(),
      settings: {
        mention: config.mention,
        allowedBots: config.allowedBots,
        model: config.model,
        reasoningEffort: config.reasoningEffort,
        timeoutMs: config.taskTimeoutMs,
        maxTokens: config.maxTokens,
      },
      botLogin,
      log,
      ...(config.appId ? { fixes: { appId: config.appId, personAsked: (repo, pullNumber) => autofixGate.personActed({ repo, pullNumber }) } } : {}),
      ...(opts.acknowledgements ? { acknowledgements: opts.acknowledgements } : {}),
    };
    // The app's login is needed by the first mention: read it now (a failure is read again then).
    void deps.botLogin().catch(() => undefined);
    if (config.appId) {
      failures = new CheckFailures({ service, gate: autofixGate, github: { forInstallation: (id) => app.auth(id), asApp: () => app.auth() }, settings: deps.settings, appId: config.appId, log });
    }

    registerTriggers(app, deps, failures);

    addHandler(healthz(handle));
    // The ECS backend serves the runners' claim, progress and result routes.
    if (backend.httpHandler) addHandler(backend.httpHandler);
    addHandler(
      createModelGateway({
        tokens,
        upstreamBaseUrl: config.openai.baseUrl,
        upstreamApiKey: config.openai.apiKey,
        log,
        // The gateway has revoked the task token; the task ends.
        onBudgetExceeded: (taskId) =>
          void service
            .abort(taskId, 'the task used its token budget')
            .catch((error: unknown) => log.warn({ taskId, err: String(error) }, 'could not end a task over its token budget')),
      }),
    );
    // The task page: the stored task, its result and links; base files for the diff read from GitHub.
    const githubWeb = config.github.host ? `${config.github.protocol}://${config.github.host}` : 'https://github.com';
    addHandler(
      createTaskPageHandler({
        ...(config.tokenPrices ? { prices: config.tokenPrices } : {}),
        source: {
          get: (taskId) => {
            const task = store.get(taskId);
            if (!task) return undefined;
            const { owner, repo, target } = task.request;
            const repoUrl = `${githubWeb}/${owner}/${repo}`;
            // Issue work: the commit once its pull request exists; pull request work: the commit once pushed.
            const published = (task.pullRequest || target.type === 'pull_request') && task.commitSha;
            return {
              key: task.logKey,
              title: target.title,
              repository: `${owner}/${repo}#${target.number}`,
              state: task.state,
              events: store.events(taskId),
              ...(task.result ? { result: task.result } : {}),
              ...(task.failure ? { failure: task.failure } : {}),
              model: task.request.settings.model,
              links: {
                thread: `${repoUrl}/${target.type === 'pull_request' ? 'pull' : 'issues'}/${target.number}`,
                ...(task.pullRequest ? { pullRequest: task.pullRequest } : {}),
                ...(published ? { commit: { sha: task.commitSha!, url: `${repoUrl}/commit/${task.commitSha}` } } : {}),
              },
            };
          },
          subscribe: (taskId, listener) => service.subscribe(taskId, listener),
          readBaseFile: async (taskId, baseSha, filePath) => {
            const task = store.get(taskId);
            if (!task) return null;
            const octokit = await app.auth(task.request.installationId);
            try {
              const { data } = await octokit.rest.repos.getContent({ owner: task.request.owner, repo: task.request.repo, path: filePath, ref: baseSha });
              if (Array.isArray(data)) return null;
              if (data.type === 'symlink') return Buffer.from(data.target);
              if (data.type !== 'file') return null;
              if (data.encoding !== 'base64') throw new Error('the file is too large for the contents API');
              return Buffer.from(data.content, 'base64');
            } catch (error) {
              if ((error as { status?: number }).status === 404) return null;
              throw error;
            }
          },
        },
      }),
    );
  };
}
