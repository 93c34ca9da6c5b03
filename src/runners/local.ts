/**
 * The local runner backend: the runner program as a child process of the app, the TaskSpec on its
 * stdin, progress events and the TaskResult as JSON lines on its stdout. Commands the model runs are
 * sandboxed by the runner itself (bubblewrap); the runner process runs as another user than the app
 * when {@link LocalRunnerOptions.runAs} is set (see runner-user.ts for what the host must provide).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSetupEnvNames, SETUP_CA_VARIABLES, SETUP_PROXY_VARIABLES } from '../agent/setup-env.ts';
import { ProgressEvent, TaskResult, type Phase } from '../contract.ts';
import { DEFAULT_MAX_TOTAL_BYTES } from '../github/validate-result.ts';
import { failedResult, type RunnerBackend, type RunnerExecution, type RunnerJob } from './backend.ts';
import type { EnvironmentCache } from './environment-cache.ts';
import { unreachableDirectory, type RunnerUser } from './runner-user.ts';

/**
 * Variables the runner process may inherit from the app. Everything else (the GitHub App's private
 * key, the webhook secret, the OpenAI key, AWS credentials) stays in the app.
 */
export const RUNNER_ENV_ALLOWLIST = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  // CA bundles and proxies, which the runner passes to the setup phase only (setup-env.ts). The
  // files they name must be readable by the runner's user.
  ...SETUP_CA_VARIABLES,
  ...SETUP_PROXY_VARIABLES,
  // Operator-listed read-only paths for the sandbox (toolchains); not secrets.
  'CODEX_SANDBOX_RO_PATHS',
  // Operator-listed variables for the setup phase (never secrets); the variables it names are passed too.
  'CODEX_SETUP_ENV',
];

/**
 * The runner process's environment from the app's `env`: the {@link RUNNER_ENV_ALLOWLIST} variables
 * and those `CODEX_SETUP_ENV` names (names that look like secrets are refused, see setup-env.ts).
 */
export function runnerEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...RUNNER_ENV_ALLOWLIST, ...parseSetupEnvNames(env.CODEX_SETUP_ENV).names]) {
    if (env[key] !== undefined) out[key] = env[key];
  }
  return out;
}

const MIB = 1024 * 1024;

/**
 * Default {@link LocalRunnerOptions.maxLineBytes}: 75 MiB, room for the result line of the largest
 * change set the app publishes (validate-result's 50 MiB in total, base64-encoded: 66.7 MiB) plus
 * 8 MiB for the result's texts, rounded up to a whole MiB. A longer line cannot be a result the app
 * would accept.
 */
export const DEFAULT_MAX_LINE_BYTES = Math.ceil((Math.ceil(DEFAULT_MAX_TOTAL_BYTES / 3) * 4 + 8 * MIB) / MIB) * MIB;

/** Sizes in messages: `75 MiB`, `512 KiB`, `100 bytes`. */
function formatSize(bytes: number): string {
  if (bytes >= MIB) return `${Math.round((bytes / MIB) * 10) / 10} MiB`;
  if (bytes >= 1024) return `${Math.round((bytes / 1024) * 10) / 10} KiB`;
  return `${bytes} bytes`;
}

/**
 * Splits a byte stream into UTF-8 lines (`\n`, with a trailing `\r` dropped) without ever holding
 * more than `maxBytes` of one line: once a line passes the limit, `onOverflow` is called once and
 * everything after is discarded.
 */
class BoundedLineSplitter {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private readonly maxBytes: number;
  private readonly onLine: (line: string) => void;
  private readonly onOverflow: () => void;

  constructor(maxBytes: number, onLine: (line: string) => void, onOverflow: () => void) {
    this.maxBytes = maxBytes;
    this.onLine = onLine;
    this.onOverflow = onOverflow;
  }

  /** Feeds a chunk of the stream. */
  push(chunk: Buffer): void {
    if (this.overflowed) return;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      if (this.size + (end - start) > this.maxBytes) {
        this.overflowed = true;
        this.chunks = [];
        this.size = 0;
        this.onOverflow();
        return;
      }
      if (newline === -1) {
        if (end > start) {
          this.chunks.push(chunk.subarray(start));
          this.size += end - start;
        }
        return;
      }
      this.chunks.push(chunk.subarray(start, end));
      this.emit();
      start = newline + 1;
    }
  }

  /** Ends the stream: a last line without a newline is still a line. */
  end(): void {
    if (!this.overflowed && this.size > 0) this.emit();
  }

  private emit(): void {
    const line = Buffer.concat(this.chunks).toString('utf8').replace(/\r$/, '');
    this.chunks = [];
    this.size = 0;
    this.onLine(line);
  }
}

