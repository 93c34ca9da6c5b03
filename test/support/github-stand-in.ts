/**
 * A local GitHub for end-to-end tests: a REST stand-in for the API endpoints the app uses, served under
 * `/api/v3` (Probot reaches it with `GHE_HOST=127.0.0.1:PORT`, `GHE_PROTOCOL=http`), plus git smart HTTP
 * on the same port (`http://127.0.0.1:PORT/<owner>/<repo>.git`). State lives in memory; git data lives in
 * real bare repositories on disk, so what the app writes through the Git Data API can be cloned and
 * inspected with git.
 *
 * Response shapes follow GitHub's REST reference (https://docs.github.com/en/rest, API version
 * 2022-11-28) closely enough for @octokit/rest and Probot to parse them. Git work uses plumbing with argv
 * arrays (never a shell).
 *
 * Behaviours chosen where GitHub's is not pinned down (documented here once):
 * - Every API request needs credentials: the App JWT (RS256, `iss` = app id, verified against
 *   {@link GitHubStandIn.publicKeyPem}) on `/app…` and `/repos/{o}/{r}/installation`, an installation
 *   token (`Authorization: token X` or `Bearer X`) everywhere else. Unknown, revoked or expired → 401.
 * - A token scoped to other repositories gets 404 for a repository (as GitHub hides it); a token without
 *   the needed permission (e.g. `contents: read` on a write) gets 403 "Resource not accessible by integration".
 * - Collaborator permission: logins in the repository's map get their role; a login the stand-in knows
 *   (seen in any repo, issue, comment or {@link GitHubStandIn.addUser}) but not in the map gets
 *   `permission: "none"`; an unknown login gets 404, like a user that does not exist.
 * - Commits created through `POST /git/commits` are `verified: true, reason: "valid"` unless the caller
 *   supplies a `committer` or a `signature` (GitHub signs API commits it commits itself).
 * - Git over HTTP needs a token with `contents: read` (clone/fetch) or `contents: write` (push) for the
 *   repository; anonymous git access is refused.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProbotOctokit } from 'probot';
import { GitHttpServer, createBareRepo, parseFullName, runGit } from './git-http.ts';
import type { GitRequestRecord, RepoFile } from './git-http.ts';

/**
 * ProbotOctokit without client-side throttling and retries, for `new Probot({ Octokit: … })` or direct
 * use in tests. Probot's default throttling spaces writes 1 s apart (right for github.com, slow against
 * the stand-in), and its retry plugin waits seconds before retrying a 5xx. A function default is needed
 * because Probot merges its own `throttle` options over object defaults.
 */
export const ProbotOctokitForTests = ProbotOctokit.defaults((options: Record<string, unknown>) => ({
  ...options,
  throttle: { ...(options.throttle as object | undefined), enabled: false },
  retry: { enabled: false },
}));

/** Repository roles a test can give a login (https://docs.github.com/en/rest/collaborators/collaborators). */
export type RepoRole = 'admin' | 'maintain' | 'write' | 'triage' | 'read';
/** App permission level (https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app). */
export type PermissionLevel = 'read' | 'write' | 'admin';
/** App permissions, e.g. `{ contents: 'write', issues: 'write', metadata: 'read' }`. */
export type AppPermissions = Record<string, PermissionLevel>;
/** A plain JSON object as served by the API. */
export type Json = Record<string, unknown>;

/** One API request as recorded by the stand-in. */
export interface ApiRequestRecord {
  method: string;
  /** Path below `/api/v3`, as sent (percent-encoding kept), without the query, e.g. `/repos/o/r/git/refs`. */
  path: string;
  /** Query parameters. */
  query: Record<string, string>;
  /** Parsed JSON body (undefined when none). */
  body: unknown;
  /** `token`: an installation token; `jwt`: the App JWT; `none`: no/unsupported credentials. */
  auth: 'token' | 'jwt' | 'none';
  /** The installation token or JWT presented, if any (for assertions such as "used the read-only token"). */
  token?: string;
  /** `Accept` header. */
  accept: string;
  /** HTTP status returned. */
  status: number;
  /** `Date.now()` when the request reached the stand-in, ms since the epoch (for benchmarks' timelines). */
  at: number;
  /** Time from arrival to the response being handed to the socket, ms (`performance.now()` based); 0 until answered. */
  durationMs: number;
}

/**
 * Matches requests: `'POST /repos/o/r/git/commits'` or `'/repos/{owner}/{repo}/pulls'` (a `{name}`
 * segment matches any one path segment, the method is optional), a RegExp tested against the path, or
 * `{ method, path }`. Paths are API paths below `/api/v3`, or for git traffic the git URL path
 * (`/o/r.git/info/refs`).
 */
export type RequestMatcher = string | RegExp | { method?: string; path: string | RegExp };

/** An issued installation access token and what it may do. */
export interface TokenRecord {
  token: string;
  installationId: number;
  /** Lower-cased full names the token is limited to, or `'*'` for all repositories of the installation. */
  repos: string[] | '*';
  permissions: AppPermissions;
  /** Epoch ms. */
  expiresAt: number;
  revoked: boolean;
}

/** A comment as held by the stand-in: the REST object plus every body it had, oldest first. */
export type CommentWithHistory = Json & { id: number; body: string; history: string[]; user: Json };

interface UserState {
  login: string;
  id: number;
  type: 'User' | 'Bot' | 'Organization';
}

interface InstallationState {
  id: number;
  account: string;
  permissions: AppPermissions;
  createdAt: number;
}

interface CommentState {
  id: number;
  repoKey: string;
  issueNumber: number;
  user: string;
  history: string[];
  createdAt: number;
  updatedAt: number;
  viaApp: boolean;
}

interface ReactionState {
  id: number;
  repoKey: string;
  subject: { issueNumber: number } | { commentId: number } | { reviewCommentId: number };
  content: string;
  user: string;
  createdAt: number;
}

interface PullState {
  id: number;
  headRef: string;
  baseRef: string;
  headSha: string;
  baseSha: string;
  draft: boolean;
  merged: boolean;
  /** Fork pull requests: lower-cased full name of the head repository (the fork). */
  headRepoKey?: string;
  maintainerCanModify?: boolean;
}

/** A pull request review comment (an inline comment on the diff). Lines are 1-based. */
interface ReviewCommentState {
  id: number;
  repoKey: string;
  pullNumber: number;
  reviewId: number | null;
  user: string;
  body: string;
  path: string;
  line: number;
  startLine: number | null;
  side: 'LEFT' | 'RIGHT';
  startSide: 'LEFT' | 'RIGHT' | null;
  commitId: string;
  diffHunk: string;
  inReplyTo: number | null;
  createdAt: number;
  updatedAt: number;
  viaApp: boolean;
}

/** A pull request review. */
interface ReviewState {
  id: number;
  repoKey: string;
  pullNumber: number;
  user: string;
  body: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING';
  commitId: string;
  submittedAt: number;
  viaApp: boolean;
}

interface IssueState {
  id: number;
  number: number;
  title: string;
  body: string | null;
  user: string;
  state: 'open' | 'closed';
  createdAt: number;
  updatedAt: number;
  closedAt: number | null;
  pull?: PullState;
}

interface RepoState {
  id: number;
  owner: string;
  name: string;
  fullName: string;
  path: string;
  defaultBranch: string;
  private: boolean;
  installationId: number;
  roles: Map<string, RepoRole>;
  issues: Map<number, IssueState>;
  nextNumber: number;
  createdAt: number;
}

interface Fault {
  matcher: RequestMatcher;
  status: number;
  remaining: number;
  body: unknown;
  headers: Record<string, string>;
}

interface Delay {
  matcher: RequestMatcher;
  ms: number;
  remaining: number;
}

interface Ctx {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json;
  accept: string;
  token?: TokenRecord;
}

interface Result {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Raw bytes (non-JSON response). */
  raw?: Buffer;
}

type Handler = (ctx: Ctx) => Promise<Result> | Result;

interface Route {
  method: string;
  re: RegExp;
  keys: string[];
  auth: 'jwt' | 'token';
  handler: Handler;
}

/** An API error rendered as GitHub's error body. */
class ApiError extends Error {
  readonly status: number;
  readonly extra: Json;
  constructor(status: number, message: string, extra: Json = {}) {
    super(message);
    this.status = status;
    this.extra = extra;
  }
}

const DOCS_URL = 'https://docs.github.com/rest';
const REACTIONS = ['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes'];
const LEVEL: Record<string, number> = { none: 0, read: 1, write: 2, admin: 3 };
const ROLE_PERMISSION: Record<RepoRole, 'admin' | 'write' | 'read'> = {
  admin: 'admin',
  maintain: 'write',
  write: 'write',
  triage: 'read',
  read: 'read',
};
const DEFAULT_INSTALLATION_PERMISSIONS: AppPermissions = {
  actions: 'read',
  checks: 'write',
  contents: 'write',
  issues: 'write',
  metadata: 'read',
  pull_requests: 'write',
  statuses: 'read',
  workflows: 'write',
};
const ZERO_SHA = '0'.repeat(40);

