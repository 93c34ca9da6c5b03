/**
 * `codex-cloud runner`: reads a TaskSpec (JSON, from a file or stdin, or with `--claim` from the app's
 * runner API, see claim.ts), runs the task, writes progress events as JSON lines on stdout, the last
 * one `{"type":"result","result":TaskResult}`. When the spec has `report`, events and the result are
 * also POSTed to the app (reporter.ts).
 * Exit codes: 0 succeeded or no_changes, 1 failed or cancelled, 2 invalid input, 3 the claim failed,
 * 4 the result could not be delivered to `report.url`.
 *
 * With `phase: 'setup'` (`--phase setup`, the ECS backend's setup task) the runner stops after the
 * setup phase: its events are reported, no TaskResult is posted (the agent task posts the task's
 * only result), and the exit code tells the app whether setup succeeded (0) or not (1); the phase
 * event of a failed phase carries the reason.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { CLAIM_FAILED_EXIT_CODE, describeZodError, RESULT_UNDELIVERED_EXIT_CODE, TaskSpec, type TaskResult } from '../contract.ts';
import { ClaimError, claimFromEnvironment } from './claim.ts';
import { jsonLinesEmitter } from './events.ts';
import { InsecureUrlError, Reporter } from './reporter.ts';
import { preloadAgentModules, runTask } from './runner.ts';
import { abortOnSignals } from './signals.ts';

/** Options of the `runner` command. */
export interface RunnerCommandOptions {
  /** Path of the TaskSpec JSON, or `-` for stdin. */
  spec: string;
  /** Scratch directory (default: a new temporary directory). */
  workdir?: string;
  /** Also write the TaskResult JSON to this file. */
  output?: string;
  /**
   * Claim the TaskSpec from the app instead of reading `spec` (ECS): uses `CODEX_TASK_ID`,
   * `CODEX_APP_URL` and `CODEX_CLAIM_TICKET` from the environment.
   */
  claim?: boolean;
  /** `setup`: checkout and setup only (see the module comment). Default: every phase. */
  phase?: 'setup';
  /**
   * Load every module (the agent phase's too) before reading the TaskSpec: a standby runner, started
   * ahead of its task by the local backend, is ready when the spec arrives.
   */
  preload?: boolean;
}

/** Thrown for bad input; the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parses and validates a TaskSpec from JSON text.
 * @throws UsageError naming the offending fields.
 */
export function parseTaskSpec(json: string): TaskSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new UsageError(`invalid TaskSpec: not valid JSON (${(error as Error).message})`);
  }
  const parsed = TaskSpec.safeParse(raw);
  if (!parsed.success) throw new UsageError(`invalid TaskSpec:\n${describeZodError(parsed.error)}`);
  return parsed.data;
}

/** Runs the `runner` command; returns the process exit code. */
export async function runnerCommand(opts: RunnerCommandOptions): Promise<number> {
  if (opts.preload) await preloadAgentModules();
  let spec: TaskSpec;
  if (opts.claim) {
    try {
      spec = await claimFromEnvironment(process.env);
    } catch (error) {
      if (!(error instanceof ClaimError)) throw error;
      process.stderr.write(`codex-cloud runner: ${error.message}\n`);
      return CLAIM_FAILED_EXIT_CODE;
    }
  } else {
    const json = opts.spec === '-' ? await text(process.stdin) : await readFile(opts.spec, 'utf8');
    spec = parseTaskSpec(json);
  }
  let reporter: Reporter | undefined;
  try {
    reporter = spec.report ? new Reporter({ url: spec.report.url, token: spec.report.token }) : undefined;
  } catch (error) {
    if (error instanceof InsecureUrlError) throw new UsageError(`invalid TaskSpec:\nreport.url: ${error.message}`);
    throw error;
  }
  const workDir = opts.workdir ? path.resolve(opts.workdir) : await mkdtemp(path.join(tmpdir(), `codex-${spec.id.replace(/[^\w.-]/g, '_')}-`));
  const emit = reporter ? jsonLinesEmitter(process.stdout, (event) => reporter.event(event)) : jsonLinesEmitter(process.stdout);
  const cancel = abortOnSignals();
  let result: TaskResult;
  try {
    result = await runTask({ spec, workDir, emit, signal: cancel.signal, ...(opts.phase ? { phase: opts.phase } : {}) });
  } finally {
    cancel.dispose();
  }
  if (opts.phase === 'setup') {
    if (opts.output) await writeFile(opts.output, JSON.stringify(result, null, 2));
    if (reporter) {
      await reporter.flush();
      reporter.close();
    }
    return result.status === 'succeeded' || result.status === 'no_changes' ? 0 : 1;
  }
  emit({ type: 'result', result });
  if (opts.output) await writeFile(opts.output, JSON.stringify(result, null, 2));
  if (reporter) {
    const delivered = await reporter.sendResult(result);
    reporter.close();
    if (!delivered) return RESULT_UNDELIVERED_EXIT_CODE;
  }
  return result.status === 'succeeded' || result.status === 'no_changes' ? 0 : 1;
}
