/**
 * Per-task grants of the agent-phase proxy: which hosts a task's commands may reach, behind a
 * credential that is valid only while the task runs. The credential is HTTP Basic
 * (https://www.rfc-editor.org/rfc/rfc7617) user `<task id>`, password a fresh random secret
 * (`ccp_` + 32 random bytes in base64url) issued for the task; only its SHA-256 hash is kept, and it
 * dies at its expiry or when the task ends ({@link ProxyGrants.revoke}). It is deliberately not the
 * model gateway's task token: agent commands see the proxy credential (in `HTTPS_PROXY`), and must
 * not be able to spend the task's model budget or report its result with it.
 *
 * Grants live in process memory: after an app restart, tasks still running (ECS) get 407 from the
 * proxy until they end.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { HostAllowlist } from './allowlist.ts';

/** Prefix of every proxy secret (makes leaked ones easy to recognise). */
export const PROXY_SECRET_PREFIX = 'ccp_';

/** Options of {@link ProxyGrants.issue}. */
export interface IssueProxyGrantOptions {
  /** Allowlist entries (`pypi.org`, `*.pythonhosted.org`); see allowlist.ts. */
  allow: readonly string[];
  /** Lifetime, ms from now; positive. */
  ttlMs: number;
}

/** A live grant, as {@link ProxyGrants.verify} returns it. */
export interface ProxyGrant {
  taskId: string;
  allowlist: HostAllowlist;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
}

interface StoredGrant extends ProxyGrant {
  secretHash: Buffer;
  /** Revokes the grant at its expiry (so open tunnels close then too). */
  timer: NodeJS.Timeout;
}

/** Longest delay setTimeout accepts, ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Issues, verifies and revokes the proxy credentials of running tasks. */
export class ProxyGrants {
  readonly #grants = new Map<string, StoredGrant>();
  readonly #now: () => number;
  readonly #onRevoke: ((taskId: string) => void)[] = [];

  /** @param opts.now clock, ms since the epoch (default `Date.now`); tests pass their own. */
  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Issues a fresh secret for `taskId`, replacing any earlier grant of that task (its secret stops
   * working at once).
   * @returns the secret (`ccp_` + 43 base64url characters); only its hash is kept.
   * @throws RangeError for an empty task id or one containing `:` (it is the Basic user name), a
   *   non-positive ttl, or an invalid allowlist entry.
   */
  issue(taskId: string, opts: IssueProxyGrantOptions): string {
    if (taskId === '' || taskId.includes(':')) throw new RangeError(`taskId must be non-empty and without ':', got ${JSON.stringify(taskId)}`);
    if (!Number.isFinite(opts.ttlMs) || opts.ttlMs <= 0) throw new RangeError(`ttlMs must be positive, got ${opts.ttlMs}`);
    const allowlist = new HostAllowlist(opts.allow);
    this.revoke(taskId);
    const secret = PROXY_SECRET_PREFIX + randomBytes(32).toString('base64url');
    const timer = setTimeout(() => {
      if (this.#grants.get(taskId) === grant) this.revoke(taskId);
    }, Math.min(opts.ttlMs, MAX_TIMER_MS));
    timer.unref();
    const grant: StoredGrant = { taskId, allowlist, expiresAt: this.#now() + opts.ttlMs, secretHash: sha256(secret), timer };
    this.#grants.set(taskId, grant);
    return secret;
  }

  /**
   * The live grant of `taskId` when `secret` is its current secret; undefined when the task has no
   * grant, the secret is wrong (compared in constant time), or the grant expired (it is then dropped).
   */
  verify(taskId: string, secret: string): ProxyGrant | undefined {
    const grant = this.#grants.get(taskId);
    if (!grant) return undefined;
    if (this.#now() >= grant.expiresAt) {
      this.revoke(taskId);
      return undefined;
    }
    if (!timingSafeEqual(grant.secretHash, sha256(secret))) return undefined;
    return { taskId: grant.taskId, allowlist: grant.allowlist, expiresAt: grant.expiresAt };
  }

  /** Ends the task's grant (no-op without one); listeners (the proxy closing the task's open tunnels) run. */
  revoke(taskId: string): void {
    const grant = this.#grants.get(taskId);
    if (!grant) return;
    clearTimeout(grant.timer);
    this.#grants.delete(taskId);
    for (const listener of this.#onRevoke) listener(taskId);
  }

  /** Calls `listener(taskId)` whenever a grant is revoked or found expired. */
  onRevoke(listener: (taskId: string) => void): void {
    this.#onRevoke.push(listener);
  }
}

/**
 * The TaskSpec's `network.proxyUrl`: the proxy's base URL with the task's credentials as userinfo
 * (percent-encoded, so any task id survives), e.g. `http://task-1:ccp_…@10.0.1.5:3128`.
 * @param baseUrl how runners reach the proxy, `http://host:port`.
 * @throws TypeError when `baseUrl` is not an http:// URL.
 */
export function proxyUrlWithCredentials(baseUrl: string, taskId: string, secret: string): string {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:') throw new TypeError(`the agent proxy URL must be http://, got ${JSON.stringify(baseUrl)}`);
  url.username = encodeURIComponent(taskId);
  url.password = encodeURIComponent(secret);
  return url.href.replace(/\/$/, '');
}
