/**
 * The durable task store: every task, each of its state changes and its progress events, in one
 * SQLite file (Node's built-in `node:sqlite`, https://nodejs.org/api/sqlite.html). The interface is
 * narrow ({@link TaskStore}) so another store can follow.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Phase, ProgressEvent, TaskResult } from '../contract.ts';
import type { TaskTokenPersistence, TaskTokenRecord } from '../gateway/task-tokens.ts';
import type { FinalReply, ReplyOutbox } from '../github/thread-reporter.ts';
import { upgradeRequest, type LegacyTaskRequest, type TaskRecord, type TaskRequest, type TaskState } from './types.ts';
import type { ClaimRecord, ClaimStore } from '../runners/claims.ts';

/** Fields a state change may set along with the state. */
export interface TaskPatch {
  phase?: Phase;
  progressCommentId?: number;
  backend?: string;
  externalId?: string;
  result?: TaskResult;
  failure?: { phase: string; reason: string };
  pullRequest?: { number: number; url: string; title: string };
  startedAt?: number;
  finishedAt?: number;
  /** The commit the app dispatched the runner on (the only parent a published commit may have). */
  baseSha?: string;
  /** The branch `baseSha` was read from. */
  baseRef?: string;
  /** For pull request work: the head commit the app dispatched. */
  headSha?: string;
  /** The branch chosen for publishing, stored before it is created (a restart reuses it). */
  branch?: string;
  /** The commit created for publishing, stored before any ref points at it. */
  commitSha?: string;
  /**
   * The final reply, queued in the outbox in the same transaction as the state change (give it
   * with a final state). At most one per task: a second one is ignored.
   */
  finalReply?: { body: string };
}

/** What the task service needs from a store. All methods are synchronous and atomic. */
export interface TaskStore {
  /**
   * Creates the task unless one exists for `request.triggerKey`.
   * @returns the task and whether it was created now (false: a redelivery).
   */
  create(id: string, logKey: string, request: TaskRequest): { task: TaskRecord; created: boolean };
  get(id: string): TaskRecord | undefined;
  /** Sets fields and, when `state` is given, records the transition (with `detail`). */
  update(id: string, patch: TaskPatch, state?: TaskState, detail?: string): TaskRecord;
  /** Tasks in any of `states`, oldest first. */
  listByState(states: readonly TaskState[]): TaskRecord[];
  /** The newest task of an issue or pull request thread (`issueNumber`: the issue or pull request number). */
  latestForThread(owner: string, repo: string, issueNumber: number): TaskRecord | undefined;
  /**
   * Appends a progress event; returns its sequence number. Stores cap the events kept per task (count
   * and bytes): past the cap, events are dropped (0 is returned) and one `log` warning says so.
   */
  appendEvent(id: string, event: ProgressEvent): number;
  events(id: string): ProgressEvent[];
  /** State changes of a task, oldest first. */
  transitions(id: string): Array<{ at: number; from: TaskState | null; to: TaskState; detail: string | null }>;
  /**
   * Records that the reply identified by `key` (e.g. a trigger key) is being sent, durably.
   * @returns true the first time for a key, false afterwards (also after a restart).
   */
  recordReply(key: string): boolean;
  /**
   * The review tasks (request kind `review`) of a pull request, newest first: what automatic reviews
   * consult to skip a head already reviewed and to find the last reviewed head for an incremental one.
   */
  reviewTasks(owner: string, repo: string, pullNumber: number): TaskRecord[];
  /** Final replies waiting to be delivered (see {@link TaskPatch.finalReply}). */
  readonly outbox: ReplyOutbox;
  /** Backing for the gateway's task tokens. */
  readonly tokens: TaskTokenPersistence;
  /** Backing for the ECS backend's claim tickets and posted results (optional for other stores). */
  readonly claims?: ClaimStore;
  close(): void;
}

