/**
 * One-time claim tickets of the ECS backend (DESIGN.md, "Runner contract"): RunTask overrides are
 * visible to anyone who can describe the task and in CloudTrail, so they carry no secret. They carry
 * a ticket instead, which the runner exchanges exactly once, over HTTPS, for its TaskSpec (which holds
 * the read-only clone token and the task token).
 *
 * A ticket is `ccl_` followed by 32 random bytes in base64url (43 characters). Only its SHA-256 hash
 * is stored, next to the TaskSpec JSON, until the ticket is used or expires (default 15 minutes);
 * then the spec is deleted and only non-secret metadata (base SHA, repository) stays. The store is
 * persistent (the app's SQLite file on its encrypted EFS volume) so that an app restart between
 * RunTask and the claim does not strand the runner.
 *
 * The same persistence keeps results runners POST (`/runner/v1/tasks/:id/result`) until the backend
 * hands them on, so that a result that arrives while nobody in this process waits for it (an app
 * restart before `resume`) is not lost.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TaskResult, TaskSpec } from '../contract.ts';

/** Prefix of every claim ticket (makes leaked tickets easy to recognise). */
export const CLAIM_TICKET_PREFIX = 'ccl_';

/** Default lifetime of a ticket, ms (15 minutes: Fargate image pulls can be slow). */
export const DEFAULT_CLAIM_TTL_MS = 15 * 60_000;

/** One stored claim ticket. Times are ms since the epoch. */
export interface ClaimRecord {
  taskId: string;
  /** SHA-256 of the whole ticket (prefix included), lower-case hex. */
  ticketHash: string;
  /** The ticket is invalid from this instant on. */
  expiresAt: number;
  /** The TaskSpec JSON (secrets included) until the ticket is used, expires or is revoked; then null. */
  specJson: string | null;
  /** When the ticket was used, or null. */
  claimedAt: number | null;
  /** Non-secret metadata kept after the claim, for failed results built without the spec: the commit results are against (the head for pull request work). */
  baseSha: string;
  /** `owner/name`. */
  repository: string;
  createdAt: number;
}

/**
 * Where the ECS backend keeps claim tickets and results posted by runners. The app backs it with its
 * SQLite task store (`SqliteTaskStore.claims`); {@link MemoryClaimStore} is the in-memory version.
 * All methods are synchronous and atomic.
 */
export interface ClaimStore {
  /** Stores `rec`, replacing any record of the same task. */
  put(rec: ClaimRecord): void;
  get(taskId: string): ClaimRecord | undefined;
  /**
   * Uses the ticket: when the task's record has `ticketHash`, is unclaimed, has its spec and
   * `now < expiresAt`, sets `claimedAt = now`, clears the spec and returns the spec JSON; otherwise
   * changes nothing and returns undefined. Atomic, so a ticket works once even under races.
   */
  consume(taskId: string, ticketHash: string, now: number): string | undefined;
  /** Clears the spec of the task's record (the task ended or was cancelled before its claim). */
  clearSpec(taskId: string): void;
  /** Stores the TaskResult JSON a runner posted, replacing an earlier one of the task. */
  putResult(taskId: string, resultJson: string, receivedAt: number): void;
  getResult(taskId: string): string | undefined;
  /**
   * Housekeeping: clears the specs of records expired at `now`, deletes records and results created
   * or received before `before`.
   */
  purge(now: number, before: number): void;
}

/** {@link ClaimStore} in process memory (tests, single-process development). */
export class MemoryClaimStore implements ClaimStore {
  readonly #claims = new Map<string, ClaimRecord>();
  readonly #results = new Map<string, { json: string; receivedAt: number }>();

  put(rec: ClaimRecord): void {
    this.#claims.set(rec.taskId, { ...rec });
  }

  get(taskId: string): ClaimRecord | undefined {
    const rec = this.#claims.get(taskId);
    return rec ? { ...rec } : undefined;
  }

  consume(taskId: string, ticketHash: string, now: number): string | undefined {
    const rec = this.#claims.get(taskId);
    if (!rec || rec.ticketHash !== ticketHash || rec.claimedAt !== null || rec.specJson === null || now >= rec.expiresAt) return undefined;
    const spec = rec.specJson;
    rec.specJson = null;
    rec.claimedAt = now;
    return spec;
  }

  clearSpec(taskId: string): void {
    const rec = this.#claims.get(taskId);
    if (rec) rec.specJson = null;
  }

  putResult(taskId: string, resultJson: string, receivedAt: number): void {
    this.#results.set(taskId, { json: resultJson, receivedAt });
  }

  getResult(taskId: string): string | undefined {
    return this.#results.get(taskId)?.json;
  }

