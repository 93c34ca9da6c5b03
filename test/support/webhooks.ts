/**
 * Webhook deliveries for tests, built from GitHub's REAL example payloads (`@octokit/webhooks-examples`,
 * https://github.com/octokit/webhooks) rewritten to point at a local GitHub stand-in, and delivered the way
 * GitHub delivers them (https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers):
 * `POST` with `Content-Type: application/json`, `X-GitHub-Event`, `X-GitHub-Delivery`, `X-GitHub-Hook-ID`,
 * `X-GitHub-Hook-Installation-Target-*` and `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`
 * (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
 */
import { request as httpRequest } from 'node:http';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { sign } from '@octokit/webhooks-methods';
import type { WebhookDefinition } from '@octokit/webhooks-examples';

/** A JSON object. */
export type Json = Record<string, unknown>;

/** A built webhook delivery. `body` is the exact JSON text that is signed and sent. */
export interface Delivery {
  /** `X-GitHub-Delivery` (a UUID); reuse the delivery object to simulate a redelivery. */
  id: string;
  /** `X-GitHub-Event`, e.g. `issue_comment`. */
  event: string;
  payload: Json;
  /** Lower-case header names; includes `x-hub-signature-256` once signed. */
  headers: Record<string, string>;
  body: string;
}

/** Who acts: a login, or `{ login, type, id }` (type `Bot` for `name[bot]` accounts). */
export type WebhookUser = string | { login: string; type?: 'User' | 'Bot' | 'Organization'; id?: number };

/**
 * The repository a payload is about: the stand-in's REST repository object
 * (`standIn.repository('owner/name')`, recommended, so ids and URLs match the API) or just `owner/name`
 * (URLs then use `baseUrl`, default `http://127.0.0.1`).
 */
export type WebhookRepo = string | Json;

/** Options shared by the builders. */
export interface DeliveryOptions {
  /** `X-GitHub-Delivery`; default a fresh UUID. */
  deliveryId?: string;
  /** `X-GitHub-Hook-ID`; default `1`. */
  hookId?: number;
  /** App id for `X-GitHub-Hook-Installation-Target-ID`; default `1`. */
  appId?: number;
  /** Base URL of the stand-in when `repo` is a name (`http://127.0.0.1:PORT`). */
  baseUrl?: string;
}

const require = createRequire(import.meta.url);
const DEFINITIONS = require('@octokit/webhooks-examples') as WebhookDefinition[];
const EXAMPLE_FULL_NAME = 'Codertocat/Hello-World';

/**
 * A deep copy of a real example payload for `event` (and `action`), preferring one that carries an
 * `installation` (as App deliveries do).
 * @throws Error if the examples have none.
 */
export function examplePayload(event: string, action?: string): Json {
  const def = DEFINITIONS.find((d) => d.name === event);
  const candidates = ((def?.examples ?? []) as unknown as Json[]).filter((e) => action === undefined || e.action === action);
  const chosen = candidates.find((e) => 'installation' in e) ?? candidates[0];
  if (!chosen) throw new Error(`no @octokit/webhooks-examples payload for ${event}${action ? `.${action}` : ''}`);
  return structuredClone(chosen);
}

/** Stable fake id for a login (so the same user gets the same id in every delivery). */
function idFor(login: string): number {
  let h = 7;
  for (const ch of login) h = (h * 31 + ch.charCodeAt(0)) % 90_000_000;
  return 10_000_000 + h;
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

interface Bases {
  api: string;
  html: string;
  fullName: string;
  repo?: Json;
}

function basesOf(repo: WebhookRepo, baseUrl = 'http://127.0.0.1'): Bases {
  if (typeof repo === 'string') {
    const html = baseUrl.replace(/\/+$/, '');
    return { api: `${html}/api/v3`, html, fullName: repo };
  }
  const fullName = String(repo.full_name);
  const api = String(repo.url).slice(0, -`/repos/${fullName}`.length);
  const html = String(repo.html_url).slice(0, -`/${fullName}`.length);
  return { api, html, fullName, repo };
}

/** Replaces github.com URLs and the example repository's name in every string of `value`. */
function rewrite(value: unknown, b: Bases): unknown {
  if (typeof value === 'string') {
    const host = new URL(b.html).host;
    return value
      .replaceAll(EXAMPLE_FULL_NAME, b.fullName)
      .replaceAll('https://api.github.com', b.api)
      .replaceAll('https://github.com', b.html)
      .replaceAll('git://github.com/', `git://${host}/`)
      .replaceAll('git@github.com:', `git@${host}:`);
  }
  if (Array.isArray(value)) return value.map((v) => rewrite(v, b));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rewrite(v, b)]));
  }
  return value;
}

