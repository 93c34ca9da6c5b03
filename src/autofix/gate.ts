/**
 * The durable side of automatic fixes: loads a pull request's autofix state from an
 * {@link AutofixAttemptStore}, asks the policy (policy.ts), and records what the decision implies, in
 * one transaction, so that two deliveries racing for the same failure start one fix at most.
 *
 * Life of an attempt: {@link AutofixGate.evaluate} answers `run` and records the attempt (one row per
 * check) and the pull request's running attempt; the caller starts the fix task; when the task ends
 * (pushed, could not fix, failed, cancelled) the caller calls {@link AutofixGate.finish}, which frees
 * the pull request and hands back the failure that arrived meanwhile (if any) to evaluate again against
 * the pull request's head at that time.
 */
import { randomUUID } from 'node:crypto';
import type { RepoAutofix } from '../config/repo-config.ts';
import { decideAutofix } from './policy.ts';
import type { AutofixAttemptRef, AutofixDecision, AutofixEvent } from './policy.ts';

/** A pull request: `repo` is `owner/name` (stores compare it case-insensitively). */
export interface PullKey {
  repo: string;
  pullNumber: number;
}

/** One recorded automatic attempt for one check. */
export interface AutofixAttempt extends PullKey, AutofixAttemptRef {
  /** Shared by the checks of one attempt (one fix task). */
  attemptId: string;
  /** Epoch ms. */
  at: number;
}

/** A failure that arrived while a fix was running, kept for re-evaluation. */
export interface DeferredFailure {
  headSha: string;
  checks: string[];
  /** Epoch ms. */
  at: number;
}

/** A pull request's autofix state as stored. Times are epoch ms. */
export interface AutofixPullRecord extends PullKey {
  streak: number;
  streakHead: string | null;
  stoppedAt: number | null;
  capNoticedAt: number | null;
  running: { attemptId: string; headSha: string; startedAt: number } | null;
  /** The latest failure that arrived while `running` (newer ones replace older ones). */
  deferred: DeferredFailure | null;
  /** The last commit an automatic fix pushed (a failure on it continues the streak). */
  lastPushedSha: string | null;
}

/**
 * Durable storage of autofix state (survives restarts). Synchronous, so that a read-decide-write in
 * {@link transaction} cannot interleave with another event in the same process.
 */
export interface AutofixAttemptStore {
  /** The pull request's record, or undefined before its first event. */
  pull(key: PullKey): AutofixPullRecord | undefined;
  /** Creates or replaces the pull request's record. */
  savePull(record: AutofixPullRecord): void;
  /** Every attempt recorded for the pull request and `check`, oldest first; every check when `check` is undefined. */
  attempts(key: PullKey, check?: string): AutofixAttempt[];
  /** Records an attempt. @returns false (and records nothing) when one exists for the same pull request, check and head SHA. */
  record(attempt: AutofixAttempt): boolean;
  /** Runs `fn` atomically (all or nothing, isolated from other writers). @throws what `fn` throws, after rolling back. */
  transaction<T>(fn: () => T): T;
}

/** Options of {@link AutofixGate}. */
export interface AutofixGateOptions {
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** A running attempt older than this is treated as ended (its task was lost), ms. Default 6 h. */
  runningTimeoutMs?: number;
  /** New attempt ids. Default random UUIDs. */
  newAttemptId?: () => string;
}

/** A `run` decision with the id of the attempt recorded for it. */
export type GateDecision = Exclude<AutofixDecision, { action: 'run' }> | (Extract<AutofixDecision, { action: 'run' }> & { attemptId: string });

/** Default {@link AutofixGateOptions.runningTimeoutMs}: 6 h, longer than any task's wall-clock limit. */
export const DEFAULT_RUNNING_TIMEOUT_MS = 6 * 3600_000;

/** Applies the autofix policy against durable state; see the module doc. */
export class AutofixGate {
  readonly #store: AutofixAttemptStore;
  readonly #now: () => number;
  readonly #runningTimeoutMs: number;
  readonly #newAttemptId: () => string;

