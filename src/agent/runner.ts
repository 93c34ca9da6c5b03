/**
 * The runner program: one task from TaskSpec to TaskResult through the phases checkout → setup →
 * agent → result (DESIGN.md, "Runner contract"). The same code runs under every backend.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type {
  CommandRecord,
  EnvironmentOutcome,
  FileChange,
  Phase,
  ProgressEventInput,
  SetupStatus,
  StopReason,
  TaskResult,
  TaskSpec,
} from '../contract.ts';
import { collectChanges } from './changes.ts';
import { checkoutRepository } from './checkout.ts';
import { commitMessageOf, parseFinalMessage } from './final-message.ts';
import { MAINTENANCE_SCRIPT_NAME, prepareEnvironment, SETUP_SCRIPT_NAME } from './environment/phase.ts';
import type { TrustedRepository } from './git.ts';
import type { ReviewPhaseOutcome } from './review-phase.ts';
import { runRecorded } from './recorded-command.ts';
import { buildTaskInput, capAgentsDocs, collectAgentsDocs } from './instructions.ts';
import type { AgentLoopOutcome } from './loop.ts';
import type { TokenUsage } from './model.ts';
import { BASE_INSTRUCTIONS } from './prompts/base.ts';
import { agentProxyEnv, startProxyBridge, type ProxyBridge } from './proxy-bridge.ts';
import { createSandbox, sandboxEnv, type Sandbox, type SandboxOptions } from './sandbox.ts';
import { readOnlyPathsFromEnv, runnerHiddenPaths } from './sandbox-mounts.ts';
import { detectSetup, toolPaths } from './setup.ts';
import { setupEnvironment } from './setup-env.ts';
import { ToolRunner } from './tools/index.ts';
import { adoptWorkingTree, excludeSetupOutput } from './trusted-repo.ts';

/** Thrown inside a phase to fail the task at that phase with a readable reason. */
export class PhaseError extends Error {
  override name = 'PhaseError';
  readonly phase: Phase;
  constructor(phase: Phase, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.phase = phase;
  }
}

/** Inputs of {@link runTask}. */
export interface RunTaskOptions {
  spec: TaskSpec;
  /**
   * Scratch directory of this task: `<workDir>/repo` is the checkout, `<workDir>/home` the sandbox
   * home, `<workDir>/git` the private git directory (never writable in the sandbox).
   */
  workDir: string;
  /**
   * Work in place on an existing directory instead of cloning (`codex-cloud exec`): no checkout and
   * no setup phase; changes are reported against `spec.repository.baseSha` when it is a git repo.
   */
  inPlace?: string;
  /** Receives every progress event (the caller stamps and writes them). */
  emit: (event: ProgressEventInput) => void;
  /** Aborting cancels the task; the result then has status `cancelled` with the partial work. */
  signal?: AbortSignal;
  /**
   * `setup`: stop after the setup phase (the ECS backend's setup task); the result then has no
   * changes and status `no_changes`, or `failed` with the failed phase. Default: every phase.
   */
  phase?: 'setup';
}

const STOP_TEXT: Record<StopReason, string> = {
  completed: 'completed',
  turn_limit: 'turn limit reached',
  time_limit: 'wall-clock limit reached',
  token_limit: 'token budget used up',
  cancelled: 'cancelled',
  model_error: 'the model could not be reached',
  error: 'internal error',
};

async function importAgentModules() {
  const [{ runAgentLoop }, { createModelClient }, { runReviewPhase }] = await Promise.all([import('./loop.ts'), import('./model.ts'), import('./review-phase.ts')]);
  return { runAgentLoop, createModelClient, runReviewPhase };
}

/** The import of the agent phase's modules, once started (like the module cache it extends, per process). */
let agentModules: ReturnType<typeof importAgentModules> | undefined;

/**
 * The agent phase's modules, the OpenAI SDK among them (the largest part of a runner's start-up):
 * imported on first use, while the checkout and the sandbox check run (see runTask), or ahead of the
 * task by a standby runner (`runner --preload`). Never rejects twice for one process: a failed
 * import is the agent phase's failure.
 */
export function preloadAgentModules(): ReturnType<typeof importAgentModules> {
  if (!agentModules) {
    agentModules = importAgentModules();
    agentModules.catch(() => undefined);
  }
  return agentModules;
}