interface TaskRow {
  id: string;
  trigger_key: string;
  delivery_id: string;
  state: TaskState;
  request_json: string;
  log_key: string;
  progress_comment_id: number | null;
  phase: Phase | null;
  backend: string | null;
  external_id: string | null;
  result_json: string | null;
  failure_json: string | null;
  pull_request_json: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  base_sha: string | null;
  base_ref: string | null;
  head_sha: string | null;
  branch: string | null;
  commit_sha: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY,
  trigger_key TEXT NOT NULL UNIQUE,
  delivery_id TEXT NOT NULL,
  state TEXT NOT NULL,
  owner TEXT NOT NULL,
  repo TEXT NOT NULL,
  issue_number INTEGER NOT NULL,
  request_json TEXT NOT NULL,
  log_key TEXT NOT NULL,
  progress_comment_id INTEGER,
  phase TEXT,
  backend TEXT,
  external_id TEXT,
  result_json TEXT,
  failure_json TEXT,
  pull_request_json TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE INDEX IF NOT EXISTS tasks_thread ON tasks(owner, repo, issue_number, created_at);
CREATE TABLE IF NOT EXISTS task_transitions (
  task_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS task_transitions_task ON task_transitions(task_id);
CREATE TABLE IF NOT EXISTS task_events (
  task_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY (task_id, seq)
);
CREATE TABLE IF NOT EXISTS task_tokens (
  token_hash TEXT PRIMARY KEY,
  task_id TEXT NOT NULL,
  json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS task_tokens_task ON task_tokens(task_id);
`;

/** Migration 2: the dispatched SHAs and publishing checkpoints of a task, the reply outbox, sent replies. */
const MIGRATION_2 = `
ALTER TABLE tasks ADD COLUMN base_sha TEXT;
ALTER TABLE tasks ADD COLUMN base_ref TEXT;
ALTER TABLE tasks ADD COLUMN head_sha TEXT;
ALTER TABLE tasks ADD COLUMN branch TEXT;
ALTER TABLE tasks ADD COLUMN commit_sha TEXT;
CREATE TABLE outbox (
  task_id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  edit_failures INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  post_started_at INTEGER,
  last_error TEXT,
  comment_id INTEGER,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  abandoned_at INTEGER
);
CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE TABLE replies (
  key TEXT PRIMARY KEY,
  at INTEGER NOT NULL
);
`;

/**
 * Migration 3: task targets. `target_type` (`issue` | `pull_request`; `issue_number` stays the thread
 * number, issue or pull request) and the origin (`origin_type`, `origin_id`: what was reacted to).
 * Older rows keep their `request_json` (with `issueNumber`, `issueTitle`, `reactTo`), converted on read
 * by `upgradeRequest`.
 */
const MIGRATION_3 = `
ALTER TABLE tasks ADD COLUMN target_type TEXT NOT NULL DEFAULT 'issue';
ALTER TABLE tasks ADD COLUMN origin_type TEXT;
ALTER TABLE tasks ADD COLUMN origin_id INTEGER;
`;

/**
 * Migration 4: the webhook inbox (src/server/inbox.ts): each verified delivery, stored before GitHub
 * gets its answer and processed in the background; `delivery_id` unique, so that a redelivery is
 * stored once.
 */
const MIGRATION_4 = `
CREATE TABLE webhook_inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id TEXT NOT NULL UNIQUE,
  event_name TEXT NOT NULL,
  payload_json TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  processed_at INTEGER,
  failed_at INTEGER,
  last_error TEXT
);
CREATE INDEX webhook_inbox_pending ON webhook_inbox(seq) WHERE processed_at IS NULL AND failed_at IS NULL;
`;

/**
 * Schema migrations, in order: entry `i` takes the database from `PRAGMA user_version` `i` to `i + 1`.
 * Migration 1 is the schema from before versioning, written with `IF NOT EXISTS` so that it also
 * applies to a database created by an older app (version 0 with the tables present). Append only.
 */
const MIGRATIONS: readonly string[] = [SCHEMA, MIGRATION_2, MIGRATION_3, MIGRATION_4];

/** Thrown when the database was written by a newer app (its schema version is unknown here). */
export class StoreVersionError extends Error {
  override name = 'StoreVersionError';
}

/**
 * Brings `db` to the latest schema version, one transaction per migration.
 * @throws StoreVersionError when the database's version is newer than this app's migrations.
 */
function migrate(db: DatabaseSync, file: string): void {
  const { user_version: current } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  if (current > MIGRATIONS.length) {
    throw new StoreVersionError(`${file} has schema version ${current}; this app knows versions up to ${MIGRATIONS.length}: upgrade the app`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[version]!);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
}

function parse<T>(json: string | null): T | undefined {
  return json === null ? undefined : (JSON.parse(json) as T);
}

function toRecord(row: TaskRow): TaskRecord {
  return {
    id: row.id,
    triggerKey: row.trigger_key,
    deliveryId: row.delivery_id,
    state: row.state,
    request: upgradeRequest(JSON.parse(row.request_json) as TaskRequest | LegacyTaskRequest),
    logKey: row.log_key,
    progressCommentId: row.progress_comment_id ?? undefined,
    phase: row.phase ?? undefined,
    backend: row.backend ?? undefined,
    externalId: row.external_id ?? undefined,
    result: parse(row.result_json),
    failure: parse(row.failure_json),
    pullRequest: parse(row.pull_request_json),
    createdAt: row.created_at,
    startedAt: row.started_at ?? undefined,
    finishedAt: row.finished_at ?? undefined,
    baseSha: row.base_sha ?? undefined,
    baseRef: row.base_ref ?? undefined,
    headSha: row.head_sha ?? undefined,
    branch: row.branch ?? undefined,
    commitSha: row.commit_sha ?? undefined,
  };
}

/** Caps of the events a store keeps per task (see {@link TaskStore.appendEvent}). */
export interface TaskEventLimits {
  /** Events kept per task, count (default {@link DEFAULT_MAX_EVENTS_PER_TASK}). */
  maxEventsPerTask?: number;
  /** Bytes of events kept per task (their JSON, UTF-8), bytes (default {@link DEFAULT_MAX_EVENT_BYTES_PER_TASK}). */
  maxEventBytesPerTask?: number;
}

/** Default cap of events kept per task, count. */
export const DEFAULT_MAX_EVENTS_PER_TASK = 20_000;
/** Default cap of event bytes kept per task, bytes (8 MiB). */
export const DEFAULT_MAX_EVENT_BYTES_PER_TASK = 8 * 1024 * 1024;
/** Start of the warning stored when a task's events reach the cap. */
const EVENTS_DROPPED_NOTICE = 'This task reached its cap of stored events';

/**
 * SQLite implementation of {@link TaskStore}. `file` is a path (its directory is created) or
 * `:memory:`. WAL journal, so the task log page can read while tasks write.
 */
export class SqliteTaskStore implements TaskStore {
  private readonly db: DatabaseSync;
  readonly tokens: TaskTokenPersistence;
  readonly claims: ClaimStore;
  readonly outbox: ReplyOutbox;

  /**
   * @param file a path (its directory is created) or `:memory:`.
   * @param limits caps of the events kept per task (see {@link TaskEventLimits}).
   */
  constructor(file: string, limits: TaskEventLimits = {}) {
    this.#eventLimits = limits;
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new DatabaseSync(file);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    migrate(this.db, file);
    const db = this.db;
    this.outbox = sqliteOutbox(db);
    this.tokens = {
      put(rec: TaskTokenRecord) {
        db.prepare('INSERT OR REPLACE INTO task_tokens (token_hash, task_id, json) VALUES (?, ?, ?)').run(
          rec.tokenHash,
          rec.taskId,
          JSON.stringify(rec),
        );
      },
      getByHash(hash: string) {
        const row = db.prepare('SELECT json FROM task_tokens WHERE token_hash = ?').get(hash) as { json: string } | undefined;
        return row ? (JSON.parse(row.json) as TaskTokenRecord) : undefined;
      },
      getByTaskId(taskId: string) {
        const row = db.prepare('SELECT json FROM task_tokens WHERE task_id = ? ORDER BY rowid DESC LIMIT 1').get(taskId) as { json: string } | undefined;
        return row ? (JSON.parse(row.json) as TaskTokenRecord) : undefined;
      },
      update(taskId: string, patch: Partial<TaskTokenRecord>) {
        const rows = db.prepare('SELECT token_hash, json FROM task_tokens WHERE task_id = ?').all(taskId) as Array<{ token_hash: string; json: string }>;
        for (const row of rows) {
          const merged = { ...(JSON.parse(row.json) as TaskTokenRecord), ...patch };
          db.prepare('UPDATE task_tokens SET json = ? WHERE token_hash = ?').run(JSON.stringify(merged), row.token_hash);
        }
      },
    };
    this.claims = sqliteClaimStore(this.db);
  }

  create(id: string, logKey: string, request: TaskRequest): { task: TaskRecord; created: boolean } {
    const now = Date.now();
    const inserted = this.db
      .prepare(
        `INSERT INTO tasks (id, trigger_key, delivery_id, state, owner, repo, issue_number, target_type, origin_type, origin_id, request_json, log_key, created_at, updated_at)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(trigger_key) DO NOTHING`,
      )
      .run(
        id,
        request.triggerKey,
        request.deliveryId,
        request.owner,
        request.repo,
        request.target.number,
        request.target.type,
        request.origin?.type ?? null,
        request.origin?.id ?? null,
        JSON.stringify(request),
        logKey,
        now,
        now,
      );
    if (inserted.changes === 1) {
      this.db.prepare('INSERT INTO task_transitions (task_id, at, from_state, to_state, detail) VALUES (?, ?, NULL, ?, ?)').run(id, now, 'queued', `delivery ${request.deliveryId}`);
      return { task: this.get(id)!, created: true };
    }
    const row = this.db.prepare('SELECT * FROM tasks WHERE trigger_key = ?').get(request.triggerKey) as unknown as TaskRow;
    return { task: toRecord(row), created: false };
  }

  get(id: string): TaskRecord | undefined {
    const row = this.db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as unknown as TaskRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  update(id: string, patch: TaskPatch, state?: TaskState, detail?: string): TaskRecord {
    const current = this.get(id);
    if (!current) throw new Error(`unknown task ${id}`);
    const sets: string[] = ['updated_at = ?'];
    const values: Array<string | number | null> = [Date.now()];
    const set = (column: string, value: string | number | null) => {
      sets.push(`${column} = ?`);
      values.push(value);
    };
    if (patch.phase !== undefined) set('phase', patch.phase);
    if (patch.progressCommentId !== undefined) set('progress_comment_id', patch.progressCommentId);
    if (patch.backend !== undefined) set('backend', patch.backend);
    if (patch.externalId !== undefined) set('external_id', patch.externalId);
    if (patch.result !== undefined) set('result_json', JSON.stringify(patch.result));
    if (patch.failure !== undefined) set('failure_json', JSON.stringify(patch.failure));
    if (patch.pullRequest !== undefined) set('pull_request_json', JSON.stringify(patch.pullRequest));
    if (patch.startedAt !== undefined) set('started_at', patch.startedAt);
    if (patch.finishedAt !== undefined) set('finished_at', patch.finishedAt);
    if (patch.baseSha !== undefined) set('base_sha', patch.baseSha);
    if (patch.baseRef !== undefined) set('base_ref', patch.baseRef);
    if (patch.headSha !== undefined) set('head_sha', patch.headSha);
    if (patch.branch !== undefined) set('branch', patch.branch);
    if (patch.commitSha !== undefined) set('commit_sha', patch.commitSha);
    if (state !== undefined) set('state', state);
    this.db.exec('BEGIN');
    try {
      this.db.prepare(`UPDATE tasks SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
      if (state !== undefined && state !== current.state) {
        this.db
          .prepare('INSERT INTO task_transitions (task_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)')
          .run(id, Date.now(), current.state, state, detail ?? null);
      }
      if (patch.finalReply !== undefined) {
        const now = Date.now();
        this.db
          .prepare('INSERT INTO outbox (task_id, body, next_attempt_at, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(task_id) DO NOTHING')
          .run(id, patch.finalReply.body, now, now);
      }
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
    return this.get(id)!;
  }

