/** A sandboxed command as the task records it: progress events around it and a CommandRecord. */
import type { CommandOutput, CommandRecord, Phase, ProgressEventInput } from '../contract.ts';
import { DiskLimitError, type RunResult, type Sandbox } from './sandbox.ts';

/** What {@link runRecorded} runs and where it reports. */
export interface RecordedCommandOptions {
  sandbox: Sandbox;
  phase: Phase;
  command: string[];
  /** Absolute working directory inside the workspace. */
  cwd: string;
  /** The same directory relative to the repository root (`.` for the root), as recorded. */
  workdir: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Epoch ms of the task's deadline: a command aborted after it counts as timed out. */
  deadline?: number;
  emit: (event: ProgressEventInput) => void;
  /** The task's command list; the record is appended. */
  commands: CommandRecord[];
}

/**
 * Runs one command in the sandbox between `command_begin` and `command_end` events and appends its
 * CommandRecord. When the command cannot even start, `command_end` is still emitted (exit code null)
 * and the sandbox's error is rethrown (e.g. SandboxPathError for a missing directory).
 * @throws DiskLimitError when the command took the work directory over its disk limit: the command
 *   is recorded first, then the error is rethrown so that the phase fails with its message.
 */
export async function runRecorded(opts: RecordedCommandOptions): Promise<RunResult> {
  const { phase, command, workdir } = opts;
  opts.emit({ type: 'command_begin', phase, command, workdir });
  let result: RunResult;
  try {
    result = await opts.sandbox.run({ command, cwd: opts.cwd, timeoutMs: opts.timeoutMs, signal: opts.signal });
  } catch (error) {
    if (error instanceof DiskLimitError) appendRecord(opts, error.result);
    else opts.emit({ type: 'command_end', phase, command, workdir, exitCode: null, durationMs: 0, timedOut: false });
    throw error;
  }
  appendRecord(opts, result);
  return result;
}

/** Appends the command's CommandRecord and emits `command_end`. */
function appendRecord(opts: RecordedCommandOptions, result: RunResult): void {
  const { phase, command, workdir } = opts;
  const record: CommandRecord = {
    phase,
    command,
    workdir,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    // Stopped by the task's wall-clock deadline counts as a timeout too.
    timedOut: result.timedOut || (result.aborted && opts.deadline !== undefined && Date.now() >= opts.deadline),
    output: clipOutput(result.output, result.outputBytes),
  };
  opts.commands.push(record);
  opts.emit({ type: 'command_end', ...record });
}

/** Characters of a command's output kept in its record: all of it up to this, else head and tail halves. */
const RECORDED_OUTPUT_CHARS = 4000;

/** CommandRecord.output (for the task page): the whole output up to 4,000 characters, else the first and last 2,000. */
function clipOutput(output: string, bytes: number): CommandOutput {
  if (output.length <= RECORDED_OUTPUT_CHARS) return { head: output, tail: '', bytes };
  const half = RECORDED_OUTPUT_CHARS / 2;
  return { head: output.slice(0, half), tail: output.slice(-half), bytes };
}
