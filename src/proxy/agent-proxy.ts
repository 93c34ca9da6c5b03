/**
 * The agent-phase network proxy (DESIGN.md, "Environments"): an HTTP proxy served by the app on its
 * own port, through which a task's agent commands reach the hosts its `.github/codex.yml` allows
 * (`agent_network.allow`) and nothing else. On ECS it is the agent task's only way out; locally the
 * runner relays to it from inside the bubblewrap sandbox (src/agent/proxy-bridge.ts).
 *
 * - `CONNECT host:443` (https://www.rfc-editor.org/rfc/rfc9110#name-connect) opens a TCP tunnel
 *   (TLS stays end to end: the proxy sees only the host name);
 * - plain-HTTP forwarding of absolute-URI requests (`GET http://host/path`, RFC 9112 §3.2.2) to
 *   port 80 of an allowed host, for package mirrors that still serve HTTP;
 * - every request carries `Proxy-Authorization: Basic <task id>:<secret>` (RFC 7617) of a live
 *   {@link ProxyGrants} grant, else 407;
 * - a host outside the task's allowlist, or another port, gets 403 and is reported once per task
 *   through `onBlocked`;
 * - the proxy resolves the name itself and connects to the address it checked; addresses that are
 *   not public unicast (loopback, RFC 1918 private, link-local such as 169.254.169.254, CGNAT,
 *   unique-local, multicast, reserved…) are refused (403) so that an allowed name cannot lead into
 *   the VPC or to the instance metadata service, unless `allowPrivateAddresses` is set (tests).
 *
 * Built on Node's own HTTP server (`connect` and `request` events) rather than a proxy library: the
 * whole policy is a few checks before a socket pipe, and owning the connect step is what lets the
 * address check apply to the very address connected to (no second DNS lookup a rebinding attacker
 * could answer differently). Address classes come from ipaddr.js.
 */
import { lookup } from 'node:dns/promises';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ipaddr from 'ipaddr.js';
import { normalizeHost } from './allowlist.ts';
import type { ProxyGrant, ProxyGrants } from './grants.ts';

/**
 * Why a request was refused: the host is not in the allowlist, the port is not the one its method
 * may use (443 for CONNECT, 80 for plain HTTP), or every address the allowed name resolves to is
 * private (see the module comment).
 */
export type BlockReason = 'not_allowed' | 'port' | 'private_address';

/** Options of {@link AgentProxy}. */
export interface AgentProxyOptions {
  /** The tasks' credentials and allowlists. */
  grants: ProxyGrants;
  /**
   * Called the first time a task is refused a host (`host`, or `host:port` for a refused port), at
   * most `maxReportedHosts` times per task; exceptions are ignored. The app puts it in the task's
   * events and final reply.
   */
  onBlocked?: (taskId: string, host: string, reason: BlockReason) => void;
  /** Resolves a host name to IP addresses (default: the system resolver, `dns.lookup` with `all`). Tests map names to loopback. */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Allow connections to non-public addresses (loopback, private, link-local…). Default false; tests only. */
  allowPrivateAddresses?: boolean;
  /** The one port CONNECT may reach. Default {@link CONNECT_PORT} (443); tests use their server's. */
  connectPort?: number;
  /** The one port plain-HTTP forwarding may reach. Default {@link HTTP_PORT} (80); tests use their server's. */
  httpPort?: number;
  /** Time to establish the upstream TCP connection, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Distinct refused hosts reported per task, at most. Default 100. */
  maxReportedHosts?: number;
  /** Connections one task may have open through the proxy at once; more get 429. Default 64. */
  maxConnectionsPerTask?: number;
}

/** Port a CONNECT tunnel may go to. */
export const CONNECT_PORT = 443;
/** Port plain-HTTP forwarding may go to. */
export const HTTP_PORT = 80;

const REALM = 'codex-cloud agent proxy';

/** Request headers that belong to one hop (RFC 9110 §7.6.1) or to the proxy itself; not forwarded. */
const HOP_HEADERS = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host']);

async function systemResolve(hostname: string): Promise<string[]> {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

/** Whether `address` is a public unicast IPv4/IPv6 address (IPv4-mapped IPv6 judged as IPv4). */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  return ipaddr.process(address).range() === 'unicast';
}

/** `host:port` of a CONNECT request target; the host lower-cased, brackets kept for IPv6. */
function parseAuthority(target: string): { host: string; port: number } | undefined {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/?#@[\]]+):(\d{1,5})$/.exec(target);
  if (!match) return undefined;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: normalizeHost(match[1]!), port } : undefined;
}

/** task id and secret of a `Proxy-Authorization: Basic …` header. */
function basicCredentials(header: string | undefined): { user: string; pass: string } | undefined {
  const match = /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon > 0 ? { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) } : undefined;
}

/** A refusal: status and the one-line reason in the body. */
interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

