/**
 * The first start's setup flow: registers the GitHub App from its manifest
 * (https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest) and
 * writes its credentials to `.env`. It does what Probot's setup flow does (same routes, same `.env`
 * names), with two differences Probot's cannot be configured for:
 * - the manifest's `hook_attributes.url` is the smee.io channel when `WEBHOOK_PROXY_URL` is set (or
 *   created here), else this server's webhook URL; Probot let `app.yml`'s placeholder win, so GitHub
 *   sent the webhooks of a laptop's app to example.com;
 * - `.env` is edited line by line and always ends with a newline, so that a line appended later
 *   (`echo OPENAI_API_KEY=… >> .env`) is a line of its own; it is written with mode 0600.
 *
 * Routes (GET): `/` → `/probot`; `/probot` the page with the "Register on GitHub" form;
 * `/probot/setup?code=` the manifest conversion (`POST /app-manifests/{code}/conversions`), then a
 * redirect to the new app's installation page.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import { ProbotOctokit } from 'probot';
import { SmeeClient } from 'smee-client';
import { parse as parseYaml } from 'yaml';
import { WEBHOOK_PATH } from './webhook-edge.ts';

/** The manifest shipped with the package, used when the working directory has no `app.yml`. */
const PACKAGED_MANIFEST = path.resolve(import.meta.dirname, '../../app.yml');

/** Options of {@link buildManifest}. */
export interface ManifestOptions {
  /** This server as the browser reached it, e.g. `http://localhost:3000`. */
  baseUrl: string;
  /** The smee.io channel webhooks go through (`WEBHOOK_PROXY_URL`), if any. */
  webhookProxyUrl?: string;
}

/**
 * The manifest sent to GitHub: `app.yml`'s fields, with `hook_attributes.url` the smee channel when
 * there is one, else `<baseUrl>/api/github/webhooks`, and `redirect_url` this server's
 * `/probot/setup`. `app.yml`'s own webhook URL is a placeholder and never used.
 */
export function buildManifest(appYml: Record<string, unknown>, opts: ManifestOptions): Record<string, unknown> {
  const hook = typeof appYml.hook_attributes === 'object' && appYml.hook_attributes !== null ? (appYml.hook_attributes as Record<string, unknown>) : {};
  return {
    ...appYml,
    url: appYml.url ?? opts.baseUrl,
    hook_attributes: { ...hook, url: opts.webhookProxyUrl || `${opts.baseUrl}${WEBHOOK_PATH}` },
    redirect_url: `${opts.baseUrl}/probot/setup`,
  };
}

/** A value as a `.env` line holds it: multi-line values double-quoted with `\n` escapes. */
function envValue(value: string): string {
  return value.includes('\n') ? `"${value.replace(/\n/g, '\\n')}"` : value;
}

/**
 * Sets `values` in the `.env` file `file`: a line `KEY=…` already there is replaced, others are
 * appended; every other line is kept as it is. The file ends with a newline and has mode 0600.
 */
