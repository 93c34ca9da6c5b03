/**
 * Task tokens: the only credential a runner holds for the model gateway (and the runner-report routes).
 * A token is `cct_` followed by 32 random bytes in base64url (43 characters); only its SHA-256 hash is
 * stored, so a leaked store does not leak usable tokens. Each token belongs to one task, carries that
 * task's token budget and an expiry, and accumulates the task's model usage. See DESIGN.md, "Secrets".
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TaskSpec } from '../contract.ts';

/** A Responses API `reasoning.effort` value (`minimal` … `xhigh`), as the TaskSpec carries it. */
export type TaskReasoningEffort = NonNullable<TaskSpec['model']['reasoningEffort']>;

/** Prefix of every task token (makes leaked tokens easy to recognise in secret scanners). */
export const TASK_TOKEN_PREFIX = 'cct_';

/**
 * What is stored for one task's token. Token counts are as the Responses API reports them (`usage`);
 * `usedTokens` is `inputTokens + outputTokens` (cached input tokens are part of `inputTokens`).
 */
export interface TaskTokenRecord {
  taskId: string;
  /** SHA-256 of the whole token (prefix included), lower-case hex. */
  tokenHash: string;
  /** Total tokens (input + output) the task may use, tokens. */
  budgetTokens: number;
  /** Tokens used so far (input + output), tokens. */
  usedTokens: number;
  inputTokens: number;
  /** Input tokens served from the prompt cache (a subset of `inputTokens`). */
  cachedInputTokens: number;
  /** Output tokens, reasoning tokens included. */
  outputTokens: number;
  /** Model responses whose usage was recorded. */
  requests: number;
  /** Expiry, ms since the epoch; the token is invalid from this instant on. */
  expiresAt: number;
  /** Set by {@link TaskTokens.revoke} (e.g. when the task ends). */
  revoked: boolean;
  /**
   * The model the task may use (Responses API `model`), pinned by the app when it issued the token;
   * the gateway refuses requests for any other. Absent: not pinned (records issued without it).
   */
  model?: string;
  /**
   * The reasoning effort the task runs with (Responses API `reasoning.effort`); the gateway forces
   * it on every request. Absent while `model` is pinned: the model's default (the gateway removes
   * any effort the runner asks for). Absent without `model`: not pinned.
   */
  reasoningEffort?: TaskReasoningEffort;
}

/** Options of {@link TaskTokens.issue}. */
export interface IssueTaskTokenOptions {
  /** Total tokens (input + output) the task may use, tokens; a positive integer. */
  budgetTokens: number;
  /** Lifetime, ms from now; positive. */
  ttlMs: number;
  /** The model the task may use (see {@link TaskTokenRecord.model}); a non-empty string. */
  model?: string;
  /** The reasoning effort forced on the task's requests (see {@link TaskTokenRecord.reasoningEffort}). */
  reasoningEffort?: TaskReasoningEffort;
}

/** Usage of one model response, tokens, as recorded with {@link TaskTokens.recordUsage}. */
export interface TokenUsageDelta {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
}

/** A task's accumulated usage, tokens (see {@link TaskTokenRecord}). */
export interface TaskTokenUsage extends TokenUsageDelta {
  usedTokens: number;
  budgetTokens: number;
  requests: number;
}

/**
 * Where records live. The app backs this with its SQLite store so that tokens survive an app restart
 * (ECS runners keep running meanwhile); {@link MemoryTaskTokenPersistence} is the in-memory version.
 * Records are found by token hash; `update` addresses every record of a task. {@link TaskTokens.issue}
 * revokes a task's earlier token before putting a new one, so stores may keep one row per token.
 */
