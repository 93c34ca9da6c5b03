/**
 * The local runner backend: the runner program as a child process of the app, the TaskSpec on its
 * stdin, progress events and the TaskResult as JSON lines on its stdout. Commands the model runs are
 * sandboxed by the runner itself (bubblewrap).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ProgressEvent, TaskResult, type Phase } from '../contract.ts';
import { failedResult, type RunnerBackend, type RunnerExecution, type RunnerJob } from './backend.ts';

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
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'NODE_EXTRA_CA_CERTS',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];

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
}

/** Starts each runner as a local child process. */
export class LocalRunnerBackend implements RunnerBackend {
  readonly name = 'local' as const;
  private readonly opts: LocalRunnerOptions;
  private readonly children = new Set<ChildProcess>();

  constructor(opts: LocalRunnerOptions) {
    this.opts = opts;
  }

  async start(job: RunnerJob): Promise<RunnerExecution> {
    const workDir = path.join(this.opts.workRoot, job.spec.id.replace(/[^\w.-]/g, '_'));
    await mkdir(workDir, { recursive: true });
    const argv = [...(this.opts.command ?? defaultRunnerCommand()), '--workdir', workDir];
    const env: Record<string, string> = {};
    for (const key of RUNNER_ENV_ALLOWLIST) if (process.env[key] !== undefined) env[key] = process.env[key]!;
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const grace = this.opts.killGraceMs ?? 10_000;
    this.children.add(child);
    child.once('close', () => this.children.delete(child));

    let lastPhase: Phase | undefined;
    let result: TaskResult | undefined;
    let stderrTail = '';
    let stopReason: { status: 'failed' | 'cancelled'; reason: string } | undefined;

    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
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
    });
    child.stderr.on('data', (chunk: Buffer) => {
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

    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (error) => reject(new Error(`the runner could not be started: ${error.message}`)));
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    await spawned;
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(job.spec));

    const settled = exited.then(async ({ code, signal }) => {
      clearTimeout(timer);
      lines.close();
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
    for (const child of this.children) child.kill('SIGTERM');
  }
}
