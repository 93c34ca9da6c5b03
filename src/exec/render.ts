/**
 * Human-readable progress for `codex-cloud exec`: phases, the plan as a checklist, each command with
 * its exit code and duration, and a spinner with the elapsed time while the model thinks (only on a
 * terminal that reports its width: see {@link canSpin}).
 */
import type { Writable } from 'node:stream';
import ora, { type Ora } from 'ora';
import type { ProgressEvent, TaskResult } from '../contract.ts';

const PLAN_MARK = { pending: '[ ]', in_progress: '[>]', completed: '[x]' } as const;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function commandLine(argv: string[]): string {
  // Show `bash -lc "script"` as the script, the way a person typed it.
  const shown = argv.length === 3 && /^(ba)?sh$/.test(argv[0]!) && /^-l?c$/.test(argv[1]!) ? argv[2]! : argv.join(' ');
  const oneLine = shown.replace(/\s*\n\s*/g, ' ⏎ ');
  return oneLine.length > 120 ? `${oneLine.slice(0, 119)}…` : oneLine;
}

/** A stream as Node gives it for a terminal (`tty.WriteStream`): `isTTY` and `columns` when it is one. */
export type TerminalStream = Writable & { isTTY?: boolean; columns?: number };

/**
 * Whether a spinner can be drawn on `stream`: a TTY that reports a width. A pseudo-terminal without a
 * size (e.g. under `script` with no terminal of its own) reports 0 columns, on which a spinner cannot
 * tell how many lines to clear and redraws without end.
 */
export function canSpin(stream: TerminalStream): boolean {
  return stream.isTTY === true && typeof stream.columns === 'number' && stream.columns > 0;
}

/** Renders progress events to `err` (progress) and the final summary to `out`. */
export class TerminalRenderer {
  private readonly err: TerminalStream;
  private readonly out: Writable;
  private readonly spinner: Ora | undefined;
  private readonly started = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private waitingSince = 0;
  private waitingLabel = '';

  constructor(err: TerminalStream, out: Writable) {
    this.err = err;
    this.out = out;
    this.spinner = canSpin(err) ? ora({ stream: err, discardStdin: false }) : undefined;
  }

  private line(text: string): void {
    if (this.spinner?.isSpinning) {
      this.spinner.stop();
      this.err.write(`${text}\n`);
      this.spinner.start();
    } else {
      this.err.write(`${text}\n`);
    }
  }

  private wait(label: string): void {
    this.waitingSince = Date.now();
    this.waitingLabel = label;
    if (!this.spinner) return;
    this.spinner.start(label);
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (this.spinner) this.spinner.text = `${this.waitingLabel} ${seconds(Date.now() - this.waitingSince)}`;
    }, 250);
    this.timer.unref();
  }

  private stopWaiting(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.spinner?.stop();
  }

  /** Renders one event. */
  handle(event: ProgressEvent): void {
    switch (event.type) {
      case 'phase':
        if (event.status === 'started') this.line(`▸ ${event.phase}`);
        else if (event.status === 'failed') {
          this.stopWaiting();
          this.line(`✗ ${event.phase} failed: ${event.reason ?? ''}`);
        }
        break;
      case 'model_request':
        if (event.status === 'started') this.wait(`thinking (turn ${event.turn})…`);
        else if (event.status === 'retrying') this.line(`  ↻ model request retried: ${event.reason ?? ''}`);
        else this.stopWaiting();
        break;
      case 'plan':
        this.line(['  plan:', ...event.plan.map((s) => `    ${PLAN_MARK[s.status]} ${s.step}`)].join('\n'));
        break;
      case 'command_begin':
        this.wait(`$ ${commandLine(event.command)}`);
        break;
      case 'command_end': {
        this.stopWaiting();
        const ok = event.exitCode === 0;
        const status = event.timedOut ? 'timed out' : `exit ${event.exitCode ?? 'signal'}`;
        this.line(`  ${ok ? '✓' : '✗'} ${commandLine(event.command)}  (${status}, ${seconds(event.durationMs)})`);
        break;
      }
      case 'patch':
        this.line(
          event.ok
            ? `  ✎ ${event.files.map((f) => `${f.kind} ${f.path}`).join(', ')}`
            : `  ✗ apply_patch: ${(event.error ?? '').split('\n')[0]}`,
        );
        break;
      case 'log':
        this.line(`  ${event.level}: ${event.message}`);
        break;
      default:
        break;
    }
  }

  /** Prints the final summary (stdout) and the outcome line (stderr). */
  finish(result: TaskResult): void {
    this.stopWaiting();
    const u = result.usage;
    const title = result.pullRequest.title ? `# ${result.pullRequest.title}\n\n` : '';
    if (result.summary.trim()) this.out.write(`\n${result.status === 'succeeded' || result.status === 'no_changes' ? title : ''}${result.summary.trim()}\n`);
    const files = result.changes.length;
    const outcome =
      result.status === 'succeeded'
        ? `✓ done: ${files} file${files === 1 ? '' : 's'} changed in the working tree`
        : result.status === 'no_changes'
          ? '✓ done: no changes'
          : result.status === 'cancelled'
            ? '✗ cancelled'
            : `✗ failed at ${result.failure?.phase ?? 'agent'}: ${result.failure?.reason ?? result.stopReason}`;
    this.err.write(
      `\n${outcome}\n  ${u.turns} turns, ${u.inputTokens} input tokens (${u.cachedInputTokens} cached), ${u.outputTokens} output tokens, ${seconds(Date.now() - this.started)}\n`,
    );
  }
}