/** ISO 8601 without milliseconds, as GitHub renders timestamps. */
function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A legacy-format GraphQL node id (base64 of `0<len>:<Type><id>`), like the ids in GitHub's examples. */
function nodeId(type: string, id: number | string): string {
  return Buffer.from(`0${type.length}:${type}${id}`).toString('base64');
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function isSha(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{40}$/.test(s);
}

function compile(pattern: string): { re: RegExp; keys: string[] } {
  const keys: string[] = [];
  let src = '';
  for (const seg of pattern.split('/').slice(1)) {
    if (seg.startsWith('*')) {
      keys.push(seg.slice(1));
      src += '(?:/(.*))?';
    } else if (seg.startsWith(':')) {
      keys.push(seg.slice(1));
      src += '/([^/]+)';
    } else {
      src += `/${seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
    }
  }
  return { re: new RegExp(`^${src}/?$`), keys };
}

/** True when `method path` matches `matcher` (see {@link RequestMatcher}). */
export function matchRequest(matcher: RequestMatcher, method: string, path: string): boolean {
  if (matcher instanceof RegExp) return matcher.test(path);
  let wantMethod: string | undefined;
  let wantPath: string | RegExp;
  if (typeof matcher === 'string') {
    const m = /^([A-Z]+)\s+(.*)$/.exec(matcher);
    wantMethod = m?.[1];
    wantPath = m?.[2] ?? matcher;
  } else {
    wantMethod = matcher.method?.toUpperCase();
    wantPath = matcher.path;
  }
  if (wantMethod && wantMethod !== method.toUpperCase()) return false;
  if (wantPath instanceof RegExp) return wantPath.test(path);
  const re = new RegExp(
    `^${wantPath
      .split(/(\{[^}/]+\})/)
      .map((part) => (/^\{[^}/]+\}$/.test(part) ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
  );
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    /* keep raw */
  }
  return re.test(path) || re.test(decoded);
}

/** Options of {@link GitHubStandIn.start}. */
export interface StandInOptions {
  /** App id (JWT `iss`). Default 1. */
  appId?: number;
  /** App slug; its bot user is `<slug>[bot]`. Default `codex-cloud-test`. */
  appSlug?: string;
  /** App display name. Default `Codex Cloud (test)`. */
  appName?: string;
  /** Permissions of new installations. Default contents/issues/pull_requests/checks/workflows write, metadata/actions/statuses read. */
  installationPermissions?: AppPermissions;
}

/** Options of {@link GitHubStandIn.addRepo}. */
export interface AddRepoOptions {
  /** Installation holding the repository (created on first use for the owner). Default 1. */
  installationId?: number;
  /** Collaborator roles by login (see the class docs for logins not listed). */
  permissions?: Record<string, RepoRole>;
  defaultBranch?: string;
  /** Default true. */
  private?: boolean;
  /** Type of the owner account. Default `User`. */
  ownerType?: 'User' | 'Organization';
}

/**
 * The GitHub stand-in. Start with {@link GitHubStandIn.start}, stop with {@link close}.
 * All helpers take repositories as `owner/name`, case-insensitively.
 */
export class GitHubStandIn {
  /** `http://127.0.0.1:PORT`: web and git base URL (clone URLs are `${url}/owner/repo.git`). */
  readonly url: string;
  /** `http://127.0.0.1:PORT/api/v3`: REST base URL for Octokit's `baseUrl`. */
  readonly apiUrl: string;
  /** `127.0.0.1:PORT`, for `GHE_HOST` (with `GHE_PROTOCOL=http`). */
  readonly host: string;
  /** Directory holding the bare repositories (`<root>/<owner>/<repo>.git`); removed by {@link close}. */
  readonly root: string;
  readonly appId: number;
  readonly appSlug: string;
  readonly appName: string;
  /** The App's private key (PKCS#1 PEM, like the keys GitHub issues), for Probot's `PRIVATE_KEY`. */
  readonly privateKeyPem: string;
  /** The public half, against which App JWTs are verified. */
  readonly publicKeyPem: string;
  /** The git smart-HTTP handler mounted on the same port. */
  readonly gitServer: GitHttpServer;
  /** Every API request, in order. */
  readonly requests: ApiRequestRecord[] = [];

  readonly #server: Server;
  readonly #installationPermissions: AppPermissions;
  readonly #users = new Map<string, UserState>();
  readonly #installations = new Map<number, InstallationState>();
  readonly #repos = new Map<string, RepoState>();
  readonly #comments = new Map<number, CommentState>();
  readonly #reactions: ReactionState[] = [];
  readonly #reviewComments = new Map<number, ReviewCommentState>();
  readonly #reviews = new Map<number, ReviewState>();
  readonly #tokens = new Map<string, TokenRecord>();
  readonly #verification = new Map<string, Json>();
  readonly #faults: Fault[] = [];
  readonly #delays: Delay[] = [];
  readonly #routes: Route[] = [];
  readonly #createdAt = Date.now();
  #nextId = 1000;

  private constructor(server: Server, port: number, root: string, opts: StandInOptions) {
    this.#server = server;
    this.url = `http://127.0.0.1:${port}`;
    this.apiUrl = `${this.url}/api/v3`;
    this.host = `127.0.0.1:${port}`;
    this.root = root;
    this.appId = opts.appId ?? 1;
    this.appSlug = opts.appSlug ?? 'codex-cloud-test';
    this.appName = opts.appName ?? 'Codex Cloud (test)';
    this.#installationPermissions = opts.installationPermissions ?? DEFAULT_INSTALLATION_PERMISSIONS;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKeyPem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.gitServer = GitHttpServer.mount({
      root,
      url: this.url,
      tokens: (token, repo, write) => this.#gitAllowed(token, repo, write),
    });
    this.#user(this.botLogin, 'Bot');
    this.#defineRoutes();
    this.#defineCheckRoutes();
  }

  /**
   * Starts the stand-in on 127.0.0.1 with an ephemeral port and a fresh temp directory for repositories.
   * Generates the App's RSA key pair (2048 bits).
   */
  static async start(opts: StandInOptions = {}): Promise<GitHubStandIn> {
    const root = await mkdtemp(join(tmpdir(), 'github-stand-in-'));
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const standIn = new GitHubStandIn(server, port, root, opts);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      standIn.#onRequest(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`stand-in error: ${err instanceof Error ? err.stack : String(err)}`);
      });
    });
    return standIn;
  }

  /** Login of the App's bot user: `<slug>[bot]`. */
  get botLogin(): string {
    return `${this.appSlug}[bot]`;
  }

  /** Git requests seen (same objects as `gitServer.requests`). */
  get gitRequests(): GitRequestRecord[] {
    return this.gitServer.requests;
  }

  /** Stops the server and deletes the repositories. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#logHost?.close();
    await rm(this.root, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------------------------------------------
  // Test helpers

  /**
   * Adds a repository backed by a new bare repo holding one commit with `files`.
   * @returns its full name, REST id, bare path, first commit SHA and clone URL.
   * @throws Error if it exists already or the name is invalid.
   */
  async addRepo(
    fullName: string,
    files: Record<string, RepoFile>,
    opts: AddRepoOptions = {},
  ): Promise<{ fullName: string; id: number; path: string; headSha: string; cloneUrl: string }> {
    const { owner, repo } = parseFullName(fullName);
    if (this.#repos.has(fullName.toLowerCase())) throw new Error(`repository exists: ${fullName}`);
    const defaultBranch = opts.defaultBranch ?? 'main';
    const { path, headSha } = await createBareRepo(this.root, fullName, files, { defaultBranch });
    this.#user(owner, opts.ownerType ?? 'User');
    const installationId = opts.installationId ?? 1;
    if (!this.#installations.has(installationId)) {
      this.#installations.set(installationId, {
        id: installationId,
        account: owner,
        permissions: { ...this.#installationPermissions },
        createdAt: Date.now(),
      });
    }
    const roles = new Map<string, RepoRole>();
    for (const [login, role] of Object.entries(opts.permissions ?? {})) {
      this.#user(login);
      roles.set(login.toLowerCase(), role);
    }
    const state: RepoState = {
      id: this.#id(),
      owner,
      name: repo,
      fullName,
      path,
      defaultBranch,
      private: opts.private ?? true,
      installationId,
      roles,
      issues: new Map(),
      nextNumber: 1,
      createdAt: Date.now(),
    };
    this.#repos.set(fullName.toLowerCase(), state);
    return { fullName, id: state.id, path, headSha, cloneUrl: this.gitServer.cloneUrl(fullName) };
  }

  /** Registers a user (so the collaborator endpoint answers `none` rather than 404). Returns its REST user object. */
  addUser(login: string, type: 'User' | 'Bot' | 'Organization' = 'User'): Json {
    return this.#userJson(this.#user(login, type).login);
  }

  /** Sets (or with `undefined` removes) a login's role on a repository. */
  setPermission(fullName: string, login: string, role: RepoRole | undefined): void {
    const repo = this.#repo(fullName);
    this.#user(login);
    if (role) repo.roles.set(login.toLowerCase(), role);
    else repo.roles.delete(login.toLowerCase());
  }

  /** The REST repository object of `owner/name` (as `GET /repos/{o}/{r}` returns it). */
  repository(fullName: string): Json {
    return this.#repoJson(this.#repo(fullName));
  }

  /**
   * Adds an issue (number defaults to the next free one, shared with pull requests).
   * @returns the REST issue object.
   * @throws Error if the number is taken.
   */
  addIssue(
    fullName: string,
    issue: { number?: number; title: string; body?: string | null; user: string; state?: 'open' | 'closed' },
  ): Json {
    const repo = this.#repo(fullName);
    const number = issue.number ?? repo.nextNumber;
    if (repo.issues.has(number)) throw new Error(`issue #${number} exists in ${fullName}`);
    this.#user(issue.user);
    const now = Date.now();
    const state: IssueState = {
      id: this.#id(),
      number,
      title: issue.title,
      body: issue.body ?? null,
      user: issue.user,
      state: issue.state ?? 'open',
      createdAt: now,
      updatedAt: now,
      closedAt: issue.state === 'closed' ? now : null,
    };
    repo.issues.set(number, state);
    repo.nextNumber = Math.max(repo.nextNumber, number + 1);
    return this.#issueJson(repo, state);
  }

  /** The REST issue object (also for pull requests, with `pull_request`). @throws Error if missing. */
  issue(fullName: string, issueNumber: number): Json {
    const repo = this.#repo(fullName);
    return this.#issueJson(repo, this.#issueState(repo, issueNumber));
  }

  /**
   * Adds a comment by `user` to an issue or pull request, e.g. the `@codex …` comment a webhook then
   * announces (pass its `id` as the webhook's comment id). @returns the comment with its history.
   */
  addComment(fullName: string, issueNumber: number, comment: { body: string; user: string }): CommentWithHistory {
    const repo = this.#repo(fullName);
    this.#issueState(repo, issueNumber);
    this.#user(comment.user);
    const state = this.#newComment(repo, issueNumber, comment.user, comment.body, false);
    return this.#commentWithHistory(state);
  }

  /** Comments of an issue/PR in creation order, each with `history` (every body it had, oldest first). */
  comments(fullName: string, issueNumber: number): CommentWithHistory[] {
    const key = this.#repo(fullName).fullName.toLowerCase();
    return [...this.#comments.values()]
      .filter((c) => c.repoKey === key && c.issueNumber === issueNumber)
      .map((c) => this.#commentWithHistory(c));
  }

  /** One comment by id, with its history. @throws Error if missing. */
  comment(commentId: number): CommentWithHistory {
    const c = this.#comments.get(commentId);
    if (!c) throw new Error(`no comment ${commentId}`);
    return this.#commentWithHistory(c);
  }

  /**
   * Reactions on an issue/PR (`{ issueNumber }`), an issue comment (`{ commentId }`) or a pull request
   * review comment (`{ reviewCommentId }`), in order.
   * `created_at` is the API's ISO string (second precision); `createdAtMs` the exact `Date.now()` of creation.
   */
  reactions(
    fullName: string,
    target: { issueNumber: number } | { commentId: number } | { reviewCommentId: number },
  ): Array<{ id: number; content: string; user: string; created_at: string; createdAtMs: number }> {
    const key = this.#repo(fullName).fullName.toLowerCase();
    return this.#reactions
      .filter((r) => r.repoKey === key && sameSubject(r.subject, target))
      .map((r) => ({ id: r.id, content: r.content, user: r.user, created_at: iso(r.createdAt), createdAtMs: r.createdAt }));
  }

  /** Pull requests of a repository (REST objects, oldest first). */
  async pulls(fullName: string): Promise<Json[]> {
    const repo = this.#repo(fullName);
    const out: Json[] = [];
    for (const issue of repo.issues.values()) if (issue.pull) out.push(await this.#pullJson(repo, issue));
    return out;
  }

  /**
   * Opens a pull request as `user` from existing branch `head` into `base` (default branch by default).
   * @returns the REST pull request object. @throws ApiError-derived Error on invalid branches.
   */
  async addPull(
    fullName: string,
    pr: { head: string; base?: string; title: string; body?: string; user: string; draft?: boolean },
  ): Promise<Json> {
    const repo = this.#repo(fullName);
    this.#user(pr.user);
    return this.#createPull(repo, pr.user, { ...pr, base: pr.base ?? repo.defaultBranch });
  }

  /**
   * Commits `files` (`null` deletes a path) on top of `branch` (or of `from`, a ref/SHA, when the branch
   * does not exist yet) and moves the branch there; for setting up PR branches.
   * @returns the new commit SHA.
   */
  async commitFiles(
    fullName: string,
    branch: string,
    files: Record<string, RepoFile | null>,
    opts: { message?: string; from?: string } = {},
  ): Promise<string> {
    const repo = this.#repo(fullName);
    const current = await this.#resolveCommit(repo, `refs/heads/${branch}`);
    const parent = current ?? (await this.#resolveCommit(repo, opts.from ?? repo.defaultBranch));
    if (!parent) throw new Error(`no such branch or base: ${branch}`);
    const baseTree = (await this.#gitText(repo, ['rev-parse', `${parent}^{tree}`])).trim();
    const tree = await this.#buildTree(
      repo,
      baseTree,
      Object.entries(files).map(([path, spec]) =>
        spec === null
          ? { path, mode: '100644', type: 'blob', sha: null }
          : typeof spec === 'string'
            ? { path, mode: '100644', type: 'blob', content: spec }
            : { path, mode: spec.mode ?? '100644', type: 'blob', contentBuffer: Buffer.from(spec.content) },
      ),
    );
    const sha = (
      await this.#gitText(repo, ['commit-tree', tree, '-p', parent, '-F', '-'], { input: opts.message ?? 'Update files' })
    ).trim();
    await this.#gitText(repo, ['update-ref', `refs/heads/${branch}`, sha, current ?? ZERO_SHA]);
    await this.#syncPullRefs(repo);
    return sha;
  }

  /**
   * Forks `baseFullName` as `forkFullName` (a bare clone sharing its history, every branch copied), in
   * its own installation (default: a new one for the fork's owner), so the base repository's
   * installation tokens cannot write to it, as on GitHub.
   * @returns like {@link addRepo}.
   */
  async addFork(
    baseFullName: string,
    forkFullName: string,
    opts: { installationId?: number; permissions?: Record<string, RepoRole> } = {},
  ): Promise<{ fullName: string; id: number; path: string; headSha: string; cloneUrl: string }> {
    const base = this.#repo(baseFullName);
    const { owner, repo } = parseFullName(forkFullName);
    if (this.#repos.has(forkFullName.toLowerCase())) throw new Error(`repository exists: ${forkFullName}`);
    const path = join(this.root, owner, `${repo}.git`);
    await runGit(['clone', '--quiet', '--bare', '--no-local', base.path, path]);
    for (const [key, value] of [['uploadpack.allowFilter', 'true'], ['uploadpack.allowAnySHA1InWant', 'true'], ['http.receivepack', 'true']]) {
      await runGit(['--git-dir', path, 'config', key!, value!]);
    }
    this.#user(owner);
    const installationId = opts.installationId ?? Math.max(0, ...this.#installations.keys()) + 1;
    if (!this.#installations.has(installationId)) {
      this.#installations.set(installationId, { id: installationId, account: owner, permissions: { ...this.#installationPermissions }, createdAt: Date.now() });
    }
    const roles = new Map<string, RepoRole>();
    for (const [login, role] of Object.entries(opts.permissions ?? {})) {
      this.#user(login);
      roles.set(login.toLowerCase(), role);
    }
    const state: RepoState = {
      id: this.#id(), owner, name: repo, fullName: forkFullName, path, defaultBranch: base.defaultBranch, private: base.private,
      installationId, roles, issues: new Map(), nextNumber: 1, createdAt: Date.now(),
    };
    this.#repos.set(forkFullName.toLowerCase(), state);
    const headSha = (await this.#gitText(state, ['rev-parse', `refs/heads/${state.defaultBranch}`])).trim();
    return { fullName: forkFullName, id: state.id, path, headSha, cloneUrl: this.gitServer.cloneUrl(forkFullName) };
  }

  /**
   * Opens a pull request on `baseFullName` from branch `head` of the fork `headRepo` (see
   * {@link addFork}). As on GitHub, the head commit becomes reachable in the base repository as
   * `refs/pull/<number>/head` (kept up to date when the fork's branch moves through the stand-in).
   * @returns the REST pull request object (`head.repo` is the fork, `head.label` `forkOwner:head`).
   */
  async addForkPull(
    baseFullName: string,
    pr: { headRepo: string; head: string; base?: string; title: string; body?: string; user: string; draft?: boolean; maintainerCanModify?: boolean },
  ): Promise<Json> {
    const repo = this.#repo(baseFullName);
    const fork = this.#repo(pr.headRepo);
    this.#user(pr.user);
    const baseRef = pr.base ?? repo.defaultBranch;
    const headSha = await this.#refSha(fork, `refs/heads/${pr.head}`);
    if (!headSha) throw new Error(`no branch ${pr.head} in ${pr.headRepo}`);
    const baseSha = await this.#refSha(repo, `refs/heads/${baseRef}`);
    if (!baseSha) throw new Error(`no branch ${baseRef} in ${baseFullName}`);
    const now = Date.now();
    const number = repo.nextNumber++;
    const issue: IssueState = {
      id: this.#id(), number, title: pr.title, body: pr.body ?? null, user: pr.user, state: 'open', createdAt: now, updatedAt: now, closedAt: null,
      pull: {
        id: this.#id(), headRef: pr.head, baseRef, headSha, baseSha, draft: pr.draft === true, merged: false,
        headRepoKey: fork.fullName.toLowerCase(), maintainerCanModify: pr.maintainerCanModify ?? false,
      },
    };
    repo.issues.set(number, issue);
    await this.#syncPullRefs(fork);
    return this.#pullJson(repo, issue);
  }

  /**
   * Adds an inline review comment by `user` on pull request `pullNumber`, on `line` (1-based) of `path`
   * on `side` (default `RIGHT`, the head's line numbers; `startLine` for a multi-line range). The
   * `diff_hunk` is computed like GitHub's from the diff between the merge base and the head.
   * `inReplyTo` makes it a reply in that comment's thread (path and lines are then taken from it).
   * @returns the REST review comment object.
   * @throws Error when the line is not part of the diff (GitHub answers 422 then).
   */
  async addReviewComment(
    fullName: string,
    pullNumber: number,
    c: { user: string; body: string; path?: string; line?: number; startLine?: number; side?: 'LEFT' | 'RIGHT'; reviewId?: number; inReplyTo?: number },
  ): Promise<Json> {
    const repo = this.#repo(fullName);
    const issue = this.#issueState(repo, pullNumber);
    if (!issue.pull) throw new Error(`#${pullNumber} is not a pull request`);
    this.#user(c.user);
    const state = await this.#newReviewComment(repo, issue, c.user, c, false);
    return this.#reviewCommentJson(state);
  }

  /** Review comments of a pull request in creation order (REST objects). */
  reviewComments(fullName: string, pullNumber: number): Json[] {
    const key = this.#repo(fullName).fullName.toLowerCase();
    return [...this.#reviewComments.values()].filter((c) => c.repoKey === key && c.pullNumber === pullNumber).map((c) => this.#reviewCommentJson(c));
  }

  /**
   * Submits a review by `user` on pull request `pullNumber` (default state `COMMENTED`) on the current
   * head, with optional inline `comments` (each like {@link addReviewComment}'s).
   * @returns the REST review object.
   */
  async addReview(
    fullName: string,
    pullNumber: number,
    r: {
      user: string;
      body?: string;
      state?: ReviewState['state'];
      comments?: Array<{ body: string; path: string; line: number; startLine?: number; side?: 'LEFT' | 'RIGHT' }>;
    },
  ): Promise<Json> {
    const repo = this.#repo(fullName);
    const issue = this.#issueState(repo, pullNumber);
    if (!issue.pull) throw new Error(`#${pullNumber} is not a pull request`);
    this.#user(r.user);
    await this.#pullJson(repo, issue);
    const review: ReviewState = {
      id: this.#id(), repoKey: repo.fullName.toLowerCase(), pullNumber, user: r.user, body: r.body ?? '', state: r.state ?? 'COMMENTED',
      commitId: issue.pull.headSha, submittedAt: Date.now(), viaApp: r.user === this.botLogin,
    };
    this.#reviews.set(review.id, review);
    for (const c of r.comments ?? []) await this.#newReviewComment(repo, issue, r.user, { ...c, reviewId: review.id }, review.viaApp);
    return this.#reviewJson(review);
  }

  /** Reviews of a pull request in submission order (REST objects). */
  reviews(fullName: string, pullNumber: number): Json[] {
    const key = this.#repo(fullName).fullName.toLowerCase();
    return [...this.#reviews.values()].filter((r) => r.repoKey === key && r.pullNumber === pullNumber).map((r) => this.#reviewJson(r));
  }

  /** Runs `git <args>` in the repository's bare directory; resolves with stdout. @throws GitCommandError. */
  async git(fullName: string, ...args: string[]): Promise<string> {
    return this.#gitText(this.#repo(fullName), args);
  }

  /** Recorded API requests matching `matcher` (see {@link RequestMatcher}). */
  requestsTo(matcher: RequestMatcher): ApiRequestRecord[] {
    return this.requests.filter((r) => matchRequest(matcher, r.method, r.path));
  }

  /**
   * Makes the next `times` (default 1) requests matching `matcher` (API or git) answer `status`
   * (default 502) with `body` (default GitHub's error body) instead of being served. Faulted requests
   * are recorded.
   */
  failNext(
    matcher: RequestMatcher,
    opts: { status?: number; times?: number; body?: unknown; headers?: Record<string, string> } = {},
  ): void {
    const status = opts.status ?? 502;
    this.#faults.push({
      matcher,
      status,
      remaining: opts.times ?? 1,
      body: opts.body ?? { message: status >= 500 ? 'Server Error' : 'Error', documentation_url: DOCS_URL, status: String(status) },
      headers: opts.headers ?? {},
    });
  }

  /**
   * Makes the next `times` (default 1) API requests matching `matcher` wait `ms` milliseconds before
   * they are served (or faulted). They are recorded on arrival, so `at` is when the request came.
   */
  delayNext(matcher: RequestMatcher, ms: number, opts: { times?: number } = {}): void {
    this.#delays.push({ matcher, ms, remaining: opts.times ?? 1 });
  }

  /** Drops every fault set with {@link failNext} that has not fired yet. */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  /**
   * Issues an installation token directly (what `POST /app/installations/{id}/access_tokens` does).
   * @param opts.repositories repository names (without owner) to limit it to; `permissions` a subset of the installation's.
   * @throws Error if the installation is unknown, a repository is not in it, or a permission is not granted.
   */
  createInstallationToken(
    installationId: number,
    opts: { repositories?: string[]; permissions?: AppPermissions; expiresInMs?: number } = {},
  ): TokenRecord {
    return this.#issueToken(installationId, opts.repositories, undefined, opts.permissions, opts.expiresInMs);
  }

  /** Every installation token issued so far, oldest first (e.g. to assert the runner's token was read-only and scoped). */
  get tokens(): TokenRecord[] {
    return [...this.#tokens.values()];
  }

  /** What the stand-in knows about a token (undefined if it never issued it). */
  tokenInfo(token: string): TokenRecord | undefined {
    return this.#tokens.get(token);
  }

  /** Revokes a token: later API and git requests with it get 401. */
  revokeToken(token: string): void {
    const rec = this.#tokens.get(token);
    if (rec) rec.revoked = true;
  }

  /**
   * Signs an App JWT (RS256) like @octokit/auth-app does: `iat` 30 s in the past, `exp` 10 minutes later.
   * @param opts.privateKeyPem another key (to test rejection); `iss` another issuer; `expiresInS` lifetime.
   */
  createAppJwt(opts: { privateKeyPem?: string; iss?: number | string; expiresInS?: number } = {}): string {
    const now = Math.floor(Date.now() / 1000) - 30;
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
    const payload = b64url(JSON.stringify({ iat: now, exp: now + (opts.expiresInS ?? 600), iss: opts.iss ?? this.appId }));
    const signature = sign('sha256', Buffer.from(`${header}.${payload}`), createPrivateKey(opts.privateKeyPem ?? this.privateKeyPem));
    return `${header}.${payload}.${b64url(signature)}`;
  }

  // ---------------------------------------------------------------------------------------------------
  // Request handling

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const started = performance.now();
    const url = new URL(req.url ?? '/', this.url);
    const method = (req.method ?? 'GET').toUpperCase();
    const isApi = url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/');
    if (!isApi) {
      if (this.#takeFault(method, url.pathname, res, () => {
        /* git faults are visible through the response only */
      })) {
        req.resume();
        return;
      }
      if (await this.gitServer.handle(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found');
      return;
    }
    const path = url.pathname.slice('/api/v3'.length) || '/';
    const raw = await readBody(req);
    let body: unknown;
    const { auth, token } = parseAuthorization(req.headers.authorization);
    const record: ApiRequestRecord = {
      method,
      path,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      auth,
      accept: req.headers.accept ?? '',
      status: 0,
      at,
      durationMs: 0,
    };
    res.once('finish', () => (record.durationMs = performance.now() - started));
    if (token !== undefined) record.token = token;
    this.requests.push(record);
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
        record.body = body;
      } catch {
        record.body = raw.toString('utf8');
        this.#send(res, record, { status: 400, body: errorBody(400, 'Problems parsing JSON') });
        return;
      }
    }
    const delay = this.#delays.find((d) => d.remaining > 0 && matchRequest(d.matcher, method, path));
    if (delay) {
      delay.remaining -= 1;
      await new Promise((resolve) => setTimeout(resolve, delay.ms).unref());
    }
    if (this.#takeFault(method, path, res, (status) => (record.status = status))) return;

    let result: Result;
    try {
      result = await this.#dispatch(method, path, url.searchParams, body, record, auth, token);
    } catch (err) {
      if (err instanceof ApiError) {
        result = { status: err.status, body: errorBody(err.status, err.message, err.extra) };
      } else {
        throw err;
      }
    }
    this.#send(res, record, result);
  }

  #takeFault(method: string, path: string, res: ServerResponse, onStatus: (status: number) => void): boolean {
    const fault = this.#faults.find((f) => f.remaining > 0 && matchRequest(f.matcher, method, path));
    if (!fault) return false;
    fault.remaining -= 1;
    onStatus(fault.status);
    const text = typeof fault.body === 'string' ? fault.body : JSON.stringify(fault.body);
    res
      .writeHead(fault.status, {
        'content-type': typeof fault.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
        ...fault.headers,
      })
      .end(text);
    return true;
  }

  async #dispatch(
    method: string,
    path: string,
    query: URLSearchParams,
    body: unknown,
    record: ApiRequestRecord,
    auth: 'token' | 'jwt' | 'none',
    presented: string | undefined,
  ): Promise<Result> {
    let found: { route: Route; params: Record<string, string> } | undefined;
    for (const route of this.#routes) {
      if (route.method !== method) continue;
      const m = route.re.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => {
        const v = m[i + 1] ?? '';
        try {
          params[k] = decodeURIComponent(v);
        } catch {
          params[k] = v;
        }
      });
      found = { route, params };
      break;
    }
    if (!found) throw new ApiError(404, 'Not Found');
    const ctx: Ctx = {
      method,
      params: found.params,
      query,
      body: body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Json) : {},
      accept: record.accept,
    };
    if (found.route.auth === 'jwt') {
      if (auth === 'none' || presented === undefined) throw new ApiError(401, 'Requires authentication');
      if (!this.#jwtValid(presented)) {
        throw new ApiError(401, 'A JSON web token could not be decoded');
      }
    } else {
      if (auth === 'none' || presented === undefined) throw new ApiError(401, 'Requires authentication');
      const rec = this.#tokens.get(presented);
      if (!rec || rec.revoked || rec.expiresAt <= Date.now()) throw new ApiError(401, 'Bad credentials');
      ctx.token = rec;
    }
    return found.route.handler(ctx);
  }

  #send(res: ServerResponse, record: ApiRequestRecord, result: Result): void {
    record.status = result.status;
    const headers: Record<string, string> = {
      'x-github-api-version-selected': '2022-11-28',
      'x-github-media-type': 'github.v3; format=json',
      'x-github-request-id': randomUUID().toUpperCase(),
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-ratelimit-used': '1',
      'x-ratelimit-resource': 'core',
      ...result.headers,
    };
    if (result.status === 204 || (result.body === undefined && result.raw === undefined)) {
      res.writeHead(result.status, headers).end();
      return;
    }
    if (result.raw !== undefined) {
      res.writeHead(result.status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(result.raw);
      return;
    }
    res
      .writeHead(result.status, { 'content-type': 'application/json; charset=utf-8', ...headers })
      .end(JSON.stringify(result.body));
  }

  #jwtValid(jwt: string): boolean {
    const parts = jwt.split('.');
    if (parts.length !== 3) return false;
    const [h, p, s] = parts as [string, string, string];
    try {
      const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Json;
      const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Json;
      if (header.alg !== 'RS256') return false;
      const ok = verify('sha256', Buffer.from(`${h}.${p}`), createPublicKey(this.publicKeyPem), Buffer.from(s, 'base64url'));
      if (!ok) return false;
      if (String(payload.iss) !== String(this.appId)) return false;
      const now = Math.floor(Date.now() / 1000);
      const { iat, exp } = payload;
      if (typeof iat !== 'number' || typeof exp !== 'number') return false;
      // GitHub: exp at most 10 minutes ahead, iat not in the future (small clock skew allowed).
      return exp > now && exp - now <= 600 + 60 && iat <= now + 60;
    } catch {
      return false;
    }
  }

  #gitAllowed(token: string, fullName: string, write: boolean): boolean {
    const rec = this.#tokens.get(token);
    if (!rec || rec.revoked || rec.expiresAt <= Date.now()) return false;
    const repo = this.#repos.get(fullName.toLowerCase());
    if (!repo || !this.#tokenCovers(rec, repo)) return false;
    return (LEVEL[rec.permissions.contents ?? 'none'] ?? 0) >= (write ? 2 : 1);
  }

  #tokenCovers(rec: TokenRecord, repo: RepoState): boolean {
    if (repo.installationId !== rec.installationId) return false;
    return rec.repos === '*' || rec.repos.includes(repo.fullName.toLowerCase());
  }

  /**
   * Resolves the route's repository for the token in `ctx`, requiring one of `needs` (`[permission, level]`).
   * @throws ApiError 404 when unknown or outside the token's scope, 403 when the permission is missing.
   */
  #repoFor(ctx: Ctx, ...needs: Array<[string, 'read' | 'write']>): RepoState {
    const repo = this.#repos.get(`${ctx.params.owner}/${ctx.params.repo}`.toLowerCase());
    const token = ctx.token;
    if (!repo || !token || !this.#tokenCovers(token, repo)) throw new ApiError(404, 'Not Found');
    const ok = needs.some(([perm, level]) => (LEVEL[token.permissions[perm] ?? 'none'] ?? 0) >= (LEVEL[level] ?? 9));
    if (!ok) throw new ApiError(403, 'Resource not accessible by integration');
    return repo;
  }

  #issueToken(
    installationId: number,
    repositories: string[] | undefined,
    repositoryIds: number[] | undefined,
    permissions: AppPermissions | undefined,
    expiresInMs = 3600_000,
  ): TokenRecord {
    const inst = this.#installations.get(installationId);
    if (!inst) throw new ApiError(404, 'Not Found');
    const instRepos = [...this.#repos.values()].filter((r) => r.installationId === installationId);
    let repos: string[] | '*' = '*';
    if (repositories || repositoryIds) {
      repos = [];
      for (const name of repositories ?? []) {
        const r = instRepos.find((x) => x.name.toLowerCase() === String(name).toLowerCase());
        if (!r) {
          throw new ApiError(
            422,
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
          );
        }
        repos.push(r.fullName.toLowerCase());
      }
      for (const id of repositoryIds ?? []) {
        const r = instRepos.find((x) => x.id === id);
        if (!r) {
          throw new ApiError(
            422,
            'There is at least one repository that does not exist or is not accessible to the parent installation.',
          );
        }
        repos.push(r.fullName.toLowerCase());
      }
    }
    const granted = permissions ?? inst.permissions;
    for (const [name, level] of Object.entries(granted)) {
      if ((LEVEL[inst.permissions[name] ?? 'none'] ?? 0) < (LEVEL[level] ?? 9)) {
        throw new ApiError(422, 'The permissions requested are not granted to this installation.');
      }
    }
    const rec: TokenRecord = {
      token: `ghs_${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`,
      installationId,
      repos,
      permissions: { ...granted },
      expiresAt: Date.now() + expiresInMs,
      revoked: false,
    };
    this.#tokens.set(rec.token, rec);
    return rec;
  }

  // ---------------------------------------------------------------------------------------------------
  // Routes

  #route(method: string, pattern: string, auth: 'jwt' | 'token', handler: Handler): void {
    this.#routes.push({ method, ...compile(pattern), auth, handler });
  }

  #defineRoutes(): void {
    const R = '/repos/:owner/:repo';
    // --- App (JWT)
    this.#route('GET', '/app', 'jwt', () => ({ status: 200, body: this.#appJson() }));
    this.#route('GET', '/app/installations', 'jwt', () => ({
      status: 200,
      body: [...this.#installations.values()].map((i) => this.#installationJson(i)),
    }));
    this.#route('GET', '/app/installations/:id', 'jwt', (ctx) => {
      const inst = this.#installations.get(Number(ctx.params.id));
      if (!inst) throw new ApiError(404, 'Not Found');
      return { status: 200, body: this.#installationJson(inst) };
    });
    this.#route('POST', '/app/installations/:id/access_tokens', 'jwt', (ctx) => {
      const { repositories, repository_ids: ids, permissions } = ctx.body;
      if (repositories !== undefined && !isStringArray(repositories)) throw validation('repositories must be an array of names');
      if (ids !== undefined && !(Array.isArray(ids) && ids.every((x) => typeof x === 'number'))) {
        throw validation('repository_ids must be an array of integers');
      }
      if (permissions !== undefined && (typeof permissions !== 'object' || permissions === null)) {
        throw validation('permissions must be an object');
      }
      const rec = this.#issueToken(
        Number(ctx.params.id),
        repositories as string[] | undefined,
        ids as number[] | undefined,
        permissions as AppPermissions | undefined,
      );
      const body: Json = {
        token: rec.token,
        expires_at: iso(rec.expiresAt),
        permissions: rec.permissions,
        repository_selection: rec.repos === '*' ? 'all' : 'selected',
      };
      if (rec.repos !== '*') body.repositories = rec.repos.map((n) => this.#repoJson(this.#repo(n)));
      return { status: 201, body };
    });
    this.#route('GET', `${R}/installation`, 'jwt', (ctx) => {
      const repo = this.#repos.get(`${ctx.params.owner}/${ctx.params.repo}`.toLowerCase());
      const inst = repo && this.#installations.get(repo.installationId);
      if (!inst) throw new ApiError(404, 'Not Found');
      return { status: 200, body: this.#installationJson(inst) };
    });

    // --- Installation (token)
    this.#route('DELETE', '/installation/token', 'token', (ctx) => {
      if (ctx.token) ctx.token.revoked = true;
      return { status: 204 };
    });
    this.#route('GET', '/installation/repositories', 'token', (ctx) => {
      const token = ctx.token as TokenRecord;
      const repos = [...this.#repos.values()].filter((r) => this.#tokenCovers(token, r));
      const page = paginate(repos, ctx.query, `${this.apiUrl}/installation/repositories`);
      return {
        status: 200,
        body: { total_count: repos.length, repository_selection: token.repos === '*' ? 'all' : 'selected', repositories: page.items.map((r) => this.#repoJson(r)) },
        headers: page.headers,
      };
    });

    // --- Repository
    this.#route('GET', R, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['metadata', 'read'], ['contents', 'read']);
      return { status: 200, body: this.#repoJson(repo) };
    });
    this.#route('GET', `${R}/collaborators/:username/permission`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['metadata', 'read']);
      const user = this.#users.get(ctx.params.username!.toLowerCase());
      if (!user) throw new ApiError(404, 'Not Found');
      const role = repo.roles.get(user.login.toLowerCase());
      const permission = role ? ROLE_PERMISSION[role] : 'none';
      const roleName = role ?? 'none';
      return {
        status: 200,
        body: {
          permission,
          role_name: roleName,
          user: { ...this.#userJson(user.login), permissions: rolePermissions(role), role_name: roleName },
        },
      };
    });

    // --- Issues, comments, reactions
    const issueRead: Array<[string, 'read' | 'write']> = [['issues', 'read'], ['pull_requests', 'read']];
    const issueWrite: Array<[string, 'read' | 'write']> = [['issues', 'write'], ['pull_requests', 'write']];
    this.#route('GET', `${R}/issues/:number`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueRead);
      return { status: 200, body: this.#issueJson(repo, this.#issueState(repo, Number(ctx.params.number), true)) };
    });
    this.#route('GET', `${R}/issues/:number/comments`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueRead);
      const issue = this.#issueState(repo, Number(ctx.params.number), true);
      const all = [...this.#comments.values()].filter(
        (c) => c.repoKey === repo.fullName.toLowerCase() && c.issueNumber === issue.number,
      );
      const page = paginate(all, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/issues/${issue.number}/comments`);
      return { status: 200, body: page.items.map((c) => this.#commentJson(c)), headers: page.headers };
    });
    this.#route('POST', `${R}/issues/:number/comments`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueWrite);
      const issue = this.#issueState(repo, Number(ctx.params.number), true);
      const body = ctx.body.body;
      if (typeof body !== 'string' || body.length === 0) throw validation('body is missing', 'IssueComment', 'body');
      if (body.length > 65536) throw validation('Body is too long (maximum is 65536 characters)', 'IssueComment', 'body');
      const c = this.#newComment(repo, issue.number, this.botLogin, body, true);
      return { status: 201, body: this.#commentJson(c), headers: { location: `${this.apiUrl}/repos/${repo.fullName}/issues/comments/${c.id}` } };
    });
    this.#route('GET', `${R}/issues/comments/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueRead);
      return { status: 200, body: this.#commentJson(this.#commentIn(repo, Number(ctx.params.id))) };
    });
    this.#route('PATCH', `${R}/issues/comments/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueWrite);
      const c = this.#commentIn(repo, Number(ctx.params.id));
      const body = ctx.body.body;
      if (typeof body !== 'string' || body.length === 0) throw validation('body is missing', 'IssueComment', 'body');
      if (body.length > 65536) throw validation('Body is too long (maximum is 65536 characters)', 'IssueComment', 'body');
      c.history.push(body);
      c.updatedAt = Date.now();
      return { status: 200, body: this.#commentJson(c) };
    });
    this.#route('DELETE', `${R}/issues/comments/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...issueWrite);
      const c = this.#commentIn(repo, Number(ctx.params.id));
      this.#comments.delete(c.id);
      return { status: 204 };
    });
    const reactionRoutes = (base: string, subjectOf: (repo: RepoState, ctx: Ctx) => ReactionState['subject']) => {
      this.#route('GET', `${R}/${base}/reactions`, 'token', (ctx) => {
        const repo = this.#repoFor(ctx, ...issueRead);
        const subject = subjectOf(repo, ctx);
        const content = ctx.query.get('content');
        const all = this.#reactions.filter(
          (r) => r.repoKey === repo.fullName.toLowerCase() && sameSubject(r.subject, subject) && (!content || r.content === content),
        );
        return { status: 200, body: all.map((r) => this.#reactionJson(r)) };
      });
      this.#route('POST', `${R}/${base}/reactions`, 'token', (ctx) => {
        const repo = this.#repoFor(ctx, ...issueWrite);
        const subject = subjectOf(repo, ctx);
        const content = ctx.body.content;
        if (typeof content !== 'string' || !REACTIONS.includes(content)) throw validation('content is not a valid reaction', 'Reaction', 'content');
        const existing = this.#reactions.find(
          (r) => r.repoKey === repo.fullName.toLowerCase() && sameSubject(r.subject, subject) && r.content === content && r.user === this.botLogin,
        );
        if (existing) return { status: 200, body: this.#reactionJson(existing) };
        const r: ReactionState = { id: this.#id(), repoKey: repo.fullName.toLowerCase(), subject, content, user: this.botLogin, createdAt: Date.now() };
        this.#reactions.push(r);
        return { status: 201, body: this.#reactionJson(r) };
      });
      this.#route('DELETE', `${R}/${base}/reactions/:reactionId`, 'token', (ctx) => {
        const repo = this.#repoFor(ctx, ...issueWrite);
        const subject = subjectOf(repo, ctx);
        const i = this.#reactions.findIndex(
          (r) => r.id === Number(ctx.params.reactionId) && r.repoKey === repo.fullName.toLowerCase() && sameSubject(r.subject, subject),
        );
        if (i < 0) throw new ApiError(404, 'Not Found');
        this.#reactions.splice(i, 1);
        return { status: 204 };
      });
    };
    reactionRoutes('issues/comments/:id', (repo, ctx) => ({ commentId: this.#commentIn(repo, Number(ctx.params.id)).id }));
    reactionRoutes('issues/:number', (repo, ctx) => ({ issueNumber: this.#issueState(repo, Number(ctx.params.number), true).number }));

    // --- Contents
    this.#route('GET', `${R}/contents/*path`, 'token', (ctx) => this.#getContents(ctx));

    // --- Git Data
    this.#route('GET', `${R}/git/ref/*ref`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const ref = `refs/${ctx.params.ref ?? ''}`;
      const sha = await this.#refSha(repo, ref);
      if (!sha) throw new ApiError(404, 'Not Found');
      return { status: 200, body: await this.#refJson(repo, ref, sha) };
    });
    this.#route('GET', `${R}/git/matching-refs/*ref`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const prefix = `refs/${ctx.params.ref ?? ''}`;
      const out = (await this.#gitText(repo, ['for-each-ref', '--format=%(refname) %(objectname)', '--', 'refs/'])).trim();
      const refs = out ? out.split('\n').map((l) => l.split(' ') as [string, string]) : [];
      const body: Json[] = [];
      for (const [name, sha] of refs) if (name.startsWith(prefix)) body.push(await this.#refJson(repo, name, sha));
      return { status: 200, body };
    });
    this.#route('POST', `${R}/git/refs`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      const { ref, sha } = ctx.body;
      if (typeof ref !== 'string' || !/^refs\/[^/]+\/.+/.test(ref)) {
        throw new ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.");
      }
      await this.#checkRefFormat(ref);
      if (!isSha(sha) || !(await this.#objectType(repo, sha))) throw new ApiError(422, 'Object does not exist');
      if (await this.#refSha(repo, ref)) throw new ApiError(422, 'Reference already exists');
      await this.#gitText(repo, ['update-ref', ref, sha, ZERO_SHA]);
      await this.#syncPullRefs(repo);
      return {
        status: 201,
        body: await this.#refJson(repo, ref, sha),
        headers: { location: `${this.apiUrl}/repos/${repo.fullName}/git/${ref}` },
      };
    });
    this.#route('PATCH', `${R}/git/refs/*ref`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      const ref = `refs/${ctx.params.ref ?? ''}`;
      const { sha, force } = ctx.body;
      const current = await this.#refSha(repo, ref);
      if (!current) throw new ApiError(422, 'Reference does not exist');
      if (!isSha(sha) || !(await this.#objectType(repo, sha))) throw new ApiError(422, 'Object does not exist');
      if (force !== true && current !== sha) {
        const ff = await runGit(['--git-dir', repo.path, 'merge-base', '--is-ancestor', current, sha]).then(
          () => true,
          () => false,
        );
        if (!ff) throw new ApiError(422, 'Update is not a fast forward');
      }
      await this.#gitText(repo, ['update-ref', ref, sha, current]);
      await this.#syncPullRefs(repo);
      return { status: 200, body: await this.#refJson(repo, ref, sha) };
    });
    this.#route('DELETE', `${R}/git/refs/*ref`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      const ref = `refs/${ctx.params.ref ?? ''}`;
      const current = await this.#refSha(repo, ref);
      if (!current) throw new ApiError(422, 'Reference does not exist');
      await this.#gitText(repo, ['update-ref', '-d', ref, current]);
      return { status: 204 };
    });
    this.#route('POST', `${R}/git/blobs`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      const { content, encoding } = ctx.body;
      if (typeof content !== 'string') throw validation('content is missing', 'Blob', 'content');
      if (encoding !== undefined && encoding !== 'utf-8' && encoding !== 'base64') {
        throw validation('encoding must be utf-8 or base64', 'Blob', 'encoding');
      }
      const bytes = encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
      const sha = await this.#hashObject(repo, bytes);
      return {
        status: 201,
        body: { url: `${this.apiUrl}/repos/${repo.fullName}/git/blobs/${sha}`, sha },
        headers: { location: `${this.apiUrl}/repos/${repo.fullName}/git/blobs/${sha}` },
      };
    });
    this.#route('GET', `${R}/git/blobs/:sha`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const sha = ctx.params.sha!;
      if (!isSha(sha) || (await this.#objectType(repo, sha)) !== 'blob') throw new ApiError(404, 'Not Found');
      const bytes = await runGit(['--git-dir', repo.path, 'cat-file', 'blob', sha]);
      return {
        status: 200,
        body: {
          sha,
          node_id: nodeId('Blob', sha),
          size: bytes.length,
          url: `${this.apiUrl}/repos/${repo.fullName}/git/blobs/${sha}`,
          content: wrap64(bytes.toString('base64')),
          encoding: 'base64',
        },
      };
    });
    this.#route('POST', `${R}/git/trees`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      const { base_tree: baseTree, tree } = ctx.body;
      if (!Array.isArray(tree)) throw validation('tree is missing', 'Tree', 'tree');
      let base: string | undefined;
      if (baseTree !== undefined && baseTree !== null) {
        if (!isSha(baseTree)) throw validation('base_tree is not a valid SHA', 'Tree', 'base_tree');
        const type = await this.#objectType(repo, baseTree);
        if (type === 'commit') base = (await this.#gitText(repo, ['rev-parse', `${baseTree}^{tree}`])).trim();
        else if (type === 'tree') base = baseTree;
        else throw validation('base_tree does not exist', 'Tree', 'base_tree');
      }
      const sha = await this.#buildTree(repo, base, tree as TreeEntryInput[]);
      return { status: 201, body: await this.#treeJson(repo, sha, false) };
    });
    this.#route('GET', `${R}/git/trees/:sha`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const target = ctx.params.sha!;
      if (target.startsWith('-')) throw new ApiError(404, 'Not Found');
      const sha = await this.#resolve(repo, `${target}^{tree}`);
      if (!sha) throw new ApiError(404, 'Not Found');
      const recursive = ctx.query.has('recursive') && !['0', 'false'].includes(ctx.query.get('recursive') ?? '');
      return { status: 200, body: await this.#treeJson(repo, sha, recursive) };
    });
    this.#route('POST', `${R}/git/commits`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'write']);
      return { status: 201, body: await this.#createCommit(repo, ctx.body) };
    });
    this.#route('GET', `${R}/git/commits/:sha`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const sha = ctx.params.sha!;
      if (!isSha(sha) || (await this.#objectType(repo, sha)) !== 'commit') throw new ApiError(404, 'Not Found');
      return { status: 200, body: await this.#commitJson(repo, sha) };
    });

    // --- Pulls
    this.#route('POST', `${R}/pulls`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'write']);
      const { title, body, head, base, draft } = ctx.body;
      if (typeof title !== 'string' || !title) throw validation('title is missing', 'PullRequest', 'title');
      if (typeof head !== 'string' || !head) throw validation('head is missing', 'PullRequest', 'head');
      if (typeof base !== 'string' || !base) throw validation('base is missing', 'PullRequest', 'base');
      const pr = await this.#createPull(repo, this.botLogin, {
        title,
        body: typeof body === 'string' ? body : undefined,
        head,
        base,
        draft: draft === true,
      });
      return { status: 201, body: pr, headers: { location: String(pr.url) } };
    });
    this.#route('GET', `${R}/pulls`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const state = ctx.query.get('state') ?? 'open';
      const head = ctx.query.get('head');
      const base = ctx.query.get('base');
      let headRef: string | undefined;
      let headOwner = repo.owner.toLowerCase();
      if (head) {
        const i = head.indexOf(':');
        const owner = i >= 0 ? head.slice(0, i) : repo.owner;
        // `owner:branch`: the head branch in that owner's repository (the base repository or a fork).
        headRef = head.slice(i + 1);
        headOwner = owner.toLowerCase();
      }
      const matching = [...repo.issues.values()]
        .filter((i) => i.pull)
        .filter((i) => state === 'all' || i.state === state)
        .filter(
          (i) =>
            headRef === undefined ||
            (i.pull!.headRef === headRef && (i.pull!.headRepoKey ? this.#repo(i.pull!.headRepoKey).owner : repo.owner).toLowerCase() === headOwner),
        )
        .filter((i) => !base || i.pull!.baseRef === base)
        .sort((a, b) => (ctx.query.get('direction') === 'asc' ? a.number - b.number : b.number - a.number));
      const page = paginate(matching, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/pulls`);
      const body: Json[] = [];
      for (const i of page.items) body.push(await this.#pullJson(repo, i));
      return { status: 200, body, headers: page.headers };
    });
    this.#route('GET', `${R}/pulls/:number`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const issue = repo.issues.get(Number(ctx.params.number));
      if (!issue?.pull) throw new ApiError(404, 'Not Found');
      return { status: 200, body: await this.#pullJson(repo, issue) };
    });
    this.#route('PATCH', `${R}/pulls/:number`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'write']);
      const issue = repo.issues.get(Number(ctx.params.number));
      if (!issue?.pull) throw new ApiError(404, 'Not Found');
      const { title, body, state, base } = ctx.body;
      if (typeof title === 'string') issue.title = title;
      if (typeof body === 'string') issue.body = body;
      if (state === 'open' || state === 'closed') {
        issue.state = state;
        issue.closedAt = state === 'closed' ? Date.now() : null;
      }
      if (typeof base === 'string') {
        if (!(await this.#refSha(repo, `refs/heads/${base}`))) throw validation('base is invalid', 'PullRequest', 'base');
        issue.pull.baseRef = base;
      }
      issue.updatedAt = Date.now();
      return { status: 200, body: await this.#pullJson(repo, issue) };
    });

    // --- Pull request files, review comments, reviews; compare
    const pullOf = (repo: RepoState, ctx: Ctx): IssueState => {
      const issue = repo.issues.get(Number(ctx.params.number));
      if (!issue?.pull) throw new ApiError(404, 'Not Found');
      return issue;
    };
    this.#route('GET', `${R}/pulls/:number/files`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const issue = pullOf(repo, ctx);
      const { head, mergeBase } = await this.#pullShas(repo, issue);
      // GitHub lists at most 3000 files of a pull request.
      const files = (await this.#filesJson(repo, mergeBase, head)).slice(0, 3000);
      const page = paginate(files, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/pulls/${issue.number}/files`);
      return { status: 200, body: page.items, headers: page.headers };
    });
    this.#route('GET', `${R}/pulls/:number/comments`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const issue = pullOf(repo, ctx);
      const all = [...this.#reviewComments.values()].filter((c) => c.repoKey === repo.fullName.toLowerCase() && c.pullNumber === issue.number);
      if (ctx.query.get('direction') === 'desc') all.reverse();
      const page = paginate(all, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/pulls/${issue.number}/comments`);
      return { status: 200, body: page.items.map((c) => this.#reviewCommentJson(c)), headers: page.headers };
    });
    this.#route('POST', `${R}/pulls/:number/comments`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'write']);
      const issue = pullOf(repo, ctx);
      const b = ctx.body;
      const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
      const side = b.side === 'LEFT' || b.side === 'RIGHT' ? b.side : undefined;
      const c = await this.#newReviewComment(
        repo,
        issue,
        this.botLogin,
        {
          body: typeof b.body === 'string' ? b.body : '',
          ...(typeof b.path === 'string' ? { path: b.path } : {}),
          ...(num(b.line) !== undefined ? { line: num(b.line)! } : {}),
          ...(num(b.start_line) !== undefined ? { startLine: num(b.start_line)! } : {}),
          ...(side ? { side } : {}),
          ...(num(b.in_reply_to) !== undefined ? { inReplyTo: num(b.in_reply_to)! } : {}),
        },
        true,
      );
      return { status: 201, body: this.#reviewCommentJson(c) };
    });
    this.#route('POST', `${R}/pulls/:number/comments/:id/replies`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'write']);
      const issue = pullOf(repo, ctx);
      const body = ctx.body.body;
      const c = await this.#newReviewComment(repo, issue, this.botLogin, { body: typeof body === 'string' ? body : '', inReplyTo: Number(ctx.params.id) }, true);
      return { status: 201, body: this.#reviewCommentJson(c) };
    });
    this.#route('GET', `${R}/pulls/comments/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      return { status: 200, body: this.#reviewCommentJson(this.#reviewCommentIn(repo, Number(ctx.params.id))) };
    });
    reactionRoutes('pulls/comments/:id', (repo, ctx) => ({ reviewCommentId: this.#reviewCommentIn(repo, Number(ctx.params.id)).id }));
    const reviewsOf = (repo: RepoState, issue: IssueState): ReviewState[] =>
      [...this.#reviews.values()].filter((r) => r.repoKey === repo.fullName.toLowerCase() && r.pullNumber === issue.number);
    this.#route('GET', `${R}/pulls/:number/reviews`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const issue = pullOf(repo, ctx);
      const page = paginate(reviewsOf(repo, issue), ctx.query, `${this.apiUrl}/repos/${repo.fullName}/pulls/${issue.number}/reviews`);
      return { status: 200, body: page.items.map((r) => this.#reviewJson(r)), headers: page.headers };
    });
    this.#route('POST', `${R}/pulls/:number/reviews`, 'token', async (ctx) => {
      // https://docs.github.com/en/rest/pulls/reviews#create-a-review-for-a-pull-request: all or nothing;
      // a comment on a line outside the diff fails the whole review with 422 "Line could not be resolved".
      const repo = this.#repoFor(ctx, ['pull_requests', 'write']);
      const issue = pullOf(repo, ctx);
      const b = ctx.body;
      const event = b.event === undefined ? undefined : String(b.event);
      if (event !== undefined && !['APPROVE', 'REQUEST_CHANGES', 'COMMENT'].includes(event)) throw validation(`event is not one of APPROVE, REQUEST_CHANGES, COMMENT`, 'PullRequestReview', 'event');
      const body = typeof b.body === 'string' ? b.body : '';
      if ((event === 'COMMENT' || event === 'REQUEST_CHANGES') && !body && !Array.isArray(b.comments)) {
        throw new ApiError(422, 'Unprocessable Entity', { errors: [`Review body is required for ${event}`] });
      }
      const { head, mergeBase } = await this.#pullShas(repo, issue);
      let commitId = head;
      if (b.commit_id !== undefined) {
        if (!isSha(b.commit_id) || !(await this.#resolveCommit(repo, b.commit_id))) throw new ApiError(422, 'Unprocessable Entity', { errors: ['Commit is not part of the pull request'] });
        commitId = b.commit_id;
      }
      const comments = Array.isArray(b.comments) ? (b.comments as Json[]) : [];
      const lineError = (): ApiError => new ApiError(422, 'Unprocessable Entity', { errors: ['Line could not be resolved'] });
      const parsed: Array<{ body: string; path: string; line: number; startLine?: number; side: 'LEFT' | 'RIGHT'; diff: { commitId: string; text: string } }> = [];
      const diffs = new Map<string, string>();
      for (const c of comments) {
        if (typeof c.body !== 'string' || !c.body) throw validation('body is missing', 'PullRequestReviewComment', 'body');
        if (typeof c.path !== 'string' || !c.path) throw validation('path is missing', 'PullRequestReviewComment', 'path');
        if (c.position !== undefined) throw new ApiError(422, 'Unprocessable Entity', { errors: ['the stand-in supports line/side comments only, not position'] });
        if (typeof c.line !== 'number' || !Number.isSafeInteger(c.line) || c.line < 1) throw lineError();
        const side = c.side === 'LEFT' ? 'LEFT' : 'RIGHT';
        let diff = diffs.get(c.path);
        if (diff === undefined) {
          diff = await this.#gitText(repo, ['diff', '--no-ext-diff', '--no-color', mergeBase, commitId, '--', c.path]);
          diffs.set(c.path, diff);
        }
        const hunk = diffHunkFor(diff, c.line, side);
        if (hunk === undefined) throw lineError();
        let startLine: number | undefined;
        if (c.start_line !== undefined) {
          if (typeof c.start_line !== 'number' || c.start_line >= c.line) throw validation('start_line must precede line', 'PullRequestReviewComment', 'start_line');
          const startHunk = diffHunkFor(diff, c.start_line, c.start_side === 'LEFT' ? 'LEFT' : side);
          if (startHunk === undefined) throw lineError();
          if (startHunk.split('\n')[0] !== hunk.split('\n')[0]) {
            throw new ApiError(422, 'Unprocessable Entity', { errors: ['start_line must be part of the same hunk as the line.'] });
          }
          startLine = c.start_line;
        }
        parsed.push({ body: c.body, path: c.path, line: c.line, side, diff: { commitId, text: diff }, ...(startLine !== undefined ? { startLine } : {}) });
      }
      const review: ReviewState = {
        id: this.#id(), repoKey: repo.fullName.toLowerCase(), pullNumber: issue.number, user: this.botLogin, body,
        state: event === 'APPROVE' ? 'APPROVED' : event === 'REQUEST_CHANGES' ? 'CHANGES_REQUESTED' : event === 'COMMENT' ? 'COMMENTED' : 'PENDING',
        commitId, submittedAt: Date.now(), viaApp: true,
      };
      this.#reviews.set(review.id, review);
      for (const c of parsed) await this.#newReviewComment(repo, issue, this.botLogin, { ...c, reviewId: review.id }, true);
      return { status: 200, body: this.#reviewJson(review) };
    });
    this.#route('GET', `${R}/pulls/:number/reviews/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const review = reviewsOf(repo, pullOf(repo, ctx)).find((r) => r.id === Number(ctx.params.id));
      if (!review) throw new ApiError(404, 'Not Found');
      return { status: 200, body: this.#reviewJson(review) };
    });
    this.#route('GET', `${R}/pulls/:number/reviews/:id/comments`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ['pull_requests', 'read']);
      const review = reviewsOf(repo, pullOf(repo, ctx)).find((r) => r.id === Number(ctx.params.id));
      if (!review) throw new ApiError(404, 'Not Found');
      const all = [...this.#reviewComments.values()].filter((c) => c.reviewId === review.id);
      const page = paginate(all, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/pulls/${review.pullNumber}/reviews/${review.id}/comments`);
      return { status: 200, body: page.items.map((c) => this.#reviewCommentJson(c)), headers: page.headers };
    });
    this.#route('GET', `${R}/compare/*basehead`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ['contents', 'read']);
      const m = /^(.+?)\.\.\.(.+)$/.exec(ctx.params.basehead ?? '');
      if (!m) throw new ApiError(404, 'Not Found');
      const [baseName, headName] = [m[1]!, m[2]!];
      if (baseName.includes(':') || headName.includes(':')) throw new ApiError(404, 'Not Found (cross-repository compare is not supported by the stand-in)');
      const base = await this.#resolveCommit(repo, baseName);
      const head = await this.#resolveCommit(repo, headName);
      if (!base || !head) throw new ApiError(404, 'Not Found');
      const mergeBase = (await this.#gitText(repo, ['merge-base', base, head]).catch(() => '')).trim();
      if (!mergeBase) throw new ApiError(404, `No common ancestor between ${baseName} and ${headName}.`);
      const count = async (range: string): Promise<number> => Number((await this.#gitText(repo, ['rev-list', '--count', range])).trim());
      const ahead = await count(`${base}..${head}`);
      const behind = await count(`${head}..${base}`);
      const listed = (await this.#gitText(repo, ['rev-list', '--reverse', '--max-count=250', `${base}..${head}`])).split('\n').filter(Boolean);
      const listJson = async (sha: string): Promise<Json> => {
        const c = await this.#commitJson(repo, sha);
        return {
          sha,
          node_id: c.node_id,
          url: `${this.apiUrl}/repos/${repo.fullName}/commits/${sha}`,
          html_url: c.html_url,
          commit: { message: c.message, tree: c.tree, author: c.author, committer: c.committer, verification: c.verification },
          parents: c.parents,
        };
      };
      const commits: Json[] = [];
      for (const sha of listed) commits.push(await listJson(sha));
      const html = `${this.url}/${repo.fullName}/compare/${baseName}...${headName}`;
      return {
        status: 200,
        body: {
          url: `${this.apiUrl}/repos/${repo.fullName}/compare/${baseName}...${headName}`,
          html_url: html,
          permalink_url: `${this.url}/${repo.fullName}/compare/${base}...${head}`,
          diff_url: `${html}.diff`,
          patch_url: `${html}.patch`,
          base_commit: await listJson(base),
          merge_base_commit: await listJson(mergeBase),
          status: ahead && behind ? 'diverged' : ahead ? 'ahead' : behind ? 'behind' : 'identical',
          ahead_by: ahead,
          behind_by: behind,
          total_commits: ahead,
          commits,
          // GitHub compares the merge base with the head (three-dot).
          files: (await this.#filesJson(repo, mergeBase, head)).slice(0, 300),
        },
      };
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Contents

  async #getContents(ctx: Ctx): Promise<Result> {
    const repo = this.#repoFor(ctx, ['contents', 'read']);
    const path = (ctx.params.path ?? '').replace(/^\/+|\/+$/g, '');
    const refName = ctx.query.get('ref') || repo.defaultBranch;
    if (refName.startsWith('-')) throw new ApiError(404, `No commit found for the ref ${refName}`);
    const commit = await this.#resolveCommit(repo, refName);
    if (!commit) throw new ApiError(404, `No commit found for the ref ${refName}`);
    const raw = /application\/vnd\.github(\.v3)?\.raw/i.test(ctx.accept);
    const base = `${this.apiUrl}/repos/${repo.fullName}/contents`;
    const entryJson = (e: LsTreeEntry): Json => {
      const type = e.type === 'tree' ? 'dir' : e.type === 'commit' ? 'submodule' : e.mode === '120000' ? 'symlink' : 'file';
      const self = `${base}/${e.path}?ref=${encodeURIComponent(refName)}`;
      const gitUrl = `${this.apiUrl}/repos/${repo.fullName}/git/${e.type === 'tree' ? 'trees' : 'blobs'}/${e.sha}`;
      const html = `${this.url}/${repo.fullName}/${e.type === 'tree' ? 'tree' : 'blob'}/${refName}/${e.path}`;
      return {
        type,
        size: e.size,
        name: e.path.split('/').pop(),
        path: e.path,
        sha: e.sha,
        url: self,
        git_url: e.type === 'commit' ? null : gitUrl,
        html_url: e.type === 'commit' ? null : html,
        download_url: type === 'file' || type === 'symlink' ? `${this.url}/${repo.fullName}/raw/${refName}/${e.path}` : null,
        _links: { self, git: gitUrl, html },
      };
    };
    const listDir = async (): Promise<Result> => {
      const entries = await this.#lsTree(repo, commit, path ? `${path}/` : undefined, false);
      return { status: 200, body: entries.map(entryJson) };
    };
    if (!path) return listDir();
    const [entry] = await this.#lsTree(repo, commit, path, false);
    if (!entry || entry.path !== path) throw new ApiError(404, 'Not Found');
    if (entry.type === 'tree') return listDir();
    if (entry.type === 'commit') {
      return { status: 200, body: { ...entryJson(entry), submodule_git_url: null } };
    }
    const bytes = await runGit(['--git-dir', repo.path, 'cat-file', 'blob', entry.sha]);
    if (raw) {
      return { status: 200, raw: bytes, headers: { 'x-github-media-type': 'github.v3; param=raw' } };
    }
    const json = entryJson(entry);
    if (entry.mode === '120000') return { status: 200, body: { ...json, target: bytes.toString('utf8') } };
    return { status: 200, body: { ...json, content: wrap64(bytes.toString('base64')), encoding: 'base64' } };
  }

  // ---------------------------------------------------------------------------------------------------
  // Git plumbing

  async #gitText(repo: RepoState, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    return (await runGit(['--git-dir', repo.path, ...args], opts)).toString('utf8');
  }

  async #hashObject(repo: RepoState, bytes: Buffer): Promise<string> {
    return (await this.#gitText(repo, ['hash-object', '-w', '--stdin'], { input: bytes })).trim();
  }

  async #objectType(repo: RepoState, sha: string): Promise<string | undefined> {
    if (!isSha(sha)) return undefined;
    try {
      return (await this.#gitText(repo, ['cat-file', '-t', sha])).trim();
    } catch {
      return undefined;
    }
  }

  async #resolve(repo: RepoState, rev: string): Promise<string | undefined> {
    if (rev.startsWith('-')) return undefined;
    try {
      return (await this.#gitText(repo, ['rev-parse', '--verify', '--quiet', rev])).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  #resolveCommit(repo: RepoState, rev: string): Promise<string | undefined> {
    return this.#resolve(repo, `${rev}^{commit}`);
  }

  async #refSha(repo: RepoState, ref: string): Promise<string | undefined> {
    if (!ref.startsWith('refs/')) return undefined;
    try {
      const out = (await this.#gitText(repo, ['show-ref', '--verify', '--', ref])).trim();
      return out.split(' ')[0];
    } catch {
      return undefined;
    }
  }

  async #checkRefFormat(ref: string): Promise<void> {
    try {
      await runGit(['check-ref-format', ref]);
    } catch {
      throw new ApiError(422, 'Reference name is not valid');
    }
  }

  async #refJson(repo: RepoState, ref: string, sha: string): Promise<Json> {
    const type = (await this.#objectType(repo, sha)) ?? 'commit';
    return {
      ref,
      node_id: nodeId('Ref', `${repo.id}:${ref}`),
      url: `${this.apiUrl}/repos/${repo.fullName}/git/${ref}`,
      object: { sha, type, url: `${this.apiUrl}/repos/${repo.fullName}/git/${type}s/${sha}` },
    };
  }

  async #lsTree(repo: RepoState, treeish: string, path: string | undefined, recursive: boolean): Promise<LsTreeEntry[]> {
    const args = ['ls-tree', '-z', '-l', ...(recursive ? ['-r', '-t'] : []), treeish];
    if (path !== undefined) args.push('--', path);
    const out = await this.#gitText(repo, args);
    return out
      .split('\0')
      .filter(Boolean)
      .map((line) => {
        const tab = line.indexOf('\t');
        const [mode, type, sha, size] = line.slice(0, tab).split(/\s+/) as [string, string, string, string];
        return { mode, type, sha, size: size === '-' ? 0 : Number(size), path: line.slice(tab + 1) };
      });
  }

  async #treeJson(repo: RepoState, sha: string, recursive: boolean): Promise<Json> {
    const entries = await this.#lsTree(repo, sha, undefined, recursive);
    return {
      sha,
      url: `${this.apiUrl}/repos/${repo.fullName}/git/trees/${sha}`,
      tree: entries.map((e) => ({
        path: e.path,
        mode: e.mode,
        type: e.type,
        sha: e.sha,
        ...(e.type === 'blob' ? { size: e.size } : {}),
        url: `${this.apiUrl}/repos/${repo.fullName}/git/${e.type}s/${e.sha}`,
      })),
      truncated: false,
    };
  }

  /**
   * Builds a tree like `POST /git/trees`: starts from `base` (all its files) or empty, applies entries
   * (replace, add, `sha: null` delete of a file or a whole directory), writes it through a temp index.
   * @throws ApiError 422 on malformed entries or missing objects.
   */
  async #buildTree(repo: RepoState, base: string | undefined, entries: TreeEntryInput[]): Promise<string> {
    const files = new Map<string, { mode: string; sha: string }>();
    if (base) {
      for (const e of await this.#lsTree(repo, base, undefined, true)) {
        if (e.type !== 'tree') files.set(e.path, { mode: e.mode, sha: e.sha });
      }
    }
    const removeUnder = (path: string): void => {
      files.delete(path);
      for (const key of [...files.keys()]) if (key.startsWith(`${path}/`)) files.delete(key);
      const parts = path.split('/');
      for (let i = 1; i < parts.length; i++) files.delete(parts.slice(0, i).join('/'));
    };
    for (const raw of entries) {
      if (!raw || typeof raw !== 'object') throw validation('tree entry is not an object', 'Tree', 'tree');
      const { path, mode, type } = raw;
      if (typeof path !== 'string' || !path || path.split('/').some((s) => !s || s === '.' || s === '..' || s === '.git')) {
        throw new ApiError(422, `tree.path contains a malformed path component`);
      }
      const hasContent = raw.content !== undefined || raw.contentBuffer !== undefined;
      if (!hasContent && raw.sha === null) {
        removeUnder(path);
        continue;
      }
      if (hasContent && raw.sha !== undefined) throw new ApiError(422, 'Must supply either tree.sha or tree.content. Request will be rejected if both are present.');
      const expected = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : ['100644', '100755', '120000'].includes(String(mode)) ? 'blob' : undefined;
      if (!expected) throw new ApiError(422, `tree.mode must be one of 100644, 100755, 040000, 160000 or 120000`);
      if (type !== undefined && type !== expected) throw new ApiError(422, `tree.type ${String(type)} does not match mode ${String(mode)}`);
      let sha: string;
      if (hasContent) {
        if (expected !== 'blob') throw new ApiError(422, 'tree.content is only valid for blobs');
        if (raw.contentBuffer === undefined && typeof raw.content !== 'string') throw new ApiError(422, 'tree.content must be a string');
        sha = await this.#hashObject(repo, raw.contentBuffer ?? Buffer.from(raw.content as string, 'utf8'));
      } else {
        if (!isSha(raw.sha)) throw new ApiError(422, 'tree.sha is not a valid SHA');
        sha = raw.sha;
        if (expected !== 'commit' && (await this.#objectType(repo, sha)) !== expected) throw new ApiError(422, `tree.sha ${sha} is not a valid ${expected}`);
      }
      removeUnder(path);
      if (expected === 'tree') {
        for (const e of await this.#lsTree(repo, sha, undefined, true)) {
          if (e.type !== 'tree') files.set(`${path}/${e.path}`, { mode: e.mode, sha: e.sha });
        }
      } else {
        files.set(path, { mode: String(mode), sha });
      }
    }
    const tmp = await mkdtemp(join(tmpdir(), 'stand-in-index-'));
    try {
      const env = { GIT_INDEX_FILE: join(tmp, 'index') };
      const info = [...files].map(([p, f]) => `${f.mode} ${f.sha}\t${p}\0`).join('');
      if (info) await this.#gitText(repo, ['update-index', '--add', '-z', '--index-info'], { env, input: info });
      return (await this.#gitText(repo, ['write-tree'], { env })).trim();
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  async #createCommit(repo: RepoState, body: Json): Promise<Json> {
    const { message, tree, parents, author, committer, signature } = body;
    if (typeof message !== 'string') throw validation('message is missing', 'Commit', 'message');
    if (!isSha(tree) || (await this.#objectType(repo, tree)) !== 'tree') throw new ApiError(422, 'Tree SHA does not exist');
    const parentList = parents ?? [];
    if (!Array.isArray(parentList)) throw validation('parents must be an array', 'Commit', 'parents');
    for (const p of parentList) {
      if (!isSha(p) || (await this.#objectType(repo, p)) !== 'commit') throw new ApiError(422, 'Parent SHA does not exist or is not a commit object');
    }
    const bot = this.#user(this.botLogin, 'Bot');
    const person = (p: unknown, fallback: { name: string; email: string }): { name: string; email: string; date?: string } => {
      if (p === undefined || p === null) return fallback;
      if (typeof p !== 'object') throw validation('author/committer must be objects', 'Commit', 'author');
      const { name, email, date } = p as Json;
      if (typeof name !== 'string' || typeof email !== 'string') throw validation('name and email are required', 'Commit', 'author');
      if (date !== undefined && (typeof date !== 'string' || Number.isNaN(Date.parse(date)))) throw validation('date is invalid', 'Commit', 'date');
      return { name, email, ...(typeof date === 'string' ? { date } : {}) };
    };
    const a = person(author, { name: this.botLogin, email: `${bot.id}+${this.botLogin}@users.noreply.github.com` });
    // GitHub commits API-created commits itself (committer "GitHub") unless the caller names a committer.
    const c = person(committer, { name: 'GitHub', email: 'noreply@github.com' });
    const env: NodeJS.ProcessEnv = {
      GIT_AUTHOR_NAME: a.name,
      GIT_AUTHOR_EMAIL: a.email,
      GIT_COMMITTER_NAME: c.name,
      GIT_COMMITTER_EMAIL: c.email,
    };
    if (a.date) env.GIT_AUTHOR_DATE = a.date;
    if (c.date) env.GIT_COMMITTER_DATE = c.date;
    const args = ['commit-tree', tree];
    for (const p of parentList as string[]) args.push('-p', p);
    args.push('-F', '-');
    const sha = (await this.#gitText(repo, args, { env, input: message })).trim();
    this.#verification.set(
      sha,
      committer || signature
        ? { verified: false, reason: signature ? 'unknown_key' : 'unsigned', signature: null, payload: null, verified_at: null }
        : { verified: true, reason: 'valid', signature: '-----BEGIN PGP SIGNATURE-----\n(stand-in)\n-----END PGP SIGNATURE-----\n', payload: null, verified_at: iso(Date.now()) },
    );
    return this.#commitJson(repo, sha);
  }

  async #commitJson(repo: RepoState, sha: string): Promise<Json> {
    const raw = await this.#gitText(repo, ['cat-file', 'commit', sha]);
    const split = raw.indexOf('\n\n');
    const headerText = split >= 0 ? raw.slice(0, split) : raw;
    const message = split >= 0 ? raw.slice(split + 2) : '';
    let tree = '';
    const parents: string[] = [];
    const people: Record<string, Json> = {};
    for (const line of headerText.split('\n')) {
      const sp = line.indexOf(' ');
      const key = line.slice(0, sp);
      const value = line.slice(sp + 1);
      if (key === 'tree') tree = value;
      else if (key === 'parent') parents.push(value);
      else if (key === 'author' || key === 'committer') {
        const m = /^(.*) <(.*)> (\d+) ([+-]\d{4})$/.exec(value);
        if (m) people[key] = { name: m[1], email: m[2], date: iso(Number(m[3]) * 1000) };
      }
    }
    return {
      sha,
      node_id: nodeId('Commit', sha),
      url: `${this.apiUrl}/repos/${repo.fullName}/git/commits/${sha}`,
      html_url: `${this.url}/${repo.fullName}/commit/${sha}`,
      author: people.author,
      committer: people.committer,
      tree: { sha: tree, url: `${this.apiUrl}/repos/${repo.fullName}/git/trees/${tree}` },
      message: message.replace(/\n$/, ''),
      parents: parents.map((p) => ({
        sha: p,
        url: `${this.apiUrl}/repos/${repo.fullName}/git/commits/${p}`,
        html_url: `${this.url}/${repo.fullName}/commit/${p}`,
      })),
      verification: this.#verification.get(sha) ?? { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Pulls

  async #createPull(
    repo: RepoState,
    login: string,
    pr: { head: string; base: string; title: string; body?: string | undefined; draft?: boolean | undefined },
  ): Promise<Json> {
    const colon = pr.head.indexOf(':');
    if (colon >= 0 && pr.head.slice(0, colon).toLowerCase() !== repo.owner.toLowerCase()) {
      throw validation('head is invalid (forks are not supported by the stand-in)', 'PullRequest', 'head');
    }
    const headRef = colon >= 0 ? pr.head.slice(colon + 1) : pr.head;
    const headSha = await this.#refSha(repo, `refs/heads/${headRef}`);
    if (!headSha) throw validation(`head ${headRef} does not exist`, 'PullRequest', 'head');
    const baseSha = await this.#refSha(repo, `refs/heads/${pr.base}`);
    if (!baseSha) throw validation(`base ${pr.base} does not exist`, 'PullRequest', 'base');
    for (const i of repo.issues.values()) {
      if (i.pull && !i.pull.headRepoKey && i.state === 'open' && i.pull.headRef === headRef && i.pull.baseRef === pr.base) {
        throw new ApiError(422, 'Validation Failed', {
          errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${repo.owner}:${headRef}.` }],
        });
      }
    }
    const ahead = (await this.#gitText(repo, ['rev-list', '--count', `${baseSha}..${headSha}`])).trim();
    if (ahead === '0') {
      throw new ApiError(422, 'Validation Failed', {
        errors: [{ resource: 'PullRequest', code: 'custom', message: `No commits between ${pr.base} and ${headRef}` }],
      });
    }
    const now = Date.now();
    const number = repo.nextNumber++;
    const issue: IssueState = {
      id: this.#id(),
      number,
      title: pr.title,
      body: pr.body ?? null,
      user: login,
      state: 'open',
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      pull: { id: this.#id(), headRef, baseRef: pr.base, headSha, baseSha, draft: pr.draft === true, merged: false },
    };
    repo.issues.set(number, issue);
    await this.#syncPullRefs(repo);
    return this.#pullJson(repo, issue);
  }

  async #pullJson(repo: RepoState, issue: IssueState): Promise<Json> {
    const pull = issue.pull!;
    // A fork's head is read from `refs/pull/<n>/head` (its objects are in this repository).
    const liveHead = await this.#refSha(repo, pull.headRepoKey ? `refs/pull/${issue.number}/head` : `refs/heads/${pull.headRef}`);
    if (liveHead) pull.headSha = liveHead;
    const headRepo = pull.headRepoKey ? this.#repo(pull.headRepoKey) : repo;
    const baseSha = (await this.#refSha(repo, `refs/heads/${pull.baseRef}`)) ?? pull.baseSha;
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = `${this.url}/${repo.fullName}/pull/${issue.number}`;
    const repoJson = this.#repoJson(repo);
    const owner = this.#userJson(repo.owner);
    const commentCount = [...this.#comments.values()].filter((c) => c.repoKey === repo.fullName.toLowerCase() && c.issueNumber === issue.number).length;
    return {
      url: `${api}/pulls/${issue.number}`,
      id: pull.id,
      node_id: nodeId('PullRequest', pull.id),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: `${api}/issues/${issue.number}`,
      commits_url: `${api}/pulls/${issue.number}/commits`,
      review_comments_url: `${api}/pulls/${issue.number}/comments`,
      review_comment_url: `${api}/pulls/comments{/number}`,
      comments_url: `${api}/issues/${issue.number}/comments`,
      statuses_url: `${api}/statuses/${pull.headSha}`,
      number: issue.number,
      state: issue.state,
      locked: false,
      title: issue.title,
      user: this.#userJson(issue.user),
      body: issue.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: iso(issue.createdAt),
      updated_at: iso(issue.updatedAt),
      closed_at: issue.closedAt === null ? null : iso(issue.closedAt),
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: {
        label: `${headRepo.owner}:${pull.headRef}`,
        ref: pull.headRef,
        sha: pull.headSha,
        user: this.#userJson(headRepo.owner),
        repo: headRepo === repo ? repoJson : { ...this.#repoJson(headRepo), fork: true },
      },
      base: { label: `${repo.owner}:${pull.baseRef}`, ref: pull.baseRef, sha: baseSha, user: owner, repo: repoJson },
      _links: {
        self: { href: `${api}/pulls/${issue.number}` },
        html: { href: html },
        issue: { href: `${api}/issues/${issue.number}` },
        comments: { href: `${api}/issues/${issue.number}/comments` },
        review_comments: { href: `${api}/pulls/${issue.number}/comments` },
        commits: { href: `${api}/pulls/${issue.number}/commits` },
        statuses: { href: `${api}/statuses/${pull.headSha}` },
      },
      author_association: this.#association(repo, issue.user),
      auto_merge: null,
      draft: pull.draft,
      merged: pull.merged,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: commentCount,
      review_comments: [...this.#reviewComments.values()].filter((c) => c.repoKey === repo.fullName.toLowerCase() && c.pullNumber === issue.number).length,
      maintainer_can_modify: pull.maintainerCanModify ?? false,
      commits: Number((await this.#gitText(repo, ['rev-list', '--count', `${baseSha}..${pull.headSha}`])).trim()),
      additions: 0,
      deletions: 0,
      changed_files: (await this.#gitText(repo, ['diff', '--name-only', `${baseSha}...${pull.headSha}`])).split('\n').filter(Boolean).length,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Pull request refs, files, review comments and reviews

  /**
   * Keeps `refs/pull/<n>/head` of every pull request whose head branch lives in `headRepo` at that
   * branch's tip (fetching the objects from a fork), as GitHub does after each push.
   */
  async #syncPullRefs(headRepo: RepoState): Promise<void> {
    const headKey = headRepo.fullName.toLowerCase();
    for (const repo of this.#repos.values()) {
      for (const issue of repo.issues.values()) {
        const pull = issue.pull;
        if (!pull || (pull.headRepoKey ?? repo.fullName.toLowerCase()) !== headKey) continue;
        const tip = await this.#refSha(headRepo, `refs/heads/${pull.headRef}`);
        if (!tip) continue;
        pull.headSha = tip;
        const ref = `refs/pull/${issue.number}/head`;
        if ((await this.#refSha(repo, ref)) === tip) continue;
        if (headRepo === repo) await this.#gitText(repo, ['update-ref', ref, tip]);
        else await this.#gitText(repo, ['fetch', '--quiet', '--no-tags', headRepo.path, `+refs/heads/${pull.headRef}:${ref}`]);
      }
    }
  }

  /** The pull request's live base and head SHAs and their merge base (all 40 hex). */
  async #pullShas(repo: RepoState, issue: IssueState): Promise<{ base: string; head: string; mergeBase: string }> {
    await this.#pullJson(repo, issue);
    const pull = issue.pull!;
    const base = (await this.#refSha(repo, `refs/heads/${pull.baseRef}`)) ?? pull.baseSha;
    const head = (await this.#refSha(repo, `refs/pull/${issue.number}/head`)) ?? pull.headSha;
    const mergeBase = (await this.#gitText(repo, ['merge-base', base, head]).catch(() => base)).trim();
    return { base, head, mergeBase };
  }

  /**
   * The changed files between two commits, as `GET /pulls/{n}/files` and `GET /compare` list them
   * (renames are reported as a removal and an addition; `patch` is the file's hunks, absent for binary files).
   */
  async #filesJson(repo: RepoState, from: string, to: string): Promise<Json[]> {
    const raw = (await this.#gitText(repo, ['diff', '--raw', '-z', '--no-abbrev', '--no-renames', from, to])).split('\0');
    const numstat = (await this.#gitText(repo, ['diff', '--numstat', '-z', '--no-renames', from, to])).split('\0');
    const counts = new Map<string, { additions: number; deletions: number; binary: boolean }>();
    for (const entry of numstat) {
      const m = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(entry);
      if (m) counts.set(m[3]!, { additions: Number(m[1]) || 0, deletions: Number(m[2]) || 0, binary: m[1] === '-' });
    }
    const out: Json[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const meta = raw[i]!;
      const filename = raw[i + 1]!;
      if (!meta.startsWith(':')) break;
      const [, , oldSha, newSha, code] = meta.slice(1).split(' ') as [string, string, string, string, string];
      const status = code === 'A' ? 'added' : code === 'D' ? 'removed' : 'modified';
      const c = counts.get(filename) ?? { additions: 0, deletions: 0, binary: false };
      const sha = status === 'removed' ? oldSha : newSha;
      const file: Json = {
        sha,
        filename,
        status,
        additions: c.additions,
        deletions: c.deletions,
        changes: c.additions + c.deletions,
        blob_url: `${this.url}/${repo.fullName}/blob/${to}/${filename}`,
        raw_url: `${this.url}/${repo.fullName}/raw/${to}/${filename}`,
        contents_url: `${this.apiUrl}/repos/${repo.fullName}/contents/${filename}?ref=${to}`,
      };
      if (!c.binary) {
        const diff = await this.#gitText(repo, ['diff', '--no-ext-diff', '--no-color', from, to, '--', filename]);
        const at = diff.indexOf('\n@@');
        if (at >= 0) file.patch = diff.slice(at + 1).replace(/\n$/, '');
      }
      out.push(file);
    }
    return out;
  }

  async #newReviewComment(
    repo: RepoState,
    issue: IssueState,
    user: string,
    c: {
      body: string; path?: string; line?: number; startLine?: number; side?: 'LEFT' | 'RIGHT'; reviewId?: number; inReplyTo?: number;
      /** The file's diff (merge base → `commitId`) when the caller computed it already (a review with many comments). */
      diff?: { commitId: string; text: string };
    },
    viaApp: boolean,
  ): Promise<ReviewCommentState> {
    if (typeof c.body !== 'string' || !c.body) throw validation('body is missing', 'PullRequestReviewComment', 'body');
    const now = Date.now();
    const key = repo.fullName.toLowerCase();
    let fields: Pick<ReviewCommentState, 'path' | 'line' | 'startLine' | 'side' | 'startSide' | 'commitId' | 'diffHunk' | 'inReplyTo'>;
    if (c.inReplyTo !== undefined) {
      const parent = this.#reviewComments.get(c.inReplyTo);
      if (!parent || parent.repoKey !== key || parent.pullNumber !== issue.number) throw new ApiError(404, 'Not Found');
      const { path, line, startLine, side, startSide, commitId, diffHunk } = parent;
      fields = { path, line, startLine, side, startSide, commitId, diffHunk, inReplyTo: parent.inReplyTo ?? parent.id };
    } else {
      const side = c.side ?? 'RIGHT';
      if (typeof c.path !== 'string' || !c.path) throw validation('path is missing', 'PullRequestReviewComment', 'path');
      if (!Number.isSafeInteger(c.line) || (c.line as number) < 1) throw validation('line is missing', 'PullRequestReviewComment', 'line');
      let head: string;
      let diff: string;
      if (c.diff) {
        ({ commitId: head, text: diff } = c.diff);
      } else {
        const shas = await this.#pullShas(repo, issue);
        head = shas.head;
        diff = await this.#gitText(repo, ['diff', '--no-ext-diff', '--no-color', shas.mergeBase, head, '--', c.path]);
      }
      const hunk = diffHunkFor(diff, c.line as number, side);
      const startOk = c.startLine === undefined || (c.startLine < (c.line as number) && diffHunkFor(diff, c.startLine, side) !== undefined);
      if (hunk === undefined || !startOk) {
        throw new ApiError(422, 'Validation Failed', {
          errors: [{ resource: 'PullRequestReviewComment', code: 'custom', field: 'pull_request_review_thread.line', message: 'pull_request_review_thread.line must be part of the diff' }],
        });
      }
      fields = {
        path: c.path, line: c.line as number, startLine: c.startLine ?? null, side, startSide: c.startLine === undefined ? null : side,
        commitId: head, diffHunk: hunk, inReplyTo: null,
      };
    }
    const state: ReviewCommentState = {
      id: this.#id(), repoKey: key, pullNumber: issue.number, reviewId: c.reviewId ?? null, user, body: c.body, ...fields,
      createdAt: now, updatedAt: now, viaApp,
    };
    if (state.reviewId === null) {
      // A lone comment is a one-comment review on GitHub.
      const review: ReviewState = {
        id: this.#id(), repoKey: key, pullNumber: issue.number, user, body: '', state: 'COMMENTED', commitId: state.commitId, submittedAt: now, viaApp,
      };
      this.#reviews.set(review.id, review);
      state.reviewId = review.id;
    }
    this.#reviewComments.set(state.id, state);
    return state;
  }

  #reviewCommentIn(repo: RepoState, id: number): ReviewCommentState {
    const c = this.#reviewComments.get(id);
    if (!c || c.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
    return c;
  }

  #reviewCommentJson(c: ReviewCommentState): Json {
    const repo = this.#repo(c.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = `${this.url}/${repo.fullName}/pull/${c.pullNumber}#discussion_r${c.id}`;
    const json: Json = {
      url: `${api}/pulls/comments/${c.id}`,
      pull_request_review_id: c.reviewId,
      id: c.id,
      node_id: nodeId('PullRequestReviewComment', c.id),
      diff_hunk: c.diffHunk,
      path: c.path,
      commit_id: c.commitId,
      original_commit_id: c.commitId,
      user: this.#userJson(c.user),
      body: c.body,
      created_at: iso(c.createdAt),
      updated_at: iso(c.updatedAt),
      html_url: html,
      pull_request_url: `${api}/pulls/${c.pullNumber}`,
      author_association: this.#association(repo, c.user),
      _links: { self: { href: `${api}/pulls/comments/${c.id}` }, html: { href: html }, pull_request: { href: `${api}/pulls/${c.pullNumber}` } },
      reactions: this.#reactionSummary(repo, { reviewCommentId: c.id }, `${api}/pulls/comments/${c.id}/reactions`),
      start_line: c.startLine,
      original_start_line: c.startLine,
      start_side: c.startSide,
      line: c.line,
      original_line: c.line,
      side: c.side,
      subject_type: 'line',
      performed_via_github_app: c.viaApp ? this.#appJson() : null,
    };
    if (c.inReplyTo !== null) json.in_reply_to_id = c.inReplyTo;
    return json;
  }

  #reviewJson(r: ReviewState): Json {
    const repo = this.#repo(r.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = `${this.url}/${repo.fullName}/pull/${r.pullNumber}#pullrequestreview-${r.id}`;
    return {
      id: r.id,
      node_id: nodeId('PullRequestReview', r.id),
      user: this.#userJson(r.user),
      body: r.body,
      state: r.state,
      html_url: html,
      pull_request_url: `${api}/pulls/${r.pullNumber}`,
      author_association: this.#association(repo, r.user),
      _links: { html: { href: html }, pull_request: { href: `${api}/pulls/${r.pullNumber}` } },
      submitted_at: iso(r.submittedAt),
      commit_id: r.commitId,
    };
  }

  // ---------------------------------------------------------------------------------------------------
  // Checks and Actions: check suites, check runs, annotations, workflow runs, jobs and job logs
  // (https://docs.github.com/en/rest/checks, https://docs.github.com/en/rest/actions/workflow-runs,
  // https://docs.github.com/en/rest/actions/workflow-jobs). A GitHub Actions job is also a check run
  // with the same id (as on GitHub); its log is served, like GitHub's, through a 302 redirect to a
  // presigned URL on another origin (the stand-in's log host, see {@link logHostUrl}).

  readonly #checkSuites = new Map<number, CheckSuiteState>();
  readonly #checkRuns = new Map<number, CheckRunState>();
  readonly #workflowRuns = new Map<number, WorkflowRunState>();
  readonly #jobs = new Map<number, JobState>();
  #logHost: LogHost | undefined;

  /** Requests that reached the log host (the presigned-URL origin of job logs), in order. */
  get logRequests(): LogRequestRecord[] {
    return this.#logHost?.requests ?? [];
  }

  /** Origin of the log host (`http://127.0.0.1:PORT`, another port than {@link url}); undefined until a workflow run exists. */
  get logHostUrl(): string | undefined {
    return this.#logHost?.url;
  }

  /**
   * Adds a completed (by default) check run on `headSha` for `app` (default a third-party CI app,
   * {@link STAND_IN_CI_APP}; `'own'` is this App, `'github-actions'` GitHub Actions), in that app's
   * check suite for the commit (created on first use). `conclusion` defaults to `failure`.
   * @returns the REST check run object.
   */
  addCheckRun(fullName: string, spec: CheckRunSpec): Json {
    const repo = this.#repo(fullName);
    const app = resolveCheckApp(spec.app ?? STAND_IN_CI_APP, this);
    const suite = this.#suiteFor(repo, app, spec.headSha, spec.headBranch);
    const run = this.#newCheckRun(repo, suite, {
      name: spec.name,
      status: spec.status ?? 'completed',
      conclusion: (spec.status ?? 'completed') === 'completed' ? (spec.conclusion === undefined ? 'failure' : spec.conclusion) : null,
      output: spec.output ?? {},
      annotations: spec.annotations ?? [],
      detailsUrl: spec.detailsUrl ?? null,
      externalId: spec.externalId ?? '',
      startedAt: spec.startedAt ?? Date.now(),
      completedAt: spec.completedAt ?? Date.now(),
    });
    this.#refreshSuite(suite);
    return this.#checkRunJson(run);
  }

  /**
   * Adds a completed GitHub Actions workflow run on `headSha` with its jobs: a check suite of the
   * `github-actions` app, one check run per job (same id as the job), each job's steps with times and a
   * log in GitHub's format (BOM, ISO timestamps with 7 fractional digits on every line, `##[group]Run …`
   * / `##[endgroup]` around each step's header, `##[error]Process completed with exit code 1.` at the
   * end of a failed step; see {@link actionsJobLog}), unless a job gives its own `log`. A failed job's
   * check run carries GitHub's usual annotation (`Process completed with exit code 1.` on `.github`).
   * @returns the REST workflow run, its jobs, their check runs and the suite.
   */
  async addWorkflowRun(
    fullName: string,
    spec: WorkflowRunSpec,
  ): Promise<{ run: Json; jobs: Json[]; checkRuns: Json[]; suite: Json }> {
    const repo = this.#repo(fullName);
    this.#logHost ??= await LogHost.start();
    const app = resolveCheckApp('github-actions', this);
    const headBranch = spec.headBranch ?? this.#branchOfHead(repo, spec.headSha) ?? repo.defaultBranch;
    const suite = this.#suiteFor(repo, app, spec.headSha, headBranch, true);
    const runId = this.#id();
    const started = spec.startedAt ?? Date.now() - 60_000;
    const jobs: JobState[] = [];
    let at = started;
    for (const jobSpec of spec.jobs) {
      const built = actionsJobLog(jobSpec.steps ?? DEFAULT_STEPS, at);
      const failed = built.steps.some((s) => s.conclusion === 'failure');
      const conclusion = jobSpec.conclusion ?? (failed ? 'failure' : 'success');
      const run = this.#newCheckRun(repo, suite, {
        name: jobSpec.name,
        status: 'completed',
        conclusion,
        output: jobSpec.output ?? {},
        annotations: [
          ...(jobSpec.annotations ?? []),
          ...(conclusion === 'failure' ? [{ path: '.github', startLine: 1, level: 'failure' as const, message: 'Process completed with exit code 1.' }] : []),
        ],
        detailsUrl: null,
        externalId: randomUUID(),
        startedAt: built.startedAt,
        completedAt: built.completedAt,
        runId,
      });
      const job: JobState = {
        id: run.id,
        runId,
        repoKey: repo.fullName.toLowerCase(),
        name: jobSpec.name,
        conclusion,
        startedAt: built.startedAt,
        completedAt: built.completedAt,
        steps: built.steps,
        log: jobSpec.log ?? built.log,
        logStatus: jobSpec.logStatus,
      };
      this.#jobs.set(job.id, job);
      jobs.push(job);
      at = built.completedAt + 1000;
    }
    const conclusion = spec.conclusion ?? (jobs.some((j) => j.conclusion === 'failure') ? 'failure' : jobs.some((j) => j.conclusion === 'timed_out') ? 'timed_out' : 'success');
    const wr: WorkflowRunState = {
      id: runId,
      repoKey: repo.fullName.toLowerCase(),
      name: spec.name ?? 'CI',
      path: spec.path ?? '.github/workflows/ci.yml',
      headSha: spec.headSha,
      headBranch,
      event: spec.event ?? 'pull_request',
      conclusion,
      suiteId: suite.id,
      runNumber: [...this.#workflowRuns.values()].filter((r) => r.repoKey === repo.fullName.toLowerCase()).length + 1,
      workflowId: 100 + [...(spec.path ?? '.github/workflows/ci.yml')].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 1_000_000, 7),
      createdAt: started,
      updatedAt: at,
      actor: spec.actor ?? repo.owner,
    };
    this.#workflowRuns.set(wr.id, wr);
    this.#refreshSuite(suite);
    return {
      run: await this.#workflowRunJson(wr),
      jobs: jobs.map((j) => this.#jobJson(j)),
      checkRuns: jobs.map((j) => this.#checkRunJson(this.#checkRuns.get(j.id)!)),
      suite: this.#checkSuiteJson(suite),
    };
  }

  /** The REST check suite object. @throws Error if unknown. */
  checkSuite(suiteId: number): Json {
    const suite = this.#checkSuites.get(suiteId);
    if (!suite) throw new Error(`no check suite ${suiteId}`);
    return this.#checkSuiteJson(suite);
  }

  /** The REST workflow run object. @throws Error if unknown. */
  async workflowRun(runId: number): Promise<Json> {
    const run = this.#workflowRuns.get(runId);
    if (!run) throw new Error(`no workflow run ${runId}`);
    return this.#workflowRunJson(run);
  }

  /** Check runs on a commit (REST objects, every attempt, oldest first). */
  checkRuns(fullName: string, headSha: string): Json[] {
    const key = this.#repo(fullName).fullName.toLowerCase();
    return [...this.#checkRuns.values()].filter((c) => c.repoKey === key && c.headSha === headSha).map((c) => this.#checkRunJson(c));
  }

  /**
   * Makes a job's log endpoint answer `status` from now on (404: expired or deleted logs, 410, 500…),
   * or serve the log again with `undefined`.
   */
  setJobLogStatus(jobId: number, status: number | undefined): void {
    const job = this.#jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    job.logStatus = status;
  }

  #suiteFor(repo: RepoState, app: CheckAppState, headSha: string, headBranch?: string, fresh = false): CheckSuiteState {
    const key = repo.fullName.toLowerCase();
    if (!fresh) {
      const existing = [...this.#checkSuites.values()].find((s) => s.repoKey === key && s.app.id === app.id && s.headSha === headSha);
      if (existing) return existing;
    }
    const now = Date.now();
    const suite: CheckSuiteState = {
      id: this.#id(),
      repoKey: key,
      app,
      headSha,
      headBranch: headBranch ?? this.#branchOfHead(repo, headSha) ?? repo.defaultBranch,
      status: 'queued',
      conclusion: null,
      createdAt: now,
      updatedAt: now,
    };
    this.#checkSuites.set(suite.id, suite);
    return suite;
  }

  /** Recomputes a suite's status and conclusion from its latest check runs, as GitHub does. */
  #refreshSuite(suite: CheckSuiteState): void {
    const runs = latestRuns([...this.#checkRuns.values()].filter((c) => c.suiteId === suite.id));
    suite.updatedAt = Date.now();
    if (!runs.length || runs.some((r) => r.status !== 'completed')) {
      suite.status = runs.some((r) => r.status === 'in_progress') ? 'in_progress' : 'queued';
      suite.conclusion = null;
      return;
    }
    suite.status = 'completed';
    const order = ['action_required', 'cancelled', 'timed_out', 'failure', 'neutral', 'skipped', 'stale', 'success'];
    const worst = runs.map((r) => r.conclusion ?? 'success').sort((a, b) => order.indexOf(a) - order.indexOf(b))[0]!;
    suite.conclusion = worst === 'skipped' || worst === 'neutral' || worst === 'stale' ? 'success' : worst;
  }

  #newCheckRun(
    repo: RepoState,
    suite: CheckSuiteState,
    c: Omit<CheckRunState, 'id' | 'repoKey' | 'suiteId' | 'headSha' | 'app' | 'annotations'> & { annotations: AnnotationSpec[] },
  ): CheckRunState {
    const run: CheckRunState = {
      ...c,
      id: this.#id(),
      repoKey: repo.fullName.toLowerCase(),
      suiteId: suite.id,
      headSha: suite.headSha,
      app: suite.app,
      annotations: c.annotations.map((a) => ({ ...a, endLine: a.endLine ?? a.startLine })),
    };
    this.#checkRuns.set(run.id, run);
    return run;
  }

  /** The head branch of a same-repository open pull request whose head is `sha`, if any. */
  #branchOfHead(repo: RepoState, sha: string): string | undefined {
    for (const issue of repo.issues.values()) {
      if (issue.pull && !issue.pull.headRepoKey && issue.pull.headSha === sha) return issue.pull.headRef;
    }
    return undefined;
  }

  /** `pull_requests` of a check run, suite or workflow run: open same-repository pull requests whose head is `sha`. */
  #pullRefsFor(repo: RepoState, sha: string): Json[] {
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const repoRef = { id: repo.id, url: api, name: repo.name };
    return [...repo.issues.values()]
      .filter((i) => i.pull && !i.pull.headRepoKey && i.state === 'open' && i.pull.headSha === sha)
      .map((i) => ({
        url: `${api}/pulls/${i.number}`,
        id: i.pull!.id,
        number: i.number,
        head: { ref: i.pull!.headRef, sha: i.pull!.headSha, repo: repoRef },
        base: { ref: i.pull!.baseRef, sha: i.pull!.baseSha, repo: repoRef },
      }));
  }

  #checkAppJson(app: CheckAppState): Json {
    if (app.id === this.appId) return this.#appJson();
    const owner = this.#userJson(app.slug === 'github-actions' ? 'github' : app.slug);
    return {
      id: app.id,
      slug: app.slug,
      node_id: nodeId('App', app.id),
      client_id: `Iv1.${app.id.toString(16).padStart(16, '0')}`,
      owner,
      name: app.name,
      description: '',
      external_url: app.slug === 'github-actions' ? 'https://help.github.com/en/actions' : `${this.url}/apps/${app.slug}`,
      html_url: `${this.url}/apps/${app.slug}`,
      created_at: iso(this.#createdAt),
      updated_at: iso(this.#createdAt),
      permissions: { actions: 'write', checks: 'write', contents: 'write', metadata: 'read' },
      events: ['check_run', 'check_suite', 'pull_request', 'push', 'workflow_dispatch'],
    };
  }

  #checkRunJson(c: CheckRunState): Json {
    const repo = this.#repo(c.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = c.runId !== undefined ? `${this.url}/${repo.fullName}/actions/runs/${c.runId}/job/${c.id}` : `${this.url}/${repo.fullName}/runs/${c.id}`;
    return {
      id: c.id,
      head_sha: c.headSha,
      node_id: nodeId('CheckRun', c.id),
      external_id: c.externalId,
      url: `${api}/check-runs/${c.id}`,
      html_url: html,
      details_url: c.detailsUrl ?? html,
      status: c.status,
      conclusion: c.conclusion,
      started_at: iso(c.startedAt),
      completed_at: c.status === 'completed' ? iso(c.completedAt) : null,
      output: {
        title: c.output.title ?? null,
        summary: c.output.summary ?? null,
        text: c.output.text ?? null,
        annotations_count: c.annotations.length,
        annotations_url: `${api}/check-runs/${c.id}/annotations`,
      },
      name: c.name,
      check_suite: { id: c.suiteId },
      app: this.#checkAppJson(c.app),
      pull_requests: this.#pullRefsFor(repo, c.headSha),
    };
  }

  #annotationJson(repo: RepoState, c: CheckRunState, a: CheckRunState['annotations'][number]): Json {
    return {
      path: a.path,
      blob_href: `${this.url}/${repo.fullName}/blob/${c.headSha}/${a.path}`,
      start_line: a.startLine,
      end_line: a.endLine,
      start_column: null,
      end_column: null,
      annotation_level: a.level ?? 'failure',
      title: a.title ?? '',
      message: a.message,
      raw_details: a.rawDetails ?? '',
    };
  }

  #checkSuiteJson(s: CheckSuiteState): Json {
    const repo = this.#repo(s.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    return {
      id: s.id,
      node_id: nodeId('CheckSuite', s.id),
      head_branch: s.headBranch,
      head_sha: s.headSha,
      status: s.status,
      conclusion: s.conclusion,
      url: `${api}/check-suites/${s.id}`,
      before: null,
      after: s.headSha,
      pull_requests: this.#pullRefsFor(repo, s.headSha),
      app: this.#checkAppJson(s.app),
      repository: this.#repoJson(repo),
      created_at: iso(s.createdAt),
      updated_at: iso(s.updatedAt),
      rerequestable: true,
      runs_rerequestable: true,
      latest_check_runs_count: latestRuns([...this.#checkRuns.values()].filter((c) => c.suiteId === s.id)).length,
      check_runs_url: `${api}/check-suites/${s.id}/check-runs`,
    };
  }

  async #headCommitJson(repo: RepoState, sha: string): Promise<Json | null> {
    if ((await this.#objectType(repo, sha)) !== 'commit') return null;
    const c = await this.#commitJson(repo, sha);
    return { id: sha, tree_id: (c.tree as Json).sha, message: c.message, timestamp: (c.committer as Json | undefined)?.date, author: c.author, committer: c.committer };
  }

  async #workflowRunJson(r: WorkflowRunState): Promise<Json> {
    const repo = this.#repo(r.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const headCommit = await this.#headCommitJson(repo, r.headSha);
    this.#user(r.actor);
    return {
      id: r.id,
      name: r.name,
      node_id: nodeId('WorkflowRun', r.id),
      head_branch: r.headBranch,
      head_sha: r.headSha,
      path: r.path,
      display_title: String(headCommit?.message ?? r.name).split('\n')[0],
      run_number: r.runNumber,
      event: r.event,
      status: 'completed',
      conclusion: r.conclusion,
      workflow_id: r.workflowId,
      check_suite_id: r.suiteId,
      check_suite_node_id: nodeId('CheckSuite', r.suiteId),
      url: `${api}/actions/runs/${r.id}`,
      html_url: `${this.url}/${repo.fullName}/actions/runs/${r.id}`,
      pull_requests: this.#pullRefsFor(repo, r.headSha),
      created_at: iso(r.createdAt),
      updated_at: iso(r.updatedAt),
      actor: this.#userJson(r.actor),
      triggering_actor: this.#userJson(r.actor),
      run_attempt: 1,
      referenced_workflows: [],
      run_started_at: iso(r.createdAt),
      jobs_url: `${api}/actions/runs/${r.id}/jobs`,
      logs_url: `${api}/actions/runs/${r.id}/logs`,
      check_suite_url: `${api}/check-suites/${r.suiteId}`,
      artifacts_url: `${api}/actions/runs/${r.id}/artifacts`,
      cancel_url: `${api}/actions/runs/${r.id}/cancel`,
      rerun_url: `${api}/actions/runs/${r.id}/rerun`,
      previous_attempt_url: null,
      workflow_url: `${api}/actions/workflows/${r.workflowId}`,
      head_commit: headCommit,
      repository: this.#repoJson(repo),
      head_repository: this.#repoJson(repo),
    };
  }

  #jobJson(j: JobState): Json {
    const repo = this.#repo(j.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const run = this.#workflowRuns.get(j.runId);
    return {
      id: j.id,
      run_id: j.runId,
      workflow_name: run?.name ?? 'CI',
      head_branch: run?.headBranch ?? null,
      run_url: `${api}/actions/runs/${j.runId}`,
      run_attempt: 1,
      node_id: nodeId('CheckRun', j.id),
      head_sha: this.#checkRuns.get(j.id)?.headSha,
      url: `${api}/actions/jobs/${j.id}`,
      html_url: `${this.url}/${repo.fullName}/actions/runs/${j.runId}/job/${j.id}`,
      status: 'completed',
      conclusion: j.conclusion,
      created_at: iso(j.startedAt),
      started_at: iso(j.startedAt),
      completed_at: iso(j.completedAt),
      name: j.name,
      steps: j.steps.map((s) => ({ ...s })),
      check_run_url: `${api}/check-runs/${j.id}`,
      labels: ['ubuntu-latest'],
      runner_id: 1,
      runner_name: 'GitHub Actions 1',
      runner_group_id: 1,
      runner_group_name: 'GitHub Actions',
    };
  }

  #defineCheckRoutes(): void {
    const R = '/repos/:owner/:repo';
    const checksRead: Array<[string, 'read' | 'write']> = [['checks', 'read']];
    const actionsRead: Array<[string, 'read' | 'write']> = [['actions', 'read']];
    const runsOf = (repo: RepoState, ctx: Ctx, all: CheckRunState[]): CheckRunState[] => {
      const name = ctx.query.get('check_name');
      const status = ctx.query.get('status');
      const appId = ctx.query.get('app_id');
      let runs = ctx.query.get('filter') === 'all' ? all : latestRuns(all);
      if (name) runs = runs.filter((c) => c.name === name);
      if (status) runs = runs.filter((c) => c.status === status);
      if (appId) runs = runs.filter((c) => String(c.app.id) === appId);
      return runs.sort((a, b) => b.id - a.id);
    };
    const listRuns = (repo: RepoState, ctx: Ctx, all: CheckRunState[], base: string): Result => {
      const runs = runsOf(repo, ctx, all);
      const page = paginate(runs, ctx.query, base);
      return { status: 200, body: { total_count: runs.length, check_runs: page.items.map((c) => this.#checkRunJson(c)) }, headers: page.headers };
    };
    this.#route('GET', `${R}/commits/:ref/check-runs`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      const sha = await this.#resolveCommit(repo, ctx.params.ref!);
      if (!sha) throw new ApiError(422, `No commit found for SHA: ${ctx.params.ref}`);
      const key = repo.fullName.toLowerCase();
      const all = [...this.#checkRuns.values()].filter((c) => c.repoKey === key && c.headSha === sha);
      return listRuns(repo, ctx, all, `${this.apiUrl}/repos/${repo.fullName}/commits/${encodeURIComponent(ctx.params.ref!)}/check-runs`);
    });
    this.#route('GET', `${R}/commits/:ref/check-suites`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      const sha = await this.#resolveCommit(repo, ctx.params.ref!);
      if (!sha) throw new ApiError(422, `No commit found for SHA: ${ctx.params.ref}`);
      const key = repo.fullName.toLowerCase();
      const appId = ctx.query.get('app_id');
      const suites = [...this.#checkSuites.values()].filter((s) => s.repoKey === key && s.headSha === sha && (!appId || String(s.app.id) === appId));
      const page = paginate(suites, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/commits/${encodeURIComponent(ctx.params.ref!)}/check-suites`);
      return { status: 200, body: { total_count: suites.length, check_suites: page.items.map((s) => this.#checkSuiteJson(s)) }, headers: page.headers };
    });
    const suiteIn = (repo: RepoState, id: number): CheckSuiteState => {
      const s = this.#checkSuites.get(id);
      if (!s || s.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
      return s;
    };
    const runIn = (repo: RepoState, id: number): CheckRunState => {
      const c = this.#checkRuns.get(id);
      if (!c || c.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
      return c;
    };
    this.#route('GET', `${R}/check-suites/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      return { status: 200, body: this.#checkSuiteJson(suiteIn(repo, Number(ctx.params.id))) };
    });
    this.#route('GET', `${R}/check-suites/:id/check-runs`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      const suite = suiteIn(repo, Number(ctx.params.id));
      const all = [...this.#checkRuns.values()].filter((c) => c.suiteId === suite.id);
      return listRuns(repo, ctx, all, `${this.apiUrl}/repos/${repo.fullName}/check-suites/${suite.id}/check-runs`);
    });
    this.#route('GET', `${R}/check-runs/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      return { status: 200, body: this.#checkRunJson(runIn(repo, Number(ctx.params.id))) };
    });
    this.#route('GET', `${R}/check-runs/:id/annotations`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...checksRead);
      const run = runIn(repo, Number(ctx.params.id));
      const page = paginate(run.annotations, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/check-runs/${run.id}/annotations`);
      return { status: 200, body: page.items.map((a) => this.#annotationJson(repo, run, a)), headers: page.headers };
    });
    const workflowRunIn = (repo: RepoState, id: number): WorkflowRunState => {
      const r = this.#workflowRuns.get(id);
      if (!r || r.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
      return r;
    };
    const jobIn = (repo: RepoState, id: number): JobState => {
      const j = this.#jobs.get(id);
      if (!j || j.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
      return j;
    };
    this.#route('GET', `${R}/actions/runs/:id`, 'token', async (ctx) => {
      const repo = this.#repoFor(ctx, ...actionsRead);
      return { status: 200, body: await this.#workflowRunJson(workflowRunIn(repo, Number(ctx.params.id))) };
    });
    this.#route('GET', `${R}/actions/runs/:id/jobs`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...actionsRead);
      const run = workflowRunIn(repo, Number(ctx.params.id));
      const jobs = [...this.#jobs.values()].filter((j) => j.runId === run.id);
      const page = paginate(jobs, ctx.query, `${this.apiUrl}/repos/${repo.fullName}/actions/runs/${run.id}/jobs`);
      return { status: 200, body: { total_count: jobs.length, jobs: page.items.map((j) => this.#jobJson(j)) }, headers: page.headers };
    });
    this.#route('GET', `${R}/actions/jobs/:id`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...actionsRead);
      return { status: 200, body: this.#jobJson(jobIn(repo, Number(ctx.params.id))) };
    });
    this.#route('GET', `${R}/actions/jobs/:id/logs`, 'token', (ctx) => {
      const repo = this.#repoFor(ctx, ...actionsRead);
      const job = jobIn(repo, Number(ctx.params.id));
      if (job.logStatus !== undefined) {
        throw new ApiError(job.logStatus, job.logStatus === 404 ? 'Not Found' : job.logStatus === 410 ? 'Gone' : 'Server Error');
      }
      const location = this.#logHost!.presign(job.log);
      return { status: 302, headers: { location } };
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // State and JSON rendering

  #id(): number {
    this.#nextId += 1 + Math.floor(Math.random() * 7);
    return this.#nextId;
  }

  #user(login: string, type: UserState['type'] = 'User'): UserState {
    const key = login.toLowerCase();
    let u = this.#users.get(key);
    if (!u) {
      u = { login, id: this.#id(), type: login.endsWith('[bot]') ? 'Bot' : type };
      this.#users.set(key, u);
    }
    return u;
  }

  #repo(fullName: string): RepoState {
    const repo = this.#repos.get(fullName.toLowerCase());
    if (!repo) throw new Error(`unknown repository ${fullName}`);
    return repo;
  }

  #issueState(repo: RepoState, number: number, api = false): IssueState {
    const issue = repo.issues.get(number);
    if (!issue) {
      if (api) throw new ApiError(404, 'Not Found');
      throw new Error(`no issue #${number} in ${repo.fullName}`);
    }
    return issue;
  }

  #commentIn(repo: RepoState, id: number): CommentState {
    const c = this.#comments.get(id);
    if (!c || c.repoKey !== repo.fullName.toLowerCase()) throw new ApiError(404, 'Not Found');
    return c;
  }

  #newComment(repo: RepoState, issueNumber: number, user: string, body: string, viaApp: boolean): CommentState {
    const now = Date.now();
    const c: CommentState = {
      id: this.#id(),
      repoKey: repo.fullName.toLowerCase(),
      issueNumber,
      user,
      history: [body],
      createdAt: now,
      updatedAt: now,
      viaApp,
    };
    this.#comments.set(c.id, c);
    return c;
  }

  #association(repo: RepoState, login: string): string {
    if (login.toLowerCase() === repo.owner.toLowerCase()) return 'OWNER';
    if (repo.roles.has(login.toLowerCase())) return 'COLLABORATOR';
    return 'NONE';
  }

  #userJson(login: string): Json {
    const u = this.#user(login);
    const api = `${this.apiUrl}/users/${encodeURIComponent(u.login)}`;
    return {
      login: u.login,
      id: u.id,
      node_id: nodeId(u.type === 'Bot' ? 'Bot' : u.type === 'Organization' ? 'Organization' : 'User', u.id),
      avatar_url: `${this.url}/avatars/u/${u.id}?v=4`,
      gravatar_id: '',
      url: api,
      html_url: u.type === 'Bot' ? `${this.url}/apps/${this.appSlug}` : `${this.url}/${u.login}`,
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: u.type,
      user_view_type: 'public',
      site_admin: false,
    };
  }

  #appJson(): Json {
    const owner = [...this.#installations.values()][0]?.account ?? 'stand-in-owner';
    return {
      id: this.appId,
      slug: this.appSlug,
      node_id: nodeId('App', this.appId),
      client_id: `Iv1.${this.appId.toString(16).padStart(16, '0')}`,
      owner: this.#userJson(owner),
      name: this.appName,
      description: 'GitHub stand-in test app',
      external_url: this.url,
      html_url: `${this.url}/apps/${this.appSlug}`,
      created_at: iso(this.#createdAt),
      updated_at: iso(this.#createdAt),
      permissions: { ...this.#installationPermissions },
      events: ['issue_comment', 'issues', 'pull_request', 'pull_request_review_comment', 'check_run', 'check_suite'],
      installations_count: this.#installations.size,
    };
  }

  #installationJson(inst: InstallationState): Json {
    const account = this.#user(inst.account);
    return {
      id: inst.id,
      account: this.#userJson(inst.account),
      repository_selection: 'selected',
      access_tokens_url: `${this.apiUrl}/app/installations/${inst.id}/access_tokens`,
      repositories_url: `${this.apiUrl}/installation/repositories`,
      html_url: `${this.url}/settings/installations/${inst.id}`,
      app_id: this.appId,
      app_slug: this.appSlug,
      target_id: account.id,
      target_type: account.type === 'Organization' ? 'Organization' : 'User',
      permissions: { ...inst.permissions },
      events: ['issue_comment', 'issues', 'pull_request', 'pull_request_review_comment', 'check_run', 'check_suite'],
      created_at: iso(inst.createdAt),
      updated_at: iso(inst.createdAt),
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: null,
      suspended_at: null,
    };
  }

  #repoJson(repo: RepoState): Json {
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const html = `${this.url}/${repo.fullName}`;
    const openIssues = [...repo.issues.values()].filter((i) => i.state === 'open').length;
    return {
      id: repo.id,
      node_id: nodeId('Repository', repo.id),
      name: repo.name,
      full_name: repo.fullName,
      private: repo.private,
      owner: this.#userJson(repo.owner),
      html_url: html,
      description: null,
      fork: false,
      url: api,
      archive_url: `${api}/{archive_format}{/ref}`,
      branches_url: `${api}/branches{/branch}`,
      collaborators_url: `${api}/collaborators{/collaborator}`,
      comments_url: `${api}/comments{/number}`,
      commits_url: `${api}/commits{/sha}`,
      compare_url: `${api}/compare/{base}...{head}`,
      contents_url: `${api}/contents/{+path}`,
      git_commits_url: `${api}/git/commits{/sha}`,
      git_refs_url: `${api}/git/refs{/sha}`,
      git_tags_url: `${api}/git/tags{/sha}`,
      hooks_url: `${api}/hooks`,
      issue_comment_url: `${api}/issues/comments{/number}`,
      issues_url: `${api}/issues{/number}`,
      pulls_url: `${api}/pulls{/number}`,
      trees_url: `${api}/git/trees{/sha}`,
      created_at: iso(repo.createdAt),
      updated_at: iso(repo.createdAt),
      pushed_at: iso(repo.createdAt),
      git_url: `${html.replace(/^http/, 'git')}.git`,
      ssh_url: `git@${this.host}:${repo.fullName}.git`,
      clone_url: this.gitServer.cloneUrl(repo.fullName),
      svn_url: html,
      homepage: null,
      size: 0,
      stargazers_count: 0,
      watchers_count: 0,
      language: null,
      has_issues: true,
      has_projects: false,
      has_downloads: true,
      has_wiki: false,
      has_pages: false,
      has_discussions: false,
      forks_count: 0,
      mirror_url: null,
      archived: false,
      disabled: false,
      open_issues_count: openIssues,
      license: null,
      allow_forking: true,
      is_template: false,
      web_commit_signoff_required: false,
      topics: [],
      visibility: repo.private ? 'private' : 'public',
      forks: 0,
      open_issues: openIssues,
      watchers: 0,
      default_branch: repo.defaultBranch,
      permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
      allow_squash_merge: true,
      allow_merge_commit: true,
      allow_rebase_merge: true,
      delete_branch_on_merge: false,
      network_count: 0,
      subscribers_count: 0,
    };
  }

  #issueJson(repo: RepoState, issue: IssueState): Json {
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const kind = issue.pull ? 'pull' : 'issues';
    const comments = [...this.#comments.values()].filter((c) => c.repoKey === repo.fullName.toLowerCase() && c.issueNumber === issue.number).length;
    const json: Json = {
      url: `${api}/issues/${issue.number}`,
      repository_url: api,
      labels_url: `${api}/issues/${issue.number}/labels{/name}`,
      comments_url: `${api}/issues/${issue.number}/comments`,
      events_url: `${api}/issues/${issue.number}/events`,
      html_url: `${this.url}/${repo.fullName}/${kind}/${issue.number}`,
      id: issue.id,
      node_id: nodeId(issue.pull ? 'PullRequest' : 'Issue', issue.id),
      number: issue.number,
      title: issue.title,
      user: this.#userJson(issue.user),
      labels: [],
      state: issue.state,
      locked: false,
      assignee: null,
      assignees: [],
      milestone: null,
      comments,
      created_at: iso(issue.createdAt),
      updated_at: iso(issue.updatedAt),
      closed_at: issue.closedAt === null ? null : iso(issue.closedAt),
      author_association: this.#association(repo, issue.user),
      active_lock_reason: null,
      body: issue.body,
      reactions: this.#reactionSummary(repo, { issueNumber: issue.number }, `${api}/issues/${issue.number}/reactions`),
      timeline_url: `${api}/issues/${issue.number}/timeline`,
      performed_via_github_app: null,
      state_reason: null,
    };
    if (issue.pull) {
      json.draft = issue.pull.draft;
      json.pull_request = {
        url: `${api}/pulls/${issue.number}`,
        html_url: `${this.url}/${repo.fullName}/pull/${issue.number}`,
        diff_url: `${this.url}/${repo.fullName}/pull/${issue.number}.diff`,
        patch_url: `${this.url}/${repo.fullName}/pull/${issue.number}.patch`,
        merged_at: null,
      };
    }
    return json;
  }

  #commentJson(c: CommentState): Json {
    const repo = this.#repo(c.repoKey);
    const api = `${this.apiUrl}/repos/${repo.fullName}`;
    const kind = repo.issues.get(c.issueNumber)?.pull ? 'pull' : 'issues';
    return {
      url: `${api}/issues/comments/${c.id}`,
      html_url: `${this.url}/${repo.fullName}/${kind}/${c.issueNumber}#issuecomment-${c.id}`,
      issue_url: `${api}/issues/${c.issueNumber}`,
      id: c.id,
      node_id: nodeId('IssueComment', c.id),
      user: this.#userJson(c.user),
      created_at: iso(c.createdAt),
      updated_at: iso(c.updatedAt),
      author_association: this.#association(repo, c.user),
      body: c.history.at(-1) ?? '',
      reactions: this.#reactionSummary(repo, { commentId: c.id }, `${api}/issues/comments/${c.id}/reactions`),
      performed_via_github_app: c.viaApp ? this.#appJson() : null,
    };
  }

  #commentWithHistory(c: CommentState): CommentWithHistory {
    return { ...this.#commentJson(c), history: [...c.history] } as CommentWithHistory;
  }

  #reactionJson(r: ReactionState): Json {
    return { id: r.id, node_id: nodeId('Reaction', r.id), user: this.#userJson(r.user), content: r.content, created_at: iso(r.createdAt) };
  }

  #reactionSummary(repo: RepoState, subject: ReactionState['subject'], url: string): Json {
    const mine = this.#reactions.filter((r) => r.repoKey === repo.fullName.toLowerCase() && sameSubject(r.subject, subject));
    const summary: Json = { url, total_count: mine.length };
    for (const content of REACTIONS) summary[content] = mine.filter((r) => r.content === content).length;
    return summary;
  }
}

interface LsTreeEntry {
  mode: string;
  type: string;
  sha: string;
  size: number;
  path: string;
}

interface TreeEntryInput {
  path?: unknown;
  mode?: unknown;
  type?: unknown;
  sha?: unknown;
  content?: unknown;
  /** Internal (helpers): raw bytes instead of `content`. */
  contentBuffer?: Buffer;
}

function sameSubject(a: ReactionState['subject'], b: ReactionState['subject']): boolean {
  if ('issueNumber' in a) return 'issueNumber' in b && a.issueNumber === b.issueNumber;
  if ('reviewCommentId' in a) return 'reviewCommentId' in b && a.reviewCommentId === b.reviewCommentId;
  return 'commentId' in b && a.commentId === b.commentId;
}

/** One hunk of a unified diff: its header line and body lines (each starting with ` `, `+`, `-` or `\\`). */
interface DiffHunk {
  header: string;
  oldStart: number;
  newStart: number;
  lines: string[];
}

/** Splits a unified diff of one file (`git diff` output, headers allowed) into hunks. */
function parseHunks(diff: string): DiffHunk[] {
  const hunks: DiffHunk[] = [];
  let current: DiffHunk | undefined;
  for (const line of diff.split('\n')) {
    const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (m) {
      current = { header: line, oldStart: Number(m[1]), newStart: Number(m[2]), lines: [] };
      hunks.push(current);
    } else if (current && (line.startsWith(' ') || line.startsWith('+') || line.startsWith('-') || line.startsWith('\\'))) {
      current.lines.push(line);
    }
  }
  return hunks;
}

/**
 * GitHub's `diff_hunk` of a review comment: the hunk header and the hunk's lines up to and including
 * `line` on `side` (`RIGHT`: the new file's line numbers, `LEFT`: the old file's).
 * @returns undefined when the line is not part of the diff (GitHub then answers 422).
 */
function diffHunkFor(diff: string, line: number, side: 'LEFT' | 'RIGHT'): string | undefined {
  for (const hunk of parseHunks(diff)) {
    let oldNo = hunk.oldStart;
    let newNo = hunk.newStart;
    for (let i = 0; i < hunk.lines.length; i++) {
      const l = hunk.lines[i]!;
      const kind = l[0];
      if (kind === '\\') continue;
      const hit = side === 'RIGHT' ? kind !== '-' && newNo === line : kind !== '+' && oldNo === line;
      if (hit) return [hunk.header, ...hunk.lines.slice(0, i + 1)].join('\n');
      if (kind !== '+') oldNo++;
      if (kind !== '-') newNo++;
    }
  }
  return undefined;
}

function rolePermissions(role: RepoRole | undefined): Json {
  const rank = { read: 1, triage: 2, write: 3, maintain: 4, admin: 5 }[role ?? 'read'] ?? 0;
  const has = role !== undefined;
  return { admin: has && rank >= 5, maintain: has && rank >= 4, push: has && rank >= 3, triage: has && rank >= 2, pull: has };
}

function isStringArray(x: unknown): x is string[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'string');
}

function errorBody(status: number, message: string, extra: Json = {}): Json {
  return { message, ...extra, documentation_url: DOCS_URL, status: String(status) };
}

function validation(message: string, resource = 'Request', field = ''): ApiError {
  return new ApiError(422, 'Validation Failed', { errors: [{ resource, field, code: 'invalid', message }] });
}

/** Base64 with a newline every 60 characters, as the contents API returns it. */
function wrap64(b64: string): string {
  return (b64.match(/.{1,60}/g) ?? []).join('\n') + (b64 ? '\n' : '');
}

/** GitHub pagination (`per_page` ≤ 100, default 30; `page` from 1) with an RFC 8288 `Link` header. */
function paginate<T>(all: T[], query: URLSearchParams, baseUrl: string): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(query.get('per_page')) || 30));
  const page = Math.max(1, Number(query.get('page')) || 1);
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const items = all.slice((page - 1) * perPage, page * perPage);
  const link = (p: number, rel: string): string => {
    const q = new URLSearchParams(query);
    q.set('per_page', String(perPage));
    q.set('page', String(p));
    return `<${baseUrl}?${q.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, 'prev'), link(1, 'first'));
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  return { items, headers: links.length ? { link: links.join(', ') } : {} };
}

function parseAuthorization(header: string | undefined): { auth: 'token' | 'jwt' | 'none'; token?: string } {
  const m = /^(token|bearer)\s+(\S+)$/i.exec(header ?? '');
  if (!m?.[2]) return { auth: 'none' };
  const value = m[2];
  return { auth: value.split('.').length === 3 ? 'jwt' : 'token', token: value };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** HTTP status of an Octokit request: 200 when it succeeds, the RequestError's `status` when not. */
export async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

// ---------------------------------------------------------------------------------------------------
// Checks and Actions: types and helpers (see the class section of the same name)

/** Conclusion of a check run, check suite, workflow run or job (https://docs.github.com/en/rest/checks/runs). */
export type CheckConclusion = 'action_required' | 'cancelled' | 'failure' | 'neutral' | 'success' | 'skipped' | 'stale' | 'timed_out';

/** The app a check run belongs to: this App (`own`), GitHub Actions, or another app. */
export type CheckApp = 'own' | 'github-actions' | { id: number; slug: string; name: string };

/** GitHub Actions' app, as GitHub.com reports it (`app` of its check runs and suites). */
export const GITHUB_ACTIONS_APP = { id: 15368, slug: 'github-actions', name: 'GitHub Actions' } as const;
/** The default third-party CI app of {@link GitHubStandIn.addCheckRun}. */
export const STAND_IN_CI_APP = { id: 4242, slug: 'stand-in-ci', name: 'Stand-in CI' } as const;

/** An annotation of a check run (lines 1-based). */
export interface AnnotationSpec {
  path: string;
  startLine: number;
  endLine?: number;
  level?: 'notice' | 'warning' | 'failure';
  title?: string;
  message: string;
  rawDetails?: string;
}

/** Input of {@link GitHubStandIn.addCheckRun}. */
export interface CheckRunSpec {
  headSha: string;
  name: string;
  /** Default `completed`. */
  status?: 'queued' | 'in_progress' | 'completed';
  /** Default `failure` (when completed). */
  conclusion?: CheckConclusion | null;
  /** Default {@link STAND_IN_CI_APP}. */
  app?: CheckApp;
  output?: { title?: string; summary?: string; text?: string };
  annotations?: AnnotationSpec[];
  detailsUrl?: string;
  externalId?: string;
  headBranch?: string;
  /** Epoch ms. */
  startedAt?: number;
  completedAt?: number;
}

/** One step of a job for {@link actionsJobLog}. */
export interface StepSpec {
  name: string;
  /** Default `success`. */
  conclusion?: 'success' | 'failure' | 'skipped' | 'cancelled';
  /** The command shown in the step's `##[group]Run <command>` header (a `run:` step); default: the name without `Run ` when it starts with `Run `. */
  command?: string;
  /** Output lines of the step (without timestamps). */
  lines?: string[];
  /** Duration, ms; default 1 s + 2 ms per line. */
  durationMs?: number;
}

/** One job of {@link WorkflowRunSpec}. */
export interface WorkflowJobSpec {
  name: string;
  /** Default: Set up job, Run actions/checkout@v4, Run npm test, Post Run actions/checkout@v4, Complete job (all successful). */
  steps?: StepSpec[];
  /** Default: `failure` when a step failed, else `success`. */
  conclusion?: CheckConclusion;
  /** Output of the job's check run (GitHub Actions leaves it empty). */
  output?: { title?: string; summary?: string; text?: string };
  /** Extra annotations (a failed job also gets `Process completed with exit code 1.`). */
  annotations?: AnnotationSpec[];
  /** Raw log text instead of the generated one. */
  log?: string;
  /** Status the log endpoint answers instead of the redirect (404 expired logs, 500…). */
  logStatus?: number;
}

/** Input of {@link GitHubStandIn.addWorkflowRun}. */
export interface WorkflowRunSpec {
  headSha: string;
  /** Default: the head branch of an open pull request with that head, else the default branch. */
  headBranch?: string;
  /** Workflow name; default `CI`. */
  name?: string;
  /** Workflow file; default `.github/workflows/ci.yml`. */
  path?: string;
  /** Default `pull_request`. */
  event?: string;
  /** Default: from the jobs. */
  conclusion?: CheckConclusion;
  /** Login that triggered it; default the repository owner. */
  actor?: string;
  /** Epoch ms of the first job's start; default a minute ago. */
  startedAt?: number;
  jobs: WorkflowJobSpec[];
}

/** A request that reached the log host. */
export interface LogRequestRecord {
  method: string;
  /** Path and query. */
  url: string;
  /** The `Authorization` header, if any (GitHub's presigned URLs need none). */
  authorization?: string;
  status: number;
}

/** A job's step as the API lists it (times at second precision, as GitHub gives them). */
export interface JobStepJson {
  name: string;
  status: 'completed';
  conclusion: string;
  number: number;
  started_at: string;
  completed_at: string;
}

interface CheckAppState {
  id: number;
  slug: string;
  name: string;
}

interface CheckSuiteState {
  id: number;
  repoKey: string;
  app: CheckAppState;
  headSha: string;
  headBranch: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  createdAt: number;
  updatedAt: number;
}

interface CheckRunState {
  id: number;
  repoKey: string;
  suiteId: number;
  headSha: string;
  app: CheckAppState;
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  output: { title?: string; summary?: string; text?: string };
  annotations: Array<AnnotationSpec & { endLine: number }>;
  detailsUrl: string | null;
  externalId: string;
  startedAt: number;
  completedAt: number;
  /** For GitHub Actions jobs: the workflow run. */
  runId?: number;
}

interface WorkflowRunState {
  id: number;
  repoKey: string;
  name: string;
  path: string;
  headSha: string;
  headBranch: string;
  event: string;
  conclusion: string;
  suiteId: number;
  runNumber: number;
  workflowId: number;
  createdAt: number;
  updatedAt: number;
  actor: string;
}

interface JobState {
  id: number;
  runId: number;
  repoKey: string;
  name: string;
  conclusion: string;
  startedAt: number;
  completedAt: number;
  steps: JobStepJson[];
  log: string;
  logStatus: number | undefined;
}

const DEFAULT_STEPS: StepSpec[] = [
  { name: 'Set up job' },
  { name: 'Run actions/checkout@v4' },
  { name: 'Run npm test', lines: ['> test', '> node --test', '# pass 1'] },
  { name: 'Post Run actions/checkout@v4' },
  { name: 'Complete job' },
];

function resolveCheckApp(app: CheckApp, standIn: GitHubStandIn): CheckAppState {
  if (app === 'own') return { id: standIn.appId, slug: standIn.appSlug, name: standIn.appName };
  if (app === 'github-actions') return { ...GITHUB_ACTIONS_APP };
  return { ...app };
}

/** The most recent check run per (app, name), as `filter=latest` returns them. */
function latestRuns(runs: CheckRunState[]): CheckRunState[] {
  const latest = new Map<string, CheckRunState>();
  for (const run of runs) {
    const key = `${run.app.id}\0${run.name}`;
    const seen = latest.get(key);
    if (!seen || run.id > seen.id) latest.set(key, run);
  }
  return [...latest.values()];
}

/** A log line's timestamp as GitHub writes it: ISO 8601 with 7 fractional digits. */
function logTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '0000Z');
}

