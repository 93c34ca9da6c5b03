/** SharedLookups: identical lookups in flight share one load; nothing is kept once it settles. */
import { describe, expect, test } from '@jest/globals';
import { SharedLookups } from '../../src/triggers/shared-lookups.ts';

describe('SharedLookups', () => {
  test('identical keys in flight share one load; another key loads on its own; a settled key loads again', async () => {
    const lookups = new SharedLookups();
    let loads = 0;
    let release!: (v: string) => void;
    const load = () => {
      loads += 1;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const a = lookups.run('k', load);
    const b = lookups.run('k', load);
    expect(loads).toBe(1);
    expect(lookups.size).toBe(1);
    const other = lookups.run('other', async () => 'x');
    expect(loads).toBe(1);
    release('v');
    expect(await Promise.all([a, b, other])).toEqual(['v', 'v', 'x']);
    expect(lookups.size).toBe(0);
    const c = lookups.run('k', load);
    expect(loads).toBe(2);
    release('w');
    expect(await c).toBe('w');
  });

  test('a failure reaches every caller that shared it and is not kept', async () => {
    const lookups = new SharedLookups();
    const failing = () => Promise.reject(new Error('GitHub said 502'));
    const both = [lookups.run('k', failing), lookups.run('k', failing)];
    for (const p of both) await expect(p).rejects.toThrow('GitHub said 502');
    expect(lookups.size).toBe(0);
    expect(await lookups.run('k', async () => 'ok')).toBe('ok');
  });

  test('two instances share nothing', async () => {
    let loads = 0;
    const load = async () => (loads += 1);
    await Promise.all([new SharedLookups().run('k', load), new SharedLookups().run('k', load)]);
    expect(loads).toBe(2);
  });
});