/** Writes a complete HTTP/1.1 response on a raw socket (CONNECT) and closes it. */
function refuseSocket(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.message}\n`;
  const headers = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    ...refusal.headers,
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${refusal.status} ${http.STATUS_CODES[refusal.status] ?? ''}\r\n${head}\r\n${body}`);
}

function refuseResponse(res: ServerResponse, refusal: Refusal): void {
  const body = `${refusal.message}\n`;
  res.writeHead(refusal.status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close', ...refusal.headers });
  res.end(body);
}

const TOO_MANY: Refusal = { status: 429, message: `${REALM}: too many open connections for this task` };

const AUTH_REQUIRED: Refusal = {
  status: 407,
  message: `${REALM}: proxy credentials missing, wrong or expired (the task may have ended)`,
  headers: { 'Proxy-Authenticate': `Basic realm="${REALM}"` },
};

/**
 * The proxy server; see the module comment. Create it, {@link AgentProxy.listen}, issue grants
 * through the {@link ProxyGrants} it was given; revoking a grant also closes the task's open
 * connections.
 */
export class AgentProxy {
  /** The underlying HTTP server (its `connect` and `request` events are the proxy). */
  readonly server: http.Server;
  readonly #grants: ProxyGrants;
  readonly #onBlocked: AgentProxyOptions['onBlocked'];
  readonly #resolve: (hostname: string) => Promise<string[]>;
  readonly #allowPrivate: boolean;
  readonly #connectTimeoutMs: number;
  readonly #maxReported: number;
  readonly #connectPort: number;
  readonly #httpPort: number;
  readonly #maxConnections: number;
  /** Hosts already reported, per task. */
  readonly #reported = new Map<string, Set<string>>();
  /** Open client connections, per task, closed when the grant is revoked. */
  readonly #open = new Map<string, Set<Duplex>>();

  /**
   * @throws RangeError for a non-positive `connectTimeoutMs` or `maxConnectionsPerTask`, a negative
   *   `maxReportedHosts` or a port outside 1..65535.
   */
  constructor(opts: AgentProxyOptions) {
    this.#grants = opts.grants;
    this.#onBlocked = opts.onBlocked;
    this.#resolve = opts.resolve ?? systemResolve;
    this.#allowPrivate = opts.allowPrivateAddresses ?? false;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#maxReported = opts.maxReportedHosts ?? 100;
    this.#connectPort = opts.connectPort ?? CONNECT_PORT;
    this.#httpPort = opts.httpPort ?? HTTP_PORT;
    this.#maxConnections = opts.maxConnectionsPerTask ?? 64;
    if (!Number.isInteger(this.#maxConnections) || this.#maxConnections < 1) throw new RangeError(`maxConnectionsPerTask must be a positive integer, got ${this.#maxConnections}`);
    if (!(this.#connectTimeoutMs > 0)) throw new RangeError(`connectTimeoutMs must be positive, got ${this.#connectTimeoutMs}`);
    if (!(this.#maxReported >= 0)) throw new RangeError(`maxReportedHosts must be >= 0, got ${this.#maxReported}`);
    for (const port of [this.#connectPort, this.#httpPort]) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`ports must be 1..65535, got ${port}`);
    }
    this.server = http.createServer();
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#connect(req, socket, head));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#forward(req, res));
    this.#grants.onRevoke((taskId) => {
      this.#reported.delete(taskId);
      for (const socket of this.#open.get(taskId) ?? []) socket.destroy();
      this.#open.delete(taskId);
    });
  }

  /**
   * Starts listening.
   * @param port TCP port (0: any free port).
   * @param host address to bind (default all interfaces: ECS runners reach it inside the VPC).
   * @returns the bound port.
   */
  listen(port: number, host?: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops accepting and closes every open connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const sockets of this.#open.values()) for (const socket of sockets) socket.destroy();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  #authorize(req: IncomingMessage): ProxyGrant | undefined {
    const creds = basicCredentials(req.headers['proxy-authorization']);
    return creds ? this.#grants.verify(creds.user, creds.pass) : undefined;
  }

  /**
   * Counts `socket` among the task's open connections (closed when its grant is revoked).
   * @returns false when the task already has `maxConnectionsPerTask` other connections open.
   */
  #track(taskId: string, socket: Duplex): boolean {
    let set = this.#open.get(taskId);
    if (!set) this.#open.set(taskId, (set = new Set()));
    if (set.has(socket)) return true;
    if (set.size >= this.#maxConnections) return false;
    set.add(socket);
    socket.once('close', () => set.delete(socket));
    return true;
  }

  /** Reports a refused host once per task. */
  #report(taskId: string, host: string, reason: BlockReason): void {
    let seen = this.#reported.get(taskId);
    if (!seen) this.#reported.set(taskId, (seen = new Set()));
    if (seen.has(host) || seen.size >= this.#maxReported) return;
    seen.add(host);
    try {
      this.#onBlocked?.(taskId, host, reason);
    } catch {
      // A failing observer must not break the proxy.
    }
  }

  /**
   * The policy for one request: the address to connect to, or the refusal (reported when it is a
   * block). `allowedPort` is the only port allowed.
   */
  async #decide(grant: ProxyGrant, host: string, port: number, allowedPort: number): Promise<{ address: string } | Refusal> {
    const label = port === allowedPort ? host : `${host}:${port}`;
    if (!grant.allowlist.allows(host)) {
      this.#report(grant.taskId, label, 'not_allowed');
      return { status: 403, message: `${REALM}: ${label} is not in this repository's agent_network.allow (.github/codex.yml)` };
    }
    if (port !== allowedPort) {
      this.#report(grant.taskId, label, 'port');
      return { status: 403, message: `${REALM}: only port ${allowedPort} is allowed here, not ${port}` };
    }
    let addresses: string[];
    try {
      addresses = await this.#resolve(host);
    } catch (error) {
      return { status: 502, message: `${REALM}: cannot resolve ${host}: ${(error as Error).message}` };
    }
    const usable = this.#allowPrivate ? addresses.filter((a) => net.isIP(a) !== 0) : addresses.filter(isPublicAddress);
    if (usable.length === 0) {
      if (addresses.length === 0) return { status: 502, message: `${REALM}: ${host} has no address` };
      this.#report(grant.taskId, label, 'private_address');
      return { status: 403, message: `${REALM}: ${host} resolves only to private or reserved addresses` };
    }
    return { address: usable[0]! };
  }

  /** Opens a TCP connection to `address:port`; rejects with a refusal (502, 504 on timeout). */
  #dial(address: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const upstream = net.connect({ host: address, port });
      const timer = setTimeout(() => {
        upstream.destroy();
        reject({ status: 504, message: `${REALM}: connecting to ${address}:${port} timed out` } satisfies Refusal);
      }, this.#connectTimeoutMs);
      upstream.once('connect', () => {
        clearTimeout(timer);
        upstream.removeAllListeners('error');
        resolve(upstream);
      });
      upstream.once('error', (error) => {
        clearTimeout(timer);
        reject({ status: 502, message: `${REALM}: cannot connect to ${address}:${port}: ${error.message}` } satisfies Refusal);
      });
    });
  }

  async #connect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const grant = this.#authorize(req);
    if (!grant) return refuseSocket(socket, AUTH_REQUIRED);
    const target = parseAuthority(req.url ?? '');
    if (!target) return refuseSocket(socket, { status: 400, message: `${REALM}: CONNECT needs host:port` });
    if (!this.#track(grant.taskId, socket)) return refuseSocket(socket, TOO_MANY);
    const decision = await this.#decide(grant, target.host, target.port, this.#connectPort);
    if (!('address' in decision)) return refuseSocket(socket, decision);
    let upstream: Socket;
    try {
      upstream = await this.#dial(decision.address, target.port);
    } catch (refusal) {
      return refuseSocket(socket, refusal as Refusal);
    }
    if (socket.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.on('error', () => socket.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    socket.pipe(upstream);
    upstream.pipe(socket);
  }

  async #forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const grant = this.#authorize(req);
    if (!grant) return refuseResponse(res, AUTH_REQUIRED);
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return refuseResponse(res, { status: 400, message: `${REALM}: only CONNECT and absolute http:// URLs are proxied` });
    }
    if (url.protocol !== 'http:' || url.username !== '' || url.password !== '') {
      return refuseResponse(res, { status: 400, message: `${REALM}: only CONNECT and absolute http:// URLs without credentials are proxied` });
    }
    if (!this.#track(grant.taskId, req.socket)) return refuseResponse(res, TOO_MANY);
    const host = normalizeHost(url.hostname);
    const decision = await this.#decide(grant, host, url.port === '' ? 80 : Number(url.port), this.#httpPort);
    if (!('address' in decision)) return refuseResponse(res, decision);
    const headers: IncomingHttpHeaders = { host: url.host };
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_HEADERS.has(name)) headers[name] = value;
    const upstream = http.request({
      host: decision.address,
      port: this.#httpPort,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      timeout: this.#connectTimeoutMs,
    });
    upstream.on('timeout', () => upstream.destroy(new Error('timed out')));
    upstream.on('error', (error) => {
      if (!res.headersSent) refuseResponse(res, { status: 502, message: `${REALM}: ${url.host}: ${error.message}` });
      else res.destroy();
    });
    upstream.on('response', (answer) => {
      upstream.setTimeout(0);
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_HEADERS.has(name) && name !== 'transfer-encoding') out[name] = value;
      }
      res.writeHead(answer.statusCode ?? 502, out);
      answer.pipe(res);
    });
    req.pipe(upstream);
  }
}
