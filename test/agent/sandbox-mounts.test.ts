import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox } from '../../src/agent/sandbox.ts';
import { planMounts, readOnlyPathsFromEnv, runnerHiddenPaths, SandboxLayoutError } from '../../src/agent/sandbox-mounts.ts';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let base: string;
let ws: string;
let home: string;
/** Outside /tmp and outside the allowlist, so only readOnlyPaths can show it. */
let outside: string;

beforeAll(() => {
  base = mkdtempSync(path.join(tmpdir(), 'sandbox-mounts-'));
  ws = path.join(base, 'ws');
  home = path.join(base, 'home');
  mkdirSync(ws);
  mkdirSync(home);
  outside = mkdtempSync(path.join(PACKAGE_ROOT, '.sandbox-mounts-test-'));
});

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('runnerHiddenPaths', () => {
  it('hides the runner directory, the app installation, the work root and the data directory', () => {
    expect(runnerHiddenPaths('/srv/codex/.data/work/t1', '/srv/codex/.data/work/t1/repo', '/srv/codex', {}).sort()).toEqual(
      ['/srv/codex', PACKAGE_ROOT, '/srv/codex/.data/work', '/srv/codex/.data'].sort(),
    );
    expect(runnerHiddenPaths('/scratch/t1', '/scratch/t1/repo', '/srv/app', { CODEX_DATA_DIR: 'state' })).toEqual(
      ['/srv/app', PACKAGE_ROOT, '/scratch', '/srv/app/state'],
    );
  });

  it('leaves out / and paths inside the workspace (a checkout worked on in place)', () => {
    const hidden = runnerHiddenPaths('/t1', '/home/me/project', '/home/me/project/sub', {});
    expect(hidden).not.toContain('/');
    expect(hidden).not.toContain('/home/me/project/sub');
  });
});

describe('readOnlyPathsFromEnv', () => {
  it('splits CODEX_SANDBOX_RO_PATHS on colons and refuses relative paths', () => {
    expect(readOnlyPathsFromEnv({ CODEX_SANDBOX_RO_PATHS: '/opt/tools::/etc/pip.conf' })).toEqual(['/opt/tools', '/etc/pip.conf']);
    expect(readOnlyPathsFromEnv({})).toEqual([]);
    expect(() => readOnlyPathsFromEnv({ CODEX_SANDBOX_RO_PATHS: '/opt:tools' })).toThrow(TypeError);
  });
});

describe('planMounts', () => {
  const input = { workspace: '/w/ws', home: '/w/home', readOnlyPaths: [], nodeExecPath: process.execPath, tmpBytes: 1 << 20, shmBytes: 1 << 20 };

  it('refuses to hide a system directory or one that contains it', () => {
    for (const p of ['/usr', '/usr/lib/..', '/etc']) {
      expect(() => planMounts({ ...input, protect: [p] })).toThrow(SandboxLayoutError);
    }
  });

  it('keeps a Node installation inside a hidden app directory under /usr reachable, and nothing else of it', () => {
    if (process.getuid?.() !== 0) return; // needs to write under /usr/local
    const app = mkdtempSync('/usr/local/share/codex-mounts-test-');
    try {
      const nodePkg = path.join(app, 'node_modules/node');
      mkdirSync(path.join(nodePkg, 'bin'), { recursive: true });
      writeFileSync(path.join(nodePkg, 'bin/node'), '');
      const args = planMounts({ ...input, protect: [app], nodeExecPath: path.join(nodePkg, 'bin/node') }).join(' ');
      const mask = args.indexOf(`--tmpfs ${app} `);
      expect(mask).toBeGreaterThan(args.indexOf('--ro-bind /usr /usr'));
      expect(args.indexOf(`--ro-bind ${nodePkg} ${nodePkg}`)).toBeGreaterThan(mask);
      expect(args).toContain(`--remount-ro ${app} `);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it('binds system paths read-only, sizes /tmp, and makes the sandbox root read-only last', () => {
    const args = planMounts({ ...input, protect: [] });
    expect(args.join(' ')).toContain('--ro-bind /usr /usr');
    expect(args.join(' ')).toContain('--size 1048576 --tmpfs /tmp');
    expect(args.join(' ')).not.toContain('--ro-bind / /');
    expect(args.slice(-2)).toEqual(['--remount-ro', '/']);
    expect(args.join(' ')).toMatch(/--bind \/w\/ws \/w\/ws/);
  });
});

describe('hidePaths', () => {
  it('hides a file inside the workspace behind /dev/null', async () => {
    writeFileSync(path.join(ws, 'secret.env'), 'TOKEN=WSSECRET');
    const sb = await createSandbox({ mode: 'bubblewrap', workspace: ws, home, network: false, hidePaths: [path.join(ws, 'secret.env')] });
    const r = await sb.run({ command: ['sh', '-c', 'cat secret.env; echo "[end]"; echo x > secret.env || echo refused'], timeoutMs: 10_000 });
    expect(r.output).not.toContain('WSSECRET');
    expect(r.output).toContain('[end]');
    expect(r.output).toContain('refused');
  });
});

describe('readOnlyPaths', () => {
  it('shows an extra host path read-only, with protected paths inside it still hidden', async () => {
    writeFileSync(path.join(outside, 'tool'), 'TOOL');
    mkdirSync(path.join(outside, 'private'));
    writeFileSync(path.join(outside, 'private', 'key'), 'KEYDATA');
    const plain = await createSandbox({ mode: 'bubblewrap', workspace: ws, home, network: false });
    const script = ['sh', '-c', 'cat "$1/tool"; cat "$1/private/key"; touch "$1/new" 2>&1; echo end', 'sh', outside];
    expect((await plain.run({ command: script, timeoutMs: 10_000 })).output).not.toContain('TOOL');
    const sb = await createSandbox({
      mode: 'bubblewrap', workspace: ws, home, network: false, readOnlyPaths: [outside], hidePaths: [path.join(outside, 'private')],
    });
    const r = await sb.run({ command: script, timeoutMs: 10_000 });
    expect(r.output).toContain('TOOL');
    expect(r.output).not.toContain('KEYDATA');
    expect(r.output).toMatch(/Read-only file system/);
  });
});
