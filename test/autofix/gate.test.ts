import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AutofixGate } from '../../src/autofix/gate.ts';
import type { AutofixEvent } from '../../src/autofix/policy.ts';
import { sqliteAutofixAttempts } from '../../src/autofix/sqlite-attempts.ts';

const sha = (c: string): string => c.repeat(40);
const config = { enabled: true, max_attempts: 2 };
const key = { repo: 'Octo/App', pullNumber: 7 };
const failure = (head: string, over: Partial<AutofixEvent> = {}): AutofixEvent => ({
  repo: 'Octo/App',
  pullNumber: 7,
  pullOpen: true,
  fork: false,
  pullHeadSha: head,
  eventHeadSha: head,
  failingChecks: ['test'],
  fromOwnApp: false,
  headPushedByApp: false,
  ...over,
});

describe('AutofixGate on SQLite', () => {
  let dir: string;
  let file: string;
  let db: DatabaseSync;
  let now: number;
  let ids: number;
  const gateOn = (database: DatabaseSync) => new AutofixGate(sqliteAutofixAttempts(database), { now: () => now, newAttemptId: () => `attempt-${++ids}` });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'autofix-'));
    file = join(dir, 'tasks.db');
    db = new DatabaseSync(file);
    now = 1_000_000;
    ids = 0;
  });
  afterEach(() => {
    if (db.isOpen) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the issue\'s loop: attempt, redelivery, again on the App\'s commit, cap with one comment, a person pushes', () => {
    const gate = gateOn(db);
    const first = gate.evaluate(failure(sha('a')), config);
    expect(first).toMatchObject({ action: 'run', checks: ['test'], attempt: 1, attemptId: 'attempt-1' });
    // A redelivery (or the workflow_run event for the same failure) while it runs waits; after it, nothing new.
    expect(gate.evaluate(failure(sha('a')), config)).toEqual({ action: 'wait', runningAttemptId: 'attempt-1' });
    expect(gate.finish(key, 'attempt-1')).toEqual({ headSha: sha('a'), checks: ['test'], at: now });
    expect(gate.evaluate(failure(sha('a')), config)).toMatchObject({ action: 'skip', reason: 'already_attempted' });

    now += 60_000;
    const second = gate.evaluate(failure(sha('b'), { headPushedByApp: true }), config);
    expect(second).toMatchObject({ action: 'run', attempt: 2, attemptId: 'attempt-2' });
    expect(gate.finish(key, 'attempt-2')).toBeUndefined();

    const third = gate.evaluate(failure(sha('c'), { headPushedByApp: true }), config);
    expect(third).toMatchObject({ action: 'cap_reached', checks: ['test'], maxAttempts: 2, comment: true });
    expect(gate.evaluate(failure(sha('c'), { headPushedByApp: true }), config)).toMatchObject({ action: 'skip', reason: 'stopped' });
    expect(gate.evaluate(failure(sha('c'), { headPushedByApp: true, failingChecks: ['lint'] }), config)).toMatchObject({ action: 'skip', reason: 'stopped' });

    const store = sqliteAutofixAttempts(db);
    expect(store.attempts(key, 'test').map((a) => [a.headSha, a.streak, a.attemptId])).toEqual([
      [sha('a'), 1, 'attempt-1'],
      [sha('b'), 1, 'attempt-2'],
    ]);

    // A person pushes: a new streak.
    expect(gate.evaluate(failure(sha('d')), config)).toMatchObject({ action: 'run', attempt: 1, streak: { number: 2, isNew: true } });
  });

  test('a person asking lifts the stop; the next automatic failure starts over', () => {
    const gate = gateOn(db);
    gate.evaluate(failure(sha('a')), config);
    gate.finish(key, 'attempt-1');
    gate.evaluate(failure(sha('b'), { headPushedByApp: true }), config);
    gate.finish(key, 'attempt-2');
    expect(gate.evaluate(failure(sha('c'), { headPushedByApp: true }), config)).toMatchObject({ action: 'cap_reached' });
    gate.personActed(key);
    expect(gate.evaluate(failure(sha('c'), { headPushedByApp: true }), config)).toMatchObject({ action: 'run', attempt: 1, streak: { number: 2 } });
  });

  test('state survives a restart (a new connection on the same file)', () => {
    const gate = gateOn(db);
    expect(gate.evaluate(failure(sha('a')), config)).toMatchObject({ action: 'run' });
    db.close();
    db = new DatabaseSync(file);
    const again = gateOn(db);
    expect(again.evaluate(failure(sha('a')), config)).toEqual({ action: 'wait', runningAttemptId: 'attempt-1' });
    expect(again.finish({ repo: 'octo/app', pullNumber: 7 }, 'attempt-1')).toMatchObject({ headSha: sha('a') });
    expect(again.evaluate(failure(sha('a')), config)).toMatchObject({ action: 'skip', reason: 'already_attempted' });
  });

  test('a failure on the commit an attempt pushed continues the streak even when the caller cannot tell', () => {
    const gate = gateOn(db);
    gate.evaluate(failure(sha('a')), config);
    gate.finish(key, 'attempt-1', { pushedSha: sha('b') });
    expect(gate.evaluate(failure(sha('b')), config)).toMatchObject({ action: 'run', attempt: 2, streak: { number: 1, isNew: false } });
    gate.finish(key, 'attempt-2', { pushedSha: sha('c') });
    expect(gate.evaluate(failure(sha('c')), config)).toMatchObject({ action: 'cap_reached', comment: true });
    // A person's commit (not the one pushed) starts over.
    expect(gate.evaluate(failure(sha('d')), config)).toMatchObject({ action: 'run', attempt: 1, streak: { number: 2, isNew: true } });
  });

  test('a running attempt older than the timeout no longer blocks; finish with another id changes nothing', () => {
    const gate = new AutofixGate(sqliteAutofixAttempts(db), { now: () => now, runningTimeoutMs: 1000, newAttemptId: () => `attempt-${++ids}` });
    gate.evaluate(failure(sha('a')), config);
    expect(gate.finish(key, 'someone-else')).toBeUndefined();
    expect(gate.evaluate(failure(sha('b'), { headPushedByApp: true }), config)).toMatchObject({ action: 'wait' });
    now += 2000;
    expect(gate.evaluate(failure(sha('b'), { headPushedByApp: true }), config)).toMatchObject({ action: 'run', attempt: 2 });
  });

  test('record refuses a second attempt for the same check and head; a failing transaction rolls back', () => {
    const store = sqliteAutofixAttempts(db);
    const attempt = { ...key, check: 'test', headSha: sha('a'), streak: 1, attemptId: 'x', at: 1 };
    expect(store.record(attempt)).toBe(true);
    expect(store.record({ ...attempt, attemptId: 'y' })).toBe(false);
    expect(store.attempts({ repo: 'octo/app', pullNumber: 7 })).toHaveLength(1);
    expect(() =>
      store.transaction(() => {
        store.record({ ...attempt, check: 'lint' });
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.attempts(key, 'lint')).toEqual([]);
  });

  test('the tables live beside others in the same database', () => {
    db.exec('CREATE TABLE tasks (id TEXT PRIMARY KEY)');
    sqliteAutofixAttempts(db);
    sqliteAutofixAttempts(db);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
    expect(tables).toEqual(['autofix_attempts', 'autofix_pulls', 'tasks']);
  });
});
