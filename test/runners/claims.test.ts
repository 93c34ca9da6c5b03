/** Claim tickets: one use each, expiry, wrong task, persistence across a restart of the store. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TaskSpec, type TaskResult } from '../../src/contract.ts';
import { failedResult } from '../../src/runners/backend.ts';
import { Claims, hashClaimTicket, MemoryClaimStore, type ClaimStore } from '../../src/runners/claims.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';

const CLONE_TOKEN = 'ghs_clonetoken0123456789abcdef';
const TASK_TOKEN = 'cct_tasktoken0123456789abcdef';

function spec(id: string): TaskSpec {
  return TaskSpec.parse({
    id,
    kind: 'task',
    repository: { cloneUrl: 'https://github.com/acme/calc.git', fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha: 'a'.repeat(40) },
    instruction: 'fix it',
    model: { baseUrl: 'https://codex.example.com/v1', apiKey: TASK_TOKEN, name: 'gpt-test' },
    sandbox: 'container',
    report: { url: `https://codex.example.com/runner/v1/tasks/${id}`, token: TASK_TOKEN },
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'claims-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => { store: ClaimStore; close(): void }]> = [
  ['memory', () => ({ store: new MemoryClaimStore(), close: () => undefined })],
  [
    'sqlite',
    () => {
      const tasks = new SqliteTaskStore(':memory:');
      return { store: tasks.claims, close: () => tasks.close() };
    },
  ],
];

describe.each(stores)('Claims on the %s store', (_name, make) => {
  test('a ticket works once; the spec (with its secrets) is gone after the claim', () => {
    const { store, close } = make();
    try {
      const claims = new Claims({ store });
      const ticket = claims.issue(spec('task_1'));
      expect(ticket).toMatch(/^ccl_[A-Za-z0-9_-]{43}$/);
      const first = claims.claim('task_1', ticket);
      expect(first).toEqual({ ok: true, spec: spec('task_1') });
      expect(claims.claim('task_1', ticket)).toEqual({ ok: false, reason: 'already used' });
      const rec = store.get('task_1')!;
      expect(rec.specJson).toBeNull();
      expect(rec.claimedAt).not.toBeNull();
      expect(rec.ticketHash).toBe(hashClaimTicket(ticket));
      expect(JSON.stringify(rec)).not.toContain(ticket);
      expect(claims.meta('task_1')).toEqual({ baseSha: 'a'.repeat(40), repository: 'acme/calc' });
    } finally {
      close();
    }
  });

  test('an expired ticket is refused', () => {
    const { store, close } = make();
    try {
      let now = 1_000_000;
      const claims = new Claims({ store, ttlMs: 15 * 60_000, now: () => now });
      const ticket = claims.issue(spec('task_2'));
      now += 15 * 60_000;
      expect(claims.claim('task_2', ticket)).toEqual({ ok: false, reason: 'expired' });
      // Housekeeping deletes the expired spec.
      claims.purge();
      expect(store.get('task_2')!.specJson).toBeNull();
    } finally {
      close();
    }
  });

  test('a ticket of another task, a wrong or malformed ticket, a revoked ticket are refused', () => {
    const { store, close } = make();
    try {
      const claims = new Claims({ store });
      const t3 = claims.issue(spec('task_3'));
      const t4 = claims.issue(spec('task_4'));
      expect(claims.claim('task_3', t4)).toEqual({ ok: false, reason: 'wrong ticket' });
      expect(claims.claim('task_nope', t3)).toEqual({ ok: false, reason: 'unknown task' });
      expect(claims.claim('task_3', 'not-a-ticket')).toEqual({ ok: false, reason: 'malformed ticket' });
      claims.revoke('task_4');
      expect(claims.claim('task_4', t4)).toEqual({ ok: false, reason: 'revoked' });
      // The refusals did not use up task_3's ticket.
      expect(claims.claim('task_3', t3).ok).toBe(true);
    } finally {
      close();
    }
  });

  test('a new ticket replaces the old one', () => {
    const { store, close } = make();
    try {
      const claims = new Claims({ store });
      const old = claims.issue(spec('task_5'));
      const fresh = claims.issue(spec('task_5'));
      expect(claims.claim('task_5', old)).toEqual({ ok: false, reason: 'wrong ticket' });
      expect(claims.claim('task_5', fresh).ok).toBe(true);
    } finally {
      close();
    }
  });

  test('posted results are kept, and purged after the retention', () => {
    const { store, close } = make();
    try {
      let now = 5_000_000;
      const claims = new Claims({ store, now: () => now });
      const result: TaskResult = failedResult(spec('task_6'), 'agent', 'boom');
      claims.saveResult(result);
      expect(claims.result('task_6')).toEqual(result);
      expect(claims.result('task_7')).toBeUndefined();
      now += 8 * 24 * 60 * 60_000;
      claims.purge();
      expect(claims.result('task_6')).toBeUndefined();
    } finally {
      close();
    }
  });
});

test('tickets and results survive a restart of the SQLite store (RunTask before, claim after)', () => {
  const file = path.join(dir, 'restart.db');
  const before = new SqliteTaskStore(file);
  const ticket = new Claims({ store: before.claims }).issue(spec('task_r'));
  new Claims({ store: before.claims }).saveResult(failedResult(spec('task_q'), 'setup', 'x'));
  before.close();
  const after = new SqliteTaskStore(file);
  try {
    const claims = new Claims({ store: after.claims });
    expect(claims.claim('task_r', ticket)).toEqual({ ok: true, spec: spec('task_r') });
    expect(claims.claim('task_r', ticket)).toEqual({ ok: false, reason: 'already used' });
    expect(claims.result('task_q')?.failure).toEqual({ phase: 'setup', reason: 'x' });
  } finally {
    after.close();
  }
});
