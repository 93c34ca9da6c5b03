/**
 * The agent-phase proxy over real sockets: a TCP echo server and an HTTP server on loopback stand in
 * for allowlisted hosts (an injected resolver maps their names to 127.0.0.1), clients are raw
 * sockets and curl.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { AgentProxy, isPublicAddress, type BlockReason } from '../../src/proxy/agent-proxy.ts';
import { ProxyGrants } from '../../src/proxy/grants.ts';

const run = promisify(execFile);

let echo: net.Server;
let echoPort: number;
let web: http.Server;
let webPort: number;

beforeAll(async () => {
  echo = net.createServer((socket) => socket.pipe(socket));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as AddressInfo).port;
  web = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from ${req.headers.host} ${req.url} proxy-auth=${req.headers['proxy-authorization'] ?? 'none'}`);
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => echo.close(resolve));
  await new Promise((resolve) => web.close(resolve));
});

/** Names the tests use, all on loopback; `internal.example.org` is "the metadata service". */
const HOSTS: Record<string, string[]> = {
  'pkg.example.org': ['127.0.0.1'],
  'files.cdn.example.net': ['127.0.0.1'],
  'evil.example.com': ['127.0.0.1'],
  'internal.example.org': ['169.254.169.254', '10.0.0.7'],
  'mixed.example.org': ['10.0.0.7', '127.0.0.1'],
};

interface Harness {
  proxy: AgentProxy;
  grants: ProxyGrants;
  port: number;
  blocked: { taskId: string; host: string; reason: BlockReason }[];
  clock: { now: number };
}

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.proxy.close();
});

async function start(opts: { allowPrivateAddresses?: boolean; connectPort?: number; maxConnectionsPerTask?: number } = {}): Promise<Harness> {
  const clock = { now: 1_000_000 };
  const grants = new ProxyGrants({ now: () => clock.now });
  const blocked: Harness['blocked'] = [];
  const proxy = new AgentProxy({
    grants,
    onBlocked: (taskId, host, reason) => blocked.push({ taskId, host, reason }),
    resolve: async (name) => {
      const found = HOSTS[name];
      if (!found) throw new Error(`getaddrinfo ENOTFOUND ${name}`);
      return found;
    },
    allowPrivateAddresses: opts.allowPrivateAddresses ?? true,
    connectPort: opts.connectPort ?? echoPort,
    httpPort: webPort,
    ...(opts.maxConnectionsPerTask ? { maxConnectionsPerTask: opts.maxConnectionsPerTask } : {}),
  });
  const port = await proxy.listen(0, '127.0.0.1');
  const h = { proxy, grants, port, blocked, clock };
  open.push(h);
  return h;
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** Sends a CONNECT and returns the status code, the response head and body, and the open socket. */
function connect(port: number, target: string, auth?: string): Promise<{ status: number; text: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = '';
    socket.on('error', reject);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf)?.[1]);
      if (status === 200) {
        socket.off('data', onData);
        resolve({ status, text: buf, socket });
      } else {
        socket.on('end', () => resolve({ status, text: buf, socket }));
      }
    };
    socket.on('data', onData);
  });
}

/** Writes `text` into an open tunnel to the echo server and reads it back. */
function echoThrough(socket: net.Socket, text: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) resolve(got);
    });
    socket.write(text);
  });
}

