/**
 * Environment benchmark (`npm run bench:env`): the same task twice on a repository with 300 npm
 * dependencies, installed by the runner's own setup detection (`npm ci`) from a local registry
 * stand-in (300 generated packages: packuments and tarballs made with node-tar, served over HTTP on
 * 127.0.0.1 and named by the repository's `.npmrc`). The tasks run through the local backend with the
 * environment cache (the real runner CLI as a child process). Cold: the first task installs and
 * saves; warm: the second restores the cached environment and skips setup. The generated packages
 * have 24 files each, like real ones (`--packages N`; `--extra-files K`: 4 + K files each, see
 * {@link EXTRA_FILES}).
 *
 * It prints the time from task start (backend.start) to the first model request, cold and warm, the
 * setup/restore times the runner reported and the archive size. Target: warm ≤ 10% of cold. A missed
 * target is reported, not fatal (exit 0); a task that fails exits 1.
 *
 * Warm is the default path: after the cold task the cache unpacks a copy of the archive in the
 * background (timed and printed; the bench waits for it, as a later task would find it done), and
 * the warm task takes it by rename. A third task, "warm from the archive", runs with unpacked copies
 * off (`CODEX_ENV_UNPACKED_COPIES=0`, or a task that comes before the copy is ready): the runner
 * extracts the archive itself. The backend runs as the app sets it up: a compile cache
 * (`NODE_COMPILE_CACHE`, filled by the cold task) and a standby runner started ahead of each task
 * (`CODEX_RUNNER_STANDBY`), the same for all three tasks.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tar from 'tar';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../src/contract.ts';
import { environmentKey, manifestsFromTree, runnerImageVersion } from '../src/agent/environment/key.ts';
import { EnvironmentCache } from '../src/runners/environment-cache.ts';
import { LocalRunnerBackend } from '../src/runners/local.ts';
import { CLI } from '../test/support/cli.ts';
import { bareRepoPath, createBareRepo, GitHttpServer } from '../test/support/git-http.ts';
import { ScriptedModel } from '../test/support/scripted-model.ts';

const { values: args } = parseArgs({ options: { packages: { type: 'string', default: '300' }, 'extra-files': { type: 'string', default: '20' } } });
const PACKAGES = Number(args.packages);
/**
 * Files added to each package beyond its 4 (`--extra-files`), about 1.5 KiB each. Default 20: 24
 * files a package, as in the real repository of issue 11 (minimist's 532 dev packages installed
 * 12,278 files, 23 a package). `--extra-files 0` gives the earlier, smaller packages.
 */
const EXTRA_FILES = Number(args['extra-files']);
const REPO = 'acme/webapp';
const TOKEN = 'ghs_bench_env_token_0123456789';
const TARGET_SHARE = 0.1;

/** One generated package: its packument and tarball. */
interface GeneratedPackage {
  name: string;
  tarball: Buffer;
  integrity: string;
  shasum: string;
}

