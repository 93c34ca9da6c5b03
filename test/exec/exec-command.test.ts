/**
 * `codex-cloud exec` from a user's terminal: the real CLI as a child process, against the scripted
 * model. What a new user trips over: a missing API key, an unreachable base URL, a pseudo-terminal
 * that reports 0 columns.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/app-harness.ts';
import { CLI, runCli } from '../support/cli.ts';
import { ScriptedModel } from '../support/scripted-model.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'codex-exec-test-'));
  await writeFile(path.join(dir, 'README.md'), '# demo\n');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir });
  git('init', '-q');
  git('add', '.');
  git('commit', '-qm', 'init');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The environment without any OpenAI variable. */
function envWithout(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENAI_API_KEY;
  delete env.OPENAI_BASE_URL;
  return env;
}

describe('codex-cloud exec', () => {
  test('without OPENAI_API_KEY says so at once, and exits 2', async () => {
    const started = Date.now();
    const run = await runCli(['exec', '--cd', dir, 'hello'], { env: envWithout() });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('codex-cloud: OPENAI_API_KEY is not set');
    expect(run.stderr).not.toContain('401');
    // At once: no model request was tried (a generous bound; it used to retry for ~27 s).
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('with an unreachable base URL names the URL at once, and exits 1', async () => {
    const port = await freePort(); // nothing listens there
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const started = Date.now();
    const run = await runCli(['exec', '--cd', dir, 'hello'], { env: { ...envWithout(), OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: baseUrl } });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`the model API at ${baseUrl} could not be reached`);
    expect(run.stderr).toContain('ECONNREFUSED');
    expect(run.stderr).toContain('OPENAI_BASE_URL');
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test.each([
    ['a pseudo-terminal with 0 columns (script without a terminal)', '0'],
    ['a pseudo-terminal 80 columns wide', '80'],
  ])('on %s, prints the progress once (no endless spinner redraw)', async (_what, columns) => {
    if (!existsSync('/usr/bin/script')) throw new Error('this test needs script(1) from util-linux');
    // The model thinks for 1.5 s: a spinner would be drawing all that time.
    const model = await ScriptedModel.start({
      turns: [{ fault: 'delay', ms: 1500, then: [{ type: 'message', text: 'Nothing to change.' }] }],
      requireAuth: 'sk-test',
    });
    try {
      // script(1) runs the CLI on a new pseudo-terminal (values come in through the environment);
      // `stty cols` sets the width the terminal reports (0 is what script gives without a terminal).
      const child = spawn('script', ['-qec', 'stty cols "$COLS" rows 24; exec "$NODE" "$CLI" exec --cd "$DIR" "look around"', '/dev/null'], {
        env: { ...envWithout(), OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: model.baseUrl, NODE: process.execPath, CLI, DIR: dir, COLS: columns, CI: '' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child.stdin.end();
      let output = '';
      child.stdout.on('data', (d) => {
        // Before the fix this grew without end: stop reading well before that.
        if (output.length < 1_000_000) output += d;
        else child.kill('SIGKILL');
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(output.length).toBeLessThan(100_000);
      expect(code).toBe(0);
      expect(output).toContain('Nothing to change.');
      expect(output).toContain('✓ done: no changes');
      if (columns === '0') {
        // No spinner at all: no cursor movement or line erasing.
        expect(output).not.toMatch(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[GKA]`));
        expect(output).not.toContain('thinking (turn 1)');
      } else {
        expect(output).toContain('thinking (turn 1)');
      }
    } finally {
      await model.close();
    }
  });
});
