/**
 * Limits and faults of the agent loop, through the real runner (in place on a temporary git
 * repository, real bubblewrap sandbox) against the scripted Responses API server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec, type ProgressEventInput, type TaskResult } from '../../src/contract.ts';
import { runTask } from '../../src/agent/runner.ts';
import { ScriptedModel, toolOutputs, type ScriptedTurn } from '../support/scripted-model.ts';

let dir: string;
let repo: string;
let baseSha: string;
let model: ScriptedModel | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'loop-'));
  repo = path.join(dir, 'repo');
  execFileSync('git', ['init', '-q', repo]);
  await writeFile(path.join(repo, 'a.txt'), 'one\n');
  execFileSync('git', ['-C', repo, 'add', '-A']);
  execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'init']);
  baseSha = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD']).toString().trim();
});

afterEach(async () => {
  await model?.close();
  model = undefined;
  execFileSync('git', ['-C', repo, 'checkout', '-q', '--', '.']);
  execFileSync('git', ['-C', repo, 'clean', '-qfd']);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(turns: ScriptedTurn[], limits: Partial<TaskSpec['limits']> = {}, opts: { signal?: AbortSignal; retries?: number } = {}) {
  model = await ScriptedModel.start({ turns });
  const events: ProgressEventInput[] = [];
  const spec = TaskSpec.parse({
    id: `loop-${Math.random().toString(36).slice(2)}`,
    kind: 'task',
    repository: { cloneUrl: `file://${repo}`, fullName: 'local/repo', baseRef: 'main', baseSha },
    instruction: 'edit a.txt',
    model: { baseUrl: model.baseUrl, apiKey: 'k', name: 'm', retryBaseMs: 5, maxRetries: opts.retries ?? 4 },
    limits,
  });
  const result: TaskResult = await runTask({ spec, workDir: path.join(dir, 'work'), inPlace: repo, emit: (e) => events.push(e), signal: opts.signal });
  return { result, events, requests: model.requests };
}

const PATCH = '*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+two\n*** End Patch';
const shellTrue = [{ type: 'function_call' as const, name: 'shell', arguments: { command: ['true'] } }];

describe('stopping', () => {
  test('the turn limit stops the loop and keeps the partial work', async () => {
    const { result, requests } = await run(
      [[{ type: 'function_call', name: 'apply_patch', arguments: { input: PATCH } }], shellTrue, shellTrue],
      { maxTurns: 2 },
    );
    expect(requests).toHaveLength(2);
    expect(result.stopReason).toBe('turn_limit');
    expect(result.status).toBe('failed');
    expect(result.failure).toEqual({ phase: 'agent', reason: expect.stringContaining('turn limit (2)') });
    expect(result.changes.map((c) => c.path)).toEqual(['a.txt']);
    expect(result.usage.turns).toBe(2);
  });

  test('the wall-clock limit interrupts a slow model and says so', async () => {
    const { result } = await run([{ fault: 'delay', ms: 30_000, then: [{ type: 'message', text: 'late' }] }], { wallTimeMs: 1500 });
    expect(result.stopReason).toBe('time_limit');
    expect(result.failure?.reason).toMatch(/wall-clock limit/);
    expect(result.usage.totalMs).toBeLessThan(15_000);
  });

  test('the wall-clock limit also stops a long command', async () => {
    const { result } = await run([[{ type: 'function_call', name: 'shell', arguments: { command: ['sleep', '60'] } }]], { wallTimeMs: 2000 });
    expect(result.stopReason).toBe('time_limit');
    expect(result.commands[0]).toMatchObject({ command: ['sleep', '60'], timedOut: true });
  });

  test('the token budget stops the loop', async () => {
    const { result, requests } = await run(
      [{ items: shellTrue, usage: { input_tokens: 900, output_tokens: 200 } }, shellTrue],
      { maxTokens: 1000 },
    );
    expect(requests).toHaveLength(1);
    expect(result.stopReason).toBe('token_limit');
    expect(result.failure?.reason).toMatch(/token budget \(1000 tokens\)/);
  });

  test('cancelling returns a cancelled result with the partial work', async () => {
    const controller = new AbortController();
    const turns: ScriptedTurn[] = [
      [{ type: 'function_call', name: 'apply_patch', arguments: { input: PATCH } }],
      () => {
        controller.abort();
        return { fault: 'delay', ms: 30_000, then: [{ type: 'message', text: 'late' }] };
      },
    ];
    const { result } = await run(turns, {}, { signal: controller.signal });
    expect(result.status).toBe('cancelled');
    expect(result.stopReason).toBe('cancelled');
    expect(result.changes.map((c) => c.path)).toEqual(['a.txt']);
  });
});

describe('faults', () => {
  test('a model that answers 500 twice then succeeds is retried', async () => {
    const { result, requests, events } = await run([
      { fault: 'http', status: 500 },
      { fault: 'http', status: 500 },
      [{ type: 'message', text: '# Nothing to do\n\n## Summary\n- nothing' }],
    ]);
    expect(requests).toHaveLength(3);
    expect(result.status).toBe('no_changes');
    expect(result.usage.turns).toBe(1);
    expect(events.filter((e) => e.type === 'model_request' && e.status === 'retrying')).toHaveLength(2);
  });

  test('a stream cut mid-way is retried', async () => {
    const { result, requests } = await run([
      { fault: 'cut', afterEvents: 3, items: shellTrue },
      [{ type: 'message', text: '# Done\n\n## Summary\n- ok' }],
    ]);
    expect(result.failure).toBeUndefined();
    expect(requests).toHaveLength(2);
    expect(result.stopReason).toBe('completed');
  });

  test('retries are bounded: a model that keeps failing ends the task with model_error', async () => {
    const { result, requests } = await run([{ fault: 'http', status: 503 }, { fault: 'http', status: 503 }, { fault: 'http', status: 503 }], {}, { retries: 2 });
    expect(requests).toHaveLength(3);
    expect(result.stopReason).toBe('model_error');
    expect(result.failure).toEqual({ phase: 'agent', reason: expect.stringMatching(/after 3 attempts: 503/) });
  });

  test('a 400 is not retried', async () => {
    const { result, requests } = await run([{ fault: 'http', status: 400 }]);
    expect(requests).toHaveLength(1);
    expect(result.stopReason).toBe('model_error');
  });

  test('a tool call with invalid JSON arguments gets an error and the agent goes on', async () => {
    const { result, requests } = await run([
      [{ type: 'function_call', name: 'shell', arguments: '{"command": ["ls"' }],
      (req) => {
        const out = toolOutputs(req).at(-1)?.output ?? '';
        if (!/not valid JSON/.test(out)) throw new Error(`expected a JSON error, got ${out}`);
        return [{ type: 'function_call', name: 'apply_patch', arguments: { input: PATCH } }];
      },
      [{ type: 'message', text: '# Edit a.txt\n\n## Summary\n- a.txt now says two' }],
    ]);
    expect(requests).toHaveLength(3);
    expect(result.status).toBe('succeeded');
    expect(result.changes).toHaveLength(1);
  });

  test('bad tool arguments and unknown tools are reported to the model, not fatal', async () => {
    const { result, requests } = await run([
      [{ type: 'function_call', name: 'shell', arguments: { command: [] } }],
      [{ type: 'function_call', name: 'browse', arguments: {} }],
      [{ type: 'function_call', name: 'shell', arguments: { command: ['ls'], workdir: '../..' } }],
      [{ type: 'function_call', name: 'apply_patch', arguments: { input: '*** Begin Patch\n*** Update File: a.txt\n@@\n-nope\n+x\n*** End Patch' } }],
      [{ type: 'message', text: 'done' }],
    ]);
    const outputs = requests.slice(1).map((r) => toolOutputs(r).at(-1)?.output ?? '');
    expect(outputs[0]).toMatch(/invalid arguments for shell: command/);
    expect(outputs[1]).toMatch(/unknown tool "browse"/);
    expect(outputs[2]).toMatch(/outside the repository/);
    expect(outputs[3]).toMatch(/apply_patch failed/);
    expect(result.status).toBe('no_changes');
  });
});