export interface TaskTokenPersistence {
  /** Stores `rec`, replacing any record of the same `taskId`. */
  put(rec: TaskTokenRecord): void;
  /** The record whose `tokenHash` is `hash`, or undefined. */
  getByHash(hash: string): TaskTokenRecord | undefined;
  /**
   * The current (newest) record of `taskId`, or undefined. Optional: without it, {@link TaskTokens}
   * finds a task's record through the hash it saw last in this process (at `issue` or `verify`), so
   * after a restart `usage`/`remaining` of a task know nothing until its token is verified again.
   */
  getByTaskId?(taskId: string): TaskTokenRecord | undefined;
  /** Merges `patch` into the record(s) of `taskId`; no-op when there is none. */
  update(taskId: string, patch: Partial<TaskTokenRecord>): void;
}

/** {@link TaskTokenPersistence} in process memory (tests, single-process development). */
export class MemoryTaskTokenPersistence implements TaskTokenPersistence {
  readonly #byTask = new Map<string, TaskTokenRecord>();
  readonly #taskByHash = new Map<string, string>();

  put(rec: TaskTokenRecord): void {
    const old = this.#byTask.get(rec.taskId);
    if (old) this.#taskByHash.delete(old.tokenHash);
    this.#byTask.set(rec.taskId, { ...rec });
    this.#taskByHash.set(rec.tokenHash, rec.taskId);
  }

  getByHash(hash: string): TaskTokenRecord | undefined {
    const taskId = this.#taskByHash.get(hash);
    return taskId === undefined ? undefined : this.getByTaskId(taskId);
  }

  getByTaskId(taskId: string): TaskTokenRecord | undefined {
    const rec = this.#byTask.get(taskId);
    return rec ? { ...rec } : undefined;
  }

  update(taskId: string, patch: Partial<TaskTokenRecord>): void {
    const rec = this.#byTask.get(taskId);
    if (!rec) return;
    if (patch.tokenHash !== undefined && patch.tokenHash !== rec.tokenHash) {
      this.#taskByHash.delete(rec.tokenHash);
      this.#taskByHash.set(patch.tokenHash, taskId);
    }
    Object.assign(rec, patch, { taskId });
  }
}

/** SHA-256 of a token, lower-case hex. */
export function hashTaskToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Issues, verifies, revokes task tokens and accounts their usage against the budget. */
export class TaskTokens {
  readonly #store: TaskTokenPersistence;
  readonly #now: () => number;
  /** Token hash last seen per task, for stores without `getByTaskId`. */
  readonly #hashByTask = new Map<string, string>();

