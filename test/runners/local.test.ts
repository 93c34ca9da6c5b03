/**
 * The local runner backend with fake runner programs (small Node scripts as `command`): it reads the
 * runner's stdout line by line within a size limit, and fails the task with a clear reason when a line
 * (the result) is too large, without buffering it.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec, type ProgressEvent, type TaskResult } from '../../src/contract.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { DEFAULT_MAX_LINE_BYTES, LocalRunnerBackend } from '../../src/runners/local.ts';
import { DEFAULT_MAX_TOTAL_BYTES } from '../../src/github/validate-result.ts';
import {
  assertCanRunAs,
  hideFromRunnerUser,
  resolveRunnerUser,
  RunnerUserError,
  unreachableDirectory,
  type RunnerUser,
} from '../../src/runners/runner-user.ts';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { CLI } from '../support/cli.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';

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

async function run(command: string[], opts: { maxLineBytes?: number; compileCacheDir?: false } = {}): Promise<{ result: TaskResult; events: ProgressEvent[] }> {
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

  test('runners share a private Node.js compile cache under the work root (NODE_COMPILE_CACHE); false turns it off', async () => {
    const result = resultOf('cache');
    const command = await fakeRunner(
      'compile-cache',
      `process.stdout.write(JSON.stringify({ type: 'log', at: 'now', level: 'info', message: String(process.env.NODE_COMPILE_CACHE) }) + '\\n');
       process.stdout.write(JSON.stringify({ type: 'result', at: 'now', result: ${JSON.stringify(result)} }) + '\\n');`,
    );
    const cacheDir = path.join(dir, 'work', '.node-compile-cache');
    expect((await run(command)).events).toContainEqual(expect.objectContaining({ type: 'log', message: cacheDir }));
    expect(statSync(cacheDir).mode & 0o777).toBe(0o700);
    expect((await run(command, { compileCacheDir: false })).events).toContainEqual(expect.objectContaining({ type: 'log', message: 'undefined' }));
  });

  test('standby: a runner started ahead (--preload) serves the next task, the next one starts at once; a dead standby is not used; close stops it', async () => {
    const result = resultOf('standby');
    const command = await fakeRunner(
      'standby',
      `const fs = process.getBuiltinModule('node:fs');
       const workdir = process.argv[process.argv.indexOf('--workdir') + 1];
       const preload = process.argv.includes('--preload');
       if (preload) fs.writeFileSync(workdir + '/pid', String(process.pid));
       let input = '';
       process.stdin.on('data', (c) => (input += c));
       process.stdin.on('end', () => {
         const id = JSON.parse(input).id;
         process.stdout.write(JSON.stringify({ type: 'log', at: 'now', level: 'info', message: JSON.stringify({ preload, workdir, id }) }) + '\\n');
         process.stdout.write(JSON.stringify({ type: 'result', at: 'now', result: ${JSON.stringify(result)} }) + '\\n');
       });`,
    );
    const workRoot = path.join(dir, 'work-standby');
    const standbys = () => readdirSync(workRoot).filter((n) => n.startsWith('standby-'));
    const backend = new LocalRunnerBackend({ workRoot, command, killGraceMs: 1000, standby: true });
    const runOne = async (id: string) => {
      const events: ProgressEvent[] = [];
      const execution = await backend.start({ spec: { ...spec, id }, onEvent: (e) => events.push(e), timeoutMs: 60_000 });
      expect((await execution.result).summary).toBe('standby');
      const log = events.find((e) => e.type === 'log');
      return JSON.parse((log as { message: string }).message) as { preload: boolean; workdir: string; id: string };
    };
    try {
      await waitFor('the first standby runner', () => standbys().some((n) => existsSync(path.join(workRoot, n, 'pid'))));
      const first = await runOne('task-a');
      expect(first).toMatchObject({ preload: true, id: 'task-a' });
      expect(path.basename(first.workdir)).toMatch(/^standby-/);
      // The task's directory is removed at its end; the next standby is already there.
      expect(existsSync(first.workdir)).toBe(false);
      await waitFor('the next standby runner', () => standbys().some((n) => existsSync(path.join(workRoot, n, 'pid'))));
      // A standby that died while idle is passed over: the task gets a runner of its own.
      const [name] = standbys();
      process.kill(Number(readFileSync(path.join(workRoot, name!, 'pid'), 'utf8')), 'SIGKILL');
      await waitFor('the standby to die', async () => {
        try {
          process.kill(Number(readFileSync(path.join(workRoot, name!, 'pid'), 'utf8')), 0);
          return false;
        } catch {
          return true;
        }
      });
      await new Promise((r) => setTimeout(r, 100));
      const second = await runOne('task-b');
      expect(second).toMatchObject({ preload: false, id: 'task-b' });
      expect(path.basename(second.workdir)).toBe('task-b');
      await waitFor('a new standby runner', () => standbys().some((n) => existsSync(path.join(workRoot, n, 'pid'))));
    } finally {
      await backend.close();
    }
    await waitFor('close to stop the standby and remove its directory', () => standbys().length === 0);
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

/** The nice value of a process, from `/proc/<pid>/stat` (field 19, see proc(5)). */
function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('LocalRunnerBackend CPU priority', () => {
  // The fake runner starts a child (as the real one starts its sandboxes), writes both pids, and waits.
  const source = (pidFile: string) => `
    import { spawn } from 'node:child_process';
    import { writeFileSync } from 'node:fs';
    process.stdin.resume();
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    writeFileSync(${JSON.stringify(pidFile)}, JSON.stringify({ runner: process.pid, sandbox: child.pid }));
    process.on('SIGTERM', () => { child.kill(); process.exit(1); });`;

  test.each([
    ['default: 10 lower than the app', undefined, 10],
    ['CODEX_RUNNER_NICE=3', 3, 3],
    ['0: the app\'s own priority', 0, 0],
  ])('%s, for the runner and what it starts', async (_name, nice, increment) => {
    const pidFile = path.join(dir, `pids-${String(nice)}.json`);
    const command = await fakeRunner(`nice-${String(nice)}`, source(pidFile));
    const backend = new LocalRunnerBackend({ workRoot: path.join(dir, 'work'), command, killGraceMs: 1000, ...(nice !== undefined ? { nice } : {}) });
    const execution = await backend.start({ spec, onEvent: () => undefined, timeoutMs: 60_000 });
    try {
      const pids = await waitFor('the fake runner to write its pids', () => JSON.parse(readFileSync(pidFile, 'utf8')) as { runner: number; sandbox: number });
      expect(String(pids.runner)).toBe(execution.externalId);
      const expected = Math.min(19, niceOf(process.pid) + increment);
      expect(niceOf(pids.runner)).toBe(expected);
      expect(niceOf(pids.sandbox)).toBe(expected);
    } finally {
      await execution.cancel('test over');
      await execution.result;
    }
  }, 30_000);
});

