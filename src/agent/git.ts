/**
 * Runs git on the host as a child process with an argv array (never a shell), with a hardened
 * configuration: git on the host must never execute anything the agent wrote (DESIGN.md, "Trust
 * boundary"). See https://git-scm.com/docs/git-config#SCOPES for the configuration scopes.
 */
import { execFile } from 'node:child_process';

/** Output of a git command. */
export interface GitOutput {
  stdout: Buffer;
  stderr: string;
}

/** Thrown when git exits non-zero; `stderr` holds git's own message (credentials redacted). */
export class GitError extends Error {
  override name = 'GitError';
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(args: string[], exitCode: number | null, stderr: string) {
    super(`git ${subcommand(args)} failed (exit ${exitCode}): ${redactCredentials(stderr.trim()).slice(0, 2000)}`);
    this.exitCode = exitCode;
    this.stderr = redactCredentials(stderr);
  }
}

/** The git subcommand of an argv (`fetch` in `--git-dir=X fetch -q`), for messages. */
function subcommand(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c' || args[i] === '-C') i++;
    else if (!args[i]!.startsWith('-')) return args[i]!;
  }
  return args[0] ?? '';
}

/** Removes `user:password@` from URLs and bearer/basic credentials from a text. */
export function redactCredentials(text: string): string {
  return text
    .replace(/(\w+:\/\/)[^/\s@]+@/g, '$1***@')
    .replace(/(authorization:\s*(?:basic|bearer|token)\s+)\S+/gi, '$1***');
}

/** A configuration entry given to one git command in the command scope (`-c key=value`). */
export type GitConfigEntry = readonly [key: string, value: string];

/**
 * Configuration every host-side git command runs with, in the command scope (which takes
 * precedence over the repository's own `config`, and which git passes on to the git processes it
 * starts itself). It turns off everything in git that runs a program named by configuration or by
 * a file in the working tree: hooks (`core.hooksPath`), the file system monitor, credential helpers,
 * submodule recursion, automatic maintenance, every transport (`protocol.allow`; a clone allows its
 * one scheme), and the per-user attributes and ignore files of the host. Filter, textconv and
 * external diff drivers need a definition in a config file: the only one git reads is the private
 * git directory's (see {@link TrustedRepository}), which has none. (Submodules are handled apart:
 * `git add` ignores `diff.ignoreSubmodules` and runs `git status` inside a tracked submodule's
 * directory, with that directory's own config; see `protectSubmodules` in trusted-repo.ts.)
 */
const HARDENED_CONFIG: readonly GitConfigEntry[] = [
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  ['core.untrackedCache', 'false'],
  ['core.attributesFile', '/dev/null'],
  ['core.excludesFile', '/dev/null'],
  ['credential.helper', ''],
  ['submodule.recurse', 'false'],
  ['fetch.recurseSubmodules', 'false'],
  ['protocol.allow', 'never'],
  ['gc.auto', '0'],
  ['maintenance.auto', 'false'],
  ['safe.bareRepository', 'explicit'],
];

/**
 * Host variables git inherits: locale, time zone, temporary directory, proxies and CA bundles.
 * Nothing else of the runner's environment (no secrets, no `GIT_*` variable that would redirect git).
 */
const INHERITED_ENV = [
  'PATH', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'TMPDIR',
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy',
  'SSL_CERT_FILE', 'SSL_CERT_DIR', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'GIT_SSL_CAPATH',
];

/** Options of {@link git}. */
export interface GitOptions {
  cwd: string;
  /**
   * Extra command-scope configuration after {@link HARDENED_CONFIG}, passed through
   * GIT_CONFIG_COUNT/KEY/VALUE (never on the command line, so not visible in `ps`).
   */
  config?: readonly GitConfigEntry[];
  /** Directories git may use whatever their owner (`safe.directory`, exact paths). */
  safeDirectories?: readonly string[];
  /** Extra environment variables (e.g. GIT_INDEX_FILE). */
  env?: Record<string, string>;
  /** Written to stdin. */
  input?: Buffer | string;
  /** Kills git after this many ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The environment of a host-side git: {@link INHERITED_ENV} from this process, no system or global
 * configuration (GIT_CONFIG_NOSYSTEM, GIT_CONFIG_GLOBAL=/dev/null), no system attributes
 * (GIT_ATTR_NOSYSTEM), no prompts, and `config` in the command scope.
 */
function hardenedGitEnv(
  config: readonly GitConfigEntry[],
  extra: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, {
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: 'true',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_OPTIONAL_LOCKS: '0',
    GIT_PAGER: 'cat',
  });
  env.GIT_CONFIG_COUNT = String(config.length);
  config.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return { ...env, ...extra };
}

/**
 * Runs `git <args>` in `cwd` with {@link HARDENED_CONFIG} and the environment of
 * {@link hardenedGitEnv}.
 * @throws GitError on a non-zero exit.
 */
export function git(args: string[], opts: GitOptions): Promise<GitOutput> {
  const config = [
    ...HARDENED_CONFIG,
    ...(opts.safeDirectories ?? []).map((dir): GitConfigEntry => ['safe.directory', dir]),
    ...(opts.config ?? []),
  ];
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: hardenedGitEnv(config, opts.env),
        encoding: 'buffer',
        maxBuffer: 512 * 1024 * 1024,
        timeout: opts.timeoutMs,
        signal: opts.signal,
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === 'number' ? error.code : null;
          reject(new GitError(args, code, stderr?.toString('utf8') || error.message));
        } else {
          resolve({ stdout, stderr: stderr.toString('utf8') });
        }
      },
    );
    // stdin is closed at once when there is no input: nothing git starts can wait on it. git may
    // exit before reading it (EPIPE); its exit code tells the story.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}

/**
 * A working tree (the agent's workspace) paired with a git directory outside it that the agent
 * cannot write. Host-side git reads configuration, hooks, `info/attributes` and the index only from
 * `gitDir`, never from the `.git` the agent may have rewritten in the workspace.
 */
export interface TrustedRepository {
  /** Absolute path of the private git directory (outside every path the sandbox can write). */
  gitDir: string;
  /** Absolute path of the working tree. */
  workTree: string;
}

/**
 * Runs `git --git-dir=<gitDir> --work-tree=<workTree> <args>` in the working tree (see {@link git}),
 * with `safe.directory` set to exactly those two paths.
 * @throws GitError on a non-zero exit.
 */
export function gitIn(repo: TrustedRepository, args: string[], opts: Omit<GitOptions, 'cwd' | 'safeDirectories'> = {}): Promise<GitOutput> {
  return git([`--git-dir=${repo.gitDir}`, `--work-tree=${repo.workTree}`, ...args], {
    ...opts,
    cwd: repo.workTree,
    safeDirectories: [repo.gitDir, repo.workTree],
  });
}
