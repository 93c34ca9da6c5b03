import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync,
  statSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createSandbox, DEFAULT_SANDBOX_LIMITS, DiskLimitError, sandboxEnv, SandboxPathError, SandboxUnavailableError,
} from '../../src/agent/sandbox.ts';
import type { Sandbox, SandboxOptions } from '../../src/agent/sandbox.ts';

const SANDBOX_MODULE = fileURLToPath(new URL('../../src/agent/sandbox.ts', import.meta.url));
const ALLOWED_ENV = ['PATH', 'HOME', 'LANG', 'TERM', 'CI', 'TZ', 'NO_COLOR', 'PAGER', 'GIT_PAGER', 'TMPDIR', 'PWD'];

// Workspace and home live under /tmp on purpose: they must stay visible over the private /tmp.
let root: string;
let ws: string;
let home: string;
/** A host directory outside the workspace that is visible (read-only) inside the sandbox. */
let outside: string;
let offline: Sandbox;
let online: Sandbox;
let server: net.Server;
let port: number;
let connections = 0;

function opts(over: Partial<SandboxOptions> = {}): SandboxOptions {
  return { mode: 'bubblewrap', workspace: ws, home, network: false, ...over };
}

/** `sh -c script arg...`: arguments travel as positional parameters, never inside the script. */
function sh(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'sh', ...args];
}

const unique = (): string => randomBytes(6).toString('hex');

