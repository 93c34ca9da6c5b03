/**
 * Sandboxed command execution for the runner: every command the agent (or the setup phase) runs goes
 * through a {@link Sandbox}. Two modes:
 * - `bubblewrap` (local backend): each command runs in a fresh bubblewrap sandbox
 *   (https://github.com/containers/bubblewrap, `bwrap(1)`) that sees only an allowlist of host
 *   paths, read-only (system programs and libraries, the /etc entries a build needs, the runner's
 *   Node.js: see sandbox-mounts.ts), the workspace and home writable, a sized private /tmp, fresh
 *   /dev and /proc; new PID/IPC/UTS/cgroup/(user) namespaces, no network namespace access unless
 *   asked for, no capabilities, an environment cleared to an allowlist, and per-command resource
 *   limits (processes and file size through `prlimit(1)`). It works both as root and unprivileged
 *   (bwrap then creates a user namespace by itself).
 * - `container` (ECS Fargate): the surrounding task is the sandbox; commands run directly, still
 *   with the cleared environment and process-group kill on timeout.
 * In both modes the disk use of the workspace and home together is capped (measured while and after
 * each command; {@link DiskLimitError}).
 * Commands are argv arrays passed to execve, never shell strings built here.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { measureDiskUsage, type DiskUsage } from './disk-usage.ts';
import { relayCommand, SANDBOX_PROXY_SOCKET } from './loopback-relay.ts';
import { isInside, planMounts, SandboxLayoutError, SYSTEM_PATHS } from './sandbox-mounts.ts';
import { charStartAtOrAfter, charStartAtOrBefore, omissionMarker } from './tools/truncate.ts';

/**
 * `bubblewrap`: wrap each command with bwrap. `container`: the surrounding container (ECS Fargate,
 * which has no user namespaces) is the sandbox: run directly, with the cleared environment.
 */
export type SandboxMode = 'bubblewrap' | 'container';

/** How a {@link Sandbox} isolates commands. Paths are absolute host paths. */
export interface SandboxOptions {
  mode: SandboxMode;
  /** Absolute directory (the checkout); writable, bound at the same path inside. Default cwd. */
  workspace: string;
  /** Absolute directory, writable, bound at the same path inside; HOME points here (caches, venvs). */
  home: string;
  /**
   * false (agent phase): a fresh network namespace with only loopback, so no host or internet
   * sockets; true (setup phase): the host's network. Ignored in `container` mode (the VPC decides).
   */
  network: boolean;
  /** Added to the allowlisted environment, overriding its defaults. Never secrets (caller's duty). */
  extraEnv?: Record<string, string>;
  /** Absolute directories prepended to PATH, first wins (e.g. `$HOME/.venv/bin`). */
  extraPath?: string[];
  /**
   * Absolute host paths that must stay invisible in `bubblewrap` mode even where they fall inside
   * an allowed path (the app's directory, the data directory, the runner's work root): directories
   * become an empty read-only tmpfs, files get /dev/null bound over them. Paths inside the
   * workspace or home are hidden too; a hidden path that contains the workspace or home leaves
   * those visible. Paths that do not exist are ignored. Everything outside the allowlist
   * (sandbox-mounts.ts) is invisible anyway.
   */
  hidePaths?: string[];
  /**
   * Extra absolute host paths bound read-only in `bubblewrap` mode (e.g. a toolchain under /opt,
   * or /etc/pip.conf for a package mirror); missing ones are ignored. Hidden paths inside them stay hidden.
   */
  readOnlyPaths?: string[];
  /** Resource limits of each command; defaults in {@link DEFAULT_SANDBOX_LIMITS}. */
  limits?: Partial<SandboxLimits>;
  /**
   * `bubblewrap` mode with `network: false`: absolute host path of the runner's agent-proxy socket
   * (proxy-bridge.ts). It is bound into every command's sandbox and each command runs under a
   * loopback relay to it (loopback-relay.ts), so that the command reaches the proxy, and only the
   * proxy, at `127.0.0.1:3128`. Ignored in `container` mode.
   */
  proxySocket?: string;
  /** bwrap executable: a path, or a name looked up on the runner's PATH. Default `bwrap`. */
  bwrapPath?: string;
  /** Grace between SIGTERM and SIGKILL when a command is stopped, in ms. Default 2000. */
  killGraceMs?: number;
  /** Memory cap for one command's captured output, in bytes; the middle beyond it is dropped. Default 16 MiB. */
  maxOutputBytes?: number;
}

