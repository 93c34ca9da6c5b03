/**
 * The local runner backend with fake runner programs (small Node scripts as `command`): it reads the
 * runner's stdout line by line within a size limit, and fails the task with a clear reason when a line
 * (the result) is too large, without buffering it.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../../src/contract.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { DEFAULT_MAX_LINE_BYTES, LocalRunnerBackend } from '../../src/runners/local.ts';
import { DEFAULT_MAX_TOTAL_BYTES } from '../../src/github/validate-result.ts';

const MIB = 1024 * 1024;

const spec = TaskSpec.parse({
  id: 'task-local-1',
  kind: 'task',
  repository: { cloneUrl: 'http://127.0.0.1:1/o/r.git', fullName: 'o/r', baseRef: 'main', baseSha: 'a'.repeat(40) },
  instruction: 'do it',
  model: { name: 'gpt-test' },
});

/** A result the fake runners report, with `summary` as given. */
function resultOf(summary: string): TaskResult {
  return { ...failedResult(spec, 'agent', 'x'), status: 'no_changes', stopReason: 'completed', failure: undefined, summary };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'local-runner-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a Node script into the test directory and returns the runner argv that runs it. */
async function fakeRunner(name: string, source: string): Promise<string[]> {
  const file = path.join(dir, `${name}.mjs`);
  await writeFile(file, source);
  return [process.execPath, file];
}

async function run(command: string[], opts: { maxLineBytes?: number } = {}): Promise<{ result: TaskResult; events: ProgressEvent[] }> {
  const backend = new LocalRunnerBackend({ workRoot: path.join(dir, 'work'), command, killGraceMs: 1000, ...opts });
  const events: ProgressEvent[] = [];
  const execution = await backend.start({ spec, onEvent: (e) => events.push(e), timeoutMs: 60_000 });
  return { result: await execution.result, events };
}

describe('LocalRunnerBackend output limits', () => {
  test('the default line limit fits the largest change set the app publishes, base64-encoded, whole MiB', () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBeGreaterThanOrEqual((DEFAULT_MAX_TOTAL_BYTES * 4) / 3 + 4 * MIB);
    expect(DEFAULT_MAX_LINE_BYTES % MIB).toBe(0);
    expect(DEFAULT_MAX_LINE_BYTES).toBe(75 * MIB);
  });

  test('events and the result are read line by line, a last line without a newline included', async () => {
    const result = resultOf('all good');
    const command = await fakeRunner(
      'ok',
      `process.stdin.resume();
       process.stdout.write(JSON.stringify({ type: 'phase', at: 'now', phase: 'agent', status: 'started' }) + '\\r\\n');
       process.stdout.write('not json\\n\\n');
       const line = JSON.stringify({ type: 'result', at: 'now', result: ${JSON.stringify(result)} });
       // Split across writes, so that the line arrives in several chunks.
       process.stdout.write(line.slice(0, 10));
       setTimeout(() => { process.stdout.write(line.slice(10)); process.exit(0); }, 50);`,
    );
    const { result: got, events } = await run(command);
    expect(events).toEqual([{ type: 'phase', at: 'now', phase: 'agent', status: 'started' }]);
    expect(got.status).toBe('no_changes');
    expect(got.summary).toBe('all good');
  });

  test('a result line at the limit is read; one byte more fails the task', async () => {
    const line = JSON.stringify({ type: 'result', at: 'now', result: resultOf('s'.repeat(1000)) });
    const bytes = Buffer.byteLength(line);
    const command = await fakeRunner('sized', `process.stdout.write(${JSON.stringify(line)} + '\\n');`);
    expect((await run(command, { maxLineBytes: bytes })).result.status).toBe('no_changes');
    const over = await run(command, { maxLineBytes: bytes - 1 });
    expect(over.result.status).toBe('failed');
    expect(over.result.failure?.reason).toBe(`the runner's result is larger than ${((bytes - 1) / 1024).toFixed(1).replace(/\.0$/, '')} KiB; the runner was stopped`);
  });

  test('a 300 MB result line fails the task with a clear reason while it streams; memory stays bounded', async () => {
    // The runner writes a result whose summary is 300 MB, in 1 MiB writes that wait for the pipe.
    const command = await fakeRunner(
      'huge',
      `const head = '{"type":"result","at":"now","result":{"summary":"';
       const chunk = Buffer.alloc(1024 * 1024, 'A');
       let written = 0;
       process.stdout.write(head);
       const more = () => {
         while (written < 300 * 1024 * 1024) {
           written += chunk.length;
           if (!process.stdout.write(chunk)) return process.stdout.once('drain', more);
         }
         process.stdout.write('"}}\\n');
       };
       more();`,
    );
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const { result } = await run(command);
      expect(result.status).toBe('failed');
      expect(result.failure).toEqual({ phase: 'checkout', reason: "the runner's result is larger than 75 MiB; the runner was stopped" });
    } finally {
      clearInterval(sampler);
    }
    // At most one line's worth (75 MiB) is held; a whole 300 MB line parsed would take gigabytes.
    expect(peak - before).toBeLessThan(200 * MIB);
  }, 60_000);
});