// The runner as another user needs root here (to switch users) and a test directory, Node.js and this
// checkout readable by `nobody` (a checkout in a private directory is not).
function readableByOthers(file: string): boolean {
  for (let p = path.resolve(file); ; p = path.dirname(p)) {
    const mode = statSync(p).mode;
    if (p === path.resolve(file) ? (mode & 0o004) === 0 : (mode & 0o001) === 0) return false;
    if (p === '/') return true;
  }
}
const canSwitchUsers = process.getuid?.() === 0 && readableByOthers(process.execPath) && readableByOthers(CLI);

describe('resolveRunnerUser', () => {
  test('uid:gid as given, a name through getent, never root', async () => {
    await expect(resolveRunnerUser('1500:1600')).resolves.toEqual({ uid: 1500, gid: 1600 });
    await expect(resolveRunnerUser('nobody')).resolves.toEqual({ uid: 65534, gid: 65534, name: 'nobody' });
    await expect(resolveRunnerUser('root')).rejects.toThrow(/"root" is root/);
    await expect(resolveRunnerUser('0:1500')).rejects.toThrow(RunnerUserError);
    await expect(resolveRunnerUser('1500:0')).rejects.toThrow(/gid 0/);
    await expect(resolveRunnerUser('no-such-user-here')).rejects.toThrow('CODEX_RUNNER_USER: there is no user "no-such-user-here" on this host');
    await expect(resolveRunnerUser('-rf')).rejects.toThrow(/not a user name/);
  });
});