/**
 * A job log in GitHub Actions' format (a UTF-8 BOM, then every line prefixed with its ISO timestamp)
 * and the job's steps as the API lists them. `Set up job` gets the runner preamble; a step named
 * `Run <command>` (or with `command`) gets the `##[group]Run <command>` … `##[endgroup]` header; a
 * failed step ends with `##[error]Process completed with exit code 1.`; `Complete job` gets the
 * cleanup line; skipped steps have no lines.
 * @param startMs epoch ms of the job's start.
 */
export function actionsJobLog(steps: StepSpec[], startMs: number): { log: string; steps: JobStepJson[]; startedAt: number; completedAt: number } {
  const out: string[] = [];
  const json: JobStepJson[] = [];
  let at = Math.floor(startMs / 1000) * 1000;
  steps.forEach((step, i) => {
    const conclusion = step.conclusion ?? 'success';
    let lines: string[] = [];
    if (conclusion !== 'skipped') {
      const command = step.command ?? (step.name.startsWith('Run ') ? step.name.slice(4) : undefined);
      if (step.name === 'Set up job') {
        lines.push("Current runner version: '2.321.0'", '##[group]Operating System', 'Ubuntu', '24.04.1', 'LTS', '##[endgroup]', '##[group]Runner Image', 'Image: ubuntu-24.04', '##[endgroup]', 'Secret source: Actions', 'Prepare workflow directory', 'Prepare all required actions', 'Complete job name: job');
      } else if (step.name === 'Complete job') {
        lines.push('Cleaning up orphan processes');
      } else if (command !== undefined) {
        lines.push(`##[group]Run ${command.split('\n')[0]}`, ...command.split('\n'), 'shell: /usr/bin/bash -e {0}', '##[endgroup]');
      }
      lines.push(...(step.lines ?? []));
      if (conclusion === 'failure') lines.push('##[error]Process completed with exit code 1.');
    } else {
      lines = [];
    }
    const duration = conclusion === 'skipped' ? 0 : (step.durationMs ?? 1000 + 2 * lines.length);
    const start = at;
    lines.forEach((line, k) => out.push(`${logTimestamp(start + Math.floor((k * duration) / Math.max(1, lines.length)))} ${line}`));
    at = start + duration;
    json.push({ name: step.name, status: 'completed', conclusion, number: i + 1, started_at: iso(start), completed_at: iso(at) });
  });
  return { log: `\uFEFF${out.join('\n')}\n`, steps: json, startedAt: Math.floor(startMs / 1000) * 1000, completedAt: at };
}