/** The default runner command: this package's CLI (compiled when built, else the sources). */
export function defaultRunnerCommand(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const built = path.resolve(here, '../cli.js');
  const source = path.resolve(here, '../cli.ts');
  return [process.execPath, existsSync(built) ? built : source, 'runner'];
}

/** Options of {@link LocalRunnerBackend}. */
export interface LocalRunnerOptions {
  /** Directory under which each task gets `<workRoot>/<task id>` (removed when the task ends). */
  workRoot: string;
  /** argv of the runner (default {@link defaultRunnerCommand}); `--workdir DIR` is appended. */
  command?: string[];
  /** Grace between SIGTERM and SIGKILL on cancel or timeout, ms (default 10 s). */
  killGraceMs?: number;
  /** Keep work directories (debugging). */
  keepWorkDirs?: boolean;
  /**
   * Longest line (a progress event or the TaskResult) read from the runner's stdout, bytes; a longer
   * one stops the runner and fails the task while it streams, before it is buffered whole. Default
   * {@link DEFAULT_MAX_LINE_BYTES}.
   */
  maxLineBytes?: number;
  /**
   * Run the runner as this user (Node's spawn `uid`/`gid`, no supplementary groups), so that it
   * cannot read the app's `/proc/<pid>/environ` or files even after escaping the sandbox. Its work
   * directory is then created mode 0700 and owned by that user inside a `workRoot` of mode 0711
   * (other tasks' directories cannot be listed), it starts in it and `HOME` points at it. Needs a
   * privileged app (root or CAP_SETUID/CAP_SETGID). Unset: the app's own user.
   */
  runAs?: RunnerUser;
  /**
   * The environment cache (issue 12): for a TaskSpec with `environment`, the backend fills its
   * `restore` and `save` paths and adopts the saved archive after the task. Unset: the spec's
   * `environment` is removed and setup always runs.
   */
  environments?: EnvironmentCache;
  /**
   * Node.js's compile cache for the runner processes (`NODE_COMPILE_CACHE`,
   * https://nodejs.org/api/module.html#module-compile-cache): the runner's modules are compiled once
   * and the cache is reused by every later runner, which halves a runner's start-up. A directory of
   * the runner's user (mode 0700) that sandboxes never see. Default `<workRoot>/.node-compile-cache`;
   * false: none.
   */
  compileCacheDir?: string | false;
  /**
   * How much lower the runner's CPU scheduling priority is than the app's: added to the app's nice
   * value (`os.setPriority` right after the spawn, capped at 19, the lowest priority), and inherited
   * by everything the runner starts (its sandboxes, the commands in them). So the app's control plane
   * (webhook answers, 👀, replies) stays responsive while runners build and test on the same cores.
   * 0 leaves the runner at the app's priority. Default {@link DEFAULT_RUNNER_NICE}
   * (`CODEX_RUNNER_NICE`). See nice(1) and setpriority(2).
   */
  nice?: number;
  /**
   * Keep one runner process started ahead of the next task (`runner --preload`: Node.js started
   * and every module loaded, waiting for its TaskSpec on stdin, holding no secret), in a work
   * directory of its own. A task takes it instead of starting a runner, which takes a runner's
   * start-up (about 0.2 s) off the time to the first model request; the next one is started at
   * once. Default false (`CODEX_RUNNER_STANDBY` turns it on in the app).
   */
  standby?: boolean;
}

/** A runner process and its work directory, started by {@link LocalRunnerBackend}. */
interface RunnerProcess {
  child: ChildProcess;
  workDir: string;
  /** Resolves once the process runs; rejects when it could not be started. */
  spawned: Promise<void>;
  /** Resolves when the process has exited and its output streams closed. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Default {@link LocalRunnerOptions.nice}: 10, as nice(1) uses when given no adjustment. */
export const DEFAULT_RUNNER_NICE = 10;

/** The lowest CPU scheduling priority a nice value can give (setpriority(2)). */
const LOWEST_PRIORITY = 19;

/** Starts each runner as a local child process. */
export class LocalRunnerBackend implements RunnerBackend {
  readonly name = 'local' as const;
  private readonly opts: LocalRunnerOptions;
  private readonly children = new Set<ChildProcess>();
  /** The compile cache directory once created (and given to the runner's user), or undefined for none. */
  private compileCache: Promise<string | undefined> | undefined;
  /** The runner started ahead of the next task (see {@link LocalRunnerOptions.standby}). */
  private standby: Promise<RunnerProcess | undefined> | undefined;
  private closed = false;