/** Generates `count` packages of a few files each (about 6 KiB unpacked) with node-tar. */
async function generatePackages(dir: string, count: number): Promise<GeneratedPackage[]> {
  const out: GeneratedPackage[] = [];
  for (let i = 0; i < count; i++) {
    const name = `bench-dep-${String(i).padStart(3, '0')}`;
    const root = path.join(dir, name);
    await mkdir(path.join(root, 'package', 'lib'), { recursive: true });
    await writeFile(path.join(root, 'package', 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js', license: 'MIT' }, null, 2));
    await writeFile(path.join(root, 'package', 'index.js'), `module.exports = require('./lib/impl.js');\n`);
    await writeFile(path.join(root, 'package', 'lib', 'impl.js'), `// ${name}\n${Array.from({ length: 60 }, (_, j) => `exports.f${j} = (x) => x + ${i * j};`).join('\n')}\n`);
    await writeFile(path.join(root, 'package', 'README.md'), `# ${name}\n\n${'Generated for the environment benchmark. '.repeat(40)}\n`);
    for (let k = 0; k < EXTRA_FILES; k++) {
      await writeFile(path.join(root, 'package', 'lib', `part-${k}.js`), `// ${name} part ${k}\n${Array.from({ length: 40 }, (_, j) => `exports.g${j} = (x) => x * ${k + j};`).join('\n')}\n`);
    }
    const file = path.join(dir, `${name}.tgz`);
    await tar.create({ gzip: true, cwd: root, file, portable: true }, ['package']);
    const tarball = await readFile(file);
    out.push({
      name,
      tarball,
      integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
      shasum: createHash('sha1').update(tarball).digest('hex'),
    });
  }
  return out;
}

/** A tiny npm registry: `GET /<name>` (packument) and `GET /<name>/-/<name>-1.0.0.tgz`. */
async function startRegistry(packages: GeneratedPackage[]): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  const byName = new Map(packages.map((p) => [p.name, p]));
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    const url = new URL(req.url ?? '/', 'http://x');
    const tgz = /^\/([^/]+)\/-\/[^/]+-1\.0\.0\.tgz$/.exec(url.pathname);
    const pkg = byName.get(decodeURIComponent(tgz ? tgz[1]! : url.pathname.slice(1)));
    if (!pkg) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    if (tgz) return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': pkg.tarball.length }).end(pkg.tarball);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      name: pkg.name,
      'dist-tags': { latest: '1.0.0' },
      versions: { '1.0.0': { name: pkg.name, version: '1.0.0', dist: { tarball: `${base}/${pkg.name}/-/${pkg.name}-1.0.0.tgz`, integrity: pkg.integrity, shasum: pkg.shasum } } },
    }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    hits: () => hits,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function repoFiles(packages: GeneratedPackage[], registry: string): Record<string, string> {
  const dependencies = Object.fromEntries(packages.map((p) => [p.name, '1.0.0']));
  const lock = {
    name: 'webapp',
    version: '1.0.0',
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: 'webapp', version: '1.0.0', dependencies },
      ...Object.fromEntries(packages.map((p) => [`node_modules/${p.name}`, { version: '1.0.0', resolved: `${registry}${p.name}/-/${p.name}-1.0.0.tgz`, integrity: p.integrity, license: 'MIT' }])),
    },
  };
  return {
    'package.json': JSON.stringify({ name: 'webapp', version: '1.0.0', private: true, dependencies }, null, 2) + '\n',
    'package-lock.json': JSON.stringify(lock, null, 2) + '\n',
    '.npmrc': `registry=${registry}\naudit=false\nfund=false\nupdate-notifier=false\n`,
    '.gitignore': 'node_modules/\n',
    'index.js': `const n = ${JSON.stringify(packages.map((p) => p.name))}.filter((m) => typeof require(m).f1 === 'function').length;\nconsole.log(n + ' dependencies load');\n`,
  };
}

/** The key the app computes from the repository's tree (here: git ls-tree of the served repository). */
function appKey(reposDir: string, sha: string): string {
  const listing = execFileSync('git', ['--git-dir', bareRepoPath(reposDir, REPO), 'ls-tree', '-r', sha], { encoding: 'utf8' });
  const entries = listing.trim().split('\n').map((line) => {
    const [meta, file] = line.split('\t');
    const [, type, blob] = meta!.split(' ');
    return { path: file!, type: type!, sha: blob! };
  });
  return environmentKey({ repositoryId: '1', scope: 'default', setupScript: undefined, autoInstall: true, manifests: manifestsFromTree(entries), imageVersion: runnerImageVersion() });
}

interface Figures {
  toFirstRequestMs: number;
  setupPhaseMs: number;
  setupCommands: number;
  event?: Extract<ProgressEvent, { type: 'environment' }>;
  result: TaskResult;
  agentSaw: string;
}

