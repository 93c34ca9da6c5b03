/**
 * The runner's side of the agent-phase network with real processes: the unix socket bridge, bound
 * into a real bubblewrap sandbox, and the loopback relay each command runs under. A TCP server on
 * the host stands in for the app's proxy.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SANDBOX_PROXY_PORT, SANDBOX_PROXY_SOCKET } from '../../src/agent/loopback-relay.ts';
import { agentProxyEnv, startProxyBridge, type ProxyBridge } from '../../src/agent/proxy-bridge.ts';
import { createSandbox, type Sandbox } from '../../src/agent/sandbox.ts';

const NETWORK = { proxyUrl: 'http://task_1:ccp_secret@10.0.1.5:3129', allow: ['pypi.org'] };

describe('agentProxyEnv', () => {
  test('bubblewrap: the in-sandbox relay with the credentials; container: the proxy itself', () => {
    expect(agentProxyEnv(NETWORK, 'bubblewrap')).toEqual({
      HTTPS_PROXY: 'http://task_1:ccp_secret@127.0.0.1:3128',
      https_proxy: 'http://task_1:ccp_secret@127.0.0.1:3128',
      HTTP_PROXY: 'http://task_1:ccp_secret@127.0.0.1:3128',
      http_proxy: 'http://task_1:ccp_secret@127.0.0.1:3128',
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
      NODE_USE_ENV_PROXY: '1',
    });
    expect(agentProxyEnv(NETWORK, 'container').HTTPS_PROXY).toBe('http://task_1:ccp_secret@10.0.1.5:3129');
  });
});

describe('proxy bridge and loopback relay in bubblewrap', () => {
  let root: string;
  let upstream: net.Server;
  let bridge: ProxyBridge;
  let sandbox: Sandbox;
  const seen: string[] = [];

  beforeAll(async () => {
    root = mkdtempSync(path.join(existsSync('/tmp') ? '/tmp' : os.tmpdir(), 'proxy-bridge-'));
    mkdirSync(path.join(root, 'ws'));
    mkdirSync(path.join(root, 'home'));
    // The "proxy": answers each connection with what it received, upper-cased.
    upstream = net.createServer((socket) => socket.on('data', (d: Buffer) => {
      seen.push(d.toString());
      socket.end(d.toString().toUpperCase());
    }));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    bridge = await startProxyBridge({ proxyUrl: `http://t:s@127.0.0.1:${port}`, allow: [] });
    sandbox = await createSandbox({
      mode: 'bubblewrap', workspace: path.join(root, 'ws'), home: path.join(root, 'home'), network: false, proxySocket: bridge.socketPath,
    });
  });

  afterAll(async () => {
    await bridge?.close();
    await new Promise((resolve) => upstream?.close(resolve));
    rmSync(root, { recursive: true, force: true });
  });

  test('a command reaches the proxy at 127.0.0.1:3128 through the relay and the bound socket, and nothing else', async () => {
    const client = `const s=require('net').connect(${SANDBOX_PROXY_PORT},'127.0.0.1');s.end('hello proxy');s.on('data',(d)=>process.stdout.write(String(d)));s.on('error',(e)=>console.log(e.code))`;
    const r = await sandbox.run({ command: ['node', '-e', client], timeoutMs: 30_000 });
    expect(r.output).toBe('HELLO PROXY');
    expect(r.exitCode).toBe(0);
    expect(seen).toContain('hello proxy');
    // The socket is there, read-only, and the host's loopback is not.
    const port = (upstream.address() as AddressInfo).port;
    const direct = `require('net').connect(${port},'127.0.0.1').on('connect',()=>console.log('connected')).on('error',(e)=>console.log(e.code))`;
    expect((await sandbox.run({ command: ['node', '-e', direct], timeoutMs: 30_000 })).output.trim()).toBe('ECONNREFUSED');
    expect((await sandbox.run({ command: ['sh', '-c', `test -S ${SANDBOX_PROXY_SOCKET} && ! rm -f ${SANDBOX_PROXY_SOCKET} 2>/dev/null && echo kept`], timeoutMs: 30_000 })).output.trim()).toBe('kept');
  });

  test('the relay keeps the command\'s exit code, signal status, stdin and output', async () => {
    expect((await sandbox.run({ command: ['sh', '-c', 'exit 3'], timeoutMs: 30_000 })).exitCode).toBe(3);
    expect((await sandbox.run({ command: ['sh', '-c', 'kill -TERM $$'], timeoutMs: 30_000 })).exitCode).toBe(143);
    const missing = await sandbox.run({ command: ['no-such-program-xyz'], timeoutMs: 30_000 });
    expect(missing.exitCode).toBe(127);
    expect(missing.output).toContain('no-such-program-xyz');
    const cat = await sandbox.run({ command: ['sh', '-c', 'cat; echo err >&2'], stdin: 'from stdin\n', timeoutMs: 30_000 });
    expect(cat.output).toBe('from stdin\nerr\n');
    expect(cat.exitCode).toBe(0);
  });

  test('closing the bridge removes its socket and directory', async () => {
    const other = await startProxyBridge({ proxyUrl: 'http://t:s@127.0.0.1:9', allow: [] });
    expect(existsSync(other.socketPath)).toBe(true);
    await other.close();
    expect(existsSync(path.dirname(other.socketPath))).toBe(false);
  });
});
