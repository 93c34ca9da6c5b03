/**
 * A runner backend for tests of the task service: nothing runs; each started job waits until the test
 * hands in its TaskResult (`finish`), or is cancelled.
 */
import type { TaskResult } from '../../src/contract.ts';
import type { RunnerBackend, RunnerExecution, RunnerJob } from '../../src/runners/backend.ts';

/** A runner backend whose runs end when the test says so. */
export class FakeBackend implements RunnerBackend {
  readonly name = 'local' as const;
  readonly jobs: Array<{ job: RunnerJob; finish: (result: TaskResult) => void; cancelled?: string }> = [];
  async start(job: RunnerJob): Promise<RunnerExecution> {
    let finish!: (result: TaskResult) => void;
    const result = new Promise<TaskResult>((resolve) => (finish = resolve));
    const entry: (typeof this.jobs)[number] = { job, finish };
    this.jobs.push(entry);
    return {
      externalId: String(this.jobs.length),
      result,
      cancel: async (reason: string) => {
        entry.cancelled = reason;
        finish(resultFor(job, { status: 'cancelled', changes: [] }));
      },
    };
  }
}

/**
 * A succeeded result for `job` changing `src/a.js`, based on the checked-out commit (the head for pull
 * request work), with `patch` laid over it.
 */
export function resultFor(job: RunnerJob, patch: Partial<TaskResult> = {}): TaskResult {
  return {
    version: 1,
    id: job.spec.id,
    status: 'succeeded',
    stopReason: 'completed',
    baseSha: job.spec.repository.headSha ?? job.spec.repository.baseSha,
    summary: '## Summary\nFixed.',
    changes: [{ action: 'modify', path: 'src/a.js', mode: '100644', contentBase64: Buffer.from('fixed\n').toString('base64') }],
    commitMessage: 'Fix a',
    pullRequest: { title: 'Fix a', body: 'Fixed a.' },
    commands: [],
    findings: [],
    plan: [],
    usage: { inputTokens: 10, cachedInputTokens: 0, outputTokens: 5, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 },
    ...patch,
  };
}
