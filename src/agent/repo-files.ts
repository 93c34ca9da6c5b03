/**
 * Reading files of the checkout on the host, outside the sandbox. The agent (and the repository's
 * setup script) may have replaced any file with a symlink to a secret (`/proc/self/environ`, a key
 * file) or with a FIFO that blocks forever, so the host reads only regular files inside the
 * repository, and only up to a size.
 */
import { constants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reads at most `maxBytes` of `file` (UTF-8) when it resolves, symlinks followed, to a regular file
 * inside `realRoot`; undefined otherwise.
 * @returns the text and the file's full size in bytes.
 * @throws Error (ENOENT...) when the file cannot be read.
 */
export async function readInside(realRoot: string, file: string, maxBytes: number): Promise<{ content: string; bytes: number } | undefined> {
  const real = await realpath(file);
  if (real !== realRoot && !real.startsWith(`${realRoot}${path.sep}`)) return undefined;
  if (!(await stat(real)).isFile()) return undefined;
  // No symlink is left in `real`; O_NONBLOCK so that a FIFO put there meanwhile cannot block.
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) return undefined;
    const buffer = Buffer.alloc(Math.min(info.size, maxBytes));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return { content: buffer.subarray(0, bytesRead).toString('utf8'), bytes: info.size };
  } finally {
    await handle.close();
  }
}
