/** SqliteTaskStore.appendEvent: the per-task caps of stored events (count and bytes), across a restart. */
import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ProgressEvent } from '../../src/contract.ts';
import { DEFAULT_MAX_EVENT_BYTES_PER_TASK, DEFAULT_MAX_EVENTS_PER_TASK, SqliteTaskStore } from '../../src/tasks/store.ts';

const dirs: string[] = [];
afterEach(async () => {
  while (dirs.length) await rm(dirs.pop()!, { recursive: true, force: true });
});

const at = '2025-01-01T00:00:00.000Z';
const message = (i: number, size = 100): ProgressEvent => ({ type: 'message', at, text: `${i} ${'x'.repeat(size)}` });
const warnings = (events: ProgressEvent[]) => events.filter((e) => e.type === 'log' && e.level === 'warn');

describe('SqliteTaskStore event caps', () => {
  test('default caps: 20,000 events and 8 MiB per task', () => {
    expect(DEFAULT_MAX_EVENTS_PER_TASK).toBe(20_000);
    expect(DEFAULT_MAX_EVENT_BYTES_PER_TASK).toBe(8 * 1024 * 1024);
  });

  test('past the count cap, events are dropped (0 returned) after one warning; other tasks go on', () => {
    const store = new SqliteTaskStore(':memory:', { maxEventsPerTask: 5 });
    const seqs = Array.from({ length: 12 }, (_, i) => store.appendEvent('t1', message(i)));
    expect(seqs).toEqual([1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0]);
    const events = store.events('t1');
    expect(events).toHaveLength(6);
    expect(events.slice(0, 5)).toEqual([0, 1, 2, 3, 4].map((i) => message(i)));
    expect(warnings(events)).toEqual([expect.objectContaining({ message: expect.stringContaining('cap of stored events (5 events') })]);
    expect(store.appendEvent('t2', message(0))).toBe(1);
    store.close();
  });

  test('the byte cap counts the stored JSON; the cap holds after a restart', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'store-events-'));
    dirs.push(dir);
    const file = path.join(dir, 'tasks.db');
    const limits = { maxEventBytesPerTask: 10_000 };
    const first = new SqliteTaskStore(file, limits);
    for (let i = 0; i < 5; i++) first.appendEvent('t', message(i, 1000)); // about 1,050 bytes each
    first.close();

    const second = new SqliteTaskStore(file, limits);
    for (let i = 5; i < 50; i++) second.appendEvent('t', message(i, 1000));
    const events = second.events('t');
    const kept = events.filter((e) => e.type === 'message');
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => message(i, 1000)));
    expect(kept.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0)).toBeLessThanOrEqual(10_000);
    expect(kept.length).toBe(9);
    expect(warnings(events)).toHaveLength(1);
    second.close();

    // A third start knows the task is full (the warning is its last event): no second warning.
    const third = new SqliteTaskStore(file, limits);
    expect(third.appendEvent('t', message(99, 1))).toBe(0);
    expect(third.events('t')).toEqual(events);
    third.close();
  });
});
