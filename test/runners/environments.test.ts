/**
 * Environments end to end on the local backend: the real runner CLI (as LocalRunnerBackend starts
 * it) against a repository served over git smart HTTP and a scripted model. The setup script
 * "installs" a dependency into node_modules (offline) from the lockfile's version:
 * - a second task with the same lockfile restores it, runs no setup command, and its agent sees it;
 * - a changed lockfile runs setup again; `fresh` rebuilds;
 * - a malicious archive in the cache is refused at restore, setup runs instead, the cache is replaced;
 * - on ECS, the archive travels through presigned URLs to the S3 stand-in and back.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProgressEvent, TaskSpec, type TaskResult, type TaskSpecInput } from '../../src/contract.ts';
import { environmentKey, manifestsFromTree, runnerImageVersion } from '../../src/agent/environment/key.ts';
import { EnvironmentCache } from '../../src/runners/environment-cache.ts';
import { S3EnvironmentStore } from '../../src/runners/environment-s3.ts';
import { S3StandIn } from '../support/s3-stand-in.ts';
import { runCli } from '../support/cli.ts';
import { LocalRunnerBackend } from '../../src/runners/local.ts';
import { createBareRepo, GitHttpServer, bareRepoPath } from '../support/git-http.ts';
import { ScriptedModel, toolOutputs } from '../support/scripted-model.ts';
import { CLI } from '../support/cli.ts';
import { symlinkEscapeArchive } from '../support/tar-archives.ts';

const TOKEN = 'ghs_envtoken0123456789';
const REPOSITORY_ID = '4242';
/** The setup script: "installs" dep at the lockfile's version, offline. */
const SETUP = [
  'v=$(node -p "require(\'./package-lock.json\').version")',
  'mkdir -p node_modules/dep',
  'echo "module.exports = \'dep-$v\';" > node_modules/dep/index.js',
  'mkdir -p "$HOME/.cache/tool" && echo cached > "$HOME/.cache/tool/blob"',
].join('\n');

function repoFiles(lockVersion: string) {
  return {
    'package.json': JSON.stringify({ name: 'envs', version: '1.0.0', dependencies: { dep: '*' } }) + '\n',
    'package-lock.json': JSON.stringify({ name: 'envs', version: lockVersion, lockfileVersion: 3 }) + '\n',
    'index.js': "console.log(require('dep'));\n",
    '.gitignore': 'node_modules/\n',
  };
}

let dir: string;
let git: GitHttpServer;
const heads: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'env-e2e-'));
  const repos = path.join(dir, 'repos');
  // The same repository (one id) at two commits: acme/envs has lockfile 1, acme/envs-next lockfile 2.
  heads['acme/envs'] = (await createBareRepo(repos, 'acme/envs', repoFiles('1'))).headSha;
  heads['acme/envs-next'] = (await createBareRepo(repos, 'acme/envs-next', repoFiles('2'))).headSha;
  git = await GitHttpServer.start({ root: repos, tokens: new Map([[TOKEN, { repos: ['acme/envs', 'acme/envs-next'], write: false }]]) });
});

