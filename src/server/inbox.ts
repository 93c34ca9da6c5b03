/**
 * The webhook inbox: every verified delivery is stored here (table `webhook_inbox` of the app's
 * SQLite database, created by the task store's migration 3) before GitHub gets its answer, and is
 * processed in the background by {@link WebhookInboxWorker} (src/server/inbox-worker.ts). A row is
 * pending until it is processed, or failed after too many attempts; processed and failed rows are
 * pruned after a retention time, so the table stays bounded.
 *
 * The delivery id (`X-GitHub-Delivery`, https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers)
 * is unique: a redelivery of a pending or processed delivery is stored once. A redelivery of a
 * failed one (GitHub's "Redeliver" button, which keeps the id) makes it pending again.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';

/** A verified delivery as the webhook edge stores it. */
export interface InboxDelivery {
  /** `X-GitHub-Delivery`. */
  id: string;
  /** `X-GitHub-Event`, e.g. `issue_comment`. */
  name: string;
  /** The payload as received (JSON text, its signature checked). */
  payload: string;
  /** When the edge received it, ms since the epoch. */
  receivedAt: number;
}

/** A pending delivery, as {@link SqliteWebhookInbox.due} returns it. */
export interface PendingDelivery extends InboxDelivery {
  /** Attempts made so far (0 for a new delivery). */
  attempts: number;
}

/** Whether {@link SqliteWebhookInbox.add} stored the delivery, or already had it. */
type AddOutcome = 'queued' | 'duplicate';

interface Row {
  delivery_id: string;
  event_name: string;
  payload_json: string;
  received_at: number;
  attempts: number;
}

/** The inbox table on a `node:sqlite` database. All methods are synchronous and atomic. */
export class SqliteWebhookInbox {
  readonly #db: DatabaseSync;
  readonly #owned: boolean;
  /** Prepared statements by SQL text (node:sqlite compiles each `prepare` anew). */
  readonly #statements = new Map<string, StatementSync>();

  /**
   * @param db a database the task store has migrated (it has the `webhook_inbox` table).
   * @param owned whether {@link close} closes `db`.
   */
  constructor(db: DatabaseSync, owned = false) {
    this.#db = db;
    this.#owned = owned;
  }

  /**
   * Opens its own connection to the app's database file (WAL mode, as the task store sets it).
   * Open the task store first: its migrations create the table.
   * @throws Error from `node:sqlite` when the file cannot be opened or has no `webhook_inbox` table.
   */
  static open(file: string): SqliteWebhookInbox {
    const db = new DatabaseSync(file);
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
      db.prepare('SELECT 1 FROM webhook_inbox LIMIT 1').get();
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteWebhookInbox(db, true);
  }

  /**
   * Stores a delivery (pending, due at once) unless its id is already stored; a stored failed one is
   * made pending again with no attempts counted.
   * @returns `'queued'` when stored or made pending, `'duplicate'` when already pending or processed.
   */
  add(delivery: InboxDelivery): AddOutcome {
    const { changes } = this.#statement(
        `INSERT INTO webhook_inbox (delivery_id, event_name, payload_json, received_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(delivery_id) DO UPDATE SET event_name = excluded.event_name, payload_json = excluded.payload_json,
           received_at = excluded.received_at, attempts = 0, next_attempt_at = excluded.next_attempt_at, failed_at = NULL, last_error = NULL
         WHERE failed_at IS NOT NULL`,
      )
      .run(delivery.id, delivery.name, delivery.payload, delivery.receivedAt, delivery.receivedAt);
    return changes === 1 ? 'queued' : 'duplicate';
  }

  /**
   * Stores several deliveries (as {@link add} each) in one transaction: one commit for all, or none
   * stored when it fails.
   * @returns each delivery's outcome, in order.
   * @throws Error from `node:sqlite` when the transaction fails (nothing stored).
   */
  addAll(deliveries: InboxDelivery[]): AddOutcome[] {
    this.#db.exec('BEGIN');
    try {
      const outcomes = deliveries.map((d) => this.add(d));
      this.#db.exec('COMMIT');
      return outcomes;
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Pending deliveries due at `now`, in order of arrival (first stored first).
   * @param now ms since the epoch. @param limit at most this many.
   * @param exclude delivery ids left out (those being processed), so their payloads are not read again.
   */
  due(now: number, limit: number, exclude: Iterable<string> = []): PendingDelivery[] {
    const rows = this.#statement(
      `SELECT delivery_id, event_name, payload_json, received_at, attempts FROM webhook_inbox
       WHERE processed_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
         AND delivery_id NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?`,
    ).all(now, JSON.stringify([...exclude]), limit) as unknown as Row[];
    return rows.map((r) => ({ id: r.delivery_id, name: r.event_name, payload: r.payload_json, receivedAt: r.received_at, attempts: r.attempts }));
  }

  /** When the next pending delivery is due (ms since the epoch); `undefined` when none is pending. */
  nextDueAt(): number | undefined {
    const row = this.#statement('SELECT MIN(next_attempt_at) AS at FROM webhook_inbox WHERE processed_at IS NULL AND failed_at IS NULL').get() as {
      at: number | null;
    };
    return row.at ?? undefined;
  }

  /**
   * Counts an attempt before the delivery is handed to the handlers, so that a delivery that
   * crashes the app is counted too. @returns the attempts made, this one included.
   */
  begin(id: string): number {
    const row = this.#statement('UPDATE webhook_inbox SET attempts = attempts + 1 WHERE delivery_id = ? RETURNING attempts').get(id) as
      | { attempts: number }
      | undefined;
    return row?.attempts ?? 0;
  }

  /** Marks a delivery processed (at `now`, ms) and drops its payload. */
  processed(id: string, now: number): void {
    this.#statement(`UPDATE webhook_inbox SET processed_at = ?, payload_json = '', last_error = NULL WHERE delivery_id = ?`).run(now, id);
  }

  /** Records a failed attempt; the delivery is due again at `retryAt` (ms since the epoch). */
  retryLater(id: string, error: string, retryAt: number): void {
    this.#statement('UPDATE webhook_inbox SET next_attempt_at = ?, last_error = ? WHERE delivery_id = ?').run(retryAt, error, id);
  }

  /** Marks a delivery failed for good (at `now`, ms); it keeps its payload until pruned. */
  failed(id: string, error: string, now: number): void {
    this.#statement('UPDATE webhook_inbox SET failed_at = ?, last_error = ? WHERE delivery_id = ?').run(now, error, id);
  }

  /**
   * Deletes processed deliveries processed before `processedBefore` and failed ones failed before
   * `failedBefore` (ms since the epoch). @returns the rows deleted.
   */
  prune(processedBefore: number, failedBefore: number): number {
    return Number(
      this.#statement('DELETE FROM webhook_inbox WHERE processed_at < ? OR failed_at < ?')
        .run(processedBefore, failedBefore).changes,
    );
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Closes the connection when the inbox opened it ({@link open}). */
  close(): void {
    if (this.#owned) this.#db.close();
  }
}