  recordReply(key: string): boolean {
    return this.db.prepare('INSERT INTO replies (key, at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(key, Date.now()).changes === 1;
  }

  listByState(states: readonly TaskState[]): TaskRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM tasks WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY created_at, rowid`)
      .all(...states) as unknown as TaskRow[];
    return rows.map(toRecord);
  }

  latestForThread(owner: string, repo: string, issueNumber: number): TaskRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM tasks WHERE owner = ? AND repo = ? AND issue_number = ? ORDER BY created_at DESC, rowid DESC LIMIT 1')
      .get(owner, repo, issueNumber) as unknown as TaskRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  reviewTasks(owner: string, repo: string, pullNumber: number): TaskRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM tasks WHERE owner = ? AND repo = ? AND issue_number = ? AND target_type = 'pull_request'
           AND json_extract(request_json, '$.kind') = 'review' ORDER BY created_at DESC, rowid DESC`,
      )
      .all(owner, repo, pullNumber) as unknown as TaskRow[];
    return rows.map(toRecord);
  }

  readonly #eventLimits: TaskEventLimits;
  /** Events and bytes kept per task, read from the table at a task's first append in this process. */
  readonly #eventTotals = new Map<string, { count: number; bytes: number; full: boolean }>();

  /**
   * Appends `event` unless the task's cap (`limits`) is reached: the first event over the cap is
   * replaced by one `log` warning (stored beyond the cap) and it and every later event are dropped.
   * @returns the event's sequence number, or 0 when it was dropped.
   */
  appendEvent(id: string, event: ProgressEvent): number {
    const maxEvents = this.#eventLimits.maxEventsPerTask ?? DEFAULT_MAX_EVENTS_PER_TASK;
    const maxBytes = this.#eventLimits.maxEventBytesPerTask ?? DEFAULT_MAX_EVENT_BYTES_PER_TASK;
    let totals = this.#eventTotals.get(id);
    if (!totals) {
      const row = this.db
        .prepare('SELECT COUNT(*) AS count, COALESCE(SUM(LENGTH(CAST(json AS BLOB))), 0) AS bytes FROM task_events WHERE task_id = ?')
        .get(id) as { count: number; bytes: number };
      const last = this.db.prepare('SELECT json FROM task_events WHERE task_id = ? ORDER BY seq DESC LIMIT 1').get(id) as { json: string } | undefined;
      const lastEvent = last ? (JSON.parse(last.json) as ProgressEvent) : undefined;
      const full = lastEvent?.type === 'log' && lastEvent.message.startsWith(EVENTS_DROPPED_NOTICE);
      totals = { count: row.count, bytes: row.bytes, full };
      this.#eventTotals.set(id, totals);
    }
    if (totals.full) return 0;
    let json = JSON.stringify(event);
    let bytes = Buffer.byteLength(json, 'utf8');
    if (totals.count + 1 > maxEvents || totals.bytes + bytes > maxBytes) {
      totals.full = true;
      const notice: ProgressEvent = {
        type: 'log',
        at: new Date().toISOString(),
        level: 'warn',
        message: `${EVENTS_DROPPED_NOTICE} (${maxEvents} events or ${maxBytes} bytes); later events were dropped.`,
      };
      json = JSON.stringify(notice);
      bytes = Buffer.byteLength(json, 'utf8');
    }
    const next = this.db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM task_events WHERE task_id = ?').get(id) as { next: number };
    this.db.prepare('INSERT INTO task_events (task_id, seq, json) VALUES (?, ?, ?)').run(id, next.next, json);
    totals.count++;
    totals.bytes += bytes;
    return totals.full ? 0 : next.next;
  }

  events(id: string): ProgressEvent[] {
    const rows = this.db.prepare('SELECT json FROM task_events WHERE task_id = ? ORDER BY seq').all(id) as Array<{ json: string }>;
    return rows.map((r) => JSON.parse(r.json) as ProgressEvent);
  }

  transitions(id: string): Array<{ at: number; from: TaskState | null; to: TaskState; detail: string | null }> {
    const rows = this.db
      .prepare('SELECT at, from_state, to_state, detail FROM task_transitions WHERE task_id = ? ORDER BY rowid')
      .all(id) as Array<{ at: number; from_state: TaskState | null; to_state: TaskState; detail: string | null }>;
    return rows.map((r) => ({ at: r.at, from: r.from_state, to: r.to_state, detail: r.detail }));
  }

  close(): void {
    this.db.close();
  }
}