/**
 * Runs one task through all its phases and always returns a TaskResult (failures included, with the
 * failed phase, the reason and any partial work). Never throws for task-level failures.
 */
export async function runTask(opts: RunTaskOptions): Promise<TaskResult> {
  const { spec, emit } = opts;
  const taskStart = Date.now();
  const deadline = taskStart + spec.limits.wallTimeMs;
  const phaseMs: Partial<Record<Phase, number>> = {};
  const commands: CommandRecord[] = [];
  const root = opts.inPlace ? path.resolve(opts.inPlace) : path.join(opts.workDir, 'repo');
  const home = path.join(opts.workDir, 'home');
  const privateGitDir = path.join(opts.workDir, 'git');
  // The git directory host-side git uses (never the workspace's .git): set once it exists.
  let repo: TrustedRepository | undefined;
  let loop: AgentLoopOutcome | undefined;
  let tools: ToolRunner | undefined;
  let failure: { phase: Phase; reason: string } | undefined;
  let changes: FileChange[] = [];
  // A review task (spec.kind 'review'): its findings and verdict; it publishes no changes.
  let review: ReviewPhaseOutcome | undefined;
  let baseSha = spec.repository.baseSha;
  let setup: SetupStatus | undefined;
  let environment: EnvironmentOutcome | undefined;
  const cancelled = () => opts.signal?.aborted === true;

  async function phase<T>(name: Phase, body: () => Promise<T>): Promise<T> {
    const started = performance.now();
    emit({ type: 'phase', phase: name, status: 'started' });
    try {
      const value = await body();
      phaseMs[name] = performance.now() - started;
      emit({ type: 'phase', phase: name, status: 'completed', durationMs: phaseMs[name] });
      return value;
    } catch (error) {
      phaseMs[name] = performance.now() - started;
      const reason = cancelled() ? 'cancelled' : error instanceof Error ? error.message : String(error);
      emit({ type: 'phase', phase: name, status: 'failed', durationMs: phaseMs[name], reason });
      throw error instanceof PhaseError ? error : new PhaseError(name, reason, { cause: error });
    }
  }

  const sandboxBase: Omit<SandboxOptions, 'network'> = {
    mode: spec.sandbox,
    workspace: root,
    home,
    extraPath: toolPaths(root, home),
    extraEnv: { VIRTUAL_ENV: path.join(home, '.venv') },
    limits: Object.fromEntries(Object.entries({
      maxProcesses: spec.limits.maxProcesses, tmpBytes: spec.limits.tmpBytes, diskBytes: spec.limits.diskBytes,
    }).filter(([, v]) => v !== undefined)),
  };

  // The agent phase's network (TaskSpec `network`): the runner's end of the way to the app's proxy.
  let proxyBridge: ProxyBridge | undefined;
  let sandboxReady: Promise<Sandbox> | undefined;
  try {
    await mkdir(home, { recursive: true });
    await mkdir(root, { recursive: true });
    // Nothing of the app, the data directory or other tasks shows inside the sandbox.
    sandboxBase.hidePaths = runnerHiddenPaths(opts.workDir, root, process.cwd(), process.env);
    sandboxBase.readOnlyPaths = readOnlyPathsFromEnv(process.env);
    // The sandbox is checked before anything of the repository runs: no sandbox, no task (never
    // silently unsandboxed). The check runs while the checkout (host git, hardened, which runs
    // nothing of the repository) fetches, and the checkout phase waits for both.
    sandboxReady = (async () => {
      try {
        const network = spec.network;
        if (network && spec.sandbox === 'bubblewrap') proxyBridge = await startProxyBridge(network);
        return await createSandbox({
          ...sandboxBase,
          network: false,
          ...(network
            ? { extraEnv: { ...sandboxBase.extraEnv, ...agentProxyEnv(network, spec.sandbox) }, proxySocket: proxyBridge?.socketPath }
            : {}),
        });
      } catch (error) {
        throw new PhaseError(opts.inPlace ? 'agent' : 'checkout', `no sandbox could be created: ${(error as Error).message}`);
      }
    })();
    // Awaited below; a checkout that fails first must not leave the rejection unhandled.
    sandboxReady.catch(() => undefined);
    if (opts.inPlace) await sandboxReady;

    if (!opts.inPlace) {
      const checkedOut = await phase('checkout', async () => {
        const checkout = checkoutRepository({
          cloneUrl: spec.repository.cloneUrl,
          token: spec.repository.token,
          baseSha: spec.repository.baseSha,
          baseRef: spec.repository.baseRef,
          // Pull request work: the head the app dispatched, with the history of the pull request.
          ...(spec.repository.headSha
            ? {
                headSha: spec.repository.headSha,
                ...(spec.repository.headRef ? { headRef: spec.repository.headRef } : {}),
                ...(spec.repository.fetchRef ? { fetchRef: spec.repository.fetchRef } : {}),
                ...(spec.repository.prCommits ? { prCommits: spec.repository.prCommits } : {}),
              }
            : {}),
          dir: root,
          gitDir: privateGitDir,
          timeoutMs: Math.max(1000, Math.min(10 * 60_000, deadline - Date.now())),
          signal: opts.signal,
        });
        // Loaded once the checkout's and the sandbox check's processes run, so that loading overlaps them.
        void preloadAgentModules();
        const [done] = await Promise.all([checkout, sandboxReady!]);
        return done;
      });
      baseSha = checkedOut.sha;
      repo = checkedOut.repository;
      // Environments: restore a cached environment instead of setup, or save it after setup.
      const setupRepo = repo;
      const report = (s: SetupStatus) => (setup = s);
      environment = await phase('setup', () => prepareEnvironment({
        spec, workDir: opts.workDir, repo: setupRepo, emit, signal: opts.signal,
        setup: () => runSetup(spec, root, home, sandboxBase, deadline, commands, emit, opts.signal, report),
        maintenance: (script) => runSetup(spec, root, home, sandboxBase, deadline, commands, emit, opts.signal, report, script).then(() => undefined),
      }));
      if (environment?.status === 'restored' && !setup) setup = { status: 'skipped', reason: 'a cached environment was restored' };
      // What setup left in the checkout (dependencies in a repository that ignores nothing, build
      // output) is not the agent's work: keep it out of the changes.
      const leftBySetup = await excludeSetupOutput(setupRepo);
      if (leftBySetup.length > 0) {
        const shown = leftBySetup.slice(0, 10).join(', ');
        emit({ type: 'log', level: 'info', message: `setup left ${leftBySetup.length} untracked path(s) in the checkout, kept out of the changes: ${shown}${leftBySetup.length > 10 ? ', …' : ''}` });
      }
    } else {
      // Before the agent runs: from now on the repository's own .git is the agent's to write.
      repo = await adoptWorkingTree(root, privateGitDir).catch((error: unknown) => {
        throw new PhaseError('agent', `the working tree's git repository cannot be used: ${(error as Error).message}`);
      });
    }

    const agentSandbox = await sandboxReady;
    if (opts.phase !== 'setup') await phase('agent', async () => {
      const { runAgentLoop, createModelClient, runReviewPhase } = await preloadAgentModules();
      if (spec.kind === 'review') {
        review = await runReviewPhase({ spec, root, privateGitDir, sandbox: agentSandbox, deadline, emit, signal: opts.signal });
        loop = review.loop;
        tools = review.tools;
        if (loop.stopReason === 'model_error' || loop.stopReason === 'error') {
          throw new PhaseError('agent', loop.stopDetail ?? STOP_TEXT[loop.stopReason]);
        }
        if (loop.stopReason === 'completed' && review.invalidOutput !== undefined) {
          throw new PhaseError('agent', `the review's final message is not a valid review JSON object (also after one request to restate it): ${review.invalidOutput}`);
        }
        return;
      }
      if (spec.network) {
        emit({ type: 'log', level: 'info', message: `agent network: only through the app's proxy, to ${spec.network.allow.join(', ')}` });
      }
      // AGENTS.md chosen by the app (a fork's pull request: the base branch's) wins over the checkout's.
      const agentsDocs = spec.agentsDocs ? capAgentsDocs(spec.agentsDocs) : await collectAgentsDocs(root);
      const client = createModelClient({ baseUrl: spec.model.baseUrl, apiKey: spec.model.apiKey });
      const commandSignal = opts.signal
        ? AbortSignal.any([opts.signal, AbortSignal.timeout(Math.max(1, deadline - Date.now()))])
        : AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      tools = new ToolRunner({
        sandbox: agentSandbox,
        root,
        commandTimeoutMs: spec.limits.commandTimeoutMs,
        deadline,
        signal: commandSignal,
        emit,
      });
      loop = await runAgentLoop({
        client,
        model: spec.model.name,
        reasoningEffort: spec.model.reasoningEffort,
        taskId: spec.id,
        instructions: BASE_INSTRUCTIONS,
        input: buildTaskInput({
          instruction: spec.instruction,
          context: spec.context,
          agentsDocs,
          repository: opts.inPlace ? undefined : spec.repository,
          requester: spec.requester,
          cwd: root,
          ...(spec.network ? { networkAllow: spec.network.allow } : {}),
        }),
        tools,
        limits: { maxTurns: spec.limits.maxTurns, deadline, maxTokens: spec.limits.maxTokens },
        retry: { retries: spec.model.maxRetries, baseMs: spec.model.retryBaseMs },
        signal: opts.signal,
        emit,
      });
      if (loop.stopReason === 'model_error' || loop.stopReason === 'error') {
        throw new PhaseError('agent', loop.stopDetail ?? STOP_TEXT[loop.stopReason]);
      }
    });
  } catch (error) {
    failure = {
      phase: error instanceof PhaseError ? error.phase : 'agent',
      reason: error instanceof Error ? error.message : String(error),
    };
  }

  // A sandbox check still running (the checkout failed first) may yet start the proxy bridge.
  await sandboxReady?.catch(() => undefined);
  await proxyBridge?.close().catch(() => undefined);

  // The result phase runs whenever there is a checkout, so partial work is never lost.
  if (opts.phase !== 'setup' && (!failure || failure.phase === 'agent')) {
    try {
      changes = await phase('result', async () => {
        // A review changes nothing: whatever the agent wrote in the checkout is discarded.
        if (!repo || spec.kind === 'review') return [];
        const collected = await collectChanges(repo, baseSha);
        for (const s of collected.skipped) emit({ type: 'log', level: 'warn', message: `not included: ${s.path}: ${s.reason}` });
        return collected.changes;
      });
    } catch (error) {
      failure ??= { phase: 'result', reason: (error as Error).message };
    }
  }

  const stopReason: StopReason = loop?.stopReason ?? (cancelled() ? 'cancelled' : failure ? 'error' : 'completed');
  if (!failure && stopReason !== 'completed' && stopReason !== 'cancelled') {
    failure = { phase: 'agent', reason: `the agent stopped early: ${loop?.stopDetail ?? STOP_TEXT[stopReason]}` };
  }
  const status: TaskResult['status'] = cancelled() || stopReason === 'cancelled'
    ? 'cancelled'
    : failure
      ? 'failed'
      : changes.length > 0 || review?.parsed
        ? 'succeeded'
        : 'no_changes';

  const finalMessage = loop?.finalMessage ?? '';
  // The title comes from the final message, else the title; never from the raw instruction.
  const threadTitle = spec.context.find((c) => (c.kind === 'issue' || c.kind === 'pull_request') && c.title?.trim())?.title ?? '';
  const parsed = parseFinalMessage(finalMessage, threadTitle);
  // A review's summary is its verdict's explanation (its final message is the review JSON).
  let summary = review?.parsed ? review.parsed.verdict.explanation : parsed.body || finalMessage.trim();
  if (status === 'failed' || status === 'cancelled') {
    const why = status === 'cancelled' ? 'The task was cancelled.' : `The task failed at the ${failure!.phase} phase: ${failure!.reason}`;
    summary = [why, parsed.body ? `\nThe agent's last message:\n\n${parsed.body}` : ''].join('\n').trim();
  }
  const usage: TokenUsage = loop?.usage ?? { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0 };
  const allCommands = [...commands, ...(tools?.commands ?? [])];
  return {
    version: 1,
    id: spec.id,
    status,
    stopReason,
    ...(failure && status !== 'cancelled' ? { failure } : {}),
    baseSha,
    summary,
    changes,
    commitMessage: commitMessageOf(parsed),
    pullRequest: { title: parsed.title, body: parsed.body },
    commands: allCommands,
    findings: review?.parsed?.findings ?? [],
    ...(review?.parsed ? { review: review.parsed.verdict } : {}),
    plan: tools?.plan ?? [],
    ...(setup ? { setup } : {}),
    ...(environment ? { environment } : {}),
    usage: {
      ...usage,
      turns: loop?.turns ?? 0,
      phaseMs,
      modelMs: loop?.modelMs ?? 0,
      commandMs: allCommands.reduce((sum, c) => sum + c.durationMs, 0),
      totalMs: Date.now() - taskStart,
    },
  };
}

