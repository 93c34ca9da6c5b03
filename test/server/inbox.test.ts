/**
 * The webhook inbox table on a real SQLite file, migrated by the real task store: arrival order,
 * dedupe by delivery id, what survives reopening the file (a crash), failure marking, pruning.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { SqliteWebhookInbox } from '../../src/server/inbox.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';

let dir: string;
let file: string;
let inbox: SqliteWebhookInbox;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'inbox-'));
  file = path.join(dir, 'codex-cloud.db');
  new SqliteTaskStore(file).close();
  inbox = SqliteWebhookInbox.open(file);
});

afterEach(() => {
  inbox.close();
  rmSync(dir, { recursive: true, force: true });
});

const delivery = (id: string, receivedAt = 1_000) => ({ id, name: 'issue_comment', payload: JSON.stringify({ action: 'created', id }), receivedAt });

test('addAll stores several deliveries in one transaction: each outcome in order, or none stored when one fails', () => {
  expect(inbox.add(delivery('old'))).toBe('queued');
  expect(inbox.addAll([delivery('n1'), delivery('old'), delivery('n2')])).toEqual(['queued', 'duplicate', 'queued']);
  expect(inbox.due(1_000, 10).map((d) => d.id)).toEqual(['old', 'n1', 'n2']);
  // A row the table refuses (NOT NULL) fails the whole group: nothing of it is stored.
  expect(() => inbox.addAll([delivery('n3'), { ...delivery('n4'), name: null as unknown as string }])).toThrow();
  expect(inbox.due(1_000, 10).map((d) => d.id)).toEqual(['old', 'n1', 'n2']);
  // And the connection is usable again.
  expect(inbox.addAll([delivery('n3')])).toEqual(['queued']);
});

test('deliveries come out in order of arrival, with their event and payload', () => {
  for (const id of ['c', 'a', 'b']) expect(inbox.add(delivery(id))).toBe('queued');
  expect(inbox.due(1_000, 10)).toEqual([
    { ...delivery('c'), attempts: 0 },
    { ...delivery('a'), attempts: 0 },
    { ...delivery('b'), attempts: 0 },
  ]);
  expect(inbox.due(1_000, 2).map((d) => d.id)).toEqual(['c', 'a']);
  // Those being processed can be left out (the limit counts the others).
  expect(inbox.due(1_000, 2, new Set(['c'])).map((d) => d.id)).toEqual(['a', 'b']);
  expect(inbox.due(1_000, 10, ['c', 'b', "x' OR 1=1 --"]).map((d) => d.id)).toEqual(['a']);
  // Nothing is due before it was received.
  expect(inbox.due(999, 10)).toEqual([]);
});

test('a delivery id is stored once: a redelivery of a pending or processed one is a duplicate', () => {
  expect(inbox.add(delivery('d1'))).toBe('queued');
  expect(inbox.add({ ...delivery('d1'), payload: '{"other":true}' })).toBe('duplicate');
  expect(inbox.due(2_000, 10)).toEqual([{ ...delivery('d1'), attempts: 0 }]);
  inbox.begin('d1');
  inbox.processed('d1', 2_000);
  expect(inbox.add(delivery('d1'))).toBe('duplicate');
  expect(inbox.due(3_000, 10)).toEqual([]);
});

test('pending deliveries and their attempts survive closing and reopening the file (a crash)', () => {
  inbox.add(delivery('one'));
  inbox.add(delivery('two'));
  inbox.add(delivery('three'));
  expect(inbox.begin('one')).toBe(1);
  inbox.processed('one', 1_500);
  // 'two' was being processed when the app died: its attempt is counted, it is still pending.
  expect(inbox.begin('two')).toBe(1);
  inbox.close();

  inbox = SqliteWebhookInbox.open(file);
  expect(inbox.due(2_000, 10).map((d) => [d.id, d.attempts])).toEqual([
    ['two', 1],
    ['three', 0],
  ]);
  expect(inbox.nextDueAt()).toBe(1_000);
});

test('a failed attempt waits for its retry time; a delivery marked failed is no longer due, until redelivered', () => {
  inbox.add(delivery('f'));
  inbox.add(delivery('g'));
  expect(inbox.begin('f')).toBe(1);
  inbox.retryLater('f', 'boom', 5_000);
  expect(inbox.due(4_999, 10).map((d) => d.id)).toEqual(['g']);
  expect(inbox.due(5_000, 10).map((d) => d.id)).toEqual(['f', 'g']);
  expect(inbox.begin('f')).toBe(2);
  inbox.failed('f', 'boom again', 6_000);
  expect(inbox.due(10_000, 10).map((d) => d.id)).toEqual(['g']);

  // GitHub's "Redeliver" keeps the delivery id: a failed delivery is pending again, attempts reset.
  expect(inbox.add(delivery('f', 7_000))).toBe('queued');
  expect(inbox.due(10_000, 10).map((d) => [d.id, d.attempts])).toEqual([
    ['f', 0],
    ['g', 0],
  ]);
});

test('pruning deletes processed and failed rows past their retention, never pending ones', () => {
  for (const id of ['old-done', 'new-done', 'old-failed', 'pending']) inbox.add(delivery(id));
  inbox.processed('old-done', 1_000);
  inbox.processed('new-done', 9_000);
  inbox.failed('old-failed', 'x', 2_000);
  expect(inbox.prune(5_000, 5_000)).toBe(2);
  expect(inbox.due(10_000, 10).map((d) => d.id)).toEqual(['pending']);
  // The processed one still kept answers a redelivery as a duplicate; a pruned one is stored again.
  expect(inbox.add(delivery('new-done'))).toBe('duplicate');
  expect(inbox.add(delivery('old-done'))).toBe('queued');
});

test('opening a database without the inbox table (the task store not migrated) fails clearly', () => {
  expect(() => SqliteWebhookInbox.open(path.join(dir, 'empty.db'))).toThrow(/no such table: webhook_inbox/);
});
