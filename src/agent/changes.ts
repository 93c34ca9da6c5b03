/** The result phase: the working tree's changes against the base commit, as TaskResult changes. */
import { copyFile, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileChange } from '../contract.ts';
import { gitIn, type TrustedRepository } from './git.ts';

/** A change git reports but that the result cannot carry (e.g. a nested repository). */
export interface SkippedChange {
  path: string;
  reason: string;
}

/**
 * Lists every change of the working tree of `repo` against `baseSha`: added, modified and deleted
 * files, respecting .gitignore, with their git mode (100644, 100755, 120000) and content (base64;
 * a symlink's content is its target, never what it points to). Renames appear as a delete plus an
 * add. Git runs with the private git directory and the hardened configuration (git.ts): nothing the
 * agent wrote under the workspace's `.git`, and no driver named by a `.gitattributes` file, runs.
 * Uses a temporary copy of the private index, which is left as it was.
 * @throws GitError when the private git directory is unusable or `baseSha` is unknown.
 */
export async function collectChanges(
  repo: TrustedRepository,
  baseSha: string,
): Promise<{ changes: FileChange[]; skipped: SkippedChange[] }> {
  const tmp = await mkdtemp(path.join(tmpdir(), 'codex-index-'));
  try {
    const index = path.join(tmp, 'index');
    // Reuse the private index for its stat cache, keeping its mtime: git's racy-entry check
    // compares file mtimes with the index's own, so a copy with a fresh mtime would hide edits
    // made in the same second as the checkout (same size, same second).
    const original = path.join(repo.gitDir, 'index');
    const info = await stat(original).catch(() => undefined);
    if (info) {
      await copyFile(original, index);
      await utimes(index, info.atime, info.mtime);
    }
    const env = { GIT_INDEX_FILE: index };
    await gitIn(repo, ['add', '-A', '--', '.'], { env });
    const raw = (
      await gitIn(repo, ['diff', '--cached', '--raw', '--no-abbrev', '-z', '--no-renames', '--no-ext-diff', '--no-textconv', baseSha], { env })
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
    const contents = await readBlobs(repo, wanted.map((e) => e.sha));
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
async function readBlobs(repo: TrustedRepository, shas: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (shas.length === 0) return out;
  const { stdout } = await gitIn(repo, ['cat-file', '--batch'], { input: `${shas.join('\n')}\n` });
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