/** Processes on the host whose command line contains `needle`. */
function processesMatching(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(needle)) found.push(`${pid}: ${cmd}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Node one-liner that connects to 127.0.0.1:$PORT and prints `connected` or the error code. */
const CONNECT_JS =
  "const s=require('net').connect(Number(process.env.PORT),'127.0.0.1');" +
  "s.on('connect',()=>{console.log('connected');s.destroy()});s.on('error',e=>{console.log('error',e.code);process.exitCode=1})";

beforeAll(async () => {
  root = mkdtempSync(path.join(existsSync('/tmp') ? '/tmp' : os.tmpdir(), 'sandbox-test-'));
  ws = path.join(root, 'ws');
  home = path.join(root, 'home');
  mkdirSync(ws);
  mkdirSync(home);
  outside = mkdtempSync(path.join(existsSync('/var/tmp') ? '/var/tmp' : os.homedir(), 'sandbox-test-outside-'));
  server = net.createServer((sock) => {
    connections++;
    sock.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
  offline = await createSandbox(opts({ extraEnv: { PORT: String(port) } }));
  online = await createSandbox(opts({ network: true, extraEnv: { PORT: String(port) } }));
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('bubblewrap sandbox', () => {
  it('runs a command and returns its output and exit code', async () => {
    const r = await offline.run({ command: sh('echo out; echo err >&2; echo "$1"', 'arg with spaces; $(no)'), timeoutMs: 10_000 });
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.timedOut).toBe(false);
    expect(r.aborted).toBe(false);
    expect(r.output).toContain('out\n');
    expect(r.output).toContain('err\n');
    expect(r.output).toContain('arg with spaces; $(no)\n');
    expect(r.outputBytes).toBe(Buffer.byteLength(r.output));
    expect(r.droppedBytes).toBe(0);
    expect(offline.mode).toBe('bubblewrap');
  });

  it('reports a non-zero exit code', async () => {
    const r = await offline.run({ command: sh('echo failing; exit 7'), timeoutMs: 10_000 });
    expect(r.exitCode).toBe(7);
    expect(r.output).toBe('failing\n');
  });

  it('reports a command that does not exist as a failure, not an exception', async () => {
    const r = await offline.run({ command: ['no-such-command-' + unique()], timeoutMs: 10_000 });
    expect(r.exitCode).not.toBe(0);
    expect(r.output).toMatch(/no-such-command/);
  });

  it('runs the Node binary of the runner', async () => {
    const r = await offline.run({ command: ['node', '-e', 'console.log(process.version)'], timeoutMs: 20_000 });
    expect(r.output.trim()).toBe(process.version);
    expect(r.exitCode).toBe(0);
  });

  it('cannot reach a host TCP listener without network, can with network', async () => {
    const before = connections;
    const denied = await offline.run({ command: ['node', '-e', CONNECT_JS], timeoutMs: 20_000 });
    expect(denied.output).not.toContain('connected');
    expect(denied.output).toContain('ECONNREFUSED'); // fresh namespace: nothing listens on its loopback
    expect(denied.exitCode).toBe(1);
    expect(connections).toBe(before);

    const allowed = await online.run({ command: ['node', '-e', CONNECT_JS], timeoutMs: 20_000 });
    expect(allowed.output).toContain('connected');
    expect(allowed.exitCode).toBe(0);
    expect(connections).toBe(before + 1);
  });

  it('passes none of the parent environment', async () => {
    process.env.OPENAI_API_KEY = 'sk-test-secret';
    process.env.GITHUB_TOKEN = 'ghs_testsecret';
    try {
      const sb = await createSandbox(opts({ extraEnv: { MY_SETTING: 'on' } }));
      const r = await sb.run({ command: ['env'], timeoutMs: 10_000 });
      expect(r.exitCode).toBe(0);
      expect(r.output).not.toContain('sk-test-secret');
      expect(r.output).not.toContain('ghs_testsecret');
      const vars = Object.fromEntries(r.output.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(Object.keys(vars).sort()).toEqual([...ALLOWED_ENV, 'MY_SETTING'].sort());
      expect(vars.HOME).toBe(home);
      expect(vars.LANG).toBe('C.UTF-8');
      expect(vars.TMPDIR).toBe('/tmp');
      expect(vars.MY_SETTING).toBe('on');
      expect(vars.PATH?.split(':')[0]).toBe(path.dirname(process.execPath));
    } finally {
      delete process.env.OPENAI_API_KEY;
      delete process.env.GITHUB_TOKEN;
    }
  });

  it('writes only to the workspace, home and a private /tmp', async () => {
    const write = (target: string) => offline.run({ command: sh('echo data > "$1"', target), timeoutMs: 10_000 });

    const outsideFile = path.join(outside, 'escape');
    expect((await write(outsideFile)).exitCode).not.toBe(0);
    expect(existsSync(outsideFile)).toBe(false);

    const etcFile = `/etc/sandbox-test-${unique()}`;
    const etc = await write(etcFile);
    expect(etc.exitCode).not.toBe(0);
    expect(etc.output).toMatch(/Read-only file system/);
    expect(existsSync(etcFile)).toBe(false);

    expect((await write(path.join(ws, 'inside'))).exitCode).toBe(0);
    expect(readFileSync(path.join(ws, 'inside'), 'utf8')).toBe('data\n');
    expect((await write(path.join(home, 'cache'))).exitCode).toBe(0);
    expect(readFileSync(path.join(home, 'cache'), 'utf8')).toBe('data\n');

    const tmpFile = `/tmp/sandbox-test-private-${unique()}`;
    const tmp = await offline.run({ command: sh('echo data > "$1" && cat "$1"', tmpFile), timeoutMs: 10_000 });
    expect(tmp.exitCode).toBe(0);
    expect(tmp.output).toBe('data\n');
    expect(existsSync(tmpFile)).toBe(false);
  });

  it('does not show the host /tmp or /run', async () => {
    const hostFile = `/tmp/sandbox-test-host-${unique()}`;
    writeFileSync(hostFile, 'host secret');
    try {
      const r = await offline.run({ command: sh('test -e "$1" && echo visible; ls -A /run 2>/dev/null; true', hostFile), timeoutMs: 10_000 });
      expect(r.output).toBe('');
    } finally {
      rmSync(hostFile);
    }
  });

  it('hides extra paths on request, including a file', async () => {
    const secretDir = path.join(outside, 'secrets');
    mkdirSync(secretDir);
    writeFileSync(path.join(secretDir, 'key'), 'KEYDATA');
    writeFileSync(path.join(outside, 'token'), 'TOKENDATA');
    // A hidden directory inside the workspace stays hidden although the workspace is bound later.
    const wsSecret = path.join(ws, 'private');
    mkdirSync(wsSecret, { recursive: true });
    writeFileSync(path.join(wsSecret, 'creds'), 'WSDATA');
    const sb = await createSandbox(opts({ hidePaths: [secretDir, path.join(outside, 'token'), wsSecret, '/does/not/exist'] }));
    const r = await sb.run({
      command: sh('cat "$1/key" "$2" "$3/creds"; ls -A "$1" "$3"; echo end', secretDir, path.join(outside, 'token'), wsSecret),
      timeoutMs: 10_000,
    });
    expect(r.output).toContain('end\n');
    expect(r.output).not.toContain('KEYDATA');
    expect(r.output).not.toContain('TOKENDATA');
    expect(r.output).not.toContain('WSDATA');
  });

  it('keeps home contents across runs', async () => {
    await offline.run({ command: sh('mkdir -p "$HOME/.cache" && echo kept > "$HOME/.cache/x"'), timeoutMs: 10_000 });
    const r = await offline.run({ command: sh('cat "$HOME/.cache/x"'), timeoutMs: 10_000 });
    expect(r.output).toBe('kept\n');
  });

  it('leaves the command no capabilities and no way to remount the filesystem', async () => {
    const r = await offline.run({
      command: sh('grep CapEff /proc/self/status; mount -o remount,bind,rw / 2>/dev/null && echo REMOUNTED; touch /etc/x 2>/dev/null && echo WROTE; true'),
      timeoutMs: 10_000,
    });
    expect(r.output).toMatch(/CapEff:\s+0+\n/);
    expect(r.output).not.toContain('REMOUNTED');
    expect(r.output).not.toContain('WROTE');
  });

  it('blocks nested user namespaces where bwrap supports it', async () => {
    if (!offline.blocksNestedUserNamespaces) return;
    const r = await offline.run({ command: sh('unshare -U true && echo NESTED'), timeoutMs: 10_000 });
    expect(r.output).not.toContain('NESTED');
  });

  it('runs in a working directory inside the workspace and refuses others', async () => {
    mkdirSync(path.join(ws, 'sub', 'dir'), { recursive: true });
    const r = await offline.run({ command: ['pwd'], cwd: 'sub/dir', timeoutMs: 10_000 });
    expect(r.output).toBe(path.join(ws, 'sub', 'dir') + '\n');
    expect((await offline.run({ command: ['pwd'], timeoutMs: 10_000 })).output).toBe(ws + '\n');
    await expect(offline.run({ command: ['pwd'], cwd: '..', timeoutMs: 10_000 })).rejects.toThrow(SandboxPathError);
    await expect(offline.run({ command: ['pwd'], cwd: outside, timeoutMs: 10_000 })).rejects.toThrow(SandboxPathError);
    await expect(offline.run({ command: ['pwd'], cwd: 'missing', timeoutMs: 10_000 })).rejects.toThrow(SandboxPathError);
    await expect(offline.run({ command: [], timeoutMs: 10_000 })).rejects.toThrow(TypeError);
    await expect(offline.run({ command: ['true'], timeoutMs: 0 })).rejects.toThrow(RangeError);
  });

  it('feeds stdin and finds programs on extraPath', async () => {
    mkdirSync(path.join(home, 'bin'), { recursive: true });
    writeFileSync(path.join(home, 'bin', 'my-tool'), '#!/bin/sh\necho "my-tool got $(cat)"\n', { mode: 0o755 });
    const sb = await createSandbox(opts({ extraPath: [path.join(home, 'bin')] }));
    const r = await sb.run({ command: ['my-tool'], stdin: 'hello', timeoutMs: 10_000 });
    expect(r.output).toBe('my-tool got hello\n');
  });

  it('streams output chunks as they arrive', async () => {
    const chunks: string[] = [];
    const r = await offline.run({ command: sh('echo one; echo two'), timeoutMs: 10_000, onOutput: (c) => chunks.push(c) });
    expect(chunks.join('')).toBe(r.output);
  });

  it('kills the whole process tree on timeout', async () => {
    const tag = `98${Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1000) + 1}`;
    const r = await offline.run({ command: sh('sleep "$1" & setsid sleep "$1" & echo started; sleep "$1"', tag), timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.aborted).toBe(false);
    expect(r.exitCode).toBeNull();
    expect(r.output).toBe('started\n');
    expect(processesMatching(`sleep ${tag}`)).toEqual([]);
  }, 15_000);

  it('kills the command when the signal aborts', async () => {
    const ac = new AbortController();
    const r = await offline.run({
      command: sh('echo ready; sleep 100'),
      timeoutMs: 60_000,
      signal: ac.signal,
      onOutput: (c) => { if (c.includes('ready')) ac.abort(); },
    });
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBeNull();

    const pre = await offline.run({ command: sh('echo ran > "$1"', path.join(ws, 'pre-aborted')), timeoutMs: 10_000, signal: AbortSignal.abort() });
    expect(pre.aborted).toBe(true);
    expect(existsSync(path.join(ws, 'pre-aborted'))).toBe(false);
  }, 15_000);

  it('caps captured output by dropping the middle', async () => {
    const sb = await createSandbox(opts({ maxOutputBytes: 64 * 1024 }));
    const r = await sb.run({ command: sh('echo START; head -c 1000000 /dev/zero | tr "\\0" a; echo; echo END'), timeoutMs: 20_000 });
    expect(r.exitCode).toBe(0);
    expect(r.outputBytes).toBe(1_000_000 + 'START\n\nEND\n'.length);
    expect(r.droppedBytes).toBe(r.outputBytes - 64 * 1024);
    expect(r.output.startsWith('START\naaa')).toBe(true);
    expect(r.output.endsWith('aaa\nEND\n')).toBe(true);
    expect(r.output).toContain(`\n[... ${r.droppedBytes} bytes omitted ...]\n`);
    expect(Buffer.byteLength(r.output)).toBeLessThan(64 * 1024 + 100);
  });
});

describe('createSandbox', () => {
  it('throws SandboxUnavailableError when bwrap is missing', async () => {
    await expect(createSandbox(opts({ bwrapPath: '/nonexistent/bwrap' }))).rejects.toThrow(SandboxUnavailableError);
    const savedPath = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(createSandbox(opts())).rejects.toThrow(/not found on PATH/);
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it('throws SandboxUnavailableError with the reason when bwrap cannot create the sandbox', async () => {
    const fake = path.join(root, 'fake-bwrap');
    writeFileSync(fake, '#!/bin/sh\necho "bwrap: No permissions to create a new namespace" >&2\nexit 1\n', { mode: 0o755 });
    const err = await createSandbox(opts({ bwrapPath: fake })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SandboxUnavailableError);
    expect((err as Error).message).toContain('No permissions to create a new namespace');
  });

  it('rejects a missing workspace or home', async () => {
    await expect(createSandbox(opts({ workspace: path.join(root, 'missing') }))).rejects.toThrow(SandboxPathError);
    await expect(createSandbox(opts({ home: 'relative/home' }))).rejects.toThrow(TypeError);
    await expect(createSandbox(opts({ mode: 'container', home: path.join(root, 'missing') }))).rejects.toThrow(SandboxPathError);
  });
});

describe('container mode', () => {
  it('runs directly in the workspace with the cleared environment', async () => {
    process.env.OPENAI_API_KEY = 'sk-test-secret';
    try {
      const sb = await createSandbox(opts({ mode: 'container' }));
      expect(sb.mode).toBe('container');
      const r = await sb.run({ command: sh('pwd; env; node -e "console.log(process.version)"'), timeoutMs: 20_000 });
      expect(r.exitCode).toBe(0);
      expect(r.output).not.toContain('sk-test-secret');
      const lines = r.output.trim().split('\n');
      expect(lines[0]).toBe(ws);
      expect(lines.at(-1)).toBe(process.version);
      const names = lines.slice(1, -1).map((l) => l.slice(0, l.indexOf('=')));
      expect(names.filter((n) => !ALLOWED_ENV.includes(n) && n !== 'SHLVL' && n !== '_')).toEqual([]);
      expect(lines).toContain(`HOME=${home}`);
    } finally {
      delete process.env.OPENAI_API_KEY;
    }
  });

  it('kills the process group on timeout, with SIGKILL when SIGTERM is ignored', async () => {
    const tag = `97${Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1000) + 1}`;
    const sb = await createSandbox(opts({ mode: 'container', killGraceMs: 200 }));
    const r = await sb.run({ command: sh('trap "" TERM; sleep "$1" & echo started; sleep "$1"', tag), timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    expect(r.output).toBe('started\n');
    expect(processesMatching(`sleep ${tag}`)).toEqual([]);
  }, 15_000);

  it('kills background processes the command leaves behind', async () => {
    const tag = `96${Math.floor(Math.random() * 1000)}.${Math.floor(Math.random() * 1000) + 1}`;
    const sb = await createSandbox(opts({ mode: 'container' }));
    const r = await sb.run({ command: sh('sleep "$1" & echo done', tag), timeoutMs: 20_000 });
    expect(r.exitCode).toBe(0);
    expect(r.timedOut).toBe(false);
    expect(r.output).toBe('done\n');
    expect(processesMatching(`sleep ${tag}`)).toEqual([]);
  });

  it('reports a command killed by a signal as 128 + N in both modes', async () => {
    for (const sb of [offline, await createSandbox(opts({ mode: 'container' }))]) {
      const r = await sb.run({ command: sh('kill -SEGV $$'), timeoutMs: 10_000 });
      expect([sb.mode, r.exitCode, r.signal]).toEqual([sb.mode, 128 + os.constants.signals.SIGSEGV, null]);
    }
  });

  it('reports a program that cannot be started with exit code 127', async () => {
    const sb = await createSandbox(opts({ mode: 'container' }));
    const r = await sb.run({ command: ['no-such-command-' + unique()], timeoutMs: 10_000 });
    expect(r.exitCode).toBe(127);
    expect(r.output).toMatch(/ENOENT/);
  });
});

describe('sandboxEnv', () => {
  it('builds PATH from extraPath, the Node directory and the defaults', () => {
    const env = sandboxEnv({ home: '/h', extraPath: ['/h/.venv/bin'], nodeDir: '/opt/node/bin' });
    expect(env.PATH).toBe('/h/.venv/bin:/opt/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(env.LC_ALL).toBeUndefined();
    expect(() => sandboxEnv({ home: '/h', extraPath: ['relative/bin'] })).toThrow(TypeError);
    expect(() => sandboxEnv({ home: '/h', extraEnv: { PATH: '/x' } })).toThrow(TypeError);
    expect(() => sandboxEnv({ home: '/h', extraEnv: { 'A=B': 'x' } })).toThrow(TypeError);
  });
});

// When the tests run as root, repeat the essentials as an unprivileged user, where bwrap has to
// create a user namespace itself. Run unprivileged, the suite above already covers that case.
// The unprivileged user must also be able to read this checkout and the Node binary (a checkout
// in a private directory, e.g. one made by `mktemp -d`, is not readable to it).
function readableByOthers(file: string): boolean {
  for (let p = path.resolve(file); ; p = path.dirname(p)) {
    const mode = statSync(p).mode;
    if (p === path.resolve(file) ? (mode & 0o004) === 0 : (mode & 0o001) === 0) return false;
    if (p === '/') return true;
  }
}
/** Runs `node script args...` as uid/gid 65534 (nobody) and returns its stdout. @throws Error on a non-zero exit. */
function runAsNobody(script: string, args: string[]): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, script, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
  });
}

const canDropPrivileges =
  process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') && readableByOthers(SANDBOX_MODULE) && readableByOthers(process.execPath);
(canDropPrivileges ? describe : describe.skip)('bubblewrap sandbox as an unprivileged user', () => {
  it('isolates the same way', async () => {
    const base = mkdtempSync(path.join('/tmp', 'sandbox-test-unpriv-'));
    chmodSync(base, 0o755);
    try {
      const uws = path.join(base, 'ws');
      const uhome = path.join(base, 'home');
      for (const d of [uws, uhome]) {
        mkdirSync(d);
        chownSync(d, 65534, 65534);
      }
      mkdirSync(path.join(uws, 'hidden'));
      writeFileSync(path.join(uws, 'hidden', 'secret'), 'x');
      const script = path.join(base, 'check.mjs');
      writeFileSync(script, `
        import { createSandbox } from ${JSON.stringify(SANDBOX_MODULE)};
        const [ws, home, port] = process.argv.slice(2);
        const sb = await createSandbox({ mode: 'bubblewrap', workspace: ws, home, network: false, extraEnv: { PORT: port }, hidePaths: [ws + '/hidden'] });
        const run = (command) => sb.run({ command, timeoutMs: 20000 });
        const out = {};
        out.id = (await run(['id', '-u'])).output.trim();
        out.node = (await run(['node', '-e', 'console.log(process.version)'])).output.trim();
        out.wsWrite = (await run(['sh', '-c', 'echo ok > "$1/f" && cat "$1/f"', 'sh', ws])).output.trim();
        out.etcWrite = (await run(['sh', '-c', 'touch /etc/unpriv-test', 'sh'])).exitCode;
        out.caps = (await run(['grep', 'CapEff', '/proc/self/status'])).output.trim();
        out.net = (await run(['node', '-e', ${JSON.stringify(CONNECT_JS)}])).output.trim();
        out.nested = sb.blocksNestedUserNamespaces;
        out.hidden = (await run(['sh', '-c', 'ls -A hidden; touch hidden/x 2>/dev/null && echo WROTE; echo end'])).output.trim();
        console.log(JSON.stringify(out));
      `);
      const stdout = await runAsNobody(script, [uws, uhome, String(port)]);
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
      expect(result).toEqual({
        id: '65534',
        node: process.version,
        wsWrite: 'ok',
        etcWrite: 1,
        caps: expect.stringMatching(/^CapEff:\s+0+$/),
        net: 'error ECONNREFUSED',
        nested: true,
        hidden: 'end',
      });
      expect(existsSync('/etc/unpriv-test')).toBe(false);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('limits', () => {
  /** A fresh workspace and home for one test (disk use is measured over both). */
  function freshDirs(): { workspace: string; home: string } {
    const base = mkdtempSync(path.join(root, 'limits-'));
    mkdirSync(path.join(base, 'ws'));
    mkdirSync(path.join(base, 'home'));
    return { workspace: path.join(base, 'ws'), home: path.join(base, 'home') };
  }
  const MiB = 1024 * 1024;

  it('has sensible defaults: 1024 processes, a 1 GiB /tmp, files up to the 10 GiB disk limit', async () => {
    expect(DEFAULT_SANDBOX_LIMITS).toEqual({ maxProcesses: 1024, tmpBytes: 1024 ** 3, diskBytes: 10 * 1024 ** 3, diskCheckIntervalMs: 5000 });
    const r = await offline.run({ command: sh('grep -E "Max (processes|file size)" /proc/self/limits; df -k /tmp | tail -1'), timeoutMs: 10_000 });
    expect(r.output).toMatch(/Max file size\s+10737418240\s+10737418240\s+bytes/);
    expect(r.output).toMatch(/Max processes\s+1024\s+1024\s+processes/);
    expect(r.output).toMatch(/\s1048576\s/);
  });

  it('rejects nonsense limits', async () => {
    await expect(createSandbox(opts({ limits: { maxProcesses: 0 } }))).rejects.toThrow(RangeError);
    await expect(createSandbox(opts({ limits: { tmpBytes: 1.5 } }))).rejects.toThrow(RangeError);
    await expect(createSandbox(opts({ limits: { diskBytes: -1 } }))).rejects.toThrow(RangeError);
  });

  it('sizes /tmp and /dev/shm: writing more than the limit fails', async () => {
    const sb = await createSandbox(opts({ limits: { tmpBytes: 8 * MiB } }));
    const r = await sb.run({
      command: sh('for f in /tmp/big /dev/shm/big /var/tmp/big; do head -c 16777216 /dev/zero > "$f"; echo "$f rc=$?"; done; df -k /tmp | tail -1'),
      timeoutMs: 20_000,
    });
    expect(r.output).toContain('/tmp/big rc=1');
    expect(r.output).toContain('/dev/shm/big rc=1');
    expect(r.output).toContain('/var/tmp/big rc=1'); // /var/tmp is the same private /tmp
    expect(r.output.match(/No space left on device/g)?.length).toBe(3);
    expect(r.output).toMatch(/\s8192\s/); // df: an 8 MiB filesystem
  });

  it('fails with DiskLimitError after a command that takes the workspace and home over the disk limit', async () => {
    const dirs = freshDirs();
    const sb = await createSandbox(opts({ ...dirs, limits: { diskBytes: 8 * MiB } }));
    const small = await sb.run({ command: sh('head -c 1048576 /dev/zero > one'), timeoutMs: 20_000 });
    expect(small.exitCode).toBe(0);
    const err = await sb.run({ command: sh('for i in 1 2; do head -c 4194304 /dev/zero > "f$i"; done; head -c 1048576 /dev/zero > "$HOME/cache"; echo wrote'), timeoutMs: 20_000 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskLimitError);
    const e = err as DiskLimitError;
    expect(e.message).toMatch(/^disk limit exceeded: the workspace and home use \d+\.\d MiB, more than the task's limit of 8\.0 MiB$/);
    expect(e.usedBytes).toBeGreaterThan(8 * MiB);
    expect(e.limitBytes).toBe(8 * MiB);
    expect(e.result.exitCode).toBe(0);
    expect(e.result.output).toBe('wrote\n');
  });

  it('stops a command that keeps writing once it is over the disk limit', async () => {
    const dirs = freshDirs();
    const sb = await createSandbox(opts({ ...dirs, limits: { diskBytes: 8 * MiB, diskCheckIntervalMs: 100 } }));
    const started = Date.now();
    const err = await sb.run({
      command: sh('i=0; while true; do i=$((i+1)); head -c 1048576 /dev/zero > "f$i"; sleep 0.05; done'),
      timeoutMs: 60_000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskLimitError);
    expect((err as DiskLimitError).message).toMatch(/the command was stopped$/);
    expect((err as DiskLimitError).result.timedOut).toBe(false);
    expect((err as DiskLimitError).result.exitCode).toBeNull();
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('caps the size of any one file at the disk limit (RLIMIT_FSIZE)', async () => {
    const dirs = freshDirs();
    const sb = await createSandbox(opts({ ...dirs, limits: { diskBytes: 4 * MiB } }));
    const err = await sb.run({ command: sh('head -c 16777216 /dev/zero > big; echo "rc=$?"'), timeoutMs: 20_000 }).catch((e: unknown) => e);
    // head dies of SIGXFSZ at 4 MiB; the file is then exactly at the limit, the workspace above it.
    expect(err).toBeInstanceOf(DiskLimitError);
    expect((err as DiskLimitError).result.output).toContain(`rc=${128 + os.constants.signals.SIGXFSZ}`);
    expect(statSync(path.join(dirs.workspace, 'big')).size).toBe(4 * MiB);
  });

  it('refuses to hide a system directory the sandbox needs', async () => {
    await expect(createSandbox(opts({ hidePaths: ['/usr/local/..'] }))).rejects.toThrow(/must not be hidden from the sandbox.*\/usr/);
  });
});

// RLIMIT_NPROC is not enforced for host root (the kernel exempts uid 0), so the process limit is
// checked as an unprivileged user: directly when the tests run unprivileged, else through setpriv.
const FORK_JS = `
  const { spawn } = require('node:child_process');
  let ok = 0, failed = 0;
  const kids = [];
  for (let i = 0; i < 2000; i++) {
    const c = spawn('sleep', ['60'], { stdio: 'ignore' });
    c.on('error', () => {});
    if (c.pid) { ok++; kids.push(c); } else failed++;
  }
  for (const k of kids) k.kill('SIGKILL');
  console.log(JSON.stringify({ ok, failed }));
