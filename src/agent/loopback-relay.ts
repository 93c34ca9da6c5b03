/**
 * The in-sandbox half of the agent-phase network (bubblewrap mode): a bubblewrap sandbox has its own
 * network namespace with only loopback, so each agent command is started under a tiny relay, run by
 * the runner's own Node.js inside the same sandbox, that listens on `127.0.0.1:`{@link SANDBOX_PROXY_PORT}
 * and copies every connection to the unix socket bound at {@link SANDBOX_PROXY_SOCKET}, behind which
 * the runner forwards to the app's agent proxy (proxy-bridge.ts). The relay starts the command once it
 * listens, passes its stdin/stdout/stderr through, and exits with the command's exit code (128 + N for
 * a command killed by signal N, as a shell reports it; 127/126 when it cannot be started). The relay
 * knows no credentials: the command's `HTTPS_PROXY` carries them to the proxy.
 */

/** Path of the bound relay socket inside the sandbox. */
export const SANDBOX_PROXY_SOCKET = '/run/codex-agent-proxy.sock';

/**
 * Loopback port the relay listens on inside each command's own network namespace (Squid's
 * customary proxy port); the command itself cannot listen on it.
 */
export const SANDBOX_PROXY_PORT = 3128;

/** The relay program (CommonJS for `node -e`); argv: `<socket> <port> -- <command…>`. */
const RELAY_SOURCE = `'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');
const { constants } = require('node:os');
const [socketPath, port, separator, file, ...args] = process.argv.slice(1);
if (separator !== '--' || !file) {
  process.stderr.write('agent proxy relay: usage: <socket> <port> -- <command...>\\n');
  process.exit(126);
}
// Half-open connections stay usable (a client may end its request and still read the answer).
const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.pipe(upstream);
  upstream.pipe(client);
});
server.on('error', (error) => {
  process.stderr.write('agent proxy relay: ' + error.message + '\\n');
  process.exit(126);
});
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(file, args, { stdio: 'inherit' });
  child.on('error', (error) => {
    process.stderr.write('cannot run ' + file + ': ' + error.message + '\\n');
    process.exit(error.code === 'ENOENT' ? 127 : 126);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
});
`;

/**
 * The argv that runs `command` under the relay inside the sandbox.
 * @param nodePath absolute path of a Node.js binary visible in the sandbox (the runner's own,
 *   `process.execPath`, which the sandbox binds read-only).
 * @param command the command's argv (non-empty).
 */
export function relayCommand(nodePath: string, command: readonly string[]): string[] {
  return [nodePath, '-e', RELAY_SOURCE, SANDBOX_PROXY_SOCKET, String(SANDBOX_PROXY_PORT), '--', ...command];
}
