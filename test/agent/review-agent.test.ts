/**
 * The review agent against the scripted Responses API server, with the real loop, tools and
 * bubblewrap sandbox on a temporary checkout: the answer as JSON, one restate request, then failure.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ProgressEventInput } from '../../src/contract.ts';
import { createModelClient } from '../../src/agent/model.ts';
import { runReviewAgent } from '../../src/agent/review-agent.ts';
import { createSandbox, type Sandbox } from '../../src/agent/sandbox.ts';
import { ToolRunner } from '../../src/agent/tools/index.ts';
import { ScriptedModel, toolOutputs, type ScriptedTurn } from '../support/scripted-model.ts';

let dir: string;
let repo: string;
let sandbox: Sandbox;
let model: ScriptedModel | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'review-agent-'));
  repo = path.join(dir, 'repo');
  execFileSync('git', ['init', '-q', repo]);
  await writeFile(path.join(repo, 'pages.js'), 'export const pages = (xs, n) => xs.slice(0, n - 1);\n');
  sandbox = await createSandbox({ mode: 'bubblewrap', workspace: repo, home: dir, network: false });
});
afterEach(async () => {
  await model?.close();
  model = undefined;
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const REVIEW = {
  findings: [{
    title: 'Drops the last item', body: '`n - 1` loses one element.', confidence_score: 0.9, priority: 1,
    code_location: { absolute_file_path: '', line_range: { start: 1, end: 1 } },
  }],
  overall_correctness: 'patch is incorrect', overall_explanation: 'Off by one.', overall_confidence_score: 0.8,
};
const reviewJson = () => JSON.stringify({ ...REVIEW, findings: [{ ...REVIEW.findings[0], code_location: { ...REVIEW.findings[0]!.code_location, absolute_file_path: `${repo}/pages.js` } }] });

async function review(turns: ScriptedTurn[], maxTurns = 10) {
  model = await ScriptedModel.start({ turns });
  const events: ProgressEventInput[] = [];
  const emit = (e: ProgressEventInput) => events.push(e);
  const deadline = Date.now() + 60_000;
  const outcome = await runReviewAgent({
    client: createModelClient({ baseUrl: model.baseUrl, apiKey: 'k' }),
    model: 'm', taskId: 'review-1', prompt: 'Review the change.', workspaceRoot: repo,
    tools: new ToolRunner({ sandbox, root: repo, commandTimeoutMs: 30_000, deadline, emit }),
    limits: { maxTurns, deadline, maxTokens: 1_000_000 }, retry: { retries: 0, baseMs: 5 }, emit,
  });
  return { outcome, events, requests: model.requests };
}

describe('runReviewAgent', () => {
  test('a command to confirm, then the JSON in a fenced block with prose: parsed, no restate', async () => {
    const { outcome, requests } = await review([
      [{ type: 'function_call', name: 'shell', arguments: { command: ['grep', '-n', 'slice', 'pages.js'] } }],
      [{ type: 'message', text: `Confirmed with grep.\n\n\`\`\`json\n${reviewJson()}\n\`\`\`\nThat is all.` }],
    ]);
    expect(toolOutputs(requests[1]!).at(-1)?.output).toContain('1:export const pages');
    expect(outcome.restated).toBe(false);
    expect(outcome.review?.findings).toEqual([{ title: 'Drops the last item', body: '`n - 1` loses one element.', priority: 1, path: 'pages.js', line: 1, confidence: 0.9 }]);
    expect(requests[0]!.body?.instructions).toMatch(/^You are Codex Cloud's code reviewer/);
  });

  test('invalid JSON: one restate request with the reason and the conversation kept, then the valid object', async () => {
    const { outcome, requests, events } = await review([
      [{ type: 'message', text: 'Looks fine overall, one issue in pages.js line 1.' }],
      [{ type: 'message', text: reviewJson() }],
    ]);
    expect(requests).toHaveLength(2);
    const input = JSON.stringify(requests[1]!.body?.input);
    expect(input).toContain('Looks fine overall');
    expect(input).toContain('Problem: the message contains no JSON object');
    expect(outcome).toMatchObject({ restated: true, loop: { stopReason: 'completed', turns: 2 } });
    expect(outcome.review?.verdict.correctness).toBe('incorrect');
    expect(events.some((e) => e.type === 'log' && e.level === 'warn' && /asking the model to restate/.test(e.message))).toBe(true);
  });

  test('still invalid after the restate request: no review, the reason; only one restate request', async () => {
    const { outcome, requests } = await review([
      [{ type: 'message', text: 'No JSON here.' }],
      [{ type: 'message', text: '{"findings": [], "overall_correctness": "maybe"}' }],
      [{ type: 'message', text: 'never asked' }],
    ]);
    expect(requests).toHaveLength(2);
    expect(outcome.review).toBeUndefined();
    expect(outcome.invalidOutput).toMatch(/overall_correctness: must be "patch is correct" or "patch is incorrect"/);
    expect(outcome.loop.stopReason).toBe('completed');
  });

  test('a loop that stops early is returned as is, without a restate request', async () => {
    const { outcome, requests } = await review([[{ type: 'function_call', name: 'shell', arguments: { command: ['true'] } }]], 1);
    expect(requests).toHaveLength(1);
    expect(outcome).toMatchObject({ restated: false, loop: { stopReason: 'turn_limit' } });
    expect(outcome.review).toBeUndefined();
    expect(outcome.invalidOutput).toBeUndefined();
  });
});
