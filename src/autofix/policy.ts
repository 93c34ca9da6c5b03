/**
 * When the app fixes failing checks of a pull request on its own (`autofix.enabled` in
 * `.github/codex.yml`), and when it must stop. Pure: the state comes in, a decision goes out; the
 * {@link AutofixGate} (gate.ts) loads and saves the state.
 *
 * Rules (issue 10, DESIGN.md "Fix"):
 * - never when disabled, for the App's own check runs, for fork pull requests (the App cannot push
 *   there and the code is untrusted), for closed pull requests, or for a commit that is no longer the
 *   pull request's head;
 * - only the checks `autofix.checks` selects (names or globs; all when absent);
 * - one attempt at a time per pull request: a failure while a fix runs waits, and is re-evaluated
 *   against the head when the fix ends;
 * - at most `autofix.max_attempts` attempts per pull request and check name within a **streak**. A
 *   streak starts at a head a person pushed (or when a person asks, see `AutofixGate.personActed`); a
 *   check failing again on a commit the App pushed stays in the streak and counts as another attempt.
 *   When a selected check has used up its attempts, automatic fixing stops for the pull request: one
 *   comment says so (`comment: true` once per streak), later failures are skipped until a person
 *   pushes or asks;
 * - one attempt per (check, head SHA): a redelivered webhook, or a `check_suite` and a
 *   `workflow_run` event about the same failure, start nothing new.
 */
import type { RepoAutofix } from '../config/repo-config.ts';

/** A failure event, normalised from `check_suite.completed` or `workflow_run.completed`, with the pull request it is about. */
export interface AutofixEvent {
  /** `owner/name` of the base repository. */
  repo: string;
  pullNumber: number;
  /** Whether the pull request is open. */
  pullOpen: boolean;
  /** Whether the pull request's head is in another repository (a fork). */
  fork: boolean;
  /** The pull request's head SHA now (read from the API, not the event). */
  pullHeadSha: string;
  /** The commit the failed checks ran on (the event's `head_sha`). */
  eventHeadSha: string;
  /** Names of the failing check runs on `eventHeadSha` (the App's own excluded). */
  failingChecks: string[];
  /** The event is about the App's own check suite or check run. */
  fromOwnApp: boolean;
  /** The head commit was pushed by the App (an earlier fix or other work of the App). */
  headPushedByApp: boolean;
}

/** One recorded automatic attempt for a check. */
export interface AutofixAttemptRef {
  check: string;
  /** The head SHA the attempt started from. */
  headSha: string;
  /** The streak it belongs to. */
  streak: number;
}

/** What the policy needs to know about a pull request's past attempts. */
export interface AutofixState {
  /** The current streak's number (0 before the first) and the head that started it (null: none yet, or reset by a person). */
  streak: number;
  streakHead: string | null;
  /** Automatic fixing stopped in this streak (the cap was reached). */
  stopped: boolean;
  /** The cap comment was posted in this streak. */
  capNoticed: boolean;
  /** The attempt running now, if any (stale ones already dropped by the caller). */
  running: { attemptId: string; headSha: string } | null;
  /** Every recorded attempt of the pull request. */
  attempts: AutofixAttemptRef[];
}

/** The streak a decision is made in; `isNew` when this event starts it. */
export interface StreakRef {
  number: number;
  head: string;
  isNew: boolean;
}

/** Why nothing happens. */
export type AutofixSkipReason =
  | 'disabled'
  | 'own_check'
  | 'fork'
  | 'closed'
  | 'stale_head'
  | 'no_failing_checks'
  | 'no_matching_checks'
  | 'already_attempted'
  | 'stopped';

/**
 * The decision:
 * - `run`: start a fix for `checks` (attempt number `attempt` = the highest count among them, 1-based);
 * - `cap_reached`: `checks` used up `maxAttempts`; automatic fixing stops for the pull request;
 *   post the cap comment when `comment` is true (the first time in the streak);
 * - `wait`: a fix is running for the pull request; re-evaluate when it ends;
 * - `skip`: nothing to do, for `reason`.
 */
export type AutofixDecision =
  | { action: 'run'; checks: string[]; attempt: number; streak: StreakRef }
  | { action: 'cap_reached'; checks: string[]; maxAttempts: number; comment: boolean; streak: StreakRef }
  | { action: 'wait'; runningAttemptId: string }
  | { action: 'skip'; reason: AutofixSkipReason; streak?: StreakRef };

/**
 * Whether check `name` matches `pattern`: case-insensitive; `*` matches any characters, `?` one;
 * everything else is literal. A pattern without wildcards also matches the name's matrix variants
 * (`test` matches `test (ubuntu-latest, 20)`), as GitHub Actions names matrix jobs that way.
 */
export function matchesCheckPattern(name: string, pattern: string): boolean {
  const source = [...pattern]
    .map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')))
    .join('');
  const matrix = /[*?]/.test(pattern) ? '' : '(?: \\(.*\\))?';
  return new RegExp(`^${source}${matrix}$`, 'isu').test(name);
}

/** The failing checks `patterns` select (all when `patterns` is undefined), unique, in order. */
export function selectChecks(names: readonly string[], patterns: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (out.includes(name)) continue;
    if (!patterns || patterns.some((p) => matchesCheckPattern(name, p))) out.push(name);
  }
  return out;
}

/** Decides what to do about a failure event; see the module doc for the rules. */
export function decideAutofix(event: AutofixEvent, config: RepoAutofix, state: AutofixState): AutofixDecision {
  if (!config.enabled) return { action: 'skip', reason: 'disabled' };
  if (event.fromOwnApp) return { action: 'skip', reason: 'own_check' };
  if (event.fork) return { action: 'skip', reason: 'fork' };
  if (!event.pullOpen) return { action: 'skip', reason: 'closed' };
  if (event.eventHeadSha !== event.pullHeadSha) return { action: 'skip', reason: 'stale_head' };
  if (!event.failingChecks.length) return { action: 'skip', reason: 'no_failing_checks' };
  const selected = selectChecks(event.failingChecks, config.checks);
  if (!selected.length) return { action: 'skip', reason: 'no_matching_checks' };
  if (state.running) return { action: 'wait', runningAttemptId: state.running.attemptId };

  const isNew = state.streakHead === null || (!event.headPushedByApp && state.streakHead !== event.eventHeadSha);
  const streak: StreakRef = isNew ? { number: state.streak + 1, head: event.eventHeadSha, isNew } : { number: state.streak, head: state.streakHead!, isNew };
  const inStreak = isNew ? [] : state.attempts.filter((a) => a.streak === streak.number);
  if (!isNew && state.stopped) return { action: 'skip', reason: 'stopped', streak };

  const fresh = selected.filter((check) => !state.attempts.some((a) => a.check === check && a.headSha === event.eventHeadSha));
  if (!fresh.length) return { action: 'skip', reason: 'already_attempted', streak };
  const count = (check: string): number => inStreak.filter((a) => a.check === check).length;
  const capped = fresh.filter((check) => count(check) >= config.max_attempts);
  if (capped.length) {
    return { action: 'cap_reached', checks: capped, maxAttempts: config.max_attempts, comment: isNew || !state.capNoticed, streak };
  }
  return { action: 'run', checks: fresh, attempt: Math.max(...fresh.map(count)) + 1, streak };
}
