/**
 * Issue 7, end to end through the real `codex-cloud runner` process: the agent (a scripted model)
 * rewrites the workspace's git configuration from inside the sandbox (a filter driver with
 * `.gitattributes`, fsmonitor, a hook, includeIf) so that the runner's result phase would run its
 * script on the host, where the runner's environment holds secrets. The result must carry the
 * agent's real fix and nothing else of the attack: no secret, no marker file outside the workspace.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProgressEvent, TaskResult, type TaskSpecInput } from '../../src/contract.ts';
import { runCli } from '../support/cli.ts';
import { buggyNodeRepo, FIXED_MATH } from '../support/fixtures.ts';
import { createBareRepo, GitHttpServer } from '../support/git-http.ts';
import { gitEscapeTurns } from '../support/attacks.ts';
import { ScriptedModel, toolOutputs } from '../support/scripted-model.ts';

const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
const TASK_TOKEN = 'cct_task_token_abcdef';
const SECRETS = { PRIVATE_KEY: 'secret-xyz-private-key', WEBHOOK_SECRET: 'secret-xyz-webhook', OPENAI_API_KEY: 'sk-secret-xyz-openai' };

let dir: string;
let git: GitHttpServer;
let baseSha: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'runner-git-escape-'));
  const repo = await createBareRepo(path.join(dir, 'repos'), 'acme/calc', buggyNodeRepo());
  baseSha = repo.headSha;
  git = await GitHttpServer.start({
    root: path.join(dir, 'repos'),
    tokens: new Map([[CLONE_TOKEN, { repos: ['acme/calc'], write: false }]]),
  });
});

afterAll(async () => {
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

function resultOf(stdout: string): TaskResult {
  const events = stdout.split('\n').filter((l) => l.trim()).map((l) => ProgressEvent.parse(JSON.parse(l)));
  const last = events.at(-1);
  if (last?.type !== 'result') throw new Error(`no result event in:\n${stdout.slice(-2000)}`);
  return TaskResult.parse(last.result);
}

test('an agent that rewrites .git/config, .gitattributes and hooks gets nothing run on the host and no secret out', async () => {
  const marker = path.join(dir, 'outside', 'marker');
  await mkdir(path.dirname(marker), { recursive: true });
  const model = await ScriptedModel.start({
    requireAuth: TASK_TOKEN,
    turns: gitEscapeTurns(marker),
  });
  const workdir = path.join(dir, 'work');
  try {
    const spec: TaskSpecInput = {
      id: 'task-git-escape',
      kind: 'task',
      repository: { cloneUrl: git.cloneUrl('acme/calc'), fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha },
      instruction: 'The add test fails. Fix it.',
      model: { baseUrl: model.baseUrl, apiKey: TASK_TOKEN, name: 'gpt-test', retryBaseMs: 10 },
      setup: { autoInstall: false },
    };
    // The runner's environment holds the app's secrets, as when the local backend started it.
    const run = await runCli(['runner', '--workdir', workdir], { stdin: JSON.stringify(spec), extraEnv: SECRETS });
    const result = resultOf(run.stdout);
    expect(result.failure).toBeUndefined();
    expect(result.status).toBe('succeeded');

    // Nothing ran on the host, nothing leaked.
    expect(existsSync(marker)).toBe(false);
    const text = JSON.stringify(result);
    for (const secret of Object.values(SECRETS)) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(Buffer.from(secret).toString('base64').slice(0, 16));
    }
    for (const change of result.changes) {
      if (change.action === 'delete') continue;
      const content = Buffer.from(change.contentBase64, 'base64').toString('utf8');
      for (const secret of Object.values(SECRETS)) expect(content).not.toContain(secret);
    }
    // The changes are the fix plus the agent's files, byte for byte (no filter applied).
    const byPath = Object.fromEntries(result.changes.map((c) => [c.path, c]));
    expect(Object.keys(byPath).sort()).toEqual(['.attack.sh', '.evil.cfg', '.gitattributes', 'src/math.js']);
    expect(byPath['src/math.js']).toEqual({ action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: Buffer.from(FIXED_MATH).toString('base64') });

    // The agent did write its own .git, and could not write the runner's private git directory.
    const attackOutput = toolOutputs(model.requests[1]!).at(-1)?.output ?? '';
    expect(attackOutput).toContain('private-git-dir-refused');
    expect(await readFile(path.join(workdir, 'repo/.git/config'), 'utf8')).toContain('filter "x"');
    const privateConfig = await readFile(path.join(workdir, 'git/config'), 'utf8');
    expect(privateConfig).not.toMatch(/filter|fsmonitor|include|external/);
    expect(privateConfig).not.toContain(CLONE_TOKEN);
    expect(existsSync(path.join(workdir, 'git/hooks'))).toBe(false);

    // Control: the same workspace collected the way the runner did before (git add on the
    // workspace's own .git, with the runner's environment) runs the attack and reads the secrets.
    const index = path.join(dir, 'naive-index');
    copyFileSync(path.join(workdir, 'repo/.git/index'), index);
    execFileSync('git', ['add', '-A', '--', '.'], {
      cwd: path.join(workdir, 'repo'),
      env: { ...process.env, ...SECRETS, GIT_INDEX_FILE: index },
      stdio: 'ignore',
    });
    expect(await readFile(marker, 'utf8')).toBe(Object.values(SECRETS).join(' '));
    await unlink(marker);
  } finally {
    await model.close();
  }
});