// ── The final-reply outbox (see src/github/thread-reporter.ts) ──────────────────────────────────

interface OutboxRow {
  task_id: string;
  body: string;
  attempts: number;
  edit_failures: number;
  next_attempt_at: number;
  post_started_at: number | null;
  created_at: number;
  request_json: string;
  progress_comment_id: number | null;
}

/** {@link ReplyOutbox} on the task store's database (table `outbox`, joined with `tasks`). */
function sqliteOutbox(db: DatabaseSync): ReplyOutbox {
  return {
    pending(): FinalReply[] {
      const rows = db
        .prepare(
          `SELECT o.task_id, o.body, o.attempts, o.edit_failures, o.next_attempt_at, o.post_started_at, o.created_at,
                  t.request_json, t.progress_comment_id
           FROM outbox o JOIN tasks t ON t.id = o.task_id
           WHERE o.delivered_at IS NULL AND o.abandoned_at IS NULL ORDER BY o.next_attempt_at, o.rowid`,
        )
        .all() as unknown as OutboxRow[];
      return rows.map((row) => {
        const request = upgradeRequest(JSON.parse(row.request_json) as TaskRequest | LegacyTaskRequest);
        return {
          taskId: row.task_id,
          installationId: request.installationId,
          owner: request.owner,
          repo: request.repo,
          issueNumber: request.target.number,
          ...(row.progress_comment_id !== null ? { progressCommentId: row.progress_comment_id } : {}),
          body: row.body,
          attempts: row.attempts,
          editFailures: row.edit_failures,
          nextAttemptAt: row.next_attempt_at,
          ...(row.post_started_at !== null ? { postStartedAt: row.post_started_at } : {}),
          createdAt: row.created_at,
        };
      });
    },
    recordFailure(taskId, failure) {
      db.prepare('UPDATE outbox SET attempts = ?, edit_failures = ?, next_attempt_at = ?, last_error = ? WHERE task_id = ?').run(
        failure.attempts,
        failure.editFailures,
        failure.nextAttemptAt,
        failure.error,
        taskId,
      );
    },
    markPosting(taskId, at) {
      db.prepare('UPDATE outbox SET post_started_at = ? WHERE task_id = ?').run(at, taskId);
    },
    delivered(taskId, commentId) {
      db.prepare('UPDATE outbox SET delivered_at = ?, comment_id = ? WHERE task_id = ?').run(Date.now(), commentId, taskId);
    },
    abandon(taskId, error) {
      db.prepare('UPDATE outbox SET abandoned_at = ?, last_error = ? WHERE task_id = ?').run(Date.now(), error, taskId);
    },
  };
}