describe('AgentProxy', () => {
  test('an allowlisted host is reachable through a CONNECT tunnel with the task credentials', async () => {
    const h = await start();
    const secret = h.grants.issue('task-1', { allow: ['pkg.example.org', '*.cdn.example.net'], ttlMs: 60_000 });
    const tunnel = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-1', secret));
    expect(tunnel.status).toBe(200);
    expect(await echoThrough(tunnel.socket, 'ping through the tunnel')).toBe('ping through the tunnel');
    tunnel.socket.destroy();
    // A suffix wildcard matches a subdomain, any case, trailing dot.
    const wild = await connect(h.port, `FILES.cdn.example.net.:${echoPort}`, basic('task-1', secret));
    expect(wild.status).toBe(200);
    wild.socket.destroy();
    expect(h.blocked).toEqual([]);
  });

  test('another host is refused with 403 and reported once per task', async () => {
    const h = await start();
    const secret = h.grants.issue('task-2', { allow: ['pkg.example.org', '*.cdn.example.net'], ttlMs: 60_000 });
    for (let i = 0; i < 3; i++) {
      const refused = await connect(h.port, `evil.example.com:${echoPort}`, basic('task-2', secret));
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('evil.example.com is not in this repository');
    }
    // The wildcard does not cover the bare suffix; IP literals are never allowed.
    expect((await connect(h.port, `cdn.example.net:${echoPort}`, basic('task-2', secret))).status).toBe(403);
    expect((await connect(h.port, `127.0.0.1:${echoPort}`, basic('task-2', secret))).status).toBe(403);
    // An allowed host on another port is refused and reported with the port.
    expect((await connect(h.port, 'pkg.example.org:22', basic('task-2', secret))).status).toBe(403);
    expect(h.blocked).toEqual([
      { taskId: 'task-2', host: 'evil.example.com', reason: 'not_allowed' },
      { taskId: 'task-2', host: 'cdn.example.net', reason: 'not_allowed' },
      { taskId: 'task-2', host: '127.0.0.1', reason: 'not_allowed' },
      { taskId: 'task-2', host: 'pkg.example.org:22', reason: 'port' },
    ]);
    // Another task is reported separately.
    const other = h.grants.issue('task-3', { allow: [], ttlMs: 60_000 });
    expect((await connect(h.port, `evil.example.com:${echoPort}`, basic('task-3', other))).status).toBe(403);
    expect(h.blocked.at(-1)).toEqual({ taskId: 'task-3', host: 'evil.example.com', reason: 'not_allowed' });
  });

  test('missing or wrong credentials get 407 and are not reported', async () => {
    const h = await start();
    const secret = h.grants.issue('task-4', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    const none = await connect(h.port, `pkg.example.org:${echoPort}`);
    expect(none.status).toBe(407);
    expect(none.text).toMatch(/Proxy-Authenticate: Basic realm="codex-cloud agent proxy"/);
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-4', `${secret}x`))).status).toBe(407);
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-other', secret))).status).toBe(407);
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, `Bearer ${secret}`)).status).toBe(407);
    expect(h.blocked).toEqual([]);
  });

  test('an expired or revoked task gets 407, and revoking closes its open tunnels', async () => {
    const h = await start();
    const secret = h.grants.issue('task-5', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    const tunnel = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-5', secret));
    expect(tunnel.status).toBe(200);
    const closed = new Promise((resolve) => tunnel.socket.on('close', resolve));
    h.clock.now += 60_000;
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-5', secret))).status).toBe(407);
    await closed; // finding the grant expired revoked it, which closed the task's tunnel

    const again = h.grants.issue('task-5', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-5', secret))).status).toBe(407); // the old secret is dead
    const live = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-5', again));
    expect(live.status).toBe(200);
    const liveClosed = new Promise((resolve) => live.socket.on('close', resolve));
    h.grants.revoke('task-5');
    await liveClosed;
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-5', again))).status).toBe(407);
  });

  test('with private addresses refused, an allowed name resolving to loopback, link-local or RFC 1918 is refused and reported', async () => {
    const h = await start({ allowPrivateAddresses: false });
    const secret = h.grants.issue('task-6', { allow: ['pkg.example.org', 'internal.example.org', 'mixed.example.org'], ttlMs: 60_000 });
    for (const host of ['pkg.example.org', 'internal.example.org', 'mixed.example.org']) {
      const refused = await connect(h.port, `${host}:${echoPort}`, basic('task-6', secret));
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('private or reserved addresses');
    }
    expect(h.blocked.map((b) => [b.host, b.reason])).toEqual([
      ['pkg.example.org', 'private_address'],
      ['internal.example.org', 'private_address'],
      ['mixed.example.org', 'private_address'],
    ]);
    // An unknown name is a 502, not a block.
    const secret2 = h.grants.issue('task-7', { allow: ['nowhere.example.org'], ttlMs: 60_000 });
    expect((await connect(h.port, `nowhere.example.org:${echoPort}`, basic('task-7', secret2))).status).toBe(502);
  });

  test('a task gets at most maxConnectionsPerTask open connections (429 beyond), other tasks are not affected', async () => {
    const h = await start({ maxConnectionsPerTask: 2 });
    const a = h.grants.issue('task-9', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    const b = h.grants.issue('task-10', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    const first = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-9', a));
    const second = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-9', a));
    expect([first.status, second.status]).toEqual([200, 200]);
    expect((await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-9', a))).status).toBe(429);
    const other = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-10', b));
    expect(other.status).toBe(200);
    const closed = new Promise((resolve) => first.socket.on('close', resolve));
    first.socket.destroy();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const again = await connect(h.port, `pkg.example.org:${echoPort}`, basic('task-9', a));
    expect(again.status).toBe(200);
    for (const t of [second, other, again]) t.socket.destroy();
  });

  test('isPublicAddress accepts public unicast only', () => {
    for (const a of ['8.8.8.8', '151.101.0.223', '2a04:4e42::223', '::ffff:8.8.8.8']) expect(isPublicAddress(a)).toBe(true);
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '224.0.0.1', 'not an ip']) {
      expect(isPublicAddress(a)).toBe(false);
    }
  });

  test('curl reaches an allowlisted host through CONNECT and plain HTTP forwarding, and is refused elsewhere', async () => {
    const h = await start({ connectPort: webPort });
    const secret = h.grants.issue('task-8', { allow: ['pkg.example.org'], ttlMs: 60_000 });
    const proxyUrl = `http://task-8:${secret}@127.0.0.1:${h.port}`;
    // Plain HTTP: an absolute-URI request; the proxy forwards it and strips its own credentials.
    const plain = await run('curl', ['-sS', '--max-time', '10', '-x', proxyUrl, `http://pkg.example.org:${webPort}/simple/?q=1`]);
    expect(plain.stdout).toBe(`hello from pkg.example.org:${webPort} /simple/?q=1 proxy-auth=none`);
    // --proxytunnel: the same request through a CONNECT tunnel.
    const tunnelled = await run('curl', ['-sS', '--max-time', '10', '-p', '-x', proxyUrl, `http://pkg.example.org:${webPort}/x`]);
    expect(tunnelled.stdout).toBe(`hello from pkg.example.org:${webPort} /x proxy-auth=none`);
    const refused = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '-x', proxyUrl, `http://evil.example.com:${webPort}/`]);
    expect(refused.stdout).toBe('403');
    const tunnelRefused = await run('curl', ['-sS', '--max-time', '10', '-p', '-x', proxyUrl, `http://evil.example.com:${webPort}/`]).catch((e: { stderr: string }) => e);
    expect(tunnelRefused.stderr).toMatch(/403/);
    expect(h.blocked).toEqual([{ taskId: 'task-8', host: 'evil.example.com', reason: 'not_allowed' }]);
  });
});
