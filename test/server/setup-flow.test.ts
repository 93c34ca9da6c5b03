/**
 * The first start's setup flow: the manifest carries the smee channel as its webhook URL (not
 * app.yml's placeholder), and `.env` ends with a newline so that a line appended to it stays a line
 * of its own. End to end: `codex-cloud serve` without credentials, in a fresh directory, against a
 * local stand-in of GitHub's manifest conversion endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { buildManifest, updateEnvFile } from '../../src/server/setup-flow.ts';
import { freePort, waitFor } from '../support/app-harness.ts';
import { CLI } from '../support/cli.ts';

const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\ndef==\n-----END RSA PRIVATE KEY-----\n';
const APP_YML = { name: 'Codex Cloud', hook_attributes: { url: 'https://example.com/api/github/webhooks' }, default_events: ['issues'] };

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'setup-flow-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('buildManifest', () => {
  test("the webhook URL is the smee channel when there is one, else this server's webhook path; never app.yml's placeholder", () => {
    const proxied = buildManifest(APP_YML, { baseUrl: 'http://localhost:3000', webhookProxyUrl: 'https://smee.io/abc123' });
    expect(proxied).toMatchObject({ name: 'Codex Cloud', default_events: ['issues'], hook_attributes: { url: 'https://smee.io/abc123' }, redirect_url: 'http://localhost:3000/probot/setup' });
    const direct = buildManifest(APP_YML, { baseUrl: 'https://codex.example.org' });
    expect(direct.hook_attributes).toEqual({ url: 'https://codex.example.org/api/github/webhooks' });
  });
});

describe('updateEnvFile', () => {
  test('replaces and appends keys, keeps other lines, ends with a newline (an appended line stays its own), mode 0600', () => {
    const file = path.join(dir, '.env');
    writeFileSync(file, '# mine\nWEBHOOK_PROXY_URL=https://smee.io/old\nLOG_LEVEL=debug');
    updateEnvFile(file, { WEBHOOK_PROXY_URL: 'https://smee.io/new', APP_ID: '42', PRIVATE_KEY: PEM });
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').slice(0, 3)).toEqual(['# mine', 'WEBHOOK_PROXY_URL=https://smee.io/new', 'LOG_LEVEL=debug']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    appendFileSync(file, 'OPENAI_API_KEY=sk-test\n');
    expect(parseEnv(readFileSync(file, 'utf8'))).toEqual({
      WEBHOOK_PROXY_URL: 'https://smee.io/new',
      LOG_LEVEL: 'debug',
      APP_ID: '42',
      PRIVATE_KEY: PEM,
      OPENAI_API_KEY: 'sk-test',
    });
  });
});

describe('codex-cloud serve without credentials', () => {
  let app: ChildProcess | undefined;
  let github: Server | undefined;
  afterEach(async () => {
    app?.kill('SIGKILL');
    await new Promise((resolve) => (github ? github.close(resolve) : resolve(undefined)));
  });

  test('serves a manifest whose webhook URL is WEBHOOK_PROXY_URL, and writes .env ending with a newline', async () => {
    // GitHub's manifest conversion (https://docs.github.com/en/rest/apps/apps#create-a-github-app-from-a-manifest).
    const conversions: string[] = [];
    github = createServer((req, res) => {
      const m = /^\/api\/v3\/app-manifests\/([^/]+)\/conversions$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !m) return void res.writeHead(404).end('{}');
      conversions.push(m[1]!);
      res.writeHead(201, { 'content-type': 'application/json' }).end(
        JSON.stringify({ id: 4242, slug: 'codex-cloud-x', html_url: 'https://github.test/apps/codex-cloud-x', pem: PEM, webhook_secret: 'whsec', client_id: 'Iv1.x', client_secret: 'cs' }),
      );
    });
    await new Promise<void>((resolve) => github!.listen(0, '127.0.0.1', resolve));
    const githubPort = (github.address() as { port: number }).port;
    const port = await freePort();
    let output = '';
    app = spawn(process.execPath, [CLI, 'serve'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        PORT: String(port),
        HOST: '127.0.0.1',
        WEBHOOK_PROXY_URL: 'https://smee.io/laptop-channel',
        GHE_HOST: `127.0.0.1:${githubPort}`,
        GHE_PROTOCOL: 'http',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.stdout!.on('data', (d) => (output += d));
    app.stderr!.on('data', (d) => (output += d));
    const html = await waitFor('the setup page', async () => {
      if (app!.exitCode !== null) throw new Error(`serve exited: ${output}`);
      const res = await fetch(`http://127.0.0.1:${port}/probot`);
      return res.ok ? res.text() : undefined;
    });
    const value = /name="manifest" value="([^"]*)"/.exec(html)?.[1] ?? '';
    const manifest = JSON.parse(value.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)))) as Record<string, { url?: string } | string>;
    expect(manifest.hook_attributes).toMatchObject({ url: 'https://smee.io/laptop-channel' });
    expect(manifest.redirect_url).toBe(`http://127.0.0.1:${port}/probot/setup`);
    expect(html).toContain(`action="http://127.0.0.1:${githubPort}/settings/apps/new"`);

    const back = await fetch(`http://127.0.0.1:${port}/probot/setup?code=c0de`, { redirect: 'manual' });
    expect([back.status, back.headers.get('location')]).toEqual([302, 'https://github.test/apps/codex-cloud-x/installations/new']);
    expect(conversions).toEqual(['c0de']);
    const env = readFileSync(path.join(dir, '.env'), 'utf8');
    expect(env.endsWith('\n')).toBe(true);
    // What the README says to do next: append the OpenAI key.
    appendFileSync(path.join(dir, '.env'), 'OPENAI_API_KEY=sk-test\n');
    expect(parseEnv(readFileSync(path.join(dir, '.env'), 'utf8'))).toMatchObject({ APP_ID: '4242', PRIVATE_KEY: PEM, WEBHOOK_SECRET: 'whsec', OPENAI_API_KEY: 'sk-test' });
  });
});