/** Resource limits of a {@link Sandbox}. */
export interface SandboxLimits {
  /**
   * RLIMIT_NPROC of each command (`bubblewrap` mode): processes and threads at once. bwrap gives
   * every command its own user namespace, where the count starts from zero. Not enforced when the
   * sandbox runs as host root (the kernel exempts uid 0): run the runner as an unprivileged user.
   */
  maxProcesses: number;
  /** Size of the private /tmp of each command, bytes (`bubblewrap` mode; a tmpfs, so memory). */
  tmpBytes: number;
  /**
   * Disk use allowed for the workspace and home together, bytes (both modes). Also the largest
   * file any command may write (RLIMIT_FSIZE, `bubblewrap` mode).
   */
  diskBytes: number;
  /** How often the disk use is measured while a command runs, ms (at least 10× the time `du` takes). */
  diskCheckIntervalMs: number;
}

/** Defaults: 1024 processes, a 1 GiB /tmp, 10 GiB of workspace and home, checked every 5 s. */
export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  maxProcesses: 1024,
  tmpBytes: 1024 ** 3,
  diskBytes: 10 * 1024 ** 3,
  diskCheckIntervalMs: 5000,
});

/** /dev/shm gets this much, or the /tmp size when that is smaller, bytes. */
const SHM_BYTES = 64 * 1024 * 1024;

/** One command to run in a {@link Sandbox}. */
export interface RunOptions {
  /** argv: program (looked up on the sandbox PATH) and arguments; must not be empty. */
  command: string[];
  /** Working directory, absolute or relative to the workspace; must exist and be inside the workspace. Default: the workspace. */
  cwd?: string;
  /** Wall-clock limit in ms (> 0); the whole process tree is killed when it is reached. */
  timeoutMs: number;
  /** Aborting kills the whole process tree, like a timeout, and sets `aborted`. */
  signal?: AbortSignal;
  /** Written to the command's stdin, then closed. Without it stdin is /dev/null. */
  stdin?: string;
  /** Called with each decoded chunk of stdout/stderr as it arrives (exceptions are ignored). */
  onOutput?: (chunk: string) => void;
}

/** What happened to one command. */
export interface RunResult {
  /**
   * Exit status; 128 + N for a command that died of signal N by itself (as a shell reports it, in
   * both modes). null when the runner killed it (timeout or abort: then `signal` is set) or when it
   * was aborted before it started.
   */
  exitCode: number | null;
  /** Name of the signal the runner killed the command with (`SIGTERM`, or `SIGKILL` after the grace), else null. */
  signal: string | null;
  /**
   * stdout and stderr interleaved in arrival order. Complete unless the output exceeded
   * `maxOutputBytes`: then the middle is replaced by `\n[... N bytes omitted ...]\n`.
   */
  output: string;
  /** Total UTF-8 bytes the command wrote to stdout and stderr, including dropped ones. */
  outputBytes: number;
  /** Bytes dropped from the middle of `output` by the memory cap (0 normally). */
  droppedBytes: number;
  /** Wall time from start to the end of output, in ms. */
  durationMs: number;
  /** true when the command was killed because it reached `timeoutMs`. */
  timedOut: boolean;
  /** true when the command was killed (or never started) because `signal` aborted. */
  aborted: boolean;
}

/**
 * Thrown by {@link createSandbox} when the requested sandbox cannot be created here (bwrap missing,
 * user namespaces disabled, ...). The runner must then refuse to run: there is no unsandboxed fallback.
 */
export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}

/**
 * Thrown by {@link Sandbox.run} when the workspace and home together use more disk than
 * `limits.diskBytes` (measured while the command runs: it is then stopped; and after it), or when
 * their disk use can no longer be measured. The task must fail: the runner reports the message.
 */
export class DiskLimitError extends Error {
  override name = 'DiskLimitError';
  /** Bytes in use when the limit was found exceeded. */
  readonly usedBytes: number;
  /** The limit, bytes. */
  readonly limitBytes: number;
  /** What happened to the command that hit the limit. */
  readonly result: RunResult;
  constructor(message: string, usedBytes: number, limitBytes: number, result: RunResult) {
    super(message);
    this.usedBytes = usedBytes;
    this.limitBytes = limitBytes;
    this.result = result;
  }
}

