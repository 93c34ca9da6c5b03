/**
 * Executes the model's function calls (`shell`, `apply_patch`, `update_plan`) and turns each into the
 * text of a `function_call_output`. Errors the model can act on (bad arguments, a patch that does not
 * apply) are returned as output, never thrown, so the loop goes on.
 */
import path from 'node:path';
import { z } from 'zod';
import type { CommandRecord, PlanStep, ProgressEventInput } from '../../contract.ts';
import { DiskLimitError, type Sandbox } from '../sandbox.ts';
import { runRecorded } from '../recorded-command.ts';
import { applyPatch } from './apply-patch.ts';
import { formatToolOutput } from './truncate.ts';

const ShellArgs = z.object({
  command: z.array(z.string()).min(1, 'command must be a non-empty argv array'),
  workdir: z.string().optional(),
  timeout_ms: z.number().positive().optional(),
});
const ApplyPatchArgs = z.object({ input: z.string().min(1) });
const UpdatePlanArgs = z.object({
  explanation: z.string().optional(),
  plan: z.array(z.object({ step: z.string(), status: z.enum(['pending', 'in_progress', 'completed']) })),
});

/** What the tools need from the task. */
export interface ToolContext {
  sandbox: Sandbox;
  /** Absolute path of the repository checkout (the workspace). */
  root: string;
  /** Default timeout of a command, ms; a model-requested timeout is capped at 4× this. */
  commandTimeoutMs: number;
  /** Epoch ms after which no command may still run (the task's wall-clock deadline). */
  deadline: number;
  signal?: AbortSignal;
  emit: (event: ProgressEventInput) => void;
}

/** A function call as the Responses API returns it (`type: 'function_call'`). */
export interface FunctionCall {
  name: string;
  arguments: string;
  call_id: string;
}

/** Stateful tool executor for one task: keeps the commands run and the current plan. */
export class ToolRunner {
  readonly commands: CommandRecord[] = [];
  plan: PlanStep[] = [];
  private readonly ctx: ToolContext;

  constructor(ctx: ToolContext) {
    this.ctx = ctx;
  }

  /**
   * Runs one call and returns the `function_call_output` text. Never throws on bad input.
   * @throws DiskLimitError when a command took the work directory over its disk limit (the task fails).
   */
  async execute(call: FunctionCall): Promise<string> {
    let args: unknown;
    try {
      args = JSON.parse(call.arguments || '{}');
    } catch (error) {
      return `error: the arguments of ${call.name} are not valid JSON (${(error as Error).message}). Send a JSON object matching the tool's schema.`;
    }
    switch (call.name) {
      case 'shell':
      case 'container.exec': {
        const parsed = ShellArgs.safeParse(args);
        if (!parsed.success) return invalid('shell', parsed.error);
        const patch = extractApplyPatch(parsed.data.command);
        if (patch !== undefined) return this.applyPatch(patch);
        return this.shell(parsed.data);
      }
      case 'apply_patch': {
        const parsed = ApplyPatchArgs.safeParse(args);
        if (!parsed.success) return invalid('apply_patch', parsed.error);
        return this.applyPatch(parsed.data.input);
      }
      case 'update_plan': {
        const parsed = UpdatePlanArgs.safeParse(args);
        if (!parsed.success) return invalid('update_plan', parsed.error);
        this.plan = parsed.data.plan;
        this.ctx.emit({ type: 'plan', plan: this.plan, explanation: parsed.data.explanation });
        return 'Plan updated';
      }
      default:
        return `error: unknown tool "${call.name}". Available tools: shell, apply_patch, update_plan.`;
    }
  }

  private resolveWorkdir(workdir: string | undefined): string | undefined {
    const abs = path.resolve(this.ctx.root, workdir ?? '.');
    const rel = path.relative(this.ctx.root, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    return abs;
  }

  private async shell(args: z.infer<typeof ShellArgs>): Promise<string> {
    const cwd = this.resolveWorkdir(args.workdir);
    if (!cwd) return `error: workdir "${args.workdir}" is outside the repository; use a path inside it.`;
    const workdir = path.relative(this.ctx.root, cwd) || '.';
    const remaining = this.ctx.deadline - Date.now();
    if (remaining <= 0) return 'error: the task has no time left to run commands.';
    const timeoutMs = Math.min(
      args.timeout_ms ? Math.min(args.timeout_ms, this.ctx.commandTimeoutMs * 4) : this.ctx.commandTimeoutMs,
      remaining,
    );
    let result;
    try {
      result = await runRecorded({
        sandbox: this.ctx.sandbox,
        phase: 'agent',
        command: args.command,
        cwd,
        workdir,
        timeoutMs,
        signal: this.ctx.signal,
        deadline: this.ctx.deadline,
        emit: this.ctx.emit,
        commands: this.commands,
      });
    } catch (error) {
      // Over the task's disk limit the task fails; the model cannot undo it in time.
      if (error instanceof DiskLimitError) throw error;
      // e.g. SandboxPathError for a workdir that does not exist: the model can correct it.
      const message = error instanceof Error ? error.message : String(error);
      return `error: the command could not be started: ${message}`;
    }
    return formatToolOutput(result);
  }

  private async applyPatch(input: string): Promise<string> {
    try {
      const result = await applyPatch(input, this.ctx.root);
      this.ctx.emit({
        type: 'patch',
        ok: true,
        files: result.changed.map((c) => ({ path: c.moveTo ?? c.path, kind: c.kind })),
      });
      return result.summary;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.ctx.emit({ type: 'patch', ok: false, files: [], error: message });
      return `error: apply_patch failed: ${message}`;
    }
  }
}

function invalid(tool: string, error: z.ZodError): string {
  const details = error.issues.map((i) => `${i.path.join('.') || '(arguments)'}: ${i.message}`).join('; ');
  return `error: invalid arguments for ${tool}: ${details}`;
}

/**
 * Recognises the ways models trained on the Codex CLI call apply_patch through the shell:
 * `["apply_patch", PATCH]` and `["bash", "-lc", "apply_patch <<'EOF'\n…\nEOF"]`.
 * Returns the patch text, or undefined when the command is an ordinary one.
 */
export function extractApplyPatch(command: string[]): string | undefined {
  const [first, second, third] = command;
  if ((first === 'apply_patch' || first === 'applypatch') && command.length === 2) return second;
  if (
    command.length === 3 &&
    (first === 'bash' || first === 'sh') &&
    (second === '-lc' || second === '-c') &&
    third !== undefined
  ) {
    const match = /^\s*(?:apply_patch|applypatch)\s+(<<[\s\S]*)$/.exec(third);
    if (match) return match[1];
  }
  return undefined;
}
