/** The result phase: the working tree's changes against the base commit, as TaskResult changes. */
import { copyFile, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileChange } from '../contract.ts';
import { git } from './git.ts';

/** A change git reports but that the result cannot carry (e.g. a nested repository). */
export interface SkippedChange {
  path: string;
  reason: string;
}

/**
 * Lists every change of the working tree of `root` against `baseSha`: added, modified and deleted
 * files, respecting .gitignore, with their git mode (100644, 100755, 120000) and content (base64;
 * a symlink's content is its target). Renames appear as a delete plus an add. Uses a temporary
 * index, so the checkout's own index is left as it was.
 * @throws GitError when `root` is not a git repository or `baseSha` is unknown.
 */
export async function collectChanges(
  root: string,
  baseSha: string,
): Promise<{ changes: FileChange[]; skipped: SkippedChange[] }> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'codex-index-'));
  try {
    const index = path.join(tmp, 'index');
    const gitDir = (await git(['rev-parse', '--absolute-git-dir'], { cwd: root })).stdout.toString().trim();
    // Reuse the checkout's index for its stat cache, keeping its mtime: git's racy-entry check
    // compares file mtimes with the index's own, so a copy with a fresh mtime would hide edits
    // made in the same second as the checkout (same size, same second).
    const original = path.join(gitDir, 'index');
    const info = await stat(original).catch(() => undefined);
    if (info) {
      await copyFile(original, index);
      await utimes(index, info.atime, info.mtime);
    }
    const env = { GIT_INDEX_FILE: index };
    await git(['add', '-A', '--', '.'], { cwd: root, env });
    const raw = (
      await git(['diff', '--cached', '--raw', '--no-abbrev', '-z', '--no-renames', '--no-ext-diff', baseSha], { cwd: root, env })
    ).stdout.toString('utf8');
    const fields = raw.split('\0');
    const entries: Array<{ path: string; status: string; mode: string; sha: string }> = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const meta = fields[i]!;
      const file = fields[i + 1]!;
      if (!meta.startsWith(':')) break;
      const [, newMode, , newSha, status] = meta.slice(1).split(' ');
      entries.push({ path: file, status: status!, mode: newMode!, sha: newSha! });
    }
    const changes: FileChange[] = [];
    const skipped: SkippedChange[] = [];
    const wanted = entries.filter((e) => e.status !== 'D' && e.mode !== '160000');
    const contents = await readBlobs(root, wanted.map((e) => e.sha));
    for (const entry of entries) {
      if (entry.status === 'D') {
        changes.push({ action: 'delete', path: entry.path });
      } else if (entry.mode === '160000') {
        skipped.push({ path: entry.path, reason: 'nested git repositories (submodules) are not supported' });
      } else {
        changes.push({
          action: entry.status === 'A' ? 'add' : 'modify',
          path: entry.path,
          mode: entry.mode as '100644' | '100755' | '120000',
          contentBase64: contents.get(entry.sha)!.toString('base64'),
        });
      }
    }
    return { changes, skipped };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Reads blobs with one `git cat-file --batch` process. */
async function readBlobs(root: string, shas: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (shas.length === 0) return out;
  const { stdout } = await git(['cat-file', '--batch'], { cwd: root, input: `${shas.join('\n')}\n` });
  let pos = 0;
  while (pos < stdout.length) {
    const eol = stdout.indexOf(0x0a, pos);
    const header = stdout.subarray(pos, eol).toString('utf8').split(' ');
    const size = Number(header[2]);
    const body = stdout.subarray(eol + 1, eol + 1 + size);
    out.set(header[0]!, Buffer.from(body));
    pos = eol + 1 + size + 1;
  }
  return out;
}
