/**
 * The real app (`codex-cloud serve`) with CODEX_AGENT_PROXY_PORT: the agent proxy listens on its
 * own port and refuses requests without a task's credentials; without the variable there is none.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import net from 'node:net';
import { AppHarness, freePort } from '../support/app-harness.ts';

function connect(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
    socket.write('CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\nProxy-Authorization: Basic dGFza194OmNjcF94\r\n\r\n');
  });
}

describe('the app with CODEX_AGENT_PROXY_PORT', () => {
  let app: AppHarness;
  let proxyPort: number;

  beforeAll(async () => {
    proxyPort = await freePort();
    app = await AppHarness.start({ env: { CODEX_AGENT_PROXY_PORT: String(proxyPort) } });
  });

  afterAll(async () => {
    await app?.close();
  });

  test('serves the agent proxy on its own port, which refuses unknown credentials with 407', async () => {
    const answer = await connect(proxyPort);
    expect(answer).toMatch(/^HTTP\/1\.1 407 /);
    expect(answer).toContain('Proxy-Authenticate: Basic realm="codex-cloud agent proxy"');
    expect(app.logs).toContain('agent proxy listening');
    // The app's own port is not a proxy.
    await expect(connect(app.port)).resolves.not.toMatch(/^HTTP\/1\.1 200/);
  });
});