(canSwitchUsers ? describe : describe.skip)('LocalRunnerBackend with runAs (another user than the app)', () => {
  let base: string;
  let nobody: RunnerUser;
  beforeAll(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'local-runner-user-'));
    await chmod(base, 0o755);
    nobody = await resolveRunnerUser('nobody');
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test('the runner runs as that user in its own 0700 directory and cannot read the app\'s /proc/<pid>/environ', async () => {
    const script = path.join(base, 'whoami.mjs');
    await writeFile(
      script,
      `import fs from 'node:fs';
       import path from 'node:path';
       const workdir = process.argv[process.argv.indexOf('--workdir') + 1];
       const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
       const status = fs.readFileSync('/proc/self/status', 'utf8');
       const report = {
         uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
         capEff: /CapEff:\\s+(\\w+)/.exec(status)[1],
         home: process.env.HOME, cwd: process.cwd(), workdir,
         appPid: process.ppid,
         appEnviron: attempt(() => fs.readFileSync('/proc/' + process.ppid + '/environ')),
         appStatus: attempt(() => fs.readFileSync('/proc/' + process.ppid + '/status')),
         writeWorkdir: attempt(() => fs.writeFileSync(path.join(workdir, 'f'), 'x')),
         listWorkRoot: attempt(() => fs.readdirSync(path.dirname(workdir))),
         readDataFile: attempt(() => fs.readFileSync(${JSON.stringify(path.join(base, 'secret.db'))})),
       };
       const result = ${JSON.stringify(resultOf('x'))};
       result.summary = JSON.stringify(report);
       process.stdout.write(JSON.stringify({ type: 'result', at: 'now', result }) + '\\n');`,
    );
    await chmod(script, 0o644);
    await writeFile(path.join(base, 'secret.db'), 'page keys');
    await chmod(path.join(base, 'secret.db'), 0o600);

    const workRoot = path.join(base, 'work');
    const backend = new LocalRunnerBackend({ workRoot, command: [process.execPath, script], runAs: nobody, keepWorkDirs: true });
    const execution = await backend.start({ spec, onEvent: () => undefined, timeoutMs: 60_000 });
    const result = await execution.result;
    expect(result.status).toBe('no_changes');
    const report = JSON.parse(result.summary) as Record<string, unknown>;
    const workDir = path.join(workRoot, spec.id);
    expect(report).toEqual({
      uid: 65534,
      gid: 65534,
      groups: [65534],
      capEff: '0000000000000000',
      home: workDir,
      cwd: workDir,
      workdir: workDir,
      appPid: process.pid,
      appEnviron: 'EACCES',
      appStatus: 'ok',
      writeWorkdir: 'ok',
      listWorkRoot: 'EACCES',
      readDataFile: 'EACCES',
    });
    const dirInfo = statSync(workDir);
    expect([dirInfo.uid, dirInfo.gid, dirInfo.mode & 0o777]).toEqual([65534, 65534, 0o700]);
    expect(statSync(workRoot).mode & 0o777).toBe(0o711);
    // The same runner as the app's own user (root) can read it: the test would notice no difference otherwise.
    const asApp = await new LocalRunnerBackend({ workRoot, command: [process.execPath, script] }).start({ spec: { ...spec, id: 'as-app' }, onEvent: () => undefined, timeoutMs: 60_000 });
    expect(JSON.parse((await asApp.result).summary)).toMatchObject({ uid: 0, appEnviron: 'ok' });
  });

  test('the real runner program starts as that user and reports (here: a clone that cannot connect)', async () => {
    const backend = new LocalRunnerBackend({ workRoot: path.join(base, 'work-real'), runAs: nobody });
    const events: ProgressEvent[] = [];
    const execution = await backend.start({ spec: { ...spec, id: 'real-runner' }, onEvent: (e) => events.push(e), timeoutMs: 120_000 });
    const result = await execution.result;
    expect(result).toMatchObject({ status: 'failed', failure: { phase: 'checkout' } });
    // It got as far as fetching: its program, Node.js and the work directory were all usable.
    expect(result.failure!.reason).toMatch(/^git fetch failed .*Failed to connect to 127\.0\.0\.1/);
    expect(events).toContainEqual(expect.objectContaining({ type: 'phase', phase: 'checkout', status: 'started' }));
  }, 150_000);

  test('a work directory the user cannot reach fails at start with the directory named', async () => {
    const hidden = path.join(base, 'private');
    await mkdir(hidden, { mode: 0o700 });
    const backend = new LocalRunnerBackend({ workRoot: path.join(hidden, 'work'), command: [process.execPath, '-e', ''], runAs: nobody });
    await expect(backend.start({ spec, onEvent: () => undefined, timeoutMs: 10_000 })).rejects.toThrow(
      `the runner's user (uid 65534) cannot reach its work directory ${path.join(hidden, 'work', spec.id)}: ${hidden} is not searchable by it`,
    );
    expect(await unreachableDirectory(path.join(base, 'work'), nobody)).toBeUndefined();
  });

  test('assertCanRunAs checks Node.js and the runner program as that user', async () => {
    await expect(assertCanRunAs(nobody, process.execPath, [CLI])).resolves.toBeUndefined();
    const secret = path.join(base, 'secret.db');
    await expect(assertCanRunAs(nobody, process.execPath, [secret])).rejects.toThrow(
      `CODEX_RUNNER_USER: cannot start the runner as uid 65534 gid 65534: it cannot read ${secret} (the runner program must be readable by that user)`,
    );
  });

  test('hideFromRunnerUser: the data directory becomes search-only, its files private, the work root untouched', async () => {
    const dataDir = path.join(base, 'data');
    await mkdir(path.join(dataDir, 'work'), { recursive: true, mode: 0o755 });
    await writeFile(path.join(dataDir, 'codex-cloud.db'), 'db', { mode: 0o644 });
    await mkdir(path.join(dataDir, 'logs'), { mode: 0o755 });
    await hideFromRunnerUser(dataDir, path.join(dataDir, 'work'));
    const mode = (p: string): number => statSync(path.join(dataDir, p)).mode & 0o777;
    expect([mode('.'), mode('codex-cloud.db'), mode('logs'), mode('work')]).toEqual([0o711, 0o600, 0o700, 0o755]);
    // A data directory holding the runner program is refused and left as it was.
    await chmod(dataDir, 0o755);
    await expect(hideFromRunnerUser(dataDir, path.join(dataDir, 'work'), [path.join(dataDir, 'logs', 'cli.js')])).rejects.toThrow(
      `CODEX_DATA_DIR (${dataDir}) holds ${path.join(dataDir, 'logs', 'cli.js')}, which the runner's user must read; use a data directory of its own`,
    );
    expect(mode('.')).toBe(0o755);
  });

  test('end to end: the app with CODEX_RUNNER_USER=nobody turns a mention into a pull request; as root without it, it warns', async () => {
    const REPO = 'acme/calc';
    const h = await AppHarness.start({ env: { CODEX_RUNNER_USER: 'nobody', CODEX_MODEL_RETRY_BASE_MS: '10' } });
    try {
      await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
      const issue = h.github.addIssue(REPO, { title: 'add() is broken', body: 'add(2, 3) returns -1.', user: 'maintainer' }).number as number;
      h.model.push(...fixTurns());
      expect(await h.deliver(h.mention(REPO, issue, '@codex please fix the failing add test'))).toBe(200);
      const done = await waitFor('the final reply', () => h.botComments(REPO, issue).find((c) => /✅ \*\*Done\*\*/.test(c.body)), 90_000);
      expect(done.body).toContain('Opened');
      expect(await h.github.pulls(REPO)).toHaveLength(1);
      const logs = h.logLines();
      expect(logs).toContainEqual(expect.objectContaining({ msg: 'local runners run as another user', uid: 65534, gid: 65534 }));
      expect(logs.some((l) => /CODEX_RUNNER_USER is not set/.test(String(l.msg)))).toBe(false);
      expect(statSync(h.dataDir).mode & 0o777).toBe(0o711);
      expect(statSync(path.join(h.dataDir, 'codex-cloud.db')).mode & 0o077).toBe(0);
    } catch (error) {
      console.log(h.logs.slice(-6000));
      throw error;
    } finally {
      await h.close();
    }

    const asRoot = await AppHarness.start();
    try {
      expect(asRoot.logLines()).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('CODEX_RUNNER_USER is not set') }));
    } finally {
      await asRoot.close();
    }
  }, 180_000);
});
