import { describe, expect, it } from '@jest/globals';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DiskUsageError, measureDiskUsage } from '../../src/agent/disk-usage.ts';

describe('measureDiskUsage', () => {
  it('adds up the directories, counts a hard-linked file once and does not follow symlinks', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'disk-usage-'));
    try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(path.join(a, 'one'), Buffer.alloc(1024 * 1024, 1));
    linkSync(path.join(a, 'one'), path.join(b, 'same'));
    symlinkSync('/usr', path.join(b, 'usr'));
    const usage = await measureDiskUsage([a, b], 10_000);
    expect(usage.errors).toBe('');
    expect(usage.bytes).toBeGreaterThanOrEqual(1024 * 1024);
    expect(usage.bytes).toBeLessThan(1024 * 1024 + 64 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects with DiskUsageError when there is nothing to measure', async () => {
    await expect(measureDiskUsage(['/nonexistent-' + process.pid], 10_000)).rejects.toThrow(DiskUsageError);
  });
});
