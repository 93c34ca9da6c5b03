import { describe, expect, it } from '@jest/globals';
import {
  MemoryTaskTokenPersistence,
  TaskTokens,
  hashTaskToken,
  verifyBearer,
} from '../../src/gateway/task-tokens.ts';
import type { TaskTokenPersistence, TaskTokenRecord } from '../../src/gateway/task-tokens.ts';

/** A store with only the three required methods (like a SQL table keyed by token hash). */
class HashOnlyPersistence implements TaskTokenPersistence {
  readonly rows = new Map<string, TaskTokenRecord>();
  put(rec: TaskTokenRecord): void {
    this.rows.set(rec.tokenHash, { ...rec });
  }
  getByHash(hash: string): TaskTokenRecord | undefined {
    const rec = this.rows.get(hash);
    return rec ? { ...rec } : undefined;
  }
  update(taskId: string, patch: Partial<TaskTokenRecord>): void {
    for (const rec of this.rows.values()) if (rec.taskId === taskId) Object.assign(rec, patch);
  }
}

describe('TaskTokens', () => {
  it('issues unguessable cct_ tokens and stores only their hash', () => {
    const persistence = new MemoryTaskTokenPersistence();
    const tokens = new TaskTokens({ persistence });
    const a = tokens.issue('task-a', { budgetTokens: 1000, ttlMs: 60_000 });
    const b = tokens.issue('task-b', { budgetTokens: 1000, ttlMs: 60_000 });
    expect(a).toMatch(/^cct_[A-Za-z0-9_-]{43}$/);
    expect(b).not.toBe(a);
    const rec = persistence.getByTaskId('task-a');
    expect(rec?.tokenHash).toBe(hashTaskToken(a));
    expect(rec?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify([rec, persistence.getByTaskId('task-b')])).not.toContain(a.slice(4));
    expect(tokens.verify(a)?.taskId).toBe('task-a');
    expect(tokens.verify(b)?.taskId).toBe('task-b');
  });

  it('rejects unknown, malformed, revoked and expired tokens', () => {
    let clock = 1_000_000;
    const tokens = new TaskTokens({ now: () => clock });
    const token = tokens.issue('t1', { budgetTokens: 10, ttlMs: 5_000 });
    expect(tokens.verify('cct_' + 'A'.repeat(43))).toBeUndefined();
    expect(tokens.verify(token.slice(4))).toBeUndefined();
    expect(tokens.verify('')).toBeUndefined();
    expect(tokens.verify(token)?.expiresAt).toBe(1_005_000);

    clock = 1_004_999;
    expect(tokens.verify(token)).toBeDefined();
    clock = 1_005_000;
    expect(tokens.verify(token)).toBeUndefined();

    clock = 0;
    const other = tokens.issue('t2', { budgetTokens: 10, ttlMs: 5_000 });
    tokens.revoke('t2');
    expect(tokens.verify(other)).toBeUndefined();
    expect(() => tokens.revoke('nope')).not.toThrow();
  });

  it('issuing again for a task revokes its earlier token', () => {
    for (const persistence of [new MemoryTaskTokenPersistence(), new HashOnlyPersistence()]) {
      const tokens = new TaskTokens({ persistence });
      const first = tokens.issue('t', { budgetTokens: 10, ttlMs: 60_000 });
      const second = tokens.issue('t', { budgetTokens: 20, ttlMs: 60_000 });
      expect(tokens.verify(first)).toBeUndefined();
      expect(tokens.verify(second)?.budgetTokens).toBe(20);
    }
  });

  it('validates issue options', () => {
    const tokens = new TaskTokens();
    expect(() => tokens.issue('', { budgetTokens: 1, ttlMs: 1 })).toThrow(RangeError);
    expect(() => tokens.issue('t', { budgetTokens: 0, ttlMs: 1 })).toThrow(/budgetTokens/);
    expect(() => tokens.issue('t', { budgetTokens: 1.5, ttlMs: 1 })).toThrow(/budgetTokens/);
    expect(() => tokens.issue('t', { budgetTokens: 1, ttlMs: 0 })).toThrow(/ttlMs/);
  });

  it('keeps the model and reasoning effort the app pinned, across a restart and in stores without getByTaskId', () => {
    for (const persistence of [new MemoryTaskTokenPersistence(), new HashOnlyPersistence()]) {
      const token = new TaskTokens({ persistence }).issue('t', { budgetTokens: 10, ttlMs: 60_000, model: 'gpt-pinned', reasoningEffort: 'low' });
      expect(new TaskTokens({ persistence }).verify(token)).toMatchObject({ model: 'gpt-pinned', reasoningEffort: 'low' });
      const unpinned = new TaskTokens({ persistence }).issue('u', { budgetTokens: 10, ttlMs: 60_000 });
      const rec = new TaskTokens({ persistence }).verify(unpinned);
      expect(rec && 'model' in rec).toBe(false);
      expect(rec && 'reasoningEffort' in rec).toBe(false);
    }
    expect(() => new TaskTokens().issue('t', { budgetTokens: 1, ttlMs: 1, model: ' ' })).toThrow(/model/);
  });

  it('accumulates usage against the budget', () => {
    const tokens = new TaskTokens();
    const token = tokens.issue('t', { budgetTokens: 1000, ttlMs: 60_000 });
    expect(tokens.usage('t')).toEqual({
      inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, usedTokens: 0, budgetTokens: 1000, requests: 0,
    });
    expect(tokens.remaining('t')).toBe(1000);
    tokens.recordUsage('t', { inputTokens: 300, cachedInputTokens: 128, outputTokens: 50 });
    const after = tokens.recordUsage('t', { inputTokens: 400, cachedInputTokens: 256, outputTokens: 70.9 });
    expect(after).toEqual({
      inputTokens: 700, cachedInputTokens: 384, outputTokens: 120, usedTokens: 820, budgetTokens: 1000, requests: 2,
    });
    expect(tokens.usage('t')).toEqual(after);
    expect(tokens.verify(token)?.usedTokens).toBe(820);
    expect(tokens.remaining('t')).toBe(180);
    tokens.recordUsage('t', { inputTokens: 500, cachedInputTokens: -5, outputTokens: 0 });
    expect(tokens.remaining('t')).toBe(0);
    expect(tokens.usage('t')?.cachedInputTokens).toBe(384);
    // Usage is still recorded after revocation (the tokens were spent).
    tokens.revoke('t');
    tokens.recordUsage('t', { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 });
    expect(tokens.usage('t')?.usedTokens).toBe(1322);
    expect(tokens.recordUsage('unknown', { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1 })).toBeUndefined();
    expect(tokens.usage('unknown')).toBeUndefined();
    expect(tokens.remaining('unknown')).toBe(0);
  });

  it('survives a restart: a new TaskTokens over the same persistence verifies and keeps usage', () => {
    const persistence = new MemoryTaskTokenPersistence();
    const before = new TaskTokens({ persistence });
    const token = before.issue('t', { budgetTokens: 1000, ttlMs: 60_000 });
    before.recordUsage('t', { inputTokens: 10, cachedInputTokens: 0, outputTokens: 5 });

    const after = new TaskTokens({ persistence });
    expect(after.verify(token)).toMatchObject({ taskId: 't', usedTokens: 15, requests: 1 });
    expect(after.remaining('t')).toBe(985);
    after.revoke('t');
    expect(new TaskTokens({ persistence }).verify(token)).toBeUndefined();
  });

  it('works over a store without getByTaskId once the token was seen', () => {
    const persistence = new HashOnlyPersistence();
    const token = new TaskTokens({ persistence }).issue('t', { budgetTokens: 100, ttlMs: 60_000 });
    const restarted = new TaskTokens({ persistence });
    expect(restarted.usage('t')).toBeUndefined(); // not seen yet in this process
    expect(restarted.verify(token)?.taskId).toBe('t');
    restarted.recordUsage('t', { inputTokens: 30, cachedInputTokens: 0, outputTokens: 20 });
    expect(restarted.remaining('t')).toBe(50);
    restarted.revoke('t');
    expect(restarted.verify(token)).toBeUndefined();
    expect(restarted.usage('t')?.usedTokens).toBe(50);
  });
});

describe('verifyBearer', () => {
  it('accepts `Bearer <token>` only', () => {
    const tokens = new TaskTokens();
    const token = tokens.issue('t', { budgetTokens: 1, ttlMs: 60_000 });
    expect(verifyBearer(`Bearer ${token}`, tokens)?.taskId).toBe('t');
    expect(verifyBearer(`bearer  ${token} `, tokens)?.taskId).toBe('t');
    expect(verifyBearer(undefined, tokens)).toBeUndefined();
    expect(verifyBearer(token, tokens)).toBeUndefined();
    expect(verifyBearer(`Basic ${token}`, tokens)).toBeUndefined();
    expect(verifyBearer('Bearer ', tokens)).toBeUndefined();
    expect(verifyBearer(`Bearer ${token} extra`, tokens)).toBeUndefined();
  });
});
