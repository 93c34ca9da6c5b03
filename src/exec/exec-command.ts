/**
 * `codex-cloud exec`: the same agent, on a local directory, without GitHub. Works in place, with the
 * same sandbox; streams progress to the terminal (or JSON lines with `--json`) and prints the final
 * summary. Exit codes: 0 success, 1 the task failed or was cancelled, 2 bad usage.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../contract.ts';
import { jsonLinesEmitter, stamp } from '../agent/events.ts';
import { git } from '../agent/git.ts';
import { runTask } from '../agent/runner.ts';
import { abortOnSignals } from '../agent/signals.ts';
import { UsageError } from '../agent/cli-runner.ts';
import { TerminalRenderer } from './render.ts';

/** Default model when neither `--model` nor CODEX_MODEL is given. */
export const DEFAULT_MODEL = 'gpt-5.1-codex';

/** Options of the `exec` command. */
export interface ExecOptions {
  prompt: string;
  cd?: string;
  model?: string;
  effort?: 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';
  json?: boolean;
  maxTurns?: number;
  /** Wall-clock limit, ms. */
  timeoutMs?: number;
  /** `container` when the surrounding container is the sandbox. */
  sandbox?: 'bubblewrap' | 'container';
}

async function headSha(dir: string): Promise<string | undefined> {
  try {
    return (await git(['rev-parse', 'HEAD'], { cwd: dir })).stdout.toString().trim();
  } catch {
    return undefined;
  }
}

/** Runs `exec`; returns the process exit code. @throws UsageError for a bad directory or prompt. */
export async function execCommand(opts: ExecOptions): Promise<number> {
  const dir = path.resolve(opts.cd ?? process.cwd());
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--cd: ${dir} is not a directory`);
  if (!opts.prompt.trim()) throw new UsageError('a prompt is required, e.g. codex-cloud exec "fix the failing test"');
  const base = (await headSha(dir)) ?? '0'.repeat(40);
  const spec = TaskSpec.parse({
    id: `exec-${randomUUID()}`,
    kind: 'task',
    repository: { cloneUrl: `file://${dir}`, fullName: `local/${path.basename(dir) || 'repo'}`, baseRef: 'HEAD', baseSha: base },
    instruction: opts.prompt,
    model: {
      name: opts.model ?? process.env.CODEX_MODEL ?? DEFAULT_MODEL,
      ...(opts.effort ? { reasoningEffort: opts.effort } : {}),
    },
    limits: {
      ...(opts.maxTurns ? { maxTurns: opts.maxTurns } : {}),
      ...(opts.timeoutMs ? { wallTimeMs: opts.timeoutMs } : {}),
    },
    sandbox: opts.sandbox ?? 'bubblewrap',
  });
  const scratch = await mkdtemp(path.join(tmpdir(), 'codex-exec-'));
  const renderer = opts.json ? undefined : new TerminalRenderer(process.stderr, process.stdout);
  const emit = opts.json
    ? jsonLinesEmitter(process.stdout)
    : (event: Parameters<typeof stamp>[0]): ProgressEvent => {
        const stamped = stamp(event);
        renderer!.handle(stamped);
        return stamped;
      };
  const cancel = abortOnSignals();
  let result: TaskResult;
  try {
    result = await runTask({ spec, workDir: scratch, inPlace: dir, emit, signal: cancel.signal });
  } finally {
    cancel.dispose();
    await rm(scratch, { recursive: true, force: true });
  }
  if (opts.json) emit({ type: 'result', result });
  else renderer!.finish(result);
  return result.status === 'succeeded' || result.status === 'no_changes' ? 0 : 1;
}
