/**
 * Git over smart HTTP for tests: the real `git http-backend` CGI behind a node:http server on 127.0.0.1,
 * with GitHub-style token auth (HTTP Basic, username `x-access-token`, password = token; see
 * https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation#using-an-installation-access-token-to-authenticate-as-an-installation).
 *
 * Protocol references: https://git-scm.com/docs/http-protocol, https://git-scm.com/docs/git-http-backend,
 * https://git-scm.com/docs/protocol-v2. No shell is ever used: every git invocation is an argv array.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Path of the git smart HTTP CGI shipped with git (Debian layout). */
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

/** Username GitHub expects with an installation token in HTTP Basic auth. */
export const TOKEN_USERNAME = 'x-access-token';

/**
 * Token policy: either a map from token to its scope (`repos` are `owner/name` full names, compared
 * case-insensitively, or `'*'` for all; `write` allows push), or a predicate deciding whether `token` may
 * read (`write=false`) or push (`write=true`) the repository `repo` (`owner/name`).
 */
export type GitTokenPolicy =
  | Map<string, { repos: string[] | '*'; write: boolean }>
  | ((token: string, repo: string, write: boolean) => boolean);

/** Options of {@link GitHttpServer.start} / {@link GitHttpServer.mount}. */
export interface GitHttpOptions {
  /** Directory holding `<owner>/<repo>.git` bare repositories. */
  root: string;
  /** Who may read/push. Without it, every token may read and push (a request still needs a token unless anonymous read is allowed). */
  tokens?: GitTokenPolicy;
  /** Allow reads (clone/fetch) without credentials. Pushes always need a token. Default false. */
  allowAnonymousRead?: boolean;
  /** URL path prefix under which repositories are served, e.g. `/git`. Default `''`. */
  mountPath?: string;
}

/** One git HTTP request as seen by the server (for assertions such as "the clone used token X"). */
export interface GitRequestRecord {
  method: string;
  /** Path and query after the host, including the mount path, e.g. `/o/r.git/info/refs?service=git-upload-pack`. */
  path: string;
  /** Token presented via HTTP Basic, if any (recorded only for the assertions of tests). */
  token?: string;
  /** HTTP status returned. */
  status: number;
}

/** Error thrown by {@link runGit} when git exits non-zero; `stderr` carries git's message. */
export class GitCommandError extends Error {
  readonly args: string[];
  readonly code: number | null;
  readonly stderr: string;
  constructor(args: string[], code: number | null, stderr: string) {
    super(`git ${args.join(' ')} exited with ${code}: ${stderr.trim()}`);
    this.name = 'GitCommandError';
    this.args = args;
    this.code = code;
    this.stderr = stderr;
  }
}

/** Environment giving git a fixed identity and no system/global config influence. */
function gitEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Test Author',
    GIT_AUTHOR_EMAIL: 'author@example.com',
    GIT_COMMITTER_NAME: 'Test Committer',
    GIT_COMMITTER_EMAIL: 'committer@example.com',
    ...extra,
  };
}

/**
 * Runs `git <args>` (no shell) and resolves with its stdout as a Buffer.
 * @param args argv after `git`, e.g. `['--git-dir', dir, 'rev-parse', 'HEAD']`.
 * @param opts `cwd`, `input` written to stdin, extra `env` (merged over a clean, fixed-identity env).
 * @throws GitCommandError when git exits non-zero.
 */
export function runGit(
  args: string[],
  opts: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: opts.cwd,
      env: gitEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitCommandError(args, code, Buffer.concat(err).toString('utf8')));
    });
    child.stdin.on('error', () => {
      /* git may exit before reading stdin; the exit code tells the story */
    });
    child.stdin.end(opts.input ?? '');
  });
}

