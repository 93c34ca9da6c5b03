/**
 * {@link AutofixAttemptStore} on SQLite (`node:sqlite`), in the app's task database or any other: it
 * creates its own tables (`autofix_pulls`, `autofix_attempts`) with `CREATE TABLE IF NOT EXISTS`,
 * independent of the task store's versioned migrations. Repository names are stored lower-cased.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { AutofixAttempt, AutofixAttemptStore, AutofixPullRecord, DeferredFailure, PullKey } from './gate.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS autofix_pulls (
  repo TEXT NOT NULL,
  pull_number INTEGER NOT NULL,
  streak INTEGER NOT NULL,
  streak_head TEXT,
  stopped_at INTEGER,
  cap_noticed_at INTEGER,
  running_attempt TEXT,
  running_head TEXT,
  running_started_at INTEGER,
  deferred_json TEXT,
  last_pushed_sha TEXT,
  PRIMARY KEY (repo, pull_number)
);
CREATE TABLE IF NOT EXISTS autofix_attempts (
  repo TEXT NOT NULL,
  pull_number INTEGER NOT NULL,
  check_name TEXT NOT NULL,
  head_sha TEXT NOT NULL,
  attempt_id TEXT NOT NULL,
  streak INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (repo, pull_number, check_name, head_sha)
);
`;

interface PullRow {
  repo: string;
  pull_number: number;
  streak: number;
  streak_head: string | null;
  stopped_at: number | null;
  cap_noticed_at: number | null;
  running_attempt: string | null;
  running_head: string | null;
  running_started_at: number | null;
  deferred_json: string | null;
  last_pushed_sha: string | null;
}

interface AttemptRow {
  repo: string;
  pull_number: number;
  check_name: string;
  head_sha: string;
  attempt_id: string;
  streak: number;
  created_at: number;
}

const repoKey = (repo: string): string => repo.toLowerCase();

/**
 * An {@link AutofixAttemptStore} on `db` (creates its tables if missing). `transaction` uses
 * `BEGIN IMMEDIATE`, so concurrent writers (another process on the same file) wait (the database's
 * `busy_timeout`) instead of interleaving; it does not nest.
 */
export function sqliteAutofixAttempts(db: DatabaseSync): AutofixAttemptStore {
  db.exec(SCHEMA);
  const getPull = db.prepare('SELECT * FROM autofix_pulls WHERE repo = ? AND pull_number = ?');
  const putPull = db.prepare(
    `INSERT OR REPLACE INTO autofix_pulls
       (repo, pull_number, streak, streak_head, stopped_at, cap_noticed_at, running_attempt, running_head, running_started_at, deferred_json, last_pushed_sha)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const listAll = db.prepare('SELECT * FROM autofix_attempts WHERE repo = ? AND pull_number = ? ORDER BY created_at, rowid');
  const listCheck = db.prepare('SELECT * FROM autofix_attempts WHERE repo = ? AND pull_number = ? AND check_name = ? ORDER BY created_at, rowid');
  const insert = db.prepare(
    `INSERT OR IGNORE INTO autofix_attempts (repo, pull_number, check_name, head_sha, attempt_id, streak, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const toAttempt = (row: AttemptRow): AutofixAttempt => ({
    repo: row.repo,
    pullNumber: row.pull_number,
    check: row.check_name,
    headSha: row.head_sha,
    attemptId: row.attempt_id,
    streak: row.streak,
    at: row.created_at,
  });
  return {
    pull(key: PullKey): AutofixPullRecord | undefined {
      const row = getPull.get(repoKey(key.repo), key.pullNumber) as unknown as PullRow | undefined;
      if (!row) return undefined;
      return {
        repo: row.repo,
        pullNumber: row.pull_number,
        streak: row.streak,
        streakHead: row.streak_head,
        stoppedAt: row.stopped_at,
        capNoticedAt: row.cap_noticed_at,
        running:
          row.running_attempt !== null && row.running_head !== null && row.running_started_at !== null
            ? { attemptId: row.running_attempt, headSha: row.running_head, startedAt: row.running_started_at }
            : null,
        deferred: row.deferred_json === null ? null : (JSON.parse(row.deferred_json) as DeferredFailure),
        lastPushedSha: row.last_pushed_sha,
      };
    },
    savePull(r: AutofixPullRecord): void {
      putPull.run(
        repoKey(r.repo),
        r.pullNumber,
        r.streak,
        r.streakHead,
        r.stoppedAt,
        r.capNoticedAt,
        r.running?.attemptId ?? null,
        r.running?.headSha ?? null,
        r.running?.startedAt ?? null,
        r.deferred === null ? null : JSON.stringify(r.deferred),
        r.lastPushedSha,
      );
    },
    attempts(key: PullKey, check?: string): AutofixAttempt[] {
      const rows = (check === undefined ? listAll.all(repoKey(key.repo), key.pullNumber) : listCheck.all(repoKey(key.repo), key.pullNumber, check)) as unknown as AttemptRow[];
      return rows.map(toAttempt);
    },
    record(a: AutofixAttempt): boolean {
      return insert.run(repoKey(a.repo), a.pullNumber, a.check, a.headSha, a.attemptId, a.streak, a.at).changes > 0;
    },
    transaction<T>(fn: () => T): T {
      db.exec('BEGIN IMMEDIATE');
      try {
        const out = fn();
        db.exec('COMMIT');
        return out;
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
  };
}