/** A webhook user object (same shape as the examples' `user`/`sender`). */
export function userObject(user: WebhookUser, b: { api: string; html: string }): Json {
  const u = typeof user === 'string' ? { login: user } : user;
  const type = u.type ?? (u.login.endsWith('[bot]') ? 'Bot' : 'User');
  const id = u.id ?? idFor(u.login);
  const api = `${b.api}/users/${encodeURIComponent(u.login)}`;
  return {
    login: u.login,
    id,
    node_id: b64(`0${type.length}:${type}${id}`),
    avatar_url: `${b.html}/avatars/u/${id}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: `${b.html}/${u.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    user_view_type: 'public',
    site_admin: false,
  };
}

/** Rewrites an example payload's repository, installation, organization and sender to `repo`. */
function baseRewrite(example: Json, b: Bases, installationId: number, sender: WebhookUser): Json {
  const payload = rewrite(example, b) as Json;
  const [ownerLogin] = b.fullName.split('/') as [string, string];
  const repository = payload.repository as Json;
  if (b.repo) {
    // Fields the webhook and REST repository objects share; the REST object is the truth.
    for (const key of [
      'id', 'node_id', 'name', 'full_name', 'private', 'owner', 'html_url', 'url', 'clone_url', 'git_url', 'ssh_url',
      'svn_url', 'default_branch', 'visibility', 'created_at', 'updated_at', 'pushed_at', 'archived', 'disabled', 'fork',
    ]) {
      if (key in b.repo) repository[key] = b.repo[key];
    }
  } else {
    repository.name = b.fullName.split('/')[1];
    repository.full_name = b.fullName;
    repository.owner = userObject(ownerLogin, b);
    repository.clone_url = `${b.html}/${b.fullName}.git`;
    repository.default_branch = 'main';
  }
  const owner = repository.owner as Json;
  if (owner.type === 'Organization') {
    const api = `${b.api}/orgs/${owner.login as string}`;
    payload.organization = {
      login: owner.login,
      id: owner.id,
      node_id: owner.node_id,
      url: api,
      repos_url: `${api}/repos`,
      events_url: `${api}/events`,
      hooks_url: `${api}/hooks`,
      issues_url: `${api}/issues`,
      members_url: `${api}/members{/member}`,
      public_members_url: `${api}/public_members{/member}`,
      avatar_url: owner.avatar_url,
      description: '',
    };
  } else {
    delete payload.organization;
  }
  payload.installation = { id: installationId, node_id: b64(`023:IntegrationInstallation${installationId}`) };
  payload.sender = userObject(sender, b);
  return payload;
}

/**
 * Wraps a payload as a delivery with GitHub's headers (unsigned; see {@link signDelivery} and {@link deliver}).
 */
export function createDelivery(event: string, payload: Json, opts: DeliveryOptions = {}): Delivery {
  const id = opts.deliveryId ?? randomUUID();
  const appId = opts.appId ?? 1;
  return {
    id,
    event,
    payload,
    body: JSON.stringify(payload),
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/stand-in',
      'x-github-delivery': id,
      'x-github-event': event,
      'x-github-hook-id': String(opts.hookId ?? 1),
      'x-github-hook-installation-target-id': String(appId),
      'x-github-hook-installation-target-type': 'integration',
    },
  };
}

/** Options of {@link issueCommentCreated}. */
export interface IssueCommentOptions extends DeliveryOptions {
  repo: WebhookRepo;
  issueNumber: number;
  commentId: number;
  /** Comment body, e.g. `@codex fix the tests`. */
  body: string;
  /** Comment author, also the sender. */
  user: WebhookUser;
  installationId: number;
  /** The issue: the stand-in's REST issue object (`standIn.issue(...)`, used as is) or fields for a fresh one. */
  issue?: Json | { title?: string; body?: string | null; user?: WebhookUser; pullRequest?: boolean; state?: 'open' | 'closed' };
  /** `comment.author_association`; default `NONE` (the app must not trust it anyway). */
  authorAssociation?: string;
}