/**
 * The origin job logs are redirected to (GitHub uses a blob store with presigned URLs): serves a log
 * at `/logs/<id>?se=<expiry>&sig=<signature>` for 60 s, answers 403 when expired or the signature is
 * wrong, and records whether the request carried an `Authorization` header.
 */
class LogHost {
  readonly url: string;
  readonly requests: LogRequestRecord[] = [];
  readonly #server: Server;
  readonly #blobs = new Map<string, { text: string; sig: string; expiresAt: number }>();

  private constructor(server: Server, url: string) {
    this.#server = server;
    this.url = url;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', this.url);
      const record: LogRequestRecord = { method: req.method ?? 'GET', url: `${url.pathname}${url.search}`, status: 0 };
      if (req.headers.authorization !== undefined) record.authorization = req.headers.authorization;
      this.requests.push(record);
      req.resume();
      const blob = this.#blobs.get(url.pathname.replace(/^\/logs\//, ''));
      let status = 200;
      if (!blob) status = 404;
      else if (url.searchParams.get('sig') !== blob.sig || blob.expiresAt <= Date.now()) status = 403;
      record.status = status;
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code></Error>');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(blob!.text);
    });
  }

  static async start(): Promise<LogHost> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const host = new LogHost(server, `http://127.0.0.1:${port}`);
    server.unref();
    return host;
  }

  /** A presigned URL for `text`, valid 60 s. */
  presign(text: string): string {
    const id = randomUUID();
    const sig = randomBytes(16).toString('base64url');
    const expiresAt = Date.now() + 60_000;
    this.#blobs.set(id, { text, sig, expiresAt });
    return `${this.url}/logs/${id}?sv=2024-11-04&se=${encodeURIComponent(iso(expiresAt))}&sp=r&sig=${sig}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
