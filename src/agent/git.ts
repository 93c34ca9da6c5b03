/** Runs git as a child process with an argv array (never a shell). */
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
    super(`git ${args[0]} failed (exit ${exitCode}): ${redactCredentials(stderr.trim()).slice(0, 2000)}`);
    this.exitCode = exitCode;
    this.stderr = redactCredentials(stderr);
  }
}

/** Removes `user:password@` from URLs and bearer/basic credentials from a text. */
export function redactCredentials(text: string): string {
  return text
    .replace(/(\w+:\/\/)[^/\s@]+@/g, '$1***@')
    .replace(/(authorization:\s*(?:basic|bearer|token)\s+)\S+/gi, '$1***');
}

/**
 * Runs `git <args>` in `cwd`. Interactive prompts are disabled (GIT_TERMINAL_PROMPT=0).
 * @param opts.env extra environment variables (e.g. GIT_CONFIG_* for a per-command auth header).
 * @param opts.input written to stdin.
 * @throws GitError on a non-zero exit.
 */
export function git(
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; input?: Buffer | string; timeoutMs?: number; signal?: AbortSignal },
): Promise<GitOutput> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', ...opts.env },
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
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