/** Thrown for a workspace, home or cwd that does not exist, is not a directory, or escapes the workspace. */
export class SandboxPathError extends Error {
  override name = 'SandboxPathError';
}

/** Runs commands under one fixed isolation policy; create it with {@link createSandbox}. */
export interface Sandbox {
  readonly mode: SandboxMode;
  /**
   * true when commands also cannot create user namespaces of their own (bwrap `--disable-userns`,
   * used when the host supports it); false in `container` mode or on hosts where it is unavailable.
   */
  readonly blocksNestedUserNamespaces: boolean;
  /**
   * Runs one command to completion, timeout or abort. Never rejects because of the command's exit
   * (a program that cannot be started gives exit code 127 or 126 and the reason in `output`).
   * @throws TypeError / RangeError for an empty command or a bad timeout;
   *   SandboxPathError when `cwd` does not exist or is outside the workspace;
   *   DiskLimitError when the workspace and home use more than `limits.diskBytes` during or after it.
   */
  run(opts: RunOptions): Promise<RunResult>;
}

/** PATH entries after the caller's and Node's directories. */
export const DEFAULT_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const DEFAULT_KILL_GRACE_MS = 2000;
const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** After the process exits, how long to wait for its stdout/stderr to close (escaped daemons may hold them). */
const DRAIN_AFTER_EXIT_MS = 2000;
const PROBE_TIMEOUT_MS = 20_000;

/** Input of {@link sandboxEnv}. */
export interface SandboxEnvOptions {
  /** Absolute home directory (HOME). */
  home: string;
  extraEnv?: Record<string, string>;
  /** Absolute directories prepended to PATH, first wins. */
  extraPath?: string[];
  /** Directory of the Node binary to put on PATH; default `dirname(process.execPath)`. */
  nodeDir?: string;
}

function assertAbsoluteDir(name: string, p: unknown): asserts p is string {
  if (typeof p !== 'string' || !path.isAbsolute(p) || p.includes('\0')) {
    throw new TypeError(`${name} must be an absolute path, got ${JSON.stringify(p)}`);
  }
}

/**
 * The complete environment of a sandboxed command; nothing from `process.env` is inherited:
 * `PATH` (extraPath, then the directory of the running Node binary, then {@link DEFAULT_PATH},
 * without duplicates), `HOME`, `LANG=C.UTF-8`, `TERM=dumb`, `CI=1`, `TZ=UTC`, `NO_COLOR=1`,
 * `PAGER=cat`, `GIT_PAGER=cat`, `TMPDIR=/tmp`, then `extraEnv` (which may override all but PATH and
 * HOME). `LC_ALL` is never set unless extraEnv sets it.
 * @throws TypeError for a relative home or PATH entry, a PATH entry containing `:`, an extraEnv
 *   name that is empty or contains `=` or NUL, a value containing NUL, or extraEnv setting PATH/HOME.
 */
export function sandboxEnv(opts: SandboxEnvOptions): Record<string, string> {
  assertAbsoluteDir('home', opts.home);
  const nodeDir = opts.nodeDir ?? path.dirname(process.execPath);
  const dirs: string[] = [];
  for (const d of [...(opts.extraPath ?? []), nodeDir, ...DEFAULT_PATH]) {
    assertAbsoluteDir('PATH entry', d);
    if (d.includes(':')) throw new TypeError(`PATH entry must not contain ':': ${JSON.stringify(d)}`);
    if (!dirs.includes(d)) dirs.push(d);
  }
  const env: Record<string, string> = {
    PATH: dirs.join(':'),
    HOME: opts.home,
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    CI: '1',
    TZ: 'UTC',
    NO_COLOR: '1',
    PAGER: 'cat',
    GIT_PAGER: 'cat',
    TMPDIR: '/tmp',
  };
  for (const [k, v] of Object.entries(opts.extraEnv ?? {})) {
    if (k === '' || k.includes('=') || k.includes('\0')) throw new TypeError(`invalid environment name ${JSON.stringify(k)}`);
    if (typeof v !== 'string' || v.includes('\0')) throw new TypeError(`invalid value for environment variable ${k}`);
    if (k === 'PATH' || k === 'HOME') throw new TypeError(`extraEnv must not set ${k}; use extraPath / home`);
    env[k] = v;
  }
  return env;
}

