/**
 * The runner's side of the agent-phase network (TaskSpec `network`): the environment that points
 * agent commands at the app's agent proxy, and, in bubblewrap mode, the unix socket the runner
 * serves outside the sandbox and forwards byte for byte to the proxy (the sandbox's relay,
 * loopback-relay.ts, connects to it). Without `network` none of this exists and agent commands have
 * no network at all.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TaskSpec } from '../contract.ts';
import { SANDBOX_PROXY_PORT } from './loopback-relay.ts';

/** The TaskSpec's `network`. */
export type AgentNetwork = NonNullable<TaskSpec['network']>;

/** Hosts agent commands reach directly, never through the proxy. */
const NO_PROXY = 'localhost,127.0.0.1,::1';

/**
 * Environment variables of agent commands for the proxy: `HTTPS_PROXY`, `HTTP_PROXY` and their
 * lower-case forms (curl, pip, npm, git, Python and Go read one or the other), `NO_PROXY`/`no_proxy`
 * for loopback, and `NODE_USE_ENV_PROXY=1` so that Node's `fetch` and `http` use them too (Node ≥ 24.5).
 * @param network the TaskSpec's `network`.
 * @param mode `bubblewrap`: through the relay on `127.0.0.1:`{@link SANDBOX_PROXY_PORT} inside the
 *   sandbox; `container`: the proxy's own address.
 * @returns the variables; the proxy URL carries the task's proxy credentials.
 */
export function agentProxyEnv(network: AgentNetwork, mode: 'bubblewrap' | 'container'): Record<string, string> {
  const url = new URL(network.proxyUrl);
  if (mode === 'bubblewrap') {
    url.hostname = '127.0.0.1';
    url.port = String(SANDBOX_PROXY_PORT);
  }
  const proxy = url.href.replace(/\/$/, '');
  return {
    HTTPS_PROXY: proxy,
    https_proxy: proxy,
    HTTP_PROXY: proxy,
    http_proxy: proxy,
    NO_PROXY,
    no_proxy: NO_PROXY,
    NODE_USE_ENV_PROXY: '1',
  };
}

/** A running bridge; {@link ProxyBridge.close} removes it. */
export interface ProxyBridge {
  /** Absolute host path of the unix socket (bind it into the sandbox). */
  readonly socketPath: string;
  /** Stops listening, closes every open connection and removes the socket's directory. */
  close(): Promise<void>;
}

/**
 * Serves a unix socket in a fresh private directory under the system's temporary directory (short
 * enough for the 107-byte socket path limit, outside the workspace and home so it is neither a
 * change nor part of an environment archive) and forwards each connection to the proxy's host and
 * port.
 * @param network the TaskSpec's `network`.
 * @throws Error when the socket cannot be created.
 */
export async function startProxyBridge(network: AgentNetwork): Promise<ProxyBridge> {
  const url = new URL(network.proxyUrl);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 80);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'codex-proxy-'));
  const socketPath = path.join(dir, 'proxy.sock');
  const open = new Set<net.Socket>();
  // Half-open connections stay usable (a client may end its request and still read the answer).
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host, port, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    await chmod(socketPath, 0o600);
  } catch (error) {
    server.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    socketPath,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