const NAME_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Splits and validates an `owner/name` full name (GitHub's allowed characters; `.`/`..` refused).
 * @throws Error on an invalid name.
 */
export function parseFullName(fullName: string): { owner: string; repo: string } {
  const parts = fullName.split('/');
  const [owner, repo] = parts;
  const ok = (s: string | undefined): s is string => !!s && NAME_RE.test(s) && s !== '.' && s !== '..';
  if (parts.length !== 2 || !ok(owner) || !ok(repo)) throw new Error(`invalid repository name: ${fullName}`);
  return { owner, repo };
}

/** Path of the bare repository for `owner/name` under `root`: `<root>/<owner>/<name>.git`. */
export function bareRepoPath(root: string, fullName: string): string {
  const { owner, repo } = parseFullName(fullName);
  return join(root, owner, `${repo}.git`);
}

/** Config set on every served repository (also forced per request through GIT_CONFIG_* variables). */
const REPO_CONFIG: Array<[string, string]> = [
  ['http.receivepack', 'true'],
  ['uploadpack.allowFilter', 'true'],
  ['uploadpack.allowAnySHA1InWant', 'true'],
  ['receive.denyCurrentBranch', 'ignore'],
];

/** A file to put in a repository: text, or content with a git mode (`120000` = symlink whose content is the target). */
export type RepoFile = string | { content: string | Buffer; mode?: '100644' | '100755' | '120000' };

/**
 * Creates the bare repository `<root>/<owner>/<name>.git` holding one commit with `files` on
 * `opts.defaultBranch` (default `main`, also HEAD), configured for partial clone and smart-HTTP push.
 * Built with plumbing (hash-object, update-index on a temporary index, write-tree, commit-tree).
 * @param files map from repo-relative path (`a/b.txt`) to content or `{content, mode}`.
 * @returns the bare repo path and the commit SHA (40 hex).
 * @throws Error if the name is invalid or the repository already exists; GitCommandError on git failure.
 */
export async function createBareRepo(
  root: string,
  fullName: string,
  files: Record<string, RepoFile>,
  opts: { defaultBranch?: string; message?: string } = {},
): Promise<{ path: string; headSha: string }> {
  const path = bareRepoPath(root, fullName);
  if (existsSync(path)) throw new Error(`repository already exists: ${path}`);
  const branch = opts.defaultBranch ?? 'main';
  await mkdir(join(path, '..'), { recursive: true });
  await runGit(['init', '--quiet', '--bare', `--initial-branch=${branch}`, path]);
  for (const [key, value] of REPO_CONFIG) await runGit(['--git-dir', path, 'config', key, value]);

  const tmp = await mkdtemp(join(tmpdir(), 'bare-index-'));
  try {
    const env = { GIT_INDEX_FILE: join(tmp, 'index') };
    const lines: string[] = [];
    for (const [file, spec] of Object.entries(files)) {
      const { content, mode } = typeof spec === 'string' ? { content: spec, mode: undefined } : spec;
      const sha = (await runGit(['--git-dir', path, 'hash-object', '-w', '--stdin'], { input: content }))
        .toString()
        .trim();
      lines.push(`${mode ?? '100644'} ${sha}\t${file}`);
    }
    if (lines.length > 0) {
      await runGit(['--git-dir', path, 'update-index', '--add', '-z', '--index-info'], {
        env,
        input: lines.map((l) => `${l}\0`).join(''),
      });
    }
    const tree = (await runGit(['--git-dir', path, 'write-tree'], { env })).toString().trim();
    const headSha = (
      await runGit(['--git-dir', path, 'commit-tree', tree, '-m', opts.message ?? 'Initial commit'])
    )
      .toString()
      .trim();
    await runGit(['--git-dir', path, 'update-ref', `refs/heads/${branch}`, headSha]);
    return { path, headSha };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Parses `Authorization: Basic base64(user:pass)`; returns the password when the user is `x-access-token`. */
function basicToken(header: string | undefined): string | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  if (decoded.slice(0, colon) !== TOKEN_USERNAME) return undefined;
  return decoded.slice(colon + 1) || undefined;
}

const GIT_PATH_RE = /^\/([^/]+)\/([^/]+)\.git(\/.*)$/;

/**
 * Git smart-HTTP server with token checks. Construct with {@link GitHttpServer.start} (own listening
 * socket) or {@link GitHttpServer.mount} (to be called from another server's request handler).
 *
 * Auth decisions (GitHub answers similarly, https://docs.github.com/en/rest/overview/troubleshooting):
 * - no credentials, and the request is a push or anonymous read is off → 401 + `WWW-Authenticate: Basic realm="GitHub"`;
 * - a token the policy does not accept for reading this repository → 401 (same challenge, so git fails cleanly);
 * - a token that may read but not push, on a push → 403;
 * - an allowed request for a repository that does not exist → 404.
 * Only the smart protocol is served (`info/refs?service=…`, `git-upload-pack`, `git-receive-pack`);
 * other paths inside a `.git` URL get 404 so git never falls back to the dumb protocol.
 */
export class GitHttpServer {
  /** Base URL, e.g. `http://127.0.0.1:PORT` (no trailing slash, without the mount path). */
  readonly url: string;
  /** Every request handled, in order. */
  readonly requests: GitRequestRecord[] = [];
  readonly #opts: GitHttpOptions;
  readonly #mountPath: string;
  #server: Server | undefined;

  private constructor(opts: GitHttpOptions, url: string, server?: Server) {
    this.#opts = opts;
    this.#mountPath = (opts.mountPath ?? '').replace(/\/+$/, '');
    this.url = url.replace(/\/+$/, '');
    this.#server = server;
  }

  /**
   * Starts a server on 127.0.0.1 with an ephemeral port.
   * @returns the running server; requests outside git paths get 404.
   */
  static async start(opts: GitHttpOptions): Promise<GitHttpServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const git = new GitHttpServer(opts, `http://127.0.0.1:${port}`, server);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      git.handle(req, res).then(
        (handled) => {
          if (!handled && !res.headersSent) {
            res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
          }
        },
        (err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`git-http error: ${String(err)}\n`);
        },
      );
    });
    return git;
  }

  /**
   * Creates a handler without its own socket, for mounting inside another node:http server whose base
   * URL is `url` (e.g. `http://127.0.0.1:PORT`). Call {@link handle} from that server.
   */
  static mount(opts: GitHttpOptions & { url: string }): GitHttpServer {
    return new GitHttpServer(opts, opts.url);
  }

  /** Clone URL of `owner/name`: `${url}${mountPath}/${owner}/${name}.git`. */
  cloneUrl(fullName: string): string {
    const { owner, repo } = parseFullName(fullName);
    return `${this.url}${this.#mountPath}/${owner}/${repo}.git`;
  }

  /**
   * Serves `req` if it is a git path under the mount path (`/<owner>/<repo>.git/...`).
   * @returns false (having written nothing) when the path is not a git path; true once the response ended.
   */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let pathname = url.pathname;
    if (this.#mountPath) {
      if (!pathname.startsWith(`${this.#mountPath}/`)) return false;
      pathname = pathname.slice(this.#mountPath.length);
    }
    const m = GIT_PATH_RE.exec(pathname);
    if (!m) return false;
    const [, owner, repo, rest] = m as unknown as [string, string, string, string];
    const method = req.method ?? 'GET';
    const token = basicToken(req.headers.authorization);
    const record: GitRequestRecord = { method, path: url.pathname + url.search, status: 0 };
    if (token !== undefined) record.token = token;
    this.requests.push(record);

    const reply = (status: number, text: string, headers: Record<string, string> = {}): true => {
      record.status = status;
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(text);
      return true;
    };

    const fullName = `${owner}/${repo}`;
    try {
      parseFullName(fullName);
    } catch {
      return reply(404, 'Repository not found.\n');
    }

    const service =
      rest === '/info/refs'
        ? url.searchParams.get('service')
        : rest === '/git-upload-pack' || rest === '/git-receive-pack'
          ? rest.slice(1)
          : null;
    const validMethod = rest === '/info/refs' ? method === 'GET' : method === 'POST';
    if ((service !== 'git-upload-pack' && service !== 'git-receive-pack') || !validMethod) {
      return reply(404, 'Not found (only the smart HTTP protocol is served).\n');
    }
    const write = service === 'git-receive-pack';

    const challenge = { 'www-authenticate': 'Basic realm="GitHub"' };
    if (token === undefined) {
      if (write || !this.#opts.allowAnonymousRead) return reply(401, 'Authentication required.\n', challenge);
    } else {
      if (!this.#allowed(token, fullName, false)) return reply(401, 'Invalid username or token.\n', challenge);
      if (write && !this.#allowed(token, fullName, true)) {
        return reply(403, `Write access to repository not granted.\n`);
      }
    }

    const gitDir = join(this.#opts.root, owner, `${repo}.git`);
    if (!existsSync(gitDir)) return reply(404, 'Repository not found.\n');

    await this.#cgi(req, res, record, `/${owner}/${repo}.git${rest}`, url.search.slice(1));
    return true;
  }

  #allowed(token: string, fullName: string, write: boolean): boolean {
    const policy = this.#opts.tokens;
    if (policy === undefined) return true;
    if (typeof policy === 'function') return policy(token, fullName, write);
    const scope = policy.get(token);
    if (!scope) return false;
    const inScope =
      scope.repos === '*' || scope.repos.some((r) => r.toLowerCase() === fullName.toLowerCase());
    return inScope && (!write || scope.write);
  }

  /** Runs git-http-backend as a CGI (RFC 3875) for one request and relays its response. */
  #cgi(
    req: IncomingMessage,
    res: ServerResponse,
    record: GitRequestRecord,
    pathInfo: string,
    query: string,
  ): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: this.#opts.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: pathInfo,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: query,
      REMOTE_USER: TOKEN_USERNAME,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      GIT_CONFIG_COUNT: String(REPO_CONFIG.length),
    };
    REPO_CONFIG.forEach(([k, v], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = k;
      env[`GIT_CONFIG_VALUE_${i}`] = v;
    });
    const ct = req.headers['content-type'];
    if (ct) env.CONTENT_TYPE = ct;
    const enc = req.headers['content-encoding'];
    if (enc) env.HTTP_CONTENT_ENCODING = enc;
    const proto = req.headers['git-protocol'];
    if (typeof proto === 'string' && /^[\x20-\x7e]*$/.test(proto)) {
      env.HTTP_GIT_PROTOCOL = proto;
      env.GIT_PROTOCOL = proto;
    }
    // The body reaches the CGI decoded from chunked transfer; git-http-backend reads stdin to EOF when
    // CONTENT_LENGTH is absent, so only pass it when the client sent one.
    const len = req.headers['content-length'];
    if (len) env.CONTENT_LENGTH = len;

    return new Promise<void>((resolve) => {
      const child = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      const stderr: Buffer[] = [];
      child.stderr.on('data', (d: Buffer) => stderr.push(d));
      child.stdin.on('error', () => {
        /* the CGI may stop reading early (e.g. on error); its exit status tells */
      });
      req.pipe(child.stdin);

      let head = Buffer.alloc(0);
      let headersDone = false;
      child.stdout.on('data', (chunk: Buffer) => {
        if (headersDone) {
          res.write(chunk);
          return;
        }
        head = Buffer.concat([head, chunk]);
        const crlf = head.indexOf('\r\n\r\n');
        const lf = head.indexOf('\n\n');
        let end = -1;
        let sepLen = 0;
        if (crlf >= 0 && (lf < 0 || crlf < lf)) [end, sepLen] = [crlf, 4];
        else if (lf >= 0) [end, sepLen] = [lf, 2];
        if (end < 0) return;
        headersDone = true;
        let status = 200;
        const headers: Record<string, string> = {};
        for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const name = line.slice(0, i).trim();
          const value = line.slice(i + 1).trim();
          if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
          else headers[name] = value;
        }
        record.status = status;
        res.writeHead(status, headers);
        const body = head.subarray(end + sepLen);
        if (body.length > 0) res.write(body);
      });
      child.on('error', (err) => {
        record.status = 500;
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`git-http-backend failed to start: ${err.message}\n`);
        resolve();
      });
      child.on('close', (code) => {
        if (!headersDone) {
          record.status = 500;
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`git-http-backend exited with ${code}: ${Buffer.concat(stderr).toString('utf8')}`);
        } else {
          res.end();
        }
        resolve();
      });
    });
  }

  /** Stops listening (if this instance owns a socket) and closes open connections. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
