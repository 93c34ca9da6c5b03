/**
 * `codex-cloud serve`: starts the GitHub App on Probot's server. On a first start without
 * credentials (and NODE_ENV not production) the setup flow (setup-flow.ts, as Probot's) registers the
 * app from a manifest (`app.yml`) and writes APP_ID, PRIVATE_KEY and WEBHOOK_SECRET to `.env`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ProbotOctokit, run, type ApplicationFunction } from 'probot';
import { SmeeClient } from 'smee-client';
import { codexApp, type CodexAppHandle } from '../app.ts';
import { ConfigError, isSetupMode, loadEnvConfig } from '../config/env.ts';
import { AcknowledgementsFirst } from './acknowledgements-first.ts';
import { SqliteWebhookInbox } from './inbox.ts';
import { WebhookInboxWorker } from './inbox-worker.ts';
import { createLogger } from './logger.ts';
import { startSetupFlow } from './setup-flow.ts';
import { createWebhookEdge, WEBHOOK_PATH } from './webhook-edge.ts';

/**
 * The path Probot's own webhook middleware is given, so that it never answers: it compares it with
 * the request's parsed URL path, which never holds a raw space (and Node's HTTP parser refuses one in
 * a request line). Probot's Server always mounts that middleware first; the app's webhook edge
 * ({@link createWebhookEdge}, mounted with `addHandler`) serves {@link WEBHOOK_PATH} instead.
 */
const PROBOT_WEBHOOK_PATH_DISABLED = '/ probot webhook middleware disabled';

/** Runs the server until SIGTERM/SIGINT. @returns the exit code when it cannot start. */
export async function serveCommand(): Promise<number> {
  // The setup flow writes the app's credentials to .env; variables already set win.
  if (existsSync('.env')) process.loadEnvFile('.env');
  if (isSetupMode(process.env)) {
    // First start: the setup flow registers the app from its manifest and writes the credentials to .env.
    await startSetupFlow({ env: process.env, dir: process.cwd(), log: createLogger('info') });
    return 0;
  }
  let config;
  try {
    config = loadEnvConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`codex-cloud: invalid configuration:\n${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(config.logLevel);
  const handle: CodexAppHandle = {};
  const Octokit = config.githubThrottle
    ? ProbotOctokit
    : ProbotOctokit.defaults((options: Record<string, unknown>) => ({ ...options, throttle: { enabled: false } }));
  // The deliveries waiting for their 👀: the triggers let every pending 👀 go first (acknowledgements-first.ts).
  const acknowledgements = new AcknowledgementsFirst();
  const appFn = codexApp({ config, log, handle, acknowledgements });
  let inbox: SqliteWebhookInbox | undefined;
  let worker: WebhookInboxWorker | undefined;
  const withEdge: ApplicationFunction = async (app, options) => {
    // The app opens (and migrates) the task database first; the webhook inbox is a table in it.
    await appFn(app, options);
    inbox = SqliteWebhookInbox.open(path.join(config.dataDir, 'codex-cloud.db'));
    worker = new WebhookInboxWorker({ inbox, dispatcher: app.webhooks, log, acknowledgements });
    options.addHandler(createWebhookEdge({ receiver: app.webhooks, queue: worker, log }));
  };
  const server = await run(withEdge, {
    // WEBHOOK_PROXY_URL (smee.io, for development) is forwarded below to the edge's path.
    env: { ...process.env, LOG_FORMAT: 'json', WEBHOOK_PATH: PROBOT_WEBHOOK_PATH_DISABLED, WEBHOOK_PROXY_URL: '' },
    log,
    Octokit: Octokit as typeof ProbotOctokit,
  });
  let smee: SmeeClient | undefined;
  if (process.env.WEBHOOK_PROXY_URL) {
    smee = new SmeeClient({ source: process.env.WEBHOOK_PROXY_URL, target: `http://${server.host}:${server.port}${WEBHOOK_PATH}`, logger: log });
    await smee.start();
  }
  await handle.service?.reconcile();
  // Deliveries stored before a crash (or while the app started) are processed first.
  worker?.start();
  const stop = async (signal: string) => {
    log.info({ signal }, 'stopping');
    await smee?.stop().catch(() => undefined);
    await server.stop().catch(() => undefined);
    await worker?.stop();
    inbox?.close();
    await handle.backend?.close?.();
    handle.store?.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  return 0;
}
