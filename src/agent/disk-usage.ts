/**
 * Disk use of a task's work directory (the checkout and the sandbox home), measured on the host with
 * `du(1)` (coreutils) so that a sandbox can enforce a per-task cap. `du` does not follow symbolic
 * links and counts hard-linked files once per invocation.
 */
import { execFile } from 'node:child_process';

/** What one measurement found. */
export interface DiskUsage {
  /** Bytes allocated on disk (`du -k` KiB × 1024) for all the paths together. */
  bytes: number;
  /**
   * `du`'s complaints about entries it could not read (e.g. a directory the command made
   * unreadable); empty when the measurement is complete. An incomplete measurement under-counts.
   */
  errors: string;
}

/** Thrown when `du` cannot be run at all or prints nothing usable. */
export class DiskUsageError extends Error {
  override name = 'DiskUsageError';
}

/**
 * Measures the disk space the given directories take together.
 * @param paths absolute host paths (fixed by the runner, never agent-chosen names).
 * @param timeoutMs how long `du` may take, in ms.
 * @throws DiskUsageError when `du` is missing, times out or prints no total.
 */
export function measureDiskUsage(paths: string[], timeoutMs: number, signal?: AbortSignal): Promise<DiskUsage> {
  return new Promise((resolve, reject) => {
    execFile(
      'du',
      ['-s', '-k', '-P', '--', ...paths],
      { encoding: 'utf8', timeout: timeoutMs, signal, maxBuffer: 16 * 1024 * 1024, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        // du exits 1 when some entries were unreadable but still prints the totals it found.
        const lines = stdout.split('\n').filter((l) => /^\d+\t/.test(l));
        if (lines.length === 0) {
          reject(new DiskUsageError(`du failed: ${(stderr || error?.message || 'no output').trim().slice(0, 500)}`));
          return;
        }
        const kib = lines.reduce((sum, l) => sum + Number(l.slice(0, l.indexOf('\t'))), 0);
        resolve({ bytes: kib * 1024, errors: error ? stderr.trim().slice(0, 1000) : '' });
      },
    );
  });
}