/** Resolved, validated configuration shared by all runs of one sandbox. */
interface Config {
  mode: SandboxMode;
  workspace: string;
  home: string;
  network: boolean;
  env: Record<string, string>;
  limits: SandboxLimits;
  /** bwrap's mount arguments (sandbox-mounts.ts). */
  mountArgs: string[];
  /** Absolute host path of prlimit (inside an allowed system directory). */
  prlimit: string;
  bwrap: string;
  disableUserns: boolean;
  /** Run each command under the loopback relay to the bound proxy socket (bubblewrap mode). */
  relay: boolean;
  killGraceMs: number;
  maxOutputBytes: number;
}

function realDir(name: string, p: string): string {
  assertAbsoluteDir(name, p);
  let real: string;
  try {
    real = realpathSync(p);
  } catch (err) {
    throw new SandboxPathError(`${name} ${p} does not exist: ${(err as Error).message}`);
  }
  if (!statSync(real).isDirectory()) throw new SandboxPathError(`${name} ${p} is not a directory`);
  if (real === '/') throw new SandboxPathError(`${name} must not be the root directory`);
  return real;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of `name` (a path, or a bare name looked up on the runner's own PATH), or undefined. */
function findExecutable(name: string): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? path.resolve(name) : undefined;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** bwrap argv for one command: the mounts, namespaces, environment, then prlimit and the command. */
function bwrapArgs(c: Config, cwd: string, command: string[]): string[] {
  const args = [...c.mountArgs, '--chdir', cwd, '--unshare-all'];
  if (c.network) args.push('--share-net');
  if (c.disableUserns) args.push('--unshare-user', '--disable-userns');
  args.push('--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--clearenv');
  for (const [k, v] of Object.entries(c.env)) args.push('--setenv', k, v);
  const argv = c.relay ? relayCommand(process.execPath, command) : command;
  args.push('--', c.prlimit, `--nproc=${c.limits.maxProcesses}`, `--fsize=${c.limits.diskBytes}`, '--', ...argv);
  return args;
}

/**
 * Bounded capture of interleaved output: keeps the first half of the budget and a sliding window
 * of the last half, counting what falls out of the middle.
 */
class OutputCapture {
  readonly #headLimit: number;
  readonly #tailLimit: number;
  #head: string[] = [];
  #headBytes = 0;
  #headFull = false;
  #tail: { text: string; bytes: number }[] = [];
  #tailStart = 0;
  #tailBytes = 0;
  total = 0;
  dropped = 0;

  constructor(maxBytes: number) {
    this.#headLimit = Math.floor(maxBytes / 2);
    this.#tailLimit = maxBytes - this.#headLimit;
  }

  push(chunk: string): void {
    let text = chunk;
    let bytes = Buffer.byteLength(text);
    this.total += bytes;
    if (!this.#headFull) {
      if (this.#headBytes + bytes <= this.#headLimit) {
        this.#head.push(text);
        this.#headBytes += bytes;
        return;
      }
      const buf = Buffer.from(text);
      const cut = charStartAtOrBefore(buf, this.#headLimit - this.#headBytes);
      if (cut > 0) this.#head.push(buf.subarray(0, cut).toString());
      this.#headBytes += cut;
      this.#headFull = true;
      text = buf.subarray(cut).toString();
      bytes -= cut;
    }
    this.#tail.push({ text, bytes });
    this.#tailBytes += bytes;
    while (this.#tailBytes > this.#tailLimit) {
      const excess = this.#tailBytes - this.#tailLimit;
      const front = this.#tail[this.#tailStart];
      if (front === undefined) break;
      if (front.bytes <= excess) {
        this.#tailStart++;
        this.#tailBytes -= front.bytes;
        this.dropped += front.bytes;
      } else {
        const buf = Buffer.from(front.text);
        const cut = charStartAtOrAfter(buf, excess);
        this.#tail[this.#tailStart] = { text: buf.subarray(cut).toString(), bytes: buf.length - cut };
        this.#tailBytes -= cut;
        this.dropped += cut;
      }
    }
    if (this.#tailStart > 1024 && this.#tailStart * 2 > this.#tail.length) {
      this.#tail = this.#tail.slice(this.#tailStart);
      this.#tailStart = 0;
    }
  }

  text(): string {
    const head = this.#head.join('');
    const tail = this.#tail.slice(this.#tailStart).map((t) => t.text).join('');
    return this.dropped > 0 ? `${head}\n${omissionMarker(this.dropped)}\n${tail}` : head + tail;
  }
}

interface Launch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
}

/** Spawns one process in its own process group and collects its result (see {@link Sandbox.run}). */
function runProcess(launch: Launch, run: RunOptions, c: Config): Promise<RunResult> {
  const started = performance.now();
  return new Promise<RunResult>((resolve) => {
    const capture = new OutputCapture(c.maxOutputBytes);
    let timedOut = false;
    let aborted = false;
    let exited = false;
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let startError: NodeJS.ErrnoException | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const child = spawn(launch.file, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      detached: true, // own process group (setsid), so the whole tree can be signalled
      stdio: [run.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    // In bubblewrap mode the group holds bwrap itself: when it dies, --die-with-parent kills the
    // sandbox's PID 1 and with it every process in the PID namespace, including setsid'd ones.
    const terminate = (): void => {
      killGroup('SIGTERM');
      killTimer ??= setTimeout(() => killGroup('SIGKILL'), c.killGraceMs);
    };
    const timeout = setTimeout(() => {
      if (exited || aborted) return;
      timedOut = true;
      terminate();
    }, run.timeoutMs);
    const onAbort = (): void => {
      if (exited || timedOut) return;
      aborted = true;
      terminate();
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      run.signal?.removeEventListener('abort', onAbort);
      let output = capture.text();
      if (startError !== undefined) {
        exitCode = startError.code === 'ENOENT' ? 127 : 126;
        output += `${output === '' || output.endsWith('\n') ? '' : '\n'}cannot run ${launch.file}: ${startError.message}\n`;
      }
      resolve({
        exitCode,
        signal: exitSignal,
        output,
        outputBytes: capture.total,
        droppedBytes: capture.dropped,
        durationMs: performance.now() - started,
        timedOut,
        aborted,
      });
    };

    const emit = (text: string): void => {
      if (text === '') return;
      capture.push(text);
      try {
        run.onOutput?.(text);
      } catch {
        // A failing observer must not break the run.
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream === null) continue;
      const decoder = new StringDecoder('utf8');
      stream.on('data', (buf: Buffer) => emit(decoder.write(buf)));
      stream.on('end', () => emit(decoder.end()));
      stream.on('error', () => {});
    }
    if (child.stdin !== null) {
      child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
      child.stdin.end(run.stdin);
    }

    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        startError = err;
        finish();
      }
    });
    child.on('exit', (code, sig) => {
      exited = true;
      exitCode = code;
      exitSignal = sig;
      if (sig !== null && !timedOut && !aborted && c.mode === 'container') {
        // Report a command that died of a signal by itself as a shell (and bwrap) would: 128 + N.
        exitCode = 128 + (os.constants.signals[sig] ?? 0);
        exitSignal = null;
      }
      clearTimeout(timeout);
      // Background processes left in the group die with the command, as they do in bubblewrap
      // mode when the PID namespace ends.
      killGroup('SIGKILL');
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, DRAIN_AFTER_EXIT_MS);
    });
    child.on('close', finish);
  });
}

