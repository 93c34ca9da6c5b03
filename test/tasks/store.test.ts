import { afterAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteTaskStore, StoreVersionError } from '../../src/tasks/store.ts';
import type { TaskRequest } from '../../src/tasks/types.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'store-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const request: TaskRequest = {
  triggerKey: 'issues:1',
  deliveryId: 'd1',
  kind: 'task',
  installationId: 1,
  owner: 'acme',
  repo: 'calc',
  target: { type: 'issue', number: 3, title: 't' },
  requester: { login: 'maintainer', id: 1 },
  instruction: '',
  context: [],
  origin: { type: 'issue', id: 1 },
  settings: { model: 'm', autoInstall: true, timeoutMs: 1000, maxTokens: 10, allowWorkflowChanges: false, draftPullRequests: false },
};

/** The same request as the app stored it before targets existed (store versions up to 2). */
const { target: _target, origin: _origin, ...rest } = request;
const legacy = { ...rest, issueNumber: 3, issueTitle: 't' };

const version = (file: string) => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  } finally {
    db.close();
  }
};

describe('SqliteTaskStore migrations', () => {
  test('a database of the app before versioning keeps its tasks and gains the new columns and tables', () => {
    const file = path.join(dir, 'old.db');
    const old = new DatabaseSync(file);
    // The schema as the app created it before migrations (user_version 0).
    old.exec(`CREATE TABLE tasks (id TEXT PRIMARY KEY, trigger_key TEXT NOT NULL UNIQUE, delivery_id TEXT NOT NULL, state TEXT NOT NULL,
      owner TEXT NOT NULL, repo TEXT NOT NULL, issue_number INTEGER NOT NULL, request_json TEXT NOT NULL, log_key TEXT NOT NULL,
      progress_comment_id INTEGER, phase TEXT, backend TEXT, external_id TEXT, result_json TEXT, failure_json TEXT, pull_request_json TEXT,
      created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER, updated_at INTEGER NOT NULL);
      CREATE TABLE task_transitions (task_id TEXT NOT NULL, at INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, detail TEXT);
      CREATE TABLE task_events (task_id TEXT NOT NULL, seq INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (task_id, seq));
      CREATE TABLE task_tokens (token_hash TEXT PRIMARY KEY, task_id TEXT NOT NULL, json TEXT NOT NULL);`);
    old
      .prepare(`INSERT INTO tasks (id, trigger_key, delivery_id, state, owner, repo, issue_number, request_json, log_key, progress_comment_id, created_at, updated_at)
                VALUES ('task_old', 'issues:1', 'd1', 'running', 'acme', 'calc', 3, ?, 'key', 77, 1, 1)`)
      // The request as the app stored it before targets (issueNumber, issueTitle, reactTo).
      .run(JSON.stringify({ ...legacy, reactTo: { type: 'comment', id: 55 } }));
    old.close();
    expect(version(file)).toBe(0);

    const store = new SqliteTaskStore(file);
    expect(store.get('task_old')).toMatchObject({ id: 'task_old', state: 'running', progressCommentId: 77 });
    expect(store.get('task_old')!.baseSha).toBeUndefined();
    // Converted on read: an issue target, the comment reacted to as the origin.
    expect(store.get('task_old')!.request.target).toEqual({ type: 'issue', number: 3, title: 't' });
    expect(store.get('task_old')!.request.origin).toEqual({ type: 'comment', id: 55 });
    expect(store.get('task_old')!.request).not.toHaveProperty('issueNumber');
    expect(store.outbox.pending()).toEqual([]);
    const sha = 'a'.repeat(40);
    store.update('task_old', { baseSha: sha, baseRef: 'main', headSha: sha, branch: 'codex/3-x', commitSha: sha });
    expect(store.get('task_old')).toMatchObject({ baseSha: sha, baseRef: 'main', headSha: sha, branch: 'codex/3-x', commitSha: sha });
    store.close();
    expect(version(file)).toBe(4);

    // Opening again migrates nothing and loses nothing.
    const again = new SqliteTaskStore(file);
    expect(again.get('task_old')!.branch).toBe('codex/3-x');
    again.close();
  });

  test('a database written by a newer app is refused with a clear error', () => {
    const file = path.join(dir, 'new.db');
    const db = new DatabaseSync(file);
    db.exec('PRAGMA user_version = 99');
    db.close();
    expect(() => new SqliteTaskStore(file)).toThrow(StoreVersionError);
    expect(() => new SqliteTaskStore(file)).toThrow(/version 99/);
  });

  test('recordReply is true once per key, across reopening', () => {
    const file = path.join(dir, 'replies.db');
    const a = new SqliteTaskStore(file);
    expect(a.recordReply('issue_comment:1')).toBe(true);
    expect(a.recordReply('issue_comment:1')).toBe(false);
    expect(a.recordReply('issue_comment:2')).toBe(true);
    a.close();
    const b = new SqliteTaskStore(file);
    expect(b.recordReply('issue_comment:1')).toBe(false);
    b.close();
  });

  test('a pull request task keeps its target and origin; its thread is the pull request number', () => {
    const file = path.join(dir, 'pr.db');
    const store = new SqliteTaskStore(file);
    const target = {
      type: 'pull_request' as const, number: 9, title: 'Add x', baseRef: 'main', baseSha: 'a'.repeat(40), headRef: 'feature', headSha: 'b'.repeat(40),
      headRepo: 'eve/calc', fork: true, maintainerCanModify: true, commits: 2,
    };
    store.create('task_pr', 'key', { ...request, triggerKey: 'pull_request_review_comment:77', target, origin: { type: 'review_comment', id: 77 } });
    expect(store.get('task_pr')!.request).toMatchObject({ target, origin: { type: 'review_comment', id: 77 } });
    expect(store.latestForThread('acme', 'calc', 9)?.id).toBe('task_pr');
    store.close();
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      expect(db.prepare("SELECT issue_number, target_type, origin_type, origin_id FROM tasks WHERE id = 'task_pr'").get()).toEqual({
        issue_number: 9, target_type: 'pull_request', origin_type: 'review_comment', origin_id: 77,
      });
    } finally {
      db.close();
    }
  });

  test('reviewTasks: the review tasks of one pull request, newest first; other kinds and threads left out', () => {
    const store = new SqliteTaskStore(path.join(dir, 'reviews.db'));
    const target = {
      type: 'pull_request' as const, number: 4, title: 'Add x', baseRef: 'main', baseSha: 'a'.repeat(40), headRef: 'feature', headSha: 'b'.repeat(40),
      headRepo: 'acme/calc', fork: false, maintainerCanModify: false,
    };
    store.create('task_r1', 'k', { ...request, triggerKey: 'review:1', kind: 'review', target });
    store.create('task_t', 'k', { ...request, triggerKey: 'comment:2', kind: 'task', target });
    store.create('task_r2', 'k', { ...request, triggerKey: 'review:3', kind: 'review', target: { ...target, number: 5 } });
    store.create('task_r3', 'k', { ...request, triggerKey: 'review:4', kind: 'review', target });
    store.update('task_r3', { headSha: 'c'.repeat(40) }, 'running');
    expect(store.reviewTasks('acme', 'calc', 4).map((t) => [t.id, t.headSha])).toEqual([['task_r3', 'c'.repeat(40)], ['task_r1', undefined]]);
    store.close();
  });

  test('the final reply is queued with the final state, once', () => {
    const store = new SqliteTaskStore(':memory:');
    store.create('task_1', 'key', request);
    store.update('task_1', { progressCommentId: 5 });
    store.update('task_1', { finishedAt: 2, finalReply: { body: 'Done' } }, 'succeeded');
    store.update('task_1', { finalReply: { body: 'Done again' } });
    expect(store.outbox.pending()).toMatchObject([{ taskId: 'task_1', body: 'Done', progressCommentId: 5, issueNumber: 3, owner: 'acme', attempts: 0 }]);
    store.outbox.recordFailure('task_1', { attempts: 1, editFailures: 1, nextAttemptAt: 10, error: 'x' });
    expect(store.outbox.pending()[0]).toMatchObject({ attempts: 1, editFailures: 1, nextAttemptAt: 10 });
    store.outbox.delivered('task_1', 5);
    expect(store.outbox.pending()).toEqual([]);
    store.close();
  });
});