async function runSetup(
  spec: TaskSpec,
  root: string,
  home: string,
  sandboxBase: Omit<SandboxOptions, 'network'>,
  deadline: number,
  commands: CommandRecord[],
  emit: (event: ProgressEventInput) => void,
  signal: AbortSignal | undefined,
  report: (status: SetupStatus) => void,
  maintenance?: string,
): Promise<boolean> {
  // Only the setup phase sees the host's CA and proxy variables (and CODEX_SETUP_ENV's), and the CA files.
  const hostEnv = setupEnvironment(process.env);
  for (const r of hostEnv.refused) emit({ type: 'log', level: 'warn', message: `setup environment: ${r}` });
  const sandbox = await createSandbox({
    ...sandboxBase,
    network: true,
    extraEnv: { ...hostEnv.env, ...sandboxBase.extraEnv },
    readOnlyPaths: [...(sandboxBase.readOnlyPaths ?? []), ...hostEnv.readOnlyPaths],
  });
  const failures: string[] = [];
  const setupDeadline = Math.min(deadline, Date.now() + spec.limits.setupTimeoutMs);
  const run = async (command: string[], label: string, required: boolean) => {
    const remaining = setupDeadline - Date.now();
    if (remaining <= 0) {
      const reason = `the setup phase timed out after ${Math.round(spec.limits.setupTimeoutMs / 1000)} s`;
      report({ status: 'failed', reason });
      throw new PhaseError('setup', reason);
    }
    const result = await runRecorded({ sandbox, phase: 'setup', command, cwd: root, workdir: '.', timeoutMs: remaining, signal, emit, commands });
    if (result.exitCode !== 0) {
      const tail = result.output.trim().split('\n').slice(-15).join('\n');
      const what = result.timedOut ? 'timed out' : `exited with ${result.exitCode ?? result.signal}`;
      if (required) {
        report({ status: 'failed', reason: `${label} ${what}` });
        throw new PhaseError('setup', `${label} ${what}:\n${tail}`);
      }
      failures.push(`${label} ${what}`);
      emit({ type: 'log', level: 'warn', message: `${label} ${what}; the agent goes on without it.\n${tail}` });
    }
  };
  if (maintenance !== undefined || spec.setup.script) {
    const script = path.join(home, maintenance !== undefined ? MAINTENANCE_SCRIPT_NAME : SETUP_SCRIPT_NAME);
    await writeFile(script, maintenance ?? spec.setup.script!, { mode: 0o700 });
    await run(['bash', '-eo', 'pipefail', script], maintenance !== undefined ? 'the maintenance script' : 'the setup script', true);
    report(maintenance !== undefined ? { status: 'skipped', reason: 'a cached environment was restored; its maintenance script succeeded' } : { status: 'succeeded' });
    return true;
  }
  if (!spec.setup.autoInstall) {
    report({ status: 'skipped', reason: 'auto_install is off and there is no setup script' });
    return true;
  }
  const env = sandboxEnv({ home, extraEnv: sandboxBase.extraEnv, extraPath: sandboxBase.extraPath });
  const { steps, missing } = await detectSetup(root, home, env.PATH ?? '');
  for (const m of missing) emit({ type: 'log', level: 'warn', message: `setup skipped: ${m}` });
  for (const step of steps) await run(step.command, step.label, false);
  if (failures.length) report({ status: 'failed', reason: `${failures.join('; ')}; the agent went on without it` });
  else if (steps.length) report({ status: 'succeeded' });
  else report({ status: 'skipped', reason: missing.length ? missing.join('; ') : 'nothing to install was found' });
  return failures.length === 0;
}