  purge(now: number, before: number): void {
    for (const [id, rec] of this.#claims) {
      if (rec.createdAt < before) this.#claims.delete(id);
      else if (now >= rec.expiresAt) rec.specJson = null;
    }
    for (const [id, res] of this.#results) if (res.receivedAt < before) this.#results.delete(id);
  }
}

/** SHA-256 of a ticket, lower-case hex. */
export function hashClaimTicket(ticket: string): string {
  return createHash('sha256').update(ticket, 'utf8').digest('hex');
}

/** Why a claim was refused (logged by the app, sent to the runner in the 403 body). */
export type ClaimRefusal = 'unknown task' | 'wrong ticket' | 'expired' | 'already used' | 'revoked' | 'malformed ticket';

/** Outcome of {@link Claims.claim}. */
export type ClaimOutcome = { ok: true; spec: TaskSpec } | { ok: false; reason: ClaimRefusal };

/** Issues and redeems claim tickets; keeps posted results. */
export class Claims {
  readonly #store: ClaimStore;
  readonly #now: () => number;
  readonly #ttlMs: number;

  /**
   * @param opts.store persistence (default: a new {@link MemoryClaimStore}).
   * @param opts.ttlMs ticket lifetime, ms (default {@link DEFAULT_CLAIM_TTL_MS}).
   * @param opts.now clock, ms since the epoch (default `Date.now`).
   */
  constructor(opts: { store?: ClaimStore; ttlMs?: number; now?: () => number } = {}) {
    this.#store = opts.store ?? new MemoryClaimStore();
    this.#now = opts.now ?? Date.now;
    this.#ttlMs = opts.ttlMs ?? DEFAULT_CLAIM_TTL_MS;
  }

  /**
   * Issues a fresh ticket for `spec.id`, replacing any earlier ticket of the task, and stores the spec
   * until the ticket is used.
   * @returns the ticket (`ccl_` + 43 base64url characters); only its hash is stored.
   */
  issue(spec: TaskSpec, ttlMs: number = this.#ttlMs): string {
    const ticket = CLAIM_TICKET_PREFIX + randomBytes(32).toString('base64url');
    const now = this.#now();
    this.#store.put({
      taskId: spec.id,
      ticketHash: hashClaimTicket(ticket),
      expiresAt: now + ttlMs,
      specJson: JSON.stringify(spec),
      claimedAt: null,
      // The commit a result is against (the head for pull request work), for a failed result after a restart.
      baseSha: spec.repository.headSha ?? spec.repository.baseSha,
      repository: spec.repository.fullName,
      createdAt: now,
    });
    return ticket;
  }

  /**
   * Redeems a ticket: the first valid use returns the task's spec; any later use, a wrong ticket, an
   * expired or revoked one is refused with the reason.
   */
  claim(taskId: string, ticket: string): ClaimOutcome {
    if (!ticket.startsWith(CLAIM_TICKET_PREFIX)) return { ok: false, reason: 'malformed ticket' };
    const hash = hashClaimTicket(ticket);
    const now = this.#now();
    const json = this.#store.consume(taskId, hash, now);
    if (json !== undefined) return { ok: true, spec: TaskSpec.parse(JSON.parse(json)) };
    const rec = this.#store.get(taskId);
    if (!rec) return { ok: false, reason: 'unknown task' };
    if (rec.ticketHash !== hash) return { ok: false, reason: 'wrong ticket' };
    if (rec.claimedAt !== null) return { ok: false, reason: 'already used' };
    if (now >= rec.expiresAt) return { ok: false, reason: 'expired' };
    return { ok: false, reason: 'revoked' };
  }

  /** Makes the task's ticket unusable and deletes its stored spec (no-op for an unknown task). */
  revoke(taskId: string): void {
    this.#store.clearSpec(taskId);
  }

  /** Non-secret metadata of a task that had a ticket: its base SHA and repository. */
  meta(taskId: string): { baseSha: string; repository: string } | undefined {
    const rec = this.#store.get(taskId);
    return rec ? { baseSha: rec.baseSha, repository: rec.repository } : undefined;
  }

  /** Keeps a result a runner posted (validated by the caller). */
  saveResult(result: TaskResult): void {
    this.#store.putResult(result.id, JSON.stringify(result), this.#now());
  }

  /** The result a runner posted for the task, if any. */
  result(taskId: string): TaskResult | undefined {
    const json = this.#store.getResult(taskId);
    if (json === undefined) return undefined;
    const parsed = TaskResult.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  }

  /**
   * Deletes expired specs, and records and results older than `retainMs` (default 7 days).
   * Call it now and then (the ECS backend does every few minutes).
   */
  purge(retainMs = 7 * 24 * 60 * 60_000): void {
    const now = this.#now();
    this.#store.purge(now, now - retainMs);
  }
}
