/**
 * Python virtualenvs are not relocatable: pip writes each console script (`pytest`, `pip`, …) with a
 * `#!` line naming the virtualenv's interpreter by absolute path, and every task has its own work
 * directory. After a restore, such lines that name another work directory's `repo/.venv` or
 * `home/.venv` are rewritten to this one's (https://packaging.python.org/en/latest/specifications/entry-points/).
 */
import { lstat, open, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Largest script rewritten, bytes (console scripts are a few hundred bytes). */
const MAX_SCRIPT_BYTES = 1024 * 1024;

/**
 * Rewrites the `#!` lines of the scripts in `<workDir>/{repo,home}/.venv/bin` that point into another
 * work directory's virtualenv. Symbolic links and other files are left alone.
 * @returns the number of scripts rewritten.
 */
export async function relocateVirtualenvs(workDir: string): Promise<number> {
  let rewritten = 0;
  for (const top of ['repo', 'home'] as const) {
    const bin = path.join(workDir, top, '.venv', 'bin');
    const names = await readdir(bin).catch(() => [] as string[]);
    const interpreter = new RegExp(`^#!(\\S+)/${top}/\\.venv/bin/(python[\\w.]*)(?=\\s|$)`);
    for (const name of names) {
      const file = path.join(bin, name);
      const info = await lstat(file);
      if (!info.isFile() || info.size > MAX_SCRIPT_BYTES || !(await startsWithShebang(file))) continue;
      const text = await readFile(file, 'utf8');
      const match = interpreter.exec(text);
      if (!match || match[1] === workDir) continue;
      await writeFile(file, `#!${path.join(workDir, top, '.venv', 'bin', match[2]!)}${text.slice(match[0].length)}`, { mode: info.mode & 0o777 });
      rewritten += 1;
    }
  }
  return rewritten;
}

async function startsWithShebang(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(2);
    const { bytesRead } = await handle.read(buffer, 0, 2, 0);
    return bytesRead === 2 && buffer.toString('latin1') === '#!';
  } finally {
    await handle.close();
  }
}
