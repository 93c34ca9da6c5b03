/** Runs the real `codex-cloud` CLI (`src/cli.ts`) as a child process, for end-to-end tests. */
import { spawn } from 'node:child_process';
import path from 'node:path';

/** Path of the CLI's entry point. */
export const CLI = path.resolve(import.meta.dirname, '../../src/cli.ts');

/** What a CLI run printed and how it exited. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `codex-cloud <args>` with `stdin` (closed empty by default).
 * @param opts.env the child's environment (default: this process's, plus `extraEnv`).
 */
export function runCli(
  args: string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv; extraEnv?: Record<string, string>; cwd?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? process.cwd(),
      env: { ...(opts.env ?? process.env), ...opts.extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}
