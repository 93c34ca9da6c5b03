/**
 * Environments end to end through the real app (issue 12): `codex-cloud serve` with the local
 * backend, the GitHub stand-in and the scripted model. The repository's `.github/codex.yml` setup
 * script "installs" a dependency into node_modules at the lockfile's version (offline) and prints a
 * marker. Two mentions with an unchanged lockfile: the second runs no setup command, its progress
 * comment says `setup: cached (…)`, and its agent sees the dependency. A changed lockfile and
 * `@codex retry --fresh` run setup again; `maintenance` runs after a restore.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { TaskResult } from '../src/contract.ts';
import { AppHarness, waitFor } from './support/app-harness.ts';
import { toolOutputs } from './support/scripted-model.ts';

const REPO = 'acme/envs';
const SETUP = [
  'v=$(node -p "require(\'./package-lock.json\').version")',
  'mkdir -p node_modules/dep',
  'echo "module.exports = \'dep-$v\';" > node_modules/dep/index.js',
  'echo SETUP-MARKER-ran',
].join('\n');
const CONFIG = `setup: |\n${SETUP.split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}\n`;

function lockfile(version: string): string {
  return JSON.stringify({ name: 'envs', version, lockfileVersion: 3 }) + '\n';
}

let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(
    REPO,
    {
      'package.json': JSON.stringify({ name: 'envs', version: '1.0.0', dependencies: { dep: '*' } }) + '\n',
      'package-lock.json': lockfile('1'),
      'index.js': "console.log(require('dep'));\n",
      '.gitignore': 'node_modules/\n',
      '.github/codex.yml': CONFIG,
    },
    { installationId: 1, permissions: { maintainer: 'write' } },
  );
});

afterEach(() => {
  expect(h.model.pendingTurns).toBe(0);
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

/** The stored result of the newest task of an issue. */
function resultOf(issue: number): TaskResult {
  const db = new DatabaseSync(path.join(h.dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    const row = db.prepare('SELECT result_json FROM tasks WHERE issue_number = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(issue) as { result_json: string | null };
    return JSON.parse(row.result_json!) as TaskResult;
  } finally {
    db.close();
  }
}

/**
 * Mentions the app on `issue` with `body`; the agent runs `node index.js` and answers. Waits for the
 * task to end. @returns what the agent's command printed, the stored result and the final comment.
 */
async function run(issue: number, body: string): Promise<{ agentSaw: string; result: TaskResult; comment: string; setupCommands: string[][] }> {
  let agentSaw = '';
  h.model.push([{ type: 'function_call', name: 'shell', arguments: { command: ['node', 'index.js'] } }], (req) => {
    agentSaw = toolOutputs(req).at(-1)?.output ?? '';
    return [{ type: 'message', text: 'The dependency loads.' }];
  });
  const before = h.task(issue)?.id;
  const comments = h.botComments(REPO, issue).length;
  expect(await h.deliver(h.mention(REPO, issue, body))).toBe(200);
  const task = await waitFor(
    `a finished task on #${issue}`,
    () => {
      const t = h.task(issue);
      return t && t.id !== before && ['succeeded', 'no_changes', 'failed', 'cancelled'].includes(t.state) ? t : undefined;
    },
    90_000,
  );
  expect(task.state).toBe('no_changes');
  // Each task has its own progress comment, edited into the final reply.
  const comment = await waitFor('the final reply', () => {
    const mine = h.botComments(REPO, issue).slice(comments);
    return mine.find((c) => /Finished with no changes/.test(c.body))?.body;
  });
  const result = resultOf(issue);
  return { agentSaw, result, comment, setupCommands: result.commands.filter((c) => c.phase === 'setup').map((c) => c.command) };
}

describe('environments on the local backend, through the app', () => {
  test('the second task restores the environment; a changed lockfile and `@codex retry --fresh` run setup again', async () => {
    const issue = h.github.addIssue(REPO, { title: 'check the dependency', body: 'does dep load?', user: 'maintainer' }).number as number;

    const first = await run(issue, '@codex check that the dependency loads');
    expect(first.result.failure).toBeUndefined();
    expect(first.setupCommands).toHaveLength(1);
    expect(JSON.stringify(first.result.commands.find((c) => c.phase === 'setup')?.output)).toContain('SETUP-MARKER-ran');
    expect(first.agentSaw).toContain('dep-1');
    expect(first.result.environment).toMatchObject({ status: 'built' });
    expect(first.comment).toMatch(/setup: \d+ s, cached for next time/);
    // The app adopted the archive under its data directory.
    expect((await readdir(path.join(h.dataDir, 'environments'))).filter((n) => n.endsWith('.tar'))).toHaveLength(1);

    const second = await run(issue, '@codex check it again');
    expect(second.result.failure).toBeUndefined();
    expect(second.setupCommands).toEqual([]);
    expect(second.result.environment).toMatchObject({ status: 'restored', key: first.result.environment!.key });
    expect(second.agentSaw).toContain('dep-1');
    expect(second.comment).toMatch(/setup: cached \((under a minute|\d+ min) old\)/);

    // A changed lockfile: a new key, setup runs again.
    await h.github.commitFiles(REPO, 'main', { 'package-lock.json': lockfile('2') });
    const third = await run(issue, '@codex check it after the upgrade');
    expect(third.setupCommands).toHaveLength(1);
    expect(third.result.environment).toMatchObject({ status: 'built' });
    expect(third.result.environment!.key).not.toBe(first.result.environment!.key);
    expect(third.agentSaw).toContain('dep-2');

    // `@codex retry --fresh`: same key, rebuilt rather than restored.
    const fresh = await run(issue, '@codex retry --fresh');
    expect(fresh.setupCommands).toHaveLength(1);
    expect(fresh.result.environment).toMatchObject({ status: 'built', key: third.result.environment!.key });
    expect(fresh.agentSaw).toContain('dep-2');

    // And a plain retry restores again.
    const again = await run(issue, '@codex retry');
    expect(again.setupCommands).toEqual([]);
    expect(again.result.environment).toMatchObject({ status: 'restored' });

    // `maintenance` in .github/codex.yml runs after a restore (the key does not change).
    await h.github.commitFiles(REPO, 'main', { '.github/codex.yml': `${CONFIG}maintenance: |\n  echo "maintained $(cat node_modules/dep/index.js)"\n` });
    const maintained = await run(issue, '@codex check it once more');
    expect(maintained.result.environment).toMatchObject({ status: 'restored', key: third.result.environment!.key });
    expect(maintained.setupCommands).toHaveLength(1);
    expect(maintained.setupCommands[0]!.at(-1)).toMatch(/\.codex-maintenance\.sh$/);
    expect(JSON.stringify(maintained.result.commands[0]!.output)).toContain("maintained module.exports = 'dep-2';");
    expect(maintained.agentSaw).toContain('dep-2');
  }, 300_000);

  test('a pull request from a fork gets its own environment: its setup never prepares the repository\'s', async () => {
    // The same manifests as the default branch, whose environment is cached by the test above.
    const issue = h.github.addIssue(REPO, { title: 'check again', body: 'does dep load?', user: 'maintainer' }).number as number;
    const base = await run(issue, '@codex check that the dependency loads');
    expect(base.result.environment).toMatchObject({ status: 'restored' });

    await h.github.addFork(REPO, 'outsider/envs');
    await h.github.commitFiles('outsider/envs', 'patch-1', { 'NOTES.md': 'from the fork\n' }, { from: 'main', message: 'Fork notes' });
    const pull = (await h.github.addForkPull(REPO, { headRepo: 'outsider/envs', head: 'patch-1', title: 'Fork notes', body: 'Please merge.', user: 'outsider' })).number as number;
    const fork = await run(pull, '@codex check that the dependency loads');
    expect(fork.result.environment).toMatchObject({ status: 'built' });
    expect(fork.result.environment!.key).not.toBe(base.result.environment!.key);
    expect(fork.setupCommands.some((c) => /\.codex-setup\.sh$/.test(c.at(-1) ?? ''))).toBe(true);
    expect(fork.agentSaw).toContain('dep-2');

    // The repository's own environment is untouched: the next issue task restores the same key.
    const after = await run(issue, '@codex check it again');
    expect(after.result.environment).toMatchObject({ status: 'restored', key: base.result.environment!.key });
  }, 300_000);
});