afterAll(async () => {
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The key the app computes: GitHub's tree listing (here: git ls-tree of the served repository). */
function appKey(fullName: string): string {
  const listing = execFileSync('git', ['--git-dir', bareRepoPath(path.join(dir, 'repos'), fullName), 'ls-tree', '-r', heads[fullName]!], { encoding: 'utf8' });
  const entries = listing.trim().split('\n').map((line) => {
    const [meta, file] = line.split('\t');
    const [, type, sha] = meta!.split(' ');
    return { path: file!, type: type!, sha: sha! };
  });
  return environmentKey({ repositoryId: REPOSITORY_ID, scope: 'default', setupScript: SETUP, autoInstall: true, manifests: manifestsFromTree(entries), imageVersion: runnerImageVersion() });
}

type Outcome = { result: TaskResult; events: ProgressEvent[]; agentSaw: string };

/** Runs one task through the local backend; the agent runs `node index.js` and stops. */
async function runTask(cache: EnvironmentCache, fullName: string, extra: { fresh?: boolean; maintenance?: string } = {}): Promise<Outcome> {
  return runWith(fullName, extra, async (spec) => {
    const backend = new LocalRunnerBackend({
      workRoot: path.join(dir, 'work'),
      command: [process.execPath, CLI, 'runner'],
      environments: cache,
    });
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec, onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    return { result: await execution.result, events };
  });
}

/** Runs one task with the runner CLI directly, the environment travelling through presigned URLs (ECS). */
async function runThroughS3(store: S3EnvironmentStore, fullName: string): Promise<Outcome> {
  return runWith(fullName, {}, async (spec) => {
    const withUrls = TaskSpec.parse({ ...spec, environment: await store.forRunner(spec.environment!) });
    const run = await runCli(['runner', '--workdir', path.join(dir, 'work', spec.id)], { stdin: JSON.stringify(withUrls) });
    const events = run.stdout.split('\n').filter((l) => l.trim()).map((l) => ProgressEvent.parse(JSON.parse(l)));
    const last = events.at(-1);
    if (last?.type !== 'result') throw new Error(`no result: ${run.stderr}`);
    return { result: last.result, events };
  });
}

async function runWith(fullName: string, { maintenance, ...extra }: { fresh?: boolean; maintenance?: string }, start: (spec: TaskSpec) => Promise<{ result: TaskResult; events: ProgressEvent[] }>): Promise<Outcome> {
  let agentSaw = '';
  const model = await ScriptedModel.start({
    turns: [
      [{ type: 'function_call', name: 'shell', arguments: { command: ['node', 'index.js'] } }],
      (req) => {
        agentSaw = toolOutputs(req).at(-1)?.output ?? '';
        return [{ type: 'message', text: 'Checked the dependency.' }];
      },
    ],
  });
  try {
    const input: TaskSpecInput = {
      id: `env-${Math.random().toString(36).slice(2)}`,
      kind: 'task',
      repository: { cloneUrl: git.cloneUrl(fullName), fullName, token: TOKEN, baseRef: 'main', baseSha: heads[fullName]! },
      instruction: 'Check that the dependency loads.',
      model: { baseUrl: model.baseUrl, apiKey: 'cct_x', name: 'gpt-test', retryBaseMs: 10 },
      setup: { script: SETUP, ...(maintenance ? { maintenance } : {}) },
      environment: { key: appKey(fullName), repositoryId: REPOSITORY_ID, maxBytes: 1024 * 1024 * 1024, ...extra },
    };
    const { result, events } = await start(TaskSpec.parse(input));
    return { result, events, agentSaw };
  } finally {
    await model.close();
  }
}

function setupCommands(result: TaskResult) {
  return result.commands.filter((c) => c.phase === 'setup');
}

function newCache(name: string): EnvironmentCache {
  return new EnvironmentCache({ dir: path.join(dir, name), maxAgeMs: 12 * 3_600_000, maxArchiveBytes: 1024 ** 3, maxTotalBytes: 10 * 1024 ** 3 });
}

describe('environments on the local backend', () => {
  test('the second task with an unchanged lockfile runs no setup and sees the dependency; a changed lockfile and fresh rebuild', async () => {
    const cache = newCache('cache-1');
    const first = await runTask(cache, 'acme/envs');
    expect(first.result.failure).toBeUndefined();
    expect(setupCommands(first.result)).toHaveLength(1);
    expect(first.agentSaw).toContain('dep-1');
    expect(first.result.environment).toMatchObject({ key: appKey('acme/envs'), status: 'built' });
    expect(first.result.environment?.savedBytes).toBeGreaterThan(0);
    const built = first.events.find((e) => e.type === 'environment');
    expect(built).toMatchObject({ type: 'environment', status: 'built', saved: true });
    expect(await cache.lookup(appKey('acme/envs'))).toMatchObject({ bytes: first.result.environment!.savedBytes });
    // node_modules is ignored: the environment is not a change of the task.
    expect(first.result.changes).toEqual([]);

    // The cache unpacks a copy in the background; the next task takes it (a restore by rename).
    await cache.idle();
    const second = await runTask(cache, 'acme/envs');
    expect(second.result.failure).toBeUndefined();
    expect(setupCommands(second.result)).toEqual([]);
    expect(second.events.some((e) => e.type === 'command_begin' && e.phase === 'setup')).toBe(false);
    expect(second.agentSaw).toContain('dep-1');
    expect(second.result.environment).toMatchObject({ status: 'restored' });
    const restored = second.events.find((e) => e.type === 'environment');
    expect(restored).toMatchObject({ type: 'environment', status: 'restored', restoredFrom: 'unpacked' });
    expect((restored as { ageMs: number }).ageMs).toBeGreaterThanOrEqual(0);
    expect(second.result.changes).toEqual([]);

    // Another commit with a changed lockfile: another key, setup runs again.
    expect(appKey('acme/envs-next')).not.toBe(appKey('acme/envs'));
    const changed = await runTask(cache, 'acme/envs-next');
    expect(setupCommands(changed.result)).toHaveLength(1);
    expect(changed.agentSaw).toContain('dep-2');
    expect(changed.result.environment).toMatchObject({ status: 'built' });

    // A restore runs the repository's maintenance script (with network), not the setup script.
    // Without an unpacked copy (off here), the runner extracts the archive.
    const archiveOnly = new EnvironmentCache({ dir: path.join(dir, 'cache-1'), maxAgeMs: 12 * 3_600_000, maxArchiveBytes: 1024 ** 3, maxTotalBytes: 10 * 1024 ** 3, unpackedCopies: 0 });
    const maintained = await runTask(archiveOnly, 'acme/envs', { maintenance: 'echo "maintained $(cat node_modules/dep/index.js)"' });
    expect(maintained.events.find((e) => e.type === 'environment')).toMatchObject({ status: 'restored', restoredFrom: 'archive' });
    expect(maintained.result.environment).toMatchObject({ status: 'restored' });
    const maintenance = setupCommands(maintained.result);
    expect(maintenance).toHaveLength(1);
    expect(maintenance[0]!.command.at(-1)).toMatch(/\.codex-maintenance\.sh$/);
    expect(maintenance[0]!.output?.head).toContain("maintained module.exports = 'dep-1';");

    // `@codex retry --fresh`: setup runs although the environment is cached.
    const fresh = await runTask(cache, 'acme/envs', { fresh: true });
    expect(setupCommands(fresh.result)).toHaveLength(1);
    expect(fresh.agentSaw).toContain('dep-1');
    expect(fresh.result.environment).toMatchObject({ status: 'built' });
    await cache.idle();
  }, 180_000);

  test('a malicious archive in the cache is refused at restore: setup runs, nothing escapes, the cache entry is replaced', async () => {
    const cache = newCache('cache-evil');
    const key = appKey('acme/envs');
    const victim = path.join(dir, 'victim');
    await mkdir(victim);
    // node_modules as a symlink out of the checkout, then a file through it.
    const evil = path.join(dir, 'evil.tar');
    await writeFile(evil, symlinkEscapeArchive(victim));
    expect((await cache.adopt(key, evil)).entry).toBeDefined();

    const run = await runTask(cache, 'acme/envs');
    const refused = run.events.find((e) => e.type === 'environment' && e.status === 'restore_failed');
    expect(refused).toBeDefined();
    expect((refused as { reason: string }).reason).toMatch(/refused: .*symbolic link/);
    expect(run.result.environment?.restoreFailure).toMatch(/refused/);
    expect(setupCommands(run.result)).toHaveLength(1);
    expect(run.agentSaw).toContain('dep-1');
    expect(await readdir(victim)).toEqual([]);
    // The refused archive was dropped and the fresh build cached in its place.
    expect(run.result.environment).toMatchObject({ status: 'built' });
    const cached = await cache.lookup(key);
    expect(cached?.bytes).toBe(run.result.environment?.savedBytes);
    expect(await lstat(evil)).toBeDefined();
    await cache.idle();
  }, 120_000);

  test('on ECS the archive travels through presigned URLs: saved with PUT after setup, restored with GET by the next task', async () => {
    const credentials = { accessKeyId: 'AKIDE2E', secretAccessKey: 'e2e-secret' };
    const s3 = await S3StandIn.start({ ...credentials, region: 'eu-west-1' });
    try {
      const store = new S3EnvironmentStore(
        { bucket: 'envs', prefix: 'environments/', maxAgeMs: 3_600_000, maxArchiveBytes: 1024 ** 3, client: { region: 'eu-west-1', credentials } },
        { AWS_ENDPOINT_URL_S3: s3.endpoint },
      );
      const first = await runThroughS3(store, 'acme/envs');
      expect(first.result.environment).toMatchObject({ status: 'built' });
      expect(s3.objects.get(`envs/environments/${appKey('acme/envs')}.tar`)?.length).toBe(first.result.environment?.savedBytes);
      const second = await runThroughS3(store, 'acme/envs');
      expect(second.result.environment).toMatchObject({ status: 'restored' });
      expect(setupCommands(second.result)).toEqual([]);
      expect(second.agentSaw).toContain('dep-1');
      expect(s3.requests.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 200', 'GET 200']);
    } finally {
      await s3.close();
    }
  }, 120_000);
});
