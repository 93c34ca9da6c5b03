/**
 * Sandboxed command execution for the runner: every command the agent (or the setup phase) runs goes
 * through a {@link Sandbox}. Two modes:
 * - `bubblewrap` (local backend): each command runs in a fresh bubblewrap sandbox
 *   (https://github.com/containers/bubblewrap, `bwrap(1)`): the host filesystem read-only, a fresh
 *   /dev and /proc, private /tmp and /run, only the workspace and home writable, new PID/IPC/UTS/
 *   cgroup/(user) namespaces, no network namespace access unless asked for, no capabilities, and an
 *   environment cleared to an allowlist. It works both as root and unprivileged (bwrap then creates
 *   a user namespace by itself).
 * - `container` (ECS Fargate): the surrounding task is the sandbox; commands run directly, still
 *   with the cleared environment and process-group kill on timeout.
 * Commands are argv arrays passed to execve, never shell strings built here.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
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
   * Absolute host paths to hide in `bubblewrap` mode, in addition to /run (always hidden, so host
   * daemon sockets such as docker.sock or D-Bus are unreachable): directories become empty tmpfs,
   * other files get /dev/null bound over them (unreadable: the mount is nodev). Paths inside the
   * workspace or home are hidden too. Paths that do not exist are ignored.
   */
  hidePaths?: string[];
  /** bwrap executable: a path, or a name looked up on the runner's PATH. Default `bwrap`. */
  bwrapPath?: string;
  /** Grace between SIGTERM and SIGKILL when a command is stopped, in ms. Default 2000. */
  killGraceMs?: number;
  /** Memory cap for one command's captured output, in bytes; the middle beyond it is dropped. Default 16 MiB. */
  maxOutputBytes?: number;
}

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
   * Runs one command to completion, timeout or abort. Never rejects because of the command itself
   * (a program that cannot be started gives exit code 127 or 126 and the reason in `output`).
   * @throws TypeError / RangeError for an empty command or a bad timeout;
   *   SandboxPathError when `cwd` does not exist or is outside the workspace.
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
  /** Host paths to hide: directories get a tmpfs, other files /dev/null. */
  hide: { path: string; dir: boolean }[];
  /** Read-only re-binds needed inside hidden paths (the resolv.conf target under /run). */
  roBinds: string[];
  bwrap: string;
  disableUserns: boolean;
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

function pathDepth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * bwrap argv for one command. Mounts are sorted parent-first (by path depth, tmpfs before binds at
 * equal depth) so that a workspace under /tmp is bound after the private /tmp is mounted.
 */
function bwrapArgs(c: Config, cwd: string, command: string[]): string[] {
  type Mount = { target: string; order: number; args: string[] };
  const mounts: Mount[] = [
    { target: '/', order: 0, args: ['--ro-bind', '/', '/'] },
    { target: '/dev', order: 0, args: ['--dev', '/dev'] },
    { target: '/proc', order: 0, args: ['--proc', '/proc'] },
    { target: '/tmp', order: 0, args: ['--tmpfs', '/tmp'] },
  ];
  for (const h of c.hide) {
    mounts.push({ target: h.path, order: 0, args: h.dir ? ['--tmpfs', h.path] : ['--ro-bind', '/dev/null', h.path] });
  }
  for (const p of c.roBinds) mounts.push({ target: p, order: 1, args: ['--ro-bind', p, p] });
  for (const p of new Set([c.home, c.workspace])) mounts.push({ target: p, order: 2, args: ['--bind', p, p] });
  mounts.sort((a, b) => pathDepth(a.target) - pathDepth(b.target) || a.order - b.order);

  const args = mounts.flatMap((m) => m.args);
  args.push('--chdir', cwd, '--unshare-all');
  if (c.network) args.push('--share-net');
  if (c.disableUserns) args.push('--unshare-user', '--disable-userns');
  args.push('--die-with-parent', '--new-session', '--cap-drop', 'ALL', '--clearenv');
  for (const [k, v] of Object.entries(c.env)) args.push('--setenv', k, v);
  args.push('--', ...command);
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
    return runProcess({ file: file as string, args, cwd, env: c.env }, opts, c);
  }
}