function issueObject(
  example: Json,
  b: Bases,
  number: number,
  spec: IssueCommentOptions['issue'] | undefined,
  fallbackUser: WebhookUser,
): Json {
  if (spec && 'url' in spec && 'number' in spec) return structuredClone(spec as Json);
  const s = (spec ?? {}) as { title?: string; body?: string | null; user?: WebhookUser; pullRequest?: boolean; state?: 'open' | 'closed' };
  const apiRepo = `${b.api}/repos/${b.fullName}`;
  const kind = s.pullRequest ? 'pull' : 'issues';
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const issue: Json = {
    ...example,
    url: `${apiRepo}/issues/${number}`,
    repository_url: apiRepo,
    labels_url: `${apiRepo}/issues/${number}/labels{/name}`,
    comments_url: `${apiRepo}/issues/${number}/comments`,
    events_url: `${apiRepo}/issues/${number}/events`,
    html_url: `${b.html}/${b.fullName}/${kind}/${number}`,
    id: idFor(`${b.fullName}#${number}`),
    node_id: b64(`05:Issue${idFor(`${b.fullName}#${number}`)}`),
    number,
    title: s.title ?? `Issue ${number}`,
    user: userObject(s.user ?? fallbackUser, b),
    labels: [],
    state: s.state ?? 'open',
    assignee: null,
    assignees: [],
    milestone: null,
    created_at: now,
    updated_at: now,
    closed_at: null,
    author_association: 'NONE',
    body: s.body === undefined ? 'Issue body' : s.body,
  };
  if (s.pullRequest) {
    issue.pull_request = {
      url: `${apiRepo}/pulls/${number}`,
      html_url: `${b.html}/${b.fullName}/pull/${number}`,
      diff_url: `${b.html}/${b.fullName}/pull/${number}.diff`,
      patch_url: `${b.html}/${b.fullName}/pull/${number}.patch`,
      merged_at: null,
    };
  } else {
    delete issue.pull_request;
  }
  return issue;
}

/**
 * `issue_comment` `created`: `user` commented `body` (comment `commentId`) on issue/PR `issueNumber`.
 * Built from the real example, with repository, installation, issue, comment and sender rewritten.
 */
export function issueCommentCreated(opts: IssueCommentOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const example = examplePayload('issue_comment', 'created');
  const payload = baseRewrite(example, b, opts.installationId, opts.user);
  payload.issue = issueObject(payload.issue as Json, b, opts.issueNumber, opts.issue, opts.user);
  const apiRepo = `${b.api}/repos/${b.fullName}`;
  const kind = (payload.issue as Json).pull_request ? 'pull' : 'issues';
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  payload.comment = {
    ...(payload.comment as Json),
    url: `${apiRepo}/issues/comments/${opts.commentId}`,
    html_url: `${b.html}/${b.fullName}/${kind}/${opts.issueNumber}#issuecomment-${opts.commentId}`,
    issue_url: `${apiRepo}/issues/${opts.issueNumber}`,
    id: opts.commentId,
    node_id: b64(`012:IssueComment${opts.commentId}`),
    user: userObject(opts.user, b),
    created_at: now,
    updated_at: now,
    author_association: opts.authorAssociation ?? 'NONE',
    performed_via_github_app: null,
    body: opts.body,
    reactions: {
      url: `${apiRepo}/issues/comments/${opts.commentId}/reactions`,
      total_count: 0, '+1': 0, '-1': 0, laugh: 0, hooray: 0, confused: 0, heart: 0, rocket: 0, eyes: 0,
    },
  };
  return createDelivery('issue_comment', payload, opts);
}

/** Options of {@link issuesOpened}. */
export interface IssuesOpenedOptions extends DeliveryOptions {
  repo: WebhookRepo;
  issueNumber: number;
  title: string;
  body: string | null;
  /** Issue author, also the sender. */
  user: WebhookUser;
  installationId: number;
  /** The stand-in's REST issue object, used as is instead of title/body/user. */
  issue?: Json;
}

/** `issues` `opened`: `user` opened issue `issueNumber` with `title` and `body`. */
export function issuesOpened(opts: IssuesOpenedOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const payload = baseRewrite(examplePayload('issues', 'opened'), b, opts.installationId, opts.user);
  payload.issue = issueObject(
    payload.issue as Json,
    b,
    opts.issueNumber,
    opts.issue ?? { title: opts.title, body: opts.body, user: opts.user },
    opts.user,
  );
  delete payload.changes;
  return createDelivery('issues', payload, opts);
}

/** Options of {@link pullRequestOpened}. */
export interface PullRequestOpenedOptions extends DeliveryOptions {
  repo: WebhookRepo;
  /** The stand-in's REST pull request object (`standIn.addPull(...)` / `pulls(...)`), laid over the example's. */
  pull: Json;
  /** Sender; default the pull request's user. */
  sender?: WebhookUser;
  installationId: number;
}

/** `pull_request` `opened` for `pull`. */
export function pullRequestOpened(opts: PullRequestOpenedOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const prUser = opts.pull.user as Json | undefined;
  const sender: WebhookUser =
    opts.sender ?? (prUser ? { login: String(prUser.login), type: prUser.type as 'User', id: Number(prUser.id) } : 'unknown');
  const payload = baseRewrite(examplePayload('pull_request', 'opened'), b, opts.installationId, sender);
  payload.pull_request = { ...(payload.pull_request as Json), ...structuredClone(opts.pull) };
  payload.number = opts.pull.number;
  return createDelivery('pull_request', payload, opts);
}

/**
 * Returns a copy of `delivery` with `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of body keyed by secret>`
 * (computed by @octokit/webhooks-methods' `sign`).
 */
export async function signDelivery(delivery: Delivery, secret: string): Promise<Delivery> {
  return { ...delivery, headers: { ...delivery.headers, 'x-hub-signature-256': await sign(secret, delivery.body) } };
}

/**
 * POSTs `delivery` to `url` (e.g. `http://127.0.0.1:PORT/api/github/webhooks`), signed with `secret`
 * unless `signature` forces a header value (for bad-signature tests).
 * @returns the HTTP status of the receiver's answer.
 */
export async function deliver(url: string, delivery: Delivery, opts: { secret: string; signature?: string }): Promise<number> {
  const signed = await signDelivery(delivery, opts.secret);
  if (opts.signature !== undefined) signed.headers['x-hub-signature-256'] = opts.signature;
  // A fresh connection per delivery, as GitHub's deliveries arrive: a pooled keep-alive socket that
  // the server closed while idle (its keepAliveTimeout) would fail the request before the app saw it.
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: signed.headers, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end(signed.body);
  });
}