async function runOnce(backend: LocalRunnerBackend, git: GitHttpServer, sha: string, key: string): Promise<Figures> {
  let agentSaw = '';
  const model = await ScriptedModel.start({
    turns: [
      [{ type: 'function_call', name: 'shell', arguments: { command: ['node', 'index.js'] } }],
      (req) => {
        const input = req.body.input as { type: string; output?: string }[];
        agentSaw = String(input.filter((i) => i.type === 'function_call_output').at(-1)?.output ?? '');
        return [{ type: 'message', text: 'All dependencies load.' }];
      },
    ],
  });
  try {
    const spec = TaskSpec.parse({
      id: `bench-env-${Math.random().toString(36).slice(2)}`,
      kind: 'task',
      repository: { cloneUrl: git.cloneUrl(REPO), fullName: REPO, token: TOKEN, baseRef: 'main', baseSha: sha },
      instruction: 'Check that the dependencies load.',
      model: { baseUrl: model.baseUrl, apiKey: 'cct_bench', name: 'gpt-test', retryBaseMs: 10 },
      environment: { key, repositoryId: '1', maxBytes: 1024 ** 3 },
    });
    const events: ProgressEvent[] = [];
    const started = Date.now();
    const execution = await backend.start({ spec, onEvent: (e) => events.push(e), timeoutMs: 15 * 60_000 });
    const result = await execution.result;
    if (result.status === 'failed') throw new Error(`the task failed: ${result.failure?.phase}: ${result.failure?.reason}`);
    const first = model.requests[0];
    if (!first) throw new Error('no model request');
    return {
      toFirstRequestMs: first.receivedAt - started,
      setupPhaseMs: result.usage.phaseMs.setup ?? 0,
      setupCommands: result.commands.filter((c) => c.phase === 'setup').length,
      event: events.find((e): e is Extract<ProgressEvent, { type: 'environment' }> => e.type === 'environment'),
      result,
      agentSaw,
    };
  } finally {
    await model.close();
  }
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-env-'));
  try {
    process.stdout.write(`generating ${PACKAGES} packages… `);
    const packages = await generatePackages(path.join(dir, 'packages'), PACKAGES);
    const registry = await startRegistry(packages);
    console.log(`served at ${registry.url}`);
    const reposDir = path.join(dir, 'repos');
    const { headSha } = await createBareRepo(reposDir, REPO, repoFiles(packages, registry.url));
    const git = await GitHttpServer.start({ root: reposDir, tokens: new Map([[TOKEN, { repos: [REPO], write: false }]]) });
    const cacheOptions = { dir: path.join(dir, 'data', 'environments'), maxAgeMs: 12 * 3_600_000, maxArchiveBytes: 1024 ** 3, maxTotalBytes: 4 * 1024 ** 3 };
    const cache = new EnvironmentCache(cacheOptions);
    const workRoot = path.join(dir, 'data', 'work');
    // As the app runs it (CODEX_RUNNER_STANDBY, on by default): a runner started ahead of each task.
    const backend = new LocalRunnerBackend({ workRoot, command: [process.execPath, CLI, 'runner'], environments: cache, standby: true });
    const key = appKey(reposDir, headSha);
    try {
      const cold = await runOnce(backend, git, headSha, key);
      const hitsAfterCold = registry.hits();
      const unpackStarted = performance.now();
      await cache.idle();
      const unpackMs = performance.now() - unpackStarted;
      const warm = await runOnce(backend, git, headSha, key);
      await cache.idle();
      const archiveOnly = new LocalRunnerBackend({ workRoot, command: [process.execPath, CLI, 'runner'], environments: new EnvironmentCache({ ...cacheOptions, unpackedCopies: 0 }), standby: true });
      const warmArchive = await runOnce(archiveOnly, git, headSha, key);
      await archiveOnly.close();
      const share = warm.toFirstRequestMs / cold.toFirstRequestMs;
      console.log('');
      console.log(`repository: ${PACKAGES} npm dependencies of ${4 + EXTRA_FILES} files each (npm ci from the local registry: ${hitsAfterCold} registry requests)`);
      console.log(`cold: ${s(cold.toFirstRequestMs)} to the first model request; setup phase ${s(cold.setupPhaseMs)} (${cold.setupCommands} setup command${cold.setupCommands === 1 ? '' : 's'}, ` +
        `install ${s(cold.event?.durationMs ?? 0)}, archive ${((cold.event?.bytes ?? 0) / 1024 / 1024).toFixed(1)} MiB saved: ${cold.event?.saved ?? false})`);
      console.log(`background, after the cold task: the unpacked copy took ${s(unpackMs)} more`);
      console.log(`warm: ${s(warm.toFirstRequestMs)} to the first model request; setup phase ${s(warm.setupPhaseMs)} (${warm.setupCommands} setup commands, restore from the ${warm.event?.restoredFrom} ${s(warm.event?.durationMs ?? 0)}, ` +
        `${registry.hits() - hitsAfterCold} registry requests)`);
      console.log(`warm from the archive (no unpacked copy): ${s(warmArchive.toFirstRequestMs)} to the first model request; restore from the ${warmArchive.event?.restoredFrom} ${s(warmArchive.event?.durationMs ?? 0)} ` +
        `(${((warmArchive.toFirstRequestMs / cold.toFirstRequestMs) * 100).toFixed(1)}% of cold)`);
      for (const [name, f] of [['cold', cold], ['warm', warm], ['warm from the archive', warmArchive]] as const) {
        const checkout = f.result.usage.phaseMs.checkout ?? 0;
        console.log(`  ${name} breakdown: checkout ${s(checkout)}, setup phase ${s(f.setupPhaseMs)}, the rest (runner start-up, sandbox probe, agent start) ${s(f.toFirstRequestMs - checkout - f.setupPhaseMs)}`);
      }
      console.log(`machine load average (1 min): ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`);
      console.log(`agent saw: cold "${cold.agentSaw.trim().split('\n').find((l) => l.includes('dependencies load')) ?? '?'}", warm "${warm.agentSaw.trim().split('\n').find((l) => l.includes('dependencies load')) ?? '?'}"`);
      console.log(`warm / cold: ${(share * 100).toFixed(1)}% (target ≤ ${TARGET_SHARE * 100}%): ${share <= TARGET_SHARE ? 'met' : 'MISSED'}`);
      if (warm.event?.status !== 'restored' || warm.event.restoredFrom !== 'unpacked' || warm.setupCommands !== 0 || warmArchive.event?.restoredFrom !== 'archive') {
        console.error('the warm task did not restore the environment');
        return 1;
      }
      return 0;
    } finally {
      await backend.close();
      await git.close();
      await registry.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
