/**
 * The diff of a task's changes for the task page: each FileChange of the TaskResult against the file
 * at the base commit, as unified diff hunks (computed with jsdiff, https://github.com/kpdecker/jsdiff)
 * rendered to HTML with one class per line kind (`add`, `del`, `ctx`, `hunk`). All file text is
 * HTML-escaped; the result is safe to put in the page.
 */
import { structuredPatch } from 'diff';
import PQueue from 'p-queue';
import type { FileChange } from '../contract.ts';

/**
 * Reads a file of the base commit.
 * @param path repository-relative path.
 * @returns its bytes, or null when the base has no such file.
 * @throws anything when the base cannot be read (the page then shows the new content only).
 */
export type BaseFileReader = (path: string) => Promise<Uint8Array | null>;

/** Limits of {@link diffChanges}. */
export interface DiffLimits {
  /** Files diffed at most; the others are listed by name only. Default 100. */
  maxFiles?: number;
  /** Bytes of one side of a file beyond which it is listed without a diff. Default 1 MiB. */
  maxFileBytes?: number;
  /** Diff lines shown at most over all files; later hunks are cut. Default 5000. */
  maxLines?: number;
  /** Base files read at once. Default 8. */
  concurrency?: number;
}

/** One file of the diff. Lines of `hunks` start with `+`, `-`, ` ` or `\` as in a unified diff. */
export interface FileDiff {
  path: string;
  action: FileChange['action'];
  /** Git mode of the new content (`100755` executable, `120000` symlink); absent for a deletion. */
  mode?: string;
  additions: number;
  deletions: number;
  hunks: Array<{ header: string; lines: string[] }>;
  /** Why no (or not all of the) hunks are shown, e.g. `binary file`. */
  note?: string;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text, or undefined for binary content (a NUL byte or invalid UTF-8). */
function asText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined;
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Diffs each change against the base (see the module comment). Never throws: an unreadable base file
 * becomes a note on that file.
 */
export async function diffChanges(changes: FileChange[], readBase: BaseFileReader | undefined, limits: DiffLimits = {}): Promise<FileDiff[]> {
  const maxFiles = limits.maxFiles ?? 100;
  const maxFileBytes = limits.maxFileBytes ?? 1024 * 1024;
  let linesLeft = limits.maxLines ?? 5000;
  // The base files, read a few at a time (each may be a GitHub API request).
  const queue = new PQueue({ concurrency: limits.concurrency ?? 8 });
  const bases = changes.map((change, index) =>
    readBase && change.action !== 'add' && index < maxFiles
      ? queue.add(() => readBase(change.path)).then(
          (bytes) => ({ ok: true as const, bytes: bytes ?? null }),
          (error: unknown) => ({ ok: false as const, error }),
        )
      : undefined,
  );
  const out: FileDiff[] = [];
  for (const [index, change] of changes.entries()) {
    const file: FileDiff = {
      path: change.path,
      action: change.action,
      ...(change.action === 'delete' ? {} : { mode: change.mode }),
      additions: 0,
      deletions: 0,
      hunks: [],
    };
    out.push(file);
    if (index >= maxFiles) {
      file.note = 'not shown (too many files)';
      continue;
    }
    let oldBytes: Uint8Array | null = null;
    const base = bases[index];
    if (change.action !== 'add') {
      const read = base ? await base : undefined;
      if (!read) {
        file.note = 'the base version is not available';
        if (change.action === 'delete') continue;
      } else if (!read.ok) {
        file.note = `the base version could not be read (${read.error instanceof Error ? read.error.message : String(read.error)})`;
        if (change.action === 'delete') continue;
      } else {
        oldBytes = read.bytes;
      }
    }
    const newBytes = change.action === 'delete' ? new Uint8Array() : Buffer.from(change.contentBase64, 'base64');
    if (oldBytes && oldBytes.length > maxFileBytes || newBytes.length > maxFileBytes) {
      file.note = 'not shown (file too large)';
      continue;
    }
    const oldText = oldBytes ? asText(oldBytes) : '';
    const newText = asText(newBytes);
    if (oldText === undefined || newText === undefined) {
      file.note = 'binary file';
      continue;
    }
    if (linesLeft <= 0) {
      file.note = 'not shown (the diff is too long)';
      continue;
    }
    const patch = structuredPatch(change.path, change.path, oldText, newText, undefined, undefined, { context: 3, maxEditLength: 50_000 });
    if (!patch) {
      file.note = 'not shown (too many changes to compute a diff)';
      continue;
    }
    for (const hunk of patch.hunks) {
      for (const line of hunk.lines) {
        if (line.startsWith('+')) file.additions++;
        else if (line.startsWith('-')) file.deletions++;
      }
      if (linesLeft <= 0) {
        file.note = 'cut (the diff is too long)';
        continue;
      }
      const lines = hunk.lines.slice(0, linesLeft);
      linesLeft -= lines.length;
      // As in `diff -u` and git, an empty side's start is the line before it (0 for an empty file).
      const oldStart = hunk.oldLines === 0 ? hunk.oldStart - 1 : hunk.oldStart;
      const newStart = hunk.newLines === 0 ? hunk.newStart - 1 : hunk.newStart;
      file.hunks.push({ header: `@@ -${oldStart},${hunk.oldLines} +${newStart},${hunk.newLines} @@`, lines });
      if (lines.length < hunk.lines.length) file.note = 'cut (the diff is too long)';
    }
  }
  return out;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const LINE_CLASS: Record<string, string> = { '+': 'add', '-': 'del', ' ': 'ctx', '\\': 'meta' };
const ACTION_LABEL: Record<FileChange['action'], string> = { add: 'added', modify: 'modified', delete: 'deleted' };

/**
 * Renders file diffs to HTML: one collapsible `<details class="file">` per file (open), with a
 * `<pre class="diff">` of `<span class="line add|del|ctx|meta|hunk">` lines.
 */
export function renderDiffHtml(files: FileDiff[]): string {
  return files
    .map((file) => {
      const stats = `<span class="add">+${file.additions}</span> <span class="del">−${file.deletions}</span>`;
      const mode = file.mode === '100755' ? ' <span class="muted">executable</span>' : file.mode === '120000' ? ' <span class="muted">symlink</span>' : '';
      const head = `<summary><span class="action action-${file.action}">${ACTION_LABEL[file.action]}</span> <code>${escapeHtml(file.path)}</code>${mode} ${stats}</summary>`;
      const body = file.hunks
        .map(
          (hunk) =>
            `<span class="line hunk">${escapeHtml(hunk.header)}</span>` +
            hunk.lines.map((line) => `<span class="line ${LINE_CLASS[line[0] ?? ' '] ?? 'ctx'}">${escapeHtml(line)}</span>`).join(''),
        )
        .join('');
      const note = file.note ? `<p class="muted">${escapeHtml(file.note)}</p>` : '';
      return `<details class="file" open>${head}${note}${body ? `<pre class="diff">${body}</pre>` : ''}</details>`;
    })
    .join('\n');
}