/** Options of {@link pullRequestReviewCommentCreated}. */
export interface PullRequestReviewCommentOptions extends DeliveryOptions {
  repo: WebhookRepo;
  /** The stand-in's REST pull request object (`standIn.addPull(...)` / `pulls(...)`), laid over the example's. */
  pull: Json;
  /** The stand-in's REST review comment object (`standIn.addReviewComment(...)`), laid over the example's. */
  comment: Json;
  /** Sender; default the comment's user. */
  sender?: WebhookUser;
  installationId: number;
}

/** The webhook user of a REST object's `user` (login, type and id kept). */
function senderOf(user: unknown): WebhookUser {
  const u = user as Json | undefined;
  return u ? { login: String(u.login), type: u.type as 'User', id: Number(u.id) } : 'unknown';
}

/**
 * `pull_request_review_comment` `created`: an inline comment on the diff of `pull`
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review_comment).
 */
export function pullRequestReviewCommentCreated(opts: PullRequestReviewCommentOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const payload = baseRewrite(
    examplePayload('pull_request_review_comment', 'created'),
    b,
    opts.installationId,
    opts.sender ?? senderOf(opts.comment.user),
  );
  payload.pull_request = { ...(payload.pull_request as Json), ...structuredClone(opts.pull) };
  payload.comment = { ...(payload.comment as Json), ...structuredClone(opts.comment) };
  return createDelivery('pull_request_review_comment', payload, opts);
}

