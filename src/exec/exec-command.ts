/**
 * `codex-cloud exec`: the same agent, on a local directory, without GitHub. Works in place, with the
 * same sandbox; streams progress to the terminal (or JSON lines with `--json`) and prints the final
 * summary. Exit codes: 0 success, 1 the task failed or was cancelled (or the model API cannot be
 * reached), 2 bad usage (including a missing `OPENAI_API_KEY`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { APIConnectionError, type OpenAI } from 'openai';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../contract.ts';
import { jsonLinesEmitter, stamp } from '../agent/events.ts';
import { git } from '../agent/git.ts';
import { createModelClient } from '../agent/model.ts';
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

/** How long the model API's reachability check waits, ms. */
const REACH_TIMEOUT_MS = 10_000;

/**
 * Checks that the model API answers at all (any HTTP status counts) with one `GET {baseURL}/models`,
 * so that an unreachable URL is reported at once instead of after the agent's retries.
 * @returns why the API cannot be reached, or undefined when it answered.
 */
async function unreachable(client: OpenAI): Promise<string | undefined> {
  try {
    await client.models.list({ timeout: REACH_TIMEOUT_MS });
    return undefined;
  } catch (error) {
    if (!(error instanceof APIConnectionError)) return undefined;
    const cause = error.cause as { code?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
    const detail = cause?.cause?.code ?? cause?.code ?? cause?.cause?.message ?? cause?.message;
    return detail ? `${error.message} (${detail})` : error.message;
  }
}

/**
 * Runs `exec`; returns the process exit code.
 * @throws UsageError for a bad directory or prompt, or when `OPENAI_API_KEY` is not set.
 */
export async function execCommand(opts: ExecOptions): Promise<number> {
  const dir = path.resolve(opts.cd ?? process.cwd());
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--cd: ${dir} is not a directory`);
  if (!opts.prompt.trim()) throw new UsageError('a prompt is required, e.g. codex-cloud exec "fix the failing test"');
  if (!process.env.OPENAI_API_KEY) {
    throw new UsageError('OPENAI_API_KEY is not set: exec calls the model API directly with it (and OPENAI_BASE_URL, default https://api.openai.com/v1)');
  }
  const client = createModelClient({});
  const down = await unreachable(client);
  if (down) {
    process.stderr.write(`codex-cloud: the model API at ${client.baseURL} could not be reached: ${down}. Check OPENAI_BASE_URL and the network.\n`);
    return 1;
  }
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