// ── Claim tickets and posted results of the ECS backend (see src/runners/claims.ts) ────────────

const CLAIMS_SCHEMA = `
CREATE TABLE IF NOT EXISTS runner_claims (
  task_id TEXT PRIMARY KEY,
  ticket_hash TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  spec_json TEXT,
  claimed_at INTEGER,
  base_sha TEXT NOT NULL,
  repository TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runner_results (
  task_id TEXT PRIMARY KEY,
  json TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
`;

interface ClaimRow {
  task_id: string;
  ticket_hash: string;
  expires_at: number;
  spec_json: string | null;
  claimed_at: number | null;
  base_sha: string;
  repository: string;
  created_at: number;
}

/** {@link ClaimStore} on the task store's SQLite database (tables `runner_claims`, `runner_results`). */
function sqliteClaimStore(db: DatabaseSync): ClaimStore {
  db.exec(CLAIMS_SCHEMA);
  return {
    put(rec: ClaimRecord) {
      db.prepare(
        `INSERT OR REPLACE INTO runner_claims (task_id, ticket_hash, expires_at, spec_json, claimed_at, base_sha, repository, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(rec.taskId, rec.ticketHash, rec.expiresAt, rec.specJson, rec.claimedAt, rec.baseSha, rec.repository, rec.createdAt);
    },
    get(taskId: string) {
      const row = db.prepare('SELECT * FROM runner_claims WHERE task_id = ?').get(taskId) as unknown as ClaimRow | undefined;
      if (!row) return undefined;
      return {
        taskId: row.task_id,
        ticketHash: row.ticket_hash,
        expiresAt: row.expires_at,
        specJson: row.spec_json,
        claimedAt: row.claimed_at,
        baseSha: row.base_sha,
        repository: row.repository,
        createdAt: row.created_at,
      };
    },
    consume(taskId: string, ticketHash: string, now: number) {
      // Check and use in one transaction: a ticket works once, whatever the concurrency.
      db.exec('BEGIN IMMEDIATE');
      try {
        const row = db
          .prepare(
            `SELECT spec_json FROM runner_claims
             WHERE task_id = ? AND ticket_hash = ? AND claimed_at IS NULL AND spec_json IS NOT NULL AND expires_at > ?`,
          )
          .get(taskId, ticketHash, now) as { spec_json: string } | undefined;
        if (row) db.prepare('UPDATE runner_claims SET claimed_at = ?, spec_json = NULL WHERE task_id = ?').run(now, taskId);
        db.exec('COMMIT');
        return row?.spec_json;
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    clearSpec(taskId: string) {
      db.prepare('UPDATE runner_claims SET spec_json = NULL WHERE task_id = ?').run(taskId);
    },
    putResult(taskId: string, resultJson: string, receivedAt: number) {
      db.prepare('INSERT OR REPLACE INTO runner_results (task_id, json, received_at) VALUES (?, ?, ?)').run(taskId, resultJson, receivedAt);
    },
    getResult(taskId: string) {
      const row = db.prepare('SELECT json FROM runner_results WHERE task_id = ?').get(taskId) as { json: string } | undefined;
      return row?.json;
    },
    purge(now: number, before: number) {
      db.prepare('UPDATE runner_claims SET spec_json = NULL WHERE spec_json IS NOT NULL AND expires_at <= ?').run(now);
      db.prepare('DELETE FROM runner_claims WHERE created_at < ?').run(before);
      db.prepare('DELETE FROM runner_results WHERE received_at < ?').run(before);
    },
  };
}