function resolveCwd(workspace: string, cwd: string | undefined): string {
  if (cwd === undefined) return workspace;
  if (typeof cwd !== 'string' || cwd.includes('\0')) throw new TypeError('cwd must be a string');
  const wanted = path.resolve(workspace, cwd);
  let real: string;
  try {
    real = realpathSync(wanted);
  } catch {
    throw new SandboxPathError(`working directory ${cwd} does not exist`);
  }
  if (!isInside(workspace, real)) throw new SandboxPathError(`working directory ${cwd} is outside the workspace ${workspace}`);
  if (!statSync(real).isDirectory()) throw new SandboxPathError(`working directory ${cwd} is not a directory`);
  return real;
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** `1.5 GiB`, `12.0 MiB`, `512 bytes`. */
function formatBytes(bytes: number): string {
  if (bytes >= GIB) return `${(bytes / GIB).toFixed(1)} GiB`;
  if (bytes >= MIB) return `${(bytes / MIB).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

/** Longest a single `du` of the work directory may take, ms. */
const DU_TIMEOUT_MS = 120_000;

class ProcessSandbox implements Sandbox {
  readonly #c: Config;

  constructor(config: Config) {
    this.#c = config;
  }

  get mode(): SandboxMode {
    return this.#c.mode;
  }

  get blocksNestedUserNamespaces(): boolean {
    return this.#c.mode === 'bubblewrap' && this.#c.disableUserns;
  }

  async run(opts: RunOptions): Promise<RunResult> {
    const { command } = opts;
    if (!Array.isArray(command) || command.length === 0 || command.some((a) => typeof a !== 'string' || a.includes('\0'))) {
      throw new TypeError('command must be a non-empty array of strings without NUL');
    }
    if (!(typeof opts.timeoutMs === 'number' && opts.timeoutMs > 0 && Number.isFinite(opts.timeoutMs))) {
      throw new RangeError(`timeoutMs must be a positive number, got ${opts.timeoutMs}`);
    }
    const cwd = resolveCwd(this.#c.workspace, opts.cwd);
    if (opts.signal?.aborted) {
      return { exitCode: null, signal: null, output: '', outputBytes: 0, droppedBytes: 0, durationMs: 0, timedOut: false, aborted: true };
    }
    const c = this.#c;
    const [file, ...args] = c.mode === 'bubblewrap' ? [c.bwrap, ...bwrapArgs(c, cwd, command)] : command;

    // The disk use is watched while the command runs; over the limit, the command is stopped.
    const overLimit = new AbortController();
    let exceeded: DiskUsage | undefined;
    let done = false;
    const watch = (async () => {
      let wait = c.limits.diskCheckIntervalMs;
      while (!done) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, wait);
          overLimit.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        if (done) return;
        const started = performance.now();
        const usage = await this.#measure().catch(() => undefined);
        wait = Math.max(c.limits.diskCheckIntervalMs, 10 * (performance.now() - started));
        if (!done && usage !== undefined && usage.bytes > c.limits.diskBytes) {
          exceeded = usage;
          overLimit.abort();
        }
      }
    })();
    const signal = opts.signal ? AbortSignal.any([opts.signal, overLimit.signal]) : overLimit.signal;
    let result: RunResult;
    try {
      result = await runProcess({ file: file as string, args, cwd, env: c.env }, { ...opts, signal }, c);
    } finally {
      done = true;
      overLimit.abort();
      await watch;
    }
    if (exceeded !== undefined) result = { ...result, aborted: opts.signal?.aborted === true };

    let after: DiskUsage;
    try {
      after = await this.#measure();
    } catch (error) {
      throw new DiskLimitError(`the disk use of the work directory cannot be measured: ${(error as Error).message}`, 0, c.limits.diskBytes, result);
    }
    const used = Math.max(after.bytes, exceeded?.bytes ?? 0);
    if (used > c.limits.diskBytes) {
      throw new DiskLimitError(
        `disk limit exceeded: the workspace and home use ${formatBytes(used)}, more than the task's limit of ` +
          `${formatBytes(c.limits.diskBytes)}${exceeded ? '; the command was stopped' : ''}`,
        used, c.limits.diskBytes, result,
      );
    }
    if (after.errors !== '') {
      throw new DiskLimitError(
        `the disk use of the work directory cannot be measured completely (make every file in it readable): ${after.errors}`,
        after.bytes, c.limits.diskBytes, result,
      );
    }
    return result;
  }

  #measure(): Promise<DiskUsage> {
    return measureDiskUsage([...new Set([this.#c.workspace, this.#c.home])], DU_TIMEOUT_MS);
  }
}

function positiveInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  return value;
}

/**
 * Validates the options and returns a sandbox. In `bubblewrap` mode it first proves the sandbox
 * works by running `true` inside it (with `--disable-userns` hardening when the host supports it,
 * else without).
 * @throws SandboxUnavailableError when bwrap is missing or cannot create the sandbox (the message
 *   gives bwrap's reason, e.g. user namespaces disabled, or an option such as `--size` it does not
 *   know: `--size` needs a recent bubblewrap, tested with 0.8.0), when prlimit (util-linux) or du (coreutils) is
 *   missing, or when a hidden path is or contains a system directory the sandbox needs; never
 *   falls back to running unsandboxed.
 * @throws SandboxPathError when workspace or home does not exist or is not a directory;
 *   TypeError / RangeError for malformed options (relative paths, bad numbers, bad env names).
 * @throws DiskLimitError when the workspace and home are already over `limits.diskBytes`.
 */
export async function createSandbox(opts: SandboxOptions): Promise<Sandbox> {
  if (opts.mode !== 'bubblewrap' && opts.mode !== 'container') {
    throw new TypeError(`unknown sandbox mode ${JSON.stringify(opts.mode)}`);
  }
  const workspace = realDir('workspace', opts.workspace);
  const home = realDir('home', opts.home);
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const maxOutputBytes = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isInteger(killGraceMs) || killGraceMs < 0) throw new RangeError(`killGraceMs must be an integer >= 0, got ${killGraceMs}`);
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes < 1024) throw new RangeError(`maxOutputBytes must be an integer >= 1024, got ${maxOutputBytes}`);
  const env = sandboxEnv({ home, extraEnv: opts.extraEnv, extraPath: opts.extraPath });
  const wanted = { ...DEFAULT_SANDBOX_LIMITS, ...opts.limits };
  const limits: SandboxLimits = {
    maxProcesses: positiveInteger('limits.maxProcesses', wanted.maxProcesses, 1),
    tmpBytes: positiveInteger('limits.tmpBytes', wanted.tmpBytes, 4096),
    diskBytes: positiveInteger('limits.diskBytes', wanted.diskBytes, 4096),
    diskCheckIntervalMs: positiveInteger('limits.diskCheckIntervalMs', wanted.diskCheckIntervalMs, 1),
  };
  try {
    await measureDiskUsage([...new Set([workspace, home])], DU_TIMEOUT_MS);
  } catch (error) {
    throw new SandboxUnavailableError(`the disk use of the workspace cannot be measured: ${(error as Error).message}`);
  }

  const base: Omit<Config, 'mountArgs' | 'prlimit' | 'bwrap' | 'disableUserns' | 'relay'> = {
    mode: opts.mode, workspace, home, network: opts.network, env, limits, killGraceMs, maxOutputBytes,
  };
  if (opts.mode === 'container') {
    return new ProcessSandbox({ ...base, mountArgs: [], prlimit: '', bwrap: '', disableUserns: false, relay: false });
  }

  const bwrapName = opts.bwrapPath ?? 'bwrap';
  const bwrap = findExecutable(bwrapName);
  if (bwrap === undefined) {
    throw new SandboxUnavailableError(
      bwrapName.includes('/') ? `bubblewrap not found or not executable at ${bwrapName}` : `bubblewrap (${bwrapName}) not found on PATH`,
    );
  }

  // prlimit runs inside the sandbox, so it must live in an allowed system directory.
  const prlimitHost = findExecutable('prlimit');
  const prlimit = prlimitHost === undefined ? undefined : realpathSync(prlimitHost);
  if (prlimit === undefined || !SYSTEM_PATHS.some((dir) => isInside(dir, prlimit))) {
    throw new SandboxUnavailableError('prlimit (util-linux) is required in /usr/bin or /bin to limit the processes of sandboxed commands');
  }
  const relay = opts.proxySocket !== undefined && !opts.network;
  if (relay) assertAbsoluteDir('proxySocket', opts.proxySocket);
  let mountArgs: string[];
  try {
    mountArgs = planMounts({
      workspace,
      home,
      protect: opts.hidePaths ?? [],
      readOnlyPaths: opts.readOnlyPaths ?? [],
      nodeExecPath: process.execPath,
      tmpBytes: limits.tmpBytes,
      shmBytes: Math.min(SHM_BYTES, limits.tmpBytes),
      ...(relay ? { sockets: [{ source: opts.proxySocket!, target: SANDBOX_PROXY_SOCKET }] } : {}),
    });
  } catch (error) {
    if (error instanceof SandboxLayoutError) throw new SandboxUnavailableError(error.message);
    throw error;
  }

  const failures: string[] = [];
  for (const disableUserns of [true, false]) {
    const sandbox = new ProcessSandbox({ ...base, mountArgs, prlimit, bwrap, disableUserns, relay });
    const probe = await sandbox.run({ command: ['true'], timeoutMs: PROBE_TIMEOUT_MS });
    if (probe.exitCode === 0) return sandbox;
    const why = probe.timedOut ? 'timed out' : probe.exitCode !== null ? `exit code ${probe.exitCode}` : `signal ${probe.signal}`;
    failures.push(`${disableUserns ? 'with' : 'without'} --disable-userns: ${why}: ${probe.output.trim().slice(0, 500)}`);
  }
  throw new SandboxUnavailableError(`bubblewrap (${bwrap}) cannot create the sandbox here; ${failures.join('; ')}`);
}