  constructor(opts: LocalRunnerOptions) {
    this.opts = opts;
    if (opts.standby) this.startStandby();
  }

  /** Starts the next standby runner in the background; a failure only means the next task starts its own. */
  private startStandby(): void {
    if (this.closed) return;
    this.standby = (async () => {
      const compileCache = await this.compileCacheDirectory();
      const workDir = await this.prepareWorkDir(`standby-${randomUUID()}`);
      if (this.closed) {
        await rm(workDir, { recursive: true, force: true });
        return undefined;
      }
      const runner = this.spawnRunner(workDir, { preload: true, compileCache });
      await runner.spawned;
      return runner;
    })().catch((error: unknown) => {
      process.emitWarning(`no standby runner: ${(error as Error).message}`);
      return undefined;
    });
  }

  /** The standby runner if one is ready and alive (then the next is started), else undefined. */
  private async takeStandby(): Promise<RunnerProcess | undefined> {
    const pending = this.standby;
    this.standby = undefined;
    const runner = pending ? await pending : undefined;
    if (this.opts.standby) this.startStandby();
    if (!runner) return undefined;
    if (runner.child.exitCode !== null || runner.child.signalCode !== null) {
      await rm(runner.workDir, { recursive: true, force: true }).catch(() => undefined);
      return undefined;
    }
    return runner;
  }

  /**
   * Creates the work directory `<workRoot>/<name>`; with a runner user, mode 0700 and owned by it
   * inside a work root of mode 0711.
   * @throws Error when the runner's user cannot reach it.
   */
  private async prepareWorkDir(name: string): Promise<string> {
    const workDir = path.join(this.opts.workRoot, name);
    const { runAs } = this.opts;
    if (runAs) {
      await mkdir(this.opts.workRoot, { recursive: true });
      await chmod(this.opts.workRoot, 0o711);
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      await chown(workDir, runAs.uid, runAs.gid);
      const blocked = await unreachableDirectory(workDir, runAs);
      if (blocked) {
        await rm(workDir, { recursive: true, force: true });
        throw new Error(
          `the runner's user (uid ${runAs.uid}) cannot reach its work directory ${workDir}: ${blocked} is not searchable by it ` +
            '(make it searchable, e.g. chmod o+x, or move CODEX_DATA_DIR)',
        );
      }
    } else {
      await mkdir(workDir, { recursive: true });
    }
    return workDir;
  }