`;

(process.getuid?.() !== 0 || canDropPrivileges ? describe : describe.skip)('process limit', () => {
  it('bounds a command that tries to start 2,000 processes; the command ends', async () => {
    const base = mkdtempSync(path.join('/tmp', 'sandbox-test-nproc-'));
    chmodSync(base, 0o755);
    try {
      const uws = path.join(base, 'ws');
      const uhome = path.join(base, 'home');
      for (const d of [uws, uhome]) {
        mkdirSync(d);
        if (process.getuid?.() === 0) chownSync(d, 65534, 65534);
      }
      const script = path.join(base, 'fork.mjs');
      writeFileSync(script, `
        import { createSandbox } from ${JSON.stringify(SANDBOX_MODULE)};
        const [ws, home] = process.argv.slice(2);
        const sb = await createSandbox({ mode: 'bubblewrap', workspace: ws, home, network: false, limits: { maxProcesses: 64 } });
        const r = await sb.run({ command: ['node', '-e', ${JSON.stringify(FORK_JS)}], timeoutMs: 60000 });
        console.log(JSON.stringify({ exitCode: r.exitCode, timedOut: r.timedOut, output: r.output }));
      `);
      const stdout = process.getuid?.() === 0
        ? await runAsNobody(script, [uws, uhome])
        : await new Promise<string>((resolve, reject) => {
            execFile(process.execPath, [script, uws, uhome], (error, out) => (error ? reject(error) : resolve(out)));
          });
      const run = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { exitCode: number; timedOut: boolean; output: string };
      expect(run).toMatchObject({ exitCode: 0, timedOut: false });
      const counts = JSON.parse(run.output.trim().split('\n').at(-1) ?? '{}') as { ok: number; failed: number };
      expect(counts.ok).toBeGreaterThan(0);
      expect(counts.ok).toBeLessThan(64); // node's own threads count too
      expect(counts.ok + counts.failed).toBe(2000);
      expect(processesMatching('sleep 60').filter((p) => !p.includes('jest'))).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  }, 90_000);
});

// Guard against a silently broken test environment: the suite needs a working bwrap.
it('has bubblewrap installed for these tests', () => {
  expect(execFileSync('bwrap', ['--version'], { encoding: 'utf8' })).toMatch(/bubblewrap/);
});