/**
 * Validates the options and returns a sandbox. In `bubblewrap` mode it first proves the sandbox
 * works by running `true` inside it (with `--disable-userns` hardening when the host supports it,
 * else without).
 * @throws SandboxUnavailableError when bwrap is missing or cannot create the sandbox (the message
 *   gives bwrap's reason, e.g. user namespaces disabled); never falls back to running unsandboxed.
 * @throws SandboxPathError when workspace or home does not exist or is not a directory;
 *   TypeError / RangeError for malformed options (relative paths, bad numbers, bad env names).
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

  const base: Omit<Config, 'hide' | 'roBinds' | 'bwrap' | 'disableUserns'> = {
    mode: opts.mode, workspace, home, network: opts.network, env, killGraceMs, maxOutputBytes,
  };
  if (opts.mode === 'container') {
    return new ProcessSandbox({ ...base, hide: [], roBinds: [], bwrap: '', disableUserns: false });
  }

  const bwrapName = opts.bwrapPath ?? 'bwrap';
  const bwrap = findExecutable(bwrapName);
  if (bwrap === undefined) {
    throw new SandboxUnavailableError(
      bwrapName.includes('/') ? `bubblewrap not found or not executable at ${bwrapName}` : `bubblewrap (${bwrapName}) not found on PATH`,
    );
  }

  const hide: Config['hide'] = [];
  for (const p of ['/run', '/var/run', ...(opts.hidePaths ?? [])]) {
    assertAbsoluteDir('hidden path', p);
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      continue; // nothing to hide
    }
    if (real === '/' || hide.some((h) => h.path === real)) continue;
    hide.push({ path: real, dir: statSync(real).isDirectory() });
  }
  // With network, keep name resolution working when /etc/resolv.conf points into a hidden /run
  // (systemd-resolved): re-bind the directory holding its target, read-only.
  const roBinds: string[] = [];
  // The runner's own Node.js (first on the sandbox's PATH) stays reachable when it is installed
  // under a path the sandbox replaces (a checkout under /tmp, say): its PATH directory and the
  // installation it links to are bound back, read-only.
  const hiddenRoots = ['/tmp', ...hide.filter((h) => h.dir).map((h) => h.path)];
  const nodeBin = path.dirname(process.execPath);
  for (const candidate of [nodeBin, path.dirname(path.dirname(realpathSync(process.execPath)))]) {
    const real = realpathSync(candidate);
    for (const p of new Set([candidate, real])) {
      if (hiddenRoots.some((root) => isInside(root, p)) && !roBinds.includes(p)) roBinds.push(p);
    }
  }
  if (opts.network) {
    try {
      const resolv = realpathSync('/etc/resolv.conf');
      if (hide.some((h) => isInside(h.path, resolv))) roBinds.push(path.dirname(resolv));
    } catch {
      // No resolv.conf: nothing to keep.
    }
  }

  const failures: string[] = [];
  for (const disableUserns of [true, false]) {
    const sandbox = new ProcessSandbox({ ...base, hide, roBinds, bwrap, disableUserns });
    const probe = await sandbox.run({ command: ['true'], timeoutMs: PROBE_TIMEOUT_MS });
    if (probe.exitCode === 0) return sandbox;
    const why = probe.timedOut ? 'timed out' : probe.exitCode !== null ? `exit code ${probe.exitCode}` : `signal ${probe.signal}`;
    failures.push(`${disableUserns ? 'with' : 'without'} --disable-userns: ${why}: ${probe.output.trim().slice(0, 500)}`);
  }
  throw new SandboxUnavailableError(`bubblewrap (${bwrap}) cannot create the sandbox here; ${failures.join('; ')}`);
}