  /**
   * Spawns a runner working in `workDir` (`preload`: a standby that loads everything first), with
   * the compile cache directory when there is one.
   */
  private spawnRunner(workDir: string, opts: { preload: boolean; compileCache: string | undefined }): RunnerProcess {
    const { preload, compileCache } = opts;
    const { runAs } = this.opts;
    const argv = [...(this.opts.command ?? defaultRunnerCommand()), '--workdir', workDir, ...(preload ? ['--preload'] : [])];
    const env = runnerEnvironment(process.env);
    // The app's HOME is not the runner user's to write; the work directory is.
    if (runAs) env.HOME = workDir;
    // The runner hides the app's working directory (.env, key files) from its sandboxes even when it
    // starts elsewhere (as another user, in its work directory).
    env.CODEX_SANDBOX_HIDE_PATHS = process.cwd();
    if (compileCache) env.NODE_COMPILE_CACHE = compileCache;
    const child = spawn(argv[0]!, argv.slice(1), {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid, cwd: workDir } : {}),
    });
    // Lower the runner's priority before it can start anything (the sandboxes inherit it). Best
    // effort: a failure (an app without the right to lower another user's process) is reported, and
    // the runner runs at the app's priority.
    const nice = this.opts.nice ?? DEFAULT_RUNNER_NICE;
    if (nice > 0 && child.pid !== undefined) {
      try {
        os.setPriority(child.pid, Math.min(LOWEST_PRIORITY, os.getPriority() + nice));
      } catch (error) {
        process.emitWarning(`the runner's CPU priority could not be lowered (CODEX_RUNNER_NICE): ${(error as Error).message}`);
      }
    }
    this.children.add(child);
    child.once('close', () => this.children.delete(child));
    child.stdin!.on('error', () => undefined);
    // Listened to at once: a standby's events happen before a task takes it.
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (error) => reject(new Error(`the runner could not be started: ${error.message}`)));
    });
    spawned.catch(() => undefined);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    return { child, workDir, spawned, exited };
  }

  /** Creates the compile cache directory once; a failure only costs start-up time (no cache). */
  private compileCacheDirectory(): Promise<string | undefined> {
    const dir = this.opts.compileCacheDir ?? path.join(this.opts.workRoot, '.node-compile-cache');
    if (dir === false) return Promise.resolve(undefined);
    this.compileCache ??= (async () => {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      if (this.opts.runAs) await chown(dir, this.opts.runAs.uid, this.opts.runAs.gid);
      return dir;
    })().catch(() => undefined);
    return this.compileCache;
  }

  async start(job: RunnerJob): Promise<RunnerExecution> {
    const compileCache = await this.compileCacheDirectory();
    const runner =
      (await this.takeStandby()) ?? this.spawnRunner(await this.prepareWorkDir(job.spec.id.replace(/[^\w.-]/g, '_')), { preload: false, compileCache });
    const { child, workDir, spawned, exited } = runner;
    // Environments: restore/save paths in the work directory; the app adopts the saved archive below.
    const { environments } = this.opts;
    let spec: RunnerJob['spec'];
    try {
      spec = job.spec.environment
        ? { ...job.spec, environment: environments ? await environments.forRunner(job.spec.environment, workDir) : undefined }
        : job.spec;
    } catch (error) {
      child.kill('SIGKILL');
      await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      throw error;
    }
    const grace = this.opts.killGraceMs ?? 10_000;

    let lastPhase: Phase | undefined;
    let result: TaskResult | undefined;
    let stderrTail = '';
    let stopReason: { status: 'failed' | 'cancelled'; reason: string } | undefined;

    const maxLineBytes = this.opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    const onLine = (line: string): void => {
      if (!line.trim()) return;
      let parsed;
      try {
        parsed = ProgressEvent.safeParse(JSON.parse(line));
      } catch {
        return;
      }
      if (!parsed.success) return;
      const event = parsed.data;
      if (event.type === 'result') {
        const checked = TaskResult.safeParse(event.result);
        if (checked.success) result = checked.data;
        return;
      }
      if (event.type === 'phase') lastPhase = event.phase;
      job.onEvent(event);
    };
    const lines = new BoundedLineSplitter(maxLineBytes, onLine, () => {
      // Nothing of the runner's output is trusted after this: its result would be over the limit.
      result = undefined;
      stopReason = { status: 'failed', reason: `the runner's result is larger than ${formatSize(maxLineBytes)}; the runner was stopped` };
      child.stdout!.destroy();
      kill();
    });
    child.stdout!.on('data', (chunk: Buffer) => lines.push(chunk));
    child.stdout!.once('end', () => lines.end());
    child.stderr!.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-4000);
    });

    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), grace).unref();
    };
    const timer = setTimeout(() => {
      stopReason = { status: 'failed', reason: `the runner timed out after ${Math.round(job.timeoutMs / 60_000)} minutes and was stopped` };
      kill();
    }, job.timeoutMs);
    timer.unref();

    await spawned;
    child.stdin!.end(JSON.stringify(spec));

    const settled = exited.then(async ({ code, signal }) => {
      clearTimeout(timer);
      if (environments && spec.environment && result) {
        await environments.collect(spec.environment, result.environment, workDir).catch((error: unknown) => {
          process.emitWarning(`the environment could not be cached: ${(error as Error).message}`);
        });
      }
      if (!this.opts.keepWorkDirs) await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
      if (stopReason?.status === 'failed') return failedResult(job.spec, lastPhase, stopReason.reason);
      if (result) return result;
      if (stopReason?.status === 'cancelled') return failedResult(job.spec, lastPhase, stopReason.reason, 'cancelled');
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const tail = stderrTail.trim().split('\n').slice(-5).join('\n');
      return failedResult(job.spec, lastPhase, `the runner ${how} without a result${tail ? `: ${tail}` : ''}`);
    });

    return {
      externalId: String(child.pid),
      result: settled,
      cancel: async (reason: string) => {
        stopReason ??= { status: 'cancelled', reason };
        kill();
      },
    };
  }

  /** Stops every runner this process started (on app shutdown; their tasks fail and can be retried). */
  async close(): Promise<void> {
    this.closed = true;
    for (const child of this.children) child.kill('SIGTERM');
    const standby = await this.standby;
    if (standby) await rm(standby.workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}