export function updateEnvFile(file: string, values: Record<string, string>): void {
  let lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : [];
  if (lines.at(-1) === '') lines = lines.slice(0, -1);
  for (const [key, value] of Object.entries(values)) {
    const line = `${key}=${envValue(value)}`;
    const at = lines.findIndex((l) => l.startsWith(`${key}=`));
    if (at >= 0) lines[at] = line;
    else lines.push(line);
  }
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Options of {@link startSetupFlow}. */
export interface SetupFlowOptions {
  /** The environment (`GHE_HOST`, `GHE_PROTOCOL`, `GH_ORG`, `WEBHOOK_PROXY_URL`, `NO_SMEE_SETUP`, `HOST`, `PORT`). */
  env: NodeJS.ProcessEnv;
  /** Where `.env` and `app.yml` are (the working directory). */
  dir: string;
  log: Logger;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}button{font:inherit;padding:.5rem 1rem}</style>
</head><body>${body}</body></html>`;
}

/**
 * Serves the setup flow on `HOST`:`PORT` (default `localhost`:3000) until the process ends. Creates a
 * smee.io channel first (saved as `WEBHOOK_PROXY_URL`) unless one is set or `NO_SMEE_SETUP=true`.
 * @returns the listening server.
 */
export async function startSetupFlow(opts: SetupFlowOptions): Promise<Server> {
  const { env, dir, log } = opts;
  const envFile = path.join(dir, '.env');
  let webhookProxyUrl = env.WEBHOOK_PROXY_URL || undefined;
  if (!webhookProxyUrl && env.NO_SMEE_SETUP !== 'true') {
    try {
      webhookProxyUrl = await SmeeClient.createChannel();
      updateEnvFile(envFile, { WEBHOOK_PROXY_URL: webhookProxyUrl });
    } catch (error) {
      log.warn({ err: String(error) }, 'could not create a smee.io channel; webhooks will be sent to this server');
    }
  }
  const protocol = env.GHE_PROTOCOL || 'https';
  const githubHost = env.GHE_HOST || 'github.com';
  const createAppUrl = `${protocol}://${githubHost}${env.GH_ORG ? `/organizations/${encodeURIComponent(env.GH_ORG)}` : ''}/settings/apps/new`;
  const octokit = new ProbotOctokit({ ...(env.GHE_HOST ? { baseUrl: `${protocol}://${env.GHE_HOST}/api/v3` } : {}) });

  const readAppYml = (): Record<string, unknown> => {
    const local = path.join(dir, 'app.yml');
    return (parseYaml(readFileSync(existsSync(local) ? local : PACKAGED_MANIFEST, 'utf8')) ?? {}) as Record<string, unknown>;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://setup.invalid');
    const send = (status: number, html: string) => res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    if (req.method !== 'GET') return void send(405, page('Not allowed', '<p>Use GET.</p>'));
    if (url.pathname === '/') return void res.writeHead(302, { location: '/probot' }).end();
    if (url.pathname === '/probot') {
      const forwarded = String(req.headers['x-forwarded-proto'] ?? '').split(',')[0];
      const baseUrl = `${forwarded || 'http'}://${req.headers.host ?? 'localhost'}`;
      const manifest = buildManifest(readAppYml(), { baseUrl, ...(webhookProxyUrl ? { webhookProxyUrl } : {}) });
      const name = typeof manifest.name === 'string' ? manifest.name : 'the app';
      return void send(
        200,
        page(
          `Set up ${name}`,
          `<h1>Set up ${escapeHtml(name)}</h1><p>Register the GitHub App; GitHub then sends you back here and its credentials are saved to <code>.env</code>.</p>` +
            `<p>Webhooks will be sent to <code>${escapeHtml(String((manifest.hook_attributes as { url: string }).url))}</code>.</p>` +
            `<form action="${escapeHtml(createAppUrl)}" method="post"><input type="hidden" name="manifest" value="${escapeHtml(JSON.stringify(manifest))}">` +
            `<button type="submit">Register the GitHub App</button></form>`,
        ),
      );
    }
    if (url.pathname === '/probot/setup') {
      const code = url.searchParams.get('code');
      if (!code) return void send(400, page('Setup', '<p>The <code>code</code> parameter is missing.</p>'));
      const { data } = await octokit.request('POST /app-manifests/{code}/conversions', { code });
      updateEnvFile(envFile, {
        APP_ID: String(data.id),
        PRIVATE_KEY: data.pem,
        WEBHOOK_SECRET: data.webhook_secret ?? '',
        GITHUB_CLIENT_ID: data.client_id,
        GITHUB_CLIENT_SECRET: data.client_secret,
      });
      log.info({ appId: data.id }, `the GitHub App is registered and its credentials are in ${envFile}: add OPENAI_API_KEY there and restart the server`);
      return void res.writeHead(302, { location: `${data.html_url}/installations/new` }).end();
    }
    send(404, page('Not found', '<p>Not found.</p>'));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log.error({ err: String((error as Error)?.message ?? error).slice(0, 300) }, 'setup flow request failed');
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' }).end('GitHub did not complete the registration; start again at /probot');
    });
  });
  const port = Number(env.PORT || 3000);
  const host = env.HOST || 'localhost';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  log.info(`setup: open http://${host}:${port}/probot to register the GitHub App`);
  return server;
}
