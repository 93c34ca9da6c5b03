/**
 * Runs the real app (`codex-cloud serve`, a child process) against the GitHub stand-in and the
 * scripted model server, for end-to-end tests and benchmarks. Nothing of the app is mocked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitHubStandIn } from './github-stand-in.ts';
import { ScriptedModel, type ScriptedModelOptions } from './scripted-model.ts';
import { DatabaseSync } from 'node:sqlite';
import { deliver, issueCommentCreated, pullRequestReviewCommentCreated, type Delivery } from './webhooks.ts';

const CLI = path.resolve(import.meta.dirname, '../../src/cli.ts');

/** The webhook secret the harness's app is configured with. */
export const WEBHOOK_SECRET = 'test-webhook-secret';
/** The upstream OpenAI key only the app holds. */
export const UPSTREAM_KEY = 'sk-upstream-secret-0123456789';

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 50 ms until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(50);
  }
}

/** Options of {@link AppHarness.start}. */
export interface AppHarnessOptions {
  model?: ScriptedModelOptions;
  /** Extra environment for the app (e.g. CODEX_CONCURRENCY). */
  env?: Record<string, string>;
}

/** The app, its stand-ins and its data directory. */
export class AppHarness {
  readonly github: GitHubStandIn;
  readonly model: ScriptedModel;
  readonly dataDir: string;
  readonly port: number;
  readonly env: Record<string, string>;
  /** Everything the app printed (JSON log lines). */
  logs = '';
  private app: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;

  private constructor(github: GitHubStandIn, model: ScriptedModel, dataDir: string, port: number, env: Record<string, string>) {
    this.github = github;
    this.model = model;
    this.dataDir = dataDir;
    this.port = port;
    this.env = env;
  }

  /** Starts the stand-ins and the app, and waits for /healthz. */
  static async start(opts: AppHarnessOptions = {}): Promise<AppHarness> {
    const github = await GitHubStandIn.start();
    const model = await ScriptedModel.start({ requireAuth: UPSTREAM_KEY, ...opts.model });
    const dataDir = await mkdtemp(path.join(tmpdir(), 'codex-app-'));
    const port = await freePort();
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      NODE_ENV: 'production',
      APP_ID: '1',
      PRIVATE_KEY: github.privateKeyPem,
      WEBHOOK_SECRET,
      GHE_HOST: github.host,
      GHE_PROTOCOL: 'http',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      OPENAI_API_KEY: UPSTREAM_KEY,
      OPENAI_BASE_URL: model.baseUrl,
      CODEX_PUBLIC_URL: `http://127.0.0.1:${port}`,
      CODEX_DATA_DIR: dataDir,
      CODEX_GITHUB_THROTTLE: 'false',
      ...opts.env,
    };
    const harness = new AppHarness(github, model, dataDir, port, env);
    await harness.startApp();
    return harness;
  }

  /** `http://127.0.0.1:PORT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts) the app process on the same port and data directory. */
  async startApp(): Promise<void> {
    const child = spawn(process.execPath, [CLI, 'serve'], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.app = child;
    child.stdout!.on('data', (d) => (this.logs += d));
    child.stderr!.on('data', (d) => (this.logs += d));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      'the app to answer /healthz',
      async () => {
        if (child.exitCode !== null) throw new Error(`the app exited with ${child.exitCode}:\n${this.logs.slice(-3000)}`);
        const res = await fetch(`${this.url}/healthz`);
        return res.ok;
      },
      20_000,
    );
  }

  /** Kills the app process (SIGKILL: a crash) or stops it (SIGTERM). */
  async stopApp(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.app || this.app.exitCode !== null) return;
    this.app.kill(signal);
    await this.exited;
  }

  /** Delivers a webhook to the app (signed unless `signature` is given). @returns the HTTP status. */
  deliver(delivery: Delivery, signature?: string): Promise<number> {
    return deliver(`${this.url}/api/github/webhooks`, delivery, { secret: WEBHOOK_SECRET, ...(signature ? { signature } : {}) });
  }

  /**
   * Posts `body` as a comment by `user` on an existing issue of the stand-in (as on GitHub, the
   * comment exists before its webhook) and returns the `issue_comment.created` delivery for it.
   */
  mention(fullName: string, issueNumber: number, body: string, user: string | { login: string; type: 'Bot' | 'User' } = 'maintainer'): Delivery {
    const login = typeof user === 'string' ? user : user.login;
    const comment = this.github.addComment(fullName, issueNumber, { body, user: login });
    return issueCommentCreated({
      repo: this.github.repository(fullName),
      issue: this.github.issue(fullName, issueNumber),
      issueNumber,
      commentId: comment.id,
      body,
      user,
      installationId: 1,
    });
  }

  /**
   * Adds an inline review comment `body` by `user` on `line` of `path` (head side) of pull request
   * `pullNumber` (as on GitHub, the comment exists before its webhook) and returns the
   * `pull_request_review_comment.created` delivery for it.
   */
  async mentionInReviewComment(
    fullName: string,
    pullNumber: number,
    c: { path: string; line: number; startLine?: number; body: string; user?: string },
  ): Promise<{ delivery: Delivery; commentId: number }> {
    const comment = await this.github.addReviewComment(fullName, pullNumber, { user: c.user ?? 'maintainer', body: c.body, path: c.path, line: c.line, ...(c.startLine ? { startLine: c.startLine } : {}) });
    const pull = (await this.github.pulls(fullName)).find((p) => p.number === pullNumber)!;
    const delivery = pullRequestReviewCommentCreated({ repo: this.github.repository(fullName), pull, comment, installationId: 1 });
    return { delivery, commentId: comment.id as number };
  }

  /** Opens a new issue (by `maintainer`) and mentions the app in a comment on it. */
  mentionOnNewIssue(fullName: string, body: string): { number: number; delivery: Delivery } {
    const issue = this.github.addIssue(fullName, { title: 'add() is broken', body: 'add(2, 3) returns -1', user: 'maintainer' });
    const number = issue.number as number;
    return { number, delivery: this.mention(fullName, number, body) };
  }

  /** The app's own comments on an issue, oldest first. */
  botComments(fullName: string, issueNumber: number) {
    return this.github.comments(fullName, issueNumber).filter((c) => (c.user as { login: string }).login === this.github.botLogin);
  }

  /** The newest task of an issue, read from the app's SQLite store (read-only). */
  task(issueNumber: number): { id: string; state: string; backend: string | null; external_id: string | null; phase: string | null } | undefined {
    const db = new DatabaseSync(path.join(this.dataDir, 'codex-cloud.db'), { readOnly: true });
    try {
      return db
        .prepare('SELECT id, state, backend, external_id, phase FROM tasks WHERE issue_number = ? ORDER BY created_at DESC, rowid DESC LIMIT 1')
        .get(issueNumber) as never;
    } finally {
      db.close();
    }
  }

  /** JSON log lines of the app. */
  logLines(): Array<Record<string, unknown>> {
    return this.logs
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }

  /** Stops everything and removes the data directory. */
  async close(): Promise<void> {
    await this.stopApp();
    await this.model.close();
    await this.github.close();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