/** Options of {@link pullRequestReviewSubmitted}. */
export interface PullRequestReviewOptions extends DeliveryOptions {
  repo: WebhookRepo;
  /** The stand-in's REST pull request object, laid over the example's. */
  pull: Json;
  /** The stand-in's REST review object (`standIn.addReview(...)`), laid over the example's. */
  review: Json;
  /** Sender; default the review's user. */
  sender?: WebhookUser;
  installationId: number;
}

/**
 * `pull_request_review` `submitted`: a review of `pull` with its body
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request_review).
 */
export function pullRequestReviewSubmitted(opts: PullRequestReviewOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const payload = baseRewrite(examplePayload('pull_request_review', 'submitted'), b, opts.installationId, opts.sender ?? senderOf(opts.review.user));
  payload.pull_request = { ...(payload.pull_request as Json), ...structuredClone(opts.pull) };
  // Webhook reviews carry the state in lower case (`commented`, `approved`, `changes_requested`).
  payload.review = { ...(payload.review as Json), ...structuredClone(opts.review), state: String(opts.review.state ?? 'commented').toLowerCase() };
  return createDelivery('pull_request_review', payload, opts);
}

/** Options of {@link checkSuiteCompleted}. */
export interface CheckSuiteCompletedOptions extends DeliveryOptions {
  repo: WebhookRepo;
  /** The stand-in's REST check suite object (`standIn.checkSuite(id)`, `addWorkflowRun(...).suite`), laid over the example's. */
  suite: Json;
  /** Sender; default the suite's app bot (`<slug>[bot]`). */
  sender?: WebhookUser;
  installationId: number;
}

/**
 * `check_suite` `completed`: every check run of `suite` finished
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_suite). The webhook's
 * `check_suite` has no `repository` (the payload's `repository` is the repository).
 */
export function checkSuiteCompleted(opts: CheckSuiteCompletedOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const app = opts.suite.app as Json | undefined;
  const sender: WebhookUser = opts.sender ?? { login: `${String(app?.slug ?? 'github-actions')}[bot]`, type: 'Bot' };
  const payload = baseRewrite(examplePayload('check_suite', 'completed'), b, opts.installationId, sender);
  const suite = { ...(payload.check_suite as Json), ...structuredClone(opts.suite) };
  delete suite.repository;
  payload.check_suite = suite;
  return createDelivery('check_suite', payload, opts);
}

/** Options of {@link workflowRunCompleted}. */
export interface WorkflowRunCompletedOptions extends DeliveryOptions {
  repo: WebhookRepo;
  /** The stand-in's REST workflow run object (`addWorkflowRun(...).run`, `standIn.workflowRun(id)`), laid over the example's. */
  run: Json;
  /** Sender; default the run's actor. */
  sender?: WebhookUser;
  installationId: number;
}

/**
 * `workflow_run` `completed`: a GitHub Actions workflow run finished
 * (https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run), with its `workflow`
 * (id, name, path) derived from the run.
 */
export function workflowRunCompleted(opts: WorkflowRunCompletedOptions): Delivery {
  const b = basesOf(opts.repo, opts.baseUrl);
  const payload = baseRewrite(examplePayload('workflow_run', 'completed'), b, opts.installationId, opts.sender ?? senderOf(opts.run.actor));
  payload.workflow_run = { ...(payload.workflow_run as Json), ...structuredClone(opts.run) };
  const path = String(opts.run.path ?? '.github/workflows/ci.yml');
  const apiRepo = `${b.api}/repos/${b.fullName}`;
  payload.workflow = {
    ...(payload.workflow as Json),
    id: opts.run.workflow_id,
    node_id: b64(`08:Workflow${String(opts.run.workflow_id)}`),
    name: opts.run.name,
    path,
    state: 'active',
    url: `${apiRepo}/actions/workflows/${String(opts.run.workflow_id)}`,
    html_url: `${b.html}/${b.fullName}/blob/${String((b.repo?.default_branch as string | undefined) ?? 'main')}/${path}`,
    badge_url: `${b.html}/${b.fullName}/workflows/${encodeURIComponent(String(opts.run.name))}/badge.svg`,
  };
  return createDelivery('workflow_run', payload, opts);
}