  constructor(store: AutofixAttemptStore, opts: AutofixGateOptions = {}) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#runningTimeoutMs = opts.runningTimeoutMs ?? DEFAULT_RUNNING_TIMEOUT_MS;
    this.#newAttemptId = opts.newAttemptId ?? randomUUID;
  }

  /**
   * Decides about a failure event and records the consequences: `run` records one attempt per check
   * and marks the pull request running (the decision carries the `attemptId` to pass to
   * {@link finish}); `cap_reached` stops the pull request's streak and, when `comment` is true, marks
   * the comment as posted (post it once); `wait` keeps the failure for {@link finish}; a new streak is
   * saved whatever the decision.
   */
  evaluate(event: AutofixEvent, config: RepoAutofix): GateDecision {
    return this.#store.transaction(() => {
      const key = { repo: event.repo, pullNumber: event.pullNumber };
      const now = this.#now();
      const record = this.#store.pull(key) ?? emptyRecord(key);
      if (record.running && now - record.running.startedAt > this.#runningTimeoutMs) record.running = null;
      const pushedByApp = event.headPushedByApp || (record.lastPushedSha !== null && record.lastPushedSha === event.eventHeadSha);
      const decision = decideAutofix({ ...event, headPushedByApp: pushedByApp }, config, {
        streak: record.streak,
        streakHead: record.streakHead,
        stopped: record.stoppedAt !== null,
        capNoticed: record.capNoticedAt !== null,
        running: record.running,
        attempts: this.#store.attempts(key),
      });
      if ('streak' in decision && decision.streak?.isNew) {
        record.streak = decision.streak.number;
        record.streakHead = decision.streak.head;
        record.stoppedAt = null;
        record.capNoticedAt = null;
      }
      switch (decision.action) {
        case 'run': {
          const attemptId = this.#newAttemptId();
          for (const check of decision.checks) {
            this.#store.record({ ...key, check, headSha: event.eventHeadSha, streak: decision.streak.number, attemptId, at: now });
          }
          record.running = { attemptId, headSha: event.eventHeadSha, startedAt: now };
          this.#store.savePull(record);
          return { ...decision, attemptId };
        }
        case 'cap_reached':
          record.stoppedAt ??= now;
          if (decision.comment) record.capNoticedAt = now;
          this.#store.savePull(record);
          return decision;
        case 'wait':
          record.deferred = { headSha: event.eventHeadSha, checks: [...event.failingChecks], at: now };
          this.#store.savePull(record);
          return decision;
        default:
          if (decision.streak?.isNew) this.#store.savePull(record);
          return decision;
      }
    });
  }

  /**
   * The attempt `attemptId` ended (whatever its outcome): frees the pull request, and remembers the
   * commit it pushed (`pushedSha`), so that a failure on that commit counts as the App's even when the
   * caller cannot tell (see `AutofixEvent.headPushedByApp`).
   * @returns the failure that arrived while it ran, to evaluate again (with the pull request's head
   *   read anew), or undefined; undefined too when `attemptId` is not the running attempt.
   */
  finish(key: PullKey, attemptId: string, outcome: { pushedSha?: string } = {}): DeferredFailure | undefined {
    return this.#store.transaction(() => {
      const record = this.#store.pull(key);
      if (!record?.running || record.running.attemptId !== attemptId) return undefined;
      const deferred = record.deferred ?? undefined;
      this.#store.savePull({ ...record, running: null, deferred: null, lastPushedSha: outcome.pushedSha ?? record.lastPushedSha });
      return deferred;
    });
  }

  /**
   * A person pushed to the pull request or asked for a fix: attempt counts start over and a stop
   * (cap reached) is lifted; the next automatic failure starts a new streak.
   */
  personActed(key: PullKey): void {
    this.#store.transaction(() => {
      const record = this.#store.pull(key);
      if (!record) return;
      this.#store.savePull({ ...record, streakHead: null, stoppedAt: null, capNoticedAt: null });
    });
  }
}

function emptyRecord(key: PullKey): AutofixPullRecord {
  return { ...key, streak: 0, streakHead: null, stoppedAt: null, capNoticedAt: null, running: null, deferred: null, lastPushedSha: null };
}