  /**
   * @param opts.persistence where records live (default: a new {@link MemoryTaskTokenPersistence}).
   * @param opts.now clock, ms since the epoch (default `Date.now`); tests pass their own.
   */
  constructor(opts: { persistence?: TaskTokenPersistence; now?: () => number } = {}) {
    this.#store = opts.persistence ?? new MemoryTaskTokenPersistence();
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Issues a fresh token for `taskId`, replacing any earlier token of that task (usage starts at 0).
   * With `opts.model` (and `opts.reasoningEffort`), the gateway holds the task's requests to them.
   * @param opts see {@link IssueTaskTokenOptions}.
   * @returns the token (`cct_` + 43 base64url characters). It is not stored: hand it to the runner.
   * @throws RangeError for an empty task id, a non-positive budget or ttl, an empty model name.
   */
  issue(taskId: string, opts: IssueTaskTokenOptions): string {
    if (taskId === '') throw new RangeError('taskId must not be empty');
    if (!Number.isSafeInteger(opts.budgetTokens) || opts.budgetTokens <= 0) {
      throw new RangeError(`budgetTokens must be a positive integer, got ${opts.budgetTokens}`);
    }
    if (!Number.isFinite(opts.ttlMs) || opts.ttlMs <= 0) throw new RangeError(`ttlMs must be positive, got ${opts.ttlMs}`);
    if (opts.model !== undefined && opts.model.trim() === '') throw new RangeError('model must not be empty');
    const token = TASK_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const tokenHash = hashTaskToken(token);
    this.#store.update(taskId, { revoked: true }); // an earlier token of the task stops working
    this.#store.put({
      taskId,
      tokenHash,
      budgetTokens: opts.budgetTokens,
      usedTokens: 0,
      inputTokens: 0,
      cachedInputTokens: 0,
      outputTokens: 0,
      requests: 0,
      expiresAt: this.#now() + opts.ttlMs,
      revoked: false,
      ...(opts.model !== undefined ? { model: opts.model } : {}),
      ...(opts.reasoningEffort !== undefined ? { reasoningEffort: opts.reasoningEffort } : {}),
    });
    this.#hashByTask.set(taskId, tokenHash);
    return token;
  }

  /**
   * The record of a live token: undefined when the token is unknown, malformed, revoked or expired.
   * (Lookup is by hash, so no constant-time comparison is needed.)
   */
  verify(token: string): TaskTokenRecord | undefined {
    if (!token.startsWith(TASK_TOKEN_PREFIX)) return undefined;
    const rec = this.#store.getByHash(hashTaskToken(token));
    if (rec && !rec.revoked) this.#hashByTask.set(rec.taskId, rec.tokenHash);
    if (!rec || rec.revoked || this.#now() >= rec.expiresAt) return undefined;
    return rec;
  }

  /** Revokes the task's token (no-op for an unknown task). Usage stays readable. */
  revoke(taskId: string): void {
    this.#store.update(taskId, { revoked: true });
  }

  /**
   * Adds one model response's usage to the task (also for a revoked or expired token, since the
   * tokens were spent) and counts the response. Negative or non-integer counts are clamped to
   * non-negative integers. No-op for an unknown task.
   * @returns the task's usage after the update, or undefined for an unknown task.
   */
  recordUsage(taskId: string, usage: TokenUsageDelta): TaskTokenUsage | undefined {
    const rec = this.#get(taskId);
    if (!rec) return undefined;
    const input = count(usage.inputTokens);
    const output = count(usage.outputTokens);
    const patch = {
      inputTokens: rec.inputTokens + input,
      cachedInputTokens: rec.cachedInputTokens + count(usage.cachedInputTokens),
      outputTokens: rec.outputTokens + output,
      usedTokens: rec.usedTokens + input + output,
      requests: rec.requests + 1,
    };
    this.#store.update(taskId, patch);
    return toUsage({ ...rec, ...patch });
  }

  /** The task's accumulated usage, or undefined for an unknown task. */
  usage(taskId: string): TaskTokenUsage | undefined {
    const rec = this.#get(taskId);
    return rec ? toUsage(rec) : undefined;
  }

  /** Tokens left in the task's budget (never negative), tokens; 0 for an unknown task. */
  remaining(taskId: string): number {
    const rec = this.#get(taskId);
    return rec ? Math.max(0, rec.budgetTokens - rec.usedTokens) : 0;
  }

  #get(taskId: string): TaskTokenRecord | undefined {
    if (this.#store.getByTaskId) return this.#store.getByTaskId(taskId);
    const hash = this.#hashByTask.get(taskId);
    return hash === undefined ? undefined : this.#store.getByHash(hash);
  }
}

/**
 * Verifies an HTTP `Authorization` header of the form `Bearer <task token>` (scheme case-insensitive).
 * @returns the live token's record, or undefined when the header is missing, malformed or the token
 *   is not live (see {@link TaskTokens.verify}).
 */
export function verifyBearer(header: string | undefined, tokens: TaskTokens): TaskTokenRecord | undefined {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return match?.[1] ? tokens.verify(match[1]) : undefined;
}

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function toUsage(rec: TaskTokenRecord): TaskTokenUsage {
  return {
    inputTokens: rec.inputTokens,
    cachedInputTokens: rec.cachedInputTokens,
    outputTokens: rec.outputTokens,
    usedTokens: rec.usedTokens,
    budgetTokens: rec.budgetTokens,
    requests: rec.requests,
  };
}
