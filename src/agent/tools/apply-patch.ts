/**
 * The agent's `apply_patch` tool: parses the Codex CLI patch format and applies it to a directory tree.
 *
 * Format (the one OpenAI's codex models are trained on; reference:
 * https://github.com/openai/codex/blob/main/codex-rs/apply-patch/apply_patch_tool_instructions.md):
 * ```
 * *** Begin Patch
 * *** Add File: path/new.txt
 * +line
 * *** Update File: path/old.txt
 * *** Move to: path/renamed.txt        (optional)
 * @@ optional context line (e.g. a function signature)
 *  context line
 * -removed
 * +added
 * *** End of File                      (optional: the hunk is anchored at the end of the file)
 * *** Delete File: path/gone.txt
 * *** End Patch
 * ```
 * Semantics follow Codex's implementation (codex-rs/apply-patch): hunks of one file apply in order,
 * each searched after the previous one; context is matched exactly, then ignoring trailing whitespace,
 * then ignoring surrounding whitespace, then with typographic punctuation normalised to ASCII.
 * Differences, on purpose: the whole patch is validated before anything is written (atomic), paths are
 * confined to the root, line endings / trailing-newline state / executable bit are preserved, a move
 * onto an existing file is an error, and a pure-addition hunk with an `@@ header` inserts right after
 * the header line (without a header it appends at the end of the file, as Codex does).
 */
import { chmod, lstat, mkdir, readFile, readlink, realpath, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Error raised for malformed patches, paths outside the root, missing/existing files and context mismatches. */
export class ApplyPatchError extends Error {
  /** 1-based line number in the patch text the error refers to, when there is one. */
  readonly line: number | undefined;
  /** Patch path (relative to the root) the error refers to, when there is one. */
  readonly path: string | undefined;

  constructor(message: string, details: { line?: number; path?: string } = {}) {
    super(message);
    this.name = 'ApplyPatchError';
    this.line = details.line;
    this.path = details.path;
  }
}

/**
 * One hunk of an `*** Update File` section. `oldLines` is the block that must be found in the file
 * (context and `-` lines, in order); it is replaced by `newLines` (context and `+` lines). Lines carry
 * no line terminator.
 */
export interface PatchHunk {
  /** `@@ header` lines (0, 1 or several), each searched in order to narrow where `oldLines` is looked for. */
  contexts: string[];
  oldLines: string[];
  newLines: string[];
  /** The hunk had `*** End of File`: `oldLines` must be at the end of the file. */
  endOfFile: boolean;
  /** 1-based line in the patch text where the hunk starts. */
  line: number;
}

/** `*** Add File: path` followed by `+` lines. `content` is the file text, `\n`-terminated lines. */
export interface AddFileOperation {
  kind: 'add';
  path: string;
  content: string;
  /** 1-based line of the header in the patch text. */
  line: number;
}

/** `*** Delete File: path`. */
export interface DeleteFileOperation {
  kind: 'delete';
  path: string;
  /** 1-based line of the header in the patch text. */
  line: number;
}

/** `*** Update File: path`, optionally `*** Move to: moveTo`, then hunks (none only for a pure move). */
export interface UpdateFileOperation {
  kind: 'update';
  path: string;
  moveTo?: string;
  hunks: PatchHunk[];
  /** 1-based line of the header in the patch text. */
  line: number;
}

/** One file section of a patch, discriminated on `kind`. Paths are as written in the patch (trimmed). */
export type PatchOperation = AddFileOperation | DeleteFileOperation | UpdateFileOperation;

/** One file changed by {@link applyPatch}; paths are normalised, `/`-separated, relative to the root. */
export interface ChangedFile {
  path: string;
  kind: 'add' | 'update' | 'delete' | 'move';
  /** Destination of a `move` (content may have changed as well). */
  moveTo?: string;
}

/** Outcome of {@link applyPatch}. */
export interface ApplyPatchResult {
  /** Changed files in patch order. */
  changed: ChangedFile[];
  /**
   * Text for the model, Codex's format: `Success. Updated the following files:` then `A path`,
   * `M path` (updates and move destinations), `D path` lines.
   */
  summary: string;
}

const BEGIN_PATCH = '*** Begin Patch';
const END_PATCH = '*** End Patch';
const ADD_FILE = '*** Add File:';
const DELETE_FILE = '*** Delete File:';
const UPDATE_FILE = '*** Update File:';
const MOVE_TO = '*** Move to:';
const END_OF_FILE = '*** End of File';

const MAX_QUOTED_LINES = 20;
const MAX_QUOTED_CHARS = 200;

function quote(line: string): string {
  return line.length > MAX_QUOTED_CHARS ? `${line.slice(0, MAX_QUOTED_CHARS)}…` : line;
}

function quoteBlock(lines: string[]): string {
  const shown = lines.slice(0, MAX_QUOTED_LINES).map((l) => `    ${quote(l)}`);
  if (lines.length > MAX_QUOTED_LINES) shown.push(`    … (${lines.length - MAX_QUOTED_LINES} more lines)`);
  return shown.join('\n');
}

const FILE_HEADER_HINT = "'*** Add File: <path>', '*** Update File: <path>', '*** Delete File: <path>'";

/**
 * Removes one wrapping layer the model may have put around the patch: a heredoc
 * (`<<'EOF'` … `EOF`, optionally preceded by `apply_patch`) or a markdown code fence. Works on the
 * index range [start, end] (inclusive) of non-blank lines; returns the narrowed range or undefined.
 */
function unwrapOnce(lines: string[], start: number, end: number): [number, number] | undefined {
  const first = (lines[start] ?? '').trim();
  const last = (lines[end] ?? '').trim();
  const heredoc = /^(?:(?:apply_patch|applypatch)\s+)?<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1$/.exec(first);
  const isWrapped = (heredoc !== null && last === heredoc[2]) || (/^```[\w-]*$/.test(first) && last === '```');
  if (!isWrapped || end - start < 3) return undefined;
  let s = start + 1;
  let e = end - 1;
  while (s <= e && (lines[s] ?? '').trim() === '') s++;
  while (e >= s && (lines[e] ?? '').trim() === '') e--;
  return [s, e];
}

/** Parses `@@`, `@@ header`, and the unified-diff form `@@ -1,3 +1,4 @@ header`; returns the header or ''. */
function hunkHeader(line: string): string {
  let rest = line.slice(2);
  const unified = /^\s*-\d+(?:,\d+)?\s+\+\d+(?:,\d+)?\s*@@/.exec(rest);
  if (unified) rest = rest.slice(unified[0].length);
  if (rest.trim() === '') return '';
  return rest.startsWith(' ') ? rest.slice(1) : rest;
}

/**
 * Parses patch text into operations, without touching the file system.
 *
 * Tolerates, like Codex: surrounding whitespace, a heredoc wrapper (`<<'EOF'` … `EOF`, also with a
 * leading `apply_patch`), padding around `***` markers, blank lines between sections, a first hunk
 * without `@@`, empty lines inside hunks (taken as empty context lines), CRLF patch text. Also a
 * markdown code fence around the patch, several consecutive `@@ header` lines, and unified-diff
 * style `@@ -a,b +c,d @@` headers (the numbers are ignored).
 *
 * @param input the patch text (the tool's `input` argument).
 * @returns the operations in patch order; an empty array for a patch with no sections.
 * @throws ApplyPatchError with the patch line number and what was expected, on malformed input.
 */
export function parsePatch(input: string): PatchOperation[] {
  const lines = input.split(/\r?\n/);
  let start = 0;
  let end = lines.length - 1;
  while (start <= end && (lines[start] ?? '').trim() === '') start++;
  while (end >= start && (lines[end] ?? '').trim() === '') end--;
  if (start > end) throw new ApplyPatchError("The patch is empty: it must start with '*** Begin Patch' and end with '*** End Patch'.");
  for (let i = 0; i < 2; i++) {
    const unwrapped = unwrapOnce(lines, start, end);
    if (!unwrapped) break;
    [start, end] = unwrapped;
  }
  const at = (i: number): string => lines[i] ?? '';
  if (at(start).trim() !== BEGIN_PATCH) {
    throw new ApplyPatchError(
      `Invalid patch at line ${start + 1}: the first line must be '${BEGIN_PATCH}', got '${quote(at(start).trim())}'.`,
      { line: start + 1 },
    );
  }
  if (end === start || at(end).trim() !== END_PATCH) {
    throw new ApplyPatchError(
      `Invalid patch at line ${end + 1}: the last line must be '${END_PATCH}', got '${quote(at(end).trim())}'` +
        ' (was the patch cut off?).',
      { line: end + 1 },
    );
  }

  const ops: PatchOperation[] = [];
  let i = start + 1;
  const bodyEnd = end; // exclusive
  const headerPath = (line: string, marker: string, lineNo: number): string => {
    const p = line.trim().slice(marker.length).trim();
    if (p === '') throw new ApplyPatchError(`Invalid patch at line ${lineNo}: '${marker}' needs a path after it.`, { line: lineNo });
    return p;
  };

  while (i < bodyEnd) {
    const line = at(i);
    const trimmed = line.trim();
    const lineNo = i + 1;
    if (trimmed === '') {
      i++;
      continue;
    }
    if (trimmed.startsWith(ADD_FILE)) {
      const filePath = headerPath(line, ADD_FILE, lineNo);
      i++;
      const content: string[] = [];
      while (i < bodyEnd) {
        const l = at(i);
        if (l.startsWith('+')) {
          content.push(l.slice(1));
          i++;
        } else if (l.trim() === '') {
          // A blank line inside the added content that lost its '+': keep it if more '+' lines follow.
          let j = i;
          while (j < bodyEnd && at(j).trim() === '') j++;
          if (j < bodyEnd && at(j).startsWith('+')) {
            for (; i < j; i++) content.push('');
          } else {
            break;
          }
        } else {
          break;
        }
      }
      ops.push({ kind: 'add', path: filePath, content: content.length ? `${content.join('\n')}\n` : '', line: lineNo });
      if (i < bodyEnd && at(i).trim() !== '' && !at(i).trim().startsWith('***')) {
        throw new ApplyPatchError(
          `Invalid patch at line ${i + 1}: '${quote(at(i))}'. Every line of an added file must start with '+'` +
            ` (use '+' alone for an empty line); a new section starts with ${FILE_HEADER_HINT}.`,
          { line: i + 1 },
        );
      }
      continue;
    }
    if (trimmed.startsWith(DELETE_FILE)) {
      ops.push({ kind: 'delete', path: headerPath(line, DELETE_FILE, lineNo), line: lineNo });
      i++;
      continue;
    }
    if (trimmed.startsWith(UPDATE_FILE)) {
      const filePath = headerPath(line, UPDATE_FILE, lineNo);
      i++;
      let moveTo: string | undefined;
      if (i < bodyEnd && at(i).trim().startsWith(MOVE_TO)) {
        moveTo = headerPath(at(i), MOVE_TO, i + 1);
        i++;
      }
      const hunks: PatchHunk[] = [];
      while (i < bodyEnd) {
        const l = at(i);
        if (l.trim() === '') {
          i++;
          continue;
        }
        if (l.trim().startsWith('***') && l.trim() !== END_OF_FILE) break;
        const hunk: PatchHunk = { contexts: [], oldLines: [], newLines: [], endOfFile: false, line: i + 1 };
        while (i < bodyEnd && at(i).startsWith('@@')) {
          const header = hunkHeader(at(i));
          if (header !== '') hunk.contexts.push(header);
          i++;
        }
        let bodyLines = 0;
        while (i < bodyEnd) {
          const b = at(i);
          if (b.trim() === END_OF_FILE) {
            if (bodyLines === 0) {
              throw new ApplyPatchError(
                `Invalid patch at line ${i + 1}: '${END_OF_FILE}' must follow the lines of a hunk, but this hunk has none.`,
                { line: i + 1 },
              );
            }
            hunk.endOfFile = true;
            i++;
            break;
          }
          const c = b[0];
          if (c === ' ') {
            hunk.oldLines.push(b.slice(1));
            hunk.newLines.push(b.slice(1));
          } else if (c === '-') {
            hunk.oldLines.push(b.slice(1));
          } else if (c === '+') {
            hunk.newLines.push(b.slice(1));
          } else if (b.trim() === '') {
            // An empty context line whose leading space was lost (editors and models strip it).
            hunk.oldLines.push('');
            hunk.newLines.push('');
          } else {
            break;
          }
          bodyLines++;
          i++;
        }
        if (bodyLines === 0) {
          const next = i < bodyEnd ? at(i) : END_PATCH;
          throw new ApplyPatchError(
            `Invalid patch at line ${i + 1}: the hunk starting at line ${hunk.line} of '${filePath}' has no lines;` +
              ` expected lines starting with ' ' (context), '-' (removed) or '+' (added), got '${quote(next)}'.`,
            { line: i + 1, path: filePath },
          );
        }
        hunks.push(hunk);
        if (i < bodyEnd) {
          const n = at(i);
          const nt = n.trim();
          if (nt !== '' && !n.startsWith('@@') && !nt.startsWith('***') && !/^[ +-]/.test(n)) {
            throw new ApplyPatchError(
              `Invalid patch at line ${i + 1}: '${quote(n)}'. In an update hunk every line must start with ' '` +
                ` (context, a space even for an empty line), '-' (removed) or '+' (added); a new hunk starts with '@@',` +
                ` a new section with ${FILE_HEADER_HINT}, and the patch ends with '${END_PATCH}'.`,
              { line: i + 1, path: filePath },
            );
          }
        }
      }
      if (hunks.length === 0 && moveTo === undefined) {
        throw new ApplyPatchError(
          `Invalid patch at line ${lineNo}: '${UPDATE_FILE} ${filePath}' has no hunks; add at least one '@@' hunk.`,
          { line: lineNo, path: filePath },
        );
      }
      const op: UpdateFileOperation = { kind: 'update', path: filePath, hunks, line: lineNo };
      if (moveTo !== undefined) op.moveTo = moveTo;
      ops.push(op);
      continue;
    }
    const prev = ops.at(-1);
    const hint =
      trimmed.startsWith(MOVE_TO)
        ? ` '${MOVE_TO}' must come right after its '${UPDATE_FILE}' line.`
        : prev?.kind === 'delete'
          ? ` '${DELETE_FILE}' takes no lines after it.`
          : '';
    throw new ApplyPatchError(
      `Invalid patch at line ${lineNo}: '${quote(line)}' is not a valid section header; expected ${FILE_HEADER_HINT}` +
        ` or '${END_PATCH}'.${hint}`,
      { line: lineNo },
    );
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Matching

const PUNCTUATION: Record<string, string> = {};
for (const c of '\u2010\u2011\u2012\u2013\u2014\u2015\u2212') PUNCTUATION[c] = '-';
for (const c of '\u2018\u2019\u201A\u201B') PUNCTUATION[c] = "'";
for (const c of '\u201C\u201D\u201E\u201F') PUNCTUATION[c] = '"';
for (const c of '\u00A0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u202F\u205F\u3000') PUNCTUATION[c] = ' ';
const PUNCTUATION_RE = new RegExp(`[${Object.keys(PUNCTUATION).join('')}]`, 'g');

/** Line comparisons from strictest to loosest (Codex's order). */
const NORMALISERS: ((s: string) => string)[] = [
  (s) => s,
  (s) => s.trimEnd(),
  (s) => s.trim(),
  (s) => s.normalize('NFC').replace(PUNCTUATION_RE, (c) => PUNCTUATION[c] ?? c).trim(),
];

/**
 * Finds `pattern` in `lines` at or after `from`; returns its index or -1. With `atEnd`, only positions
 * whose match is followed by blank lines at most are considered, nearest to the end first.
 */
function seek(lines: string[], pattern: string[], from: number, atEnd: boolean): number {
  if (pattern.length > lines.length) return -1;
  const candidates: number[] = [];
  const last = lines.length - pattern.length;
  if (atEnd) {
    for (let i = last; i >= from; i--) {
      candidates.push(i);
      // One position up, the current match's last line would follow the match: it must be blank.
      if ((lines[i + pattern.length - 1] ?? '').trim() !== '') break;
    }
  } else {
    for (let i = from; i <= last; i++) candidates.push(i);
  }
  for (const norm of NORMALISERS) {
    const want = pattern.map(norm);
    const cache = new Map<number, string>();
    const get = (k: number): string => {
      let v = cache.get(k);
      if (v === undefined) {
        v = norm(lines[k] ?? '');
        cache.set(k, v);
      }
      return v;
    };
    for (const i of candidates) {
      let ok = true;
      for (let k = 0; k < want.length; k++) {
        if (get(i + k) !== want[k]) {
          ok = false;
          break;
        }
      }
      if (ok) return i;
    }
  }
  return -1;
}

/** Best partial match (longest matching prefix, whitespace-insensitive) of `pattern` at or after `from`. */
function closestMatch(lines: string[], pattern: string[], from: number): { at: number; matched: number } | undefined {
  let best: { at: number; matched: number } | undefined;
  const norm = NORMALISERS[3] ?? ((s: string) => s);
  const want = pattern.map(norm);
  for (let i = from; i < lines.length; i++) {
    let k = 0;
    while (k < want.length && i + k < lines.length && norm(lines[i + k] ?? '') === want[k]) k++;
    if (k > 0 && (!best || k > best.matched)) best = { at: i, matched: k };
  }
  return best;
}

/**
 * When context matched only loosely (whitespace, punctuation), keeps the file's own version of the
 * unchanged lines instead of the patch's: lines common to `oldLines` and `newLines` (their longest
 * common subsequence) are taken from `actual`, the file lines that matched `oldLines`.
 */
function keepFileContext(actual: string[], oldLines: string[], newLines: string[]): string[] {
  const n = oldLines.length;
  const m = newLines.length;
  if (actual.every((l, k) => l === oldLines[k]) || n * m > 4_000_000) return newLines;
  // lcs[k][j] = LCS length of oldLines[k..] and newLines[j..], flattened.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const idx = (k: number, j: number): number => k * (m + 1) + j;
  for (let k = n - 1; k >= 0; k--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[idx(k, j)] =
        oldLines[k] === newLines[j] ? (lcs[idx(k + 1, j + 1)] ?? 0) + 1 : Math.max(lcs[idx(k + 1, j)] ?? 0, lcs[idx(k, j + 1)] ?? 0);
    }
  }
  const out = [...newLines];
  let k = 0;
  let j = 0;
  while (k < n && j < m) {
    if (oldLines[k] === newLines[j]) {
      out[j] = actual[k] ?? (newLines[j] as string);
      k++;
      j++;
    } else if ((lcs[idx(k + 1, j)] ?? 0) >= (lcs[idx(k, j + 1)] ?? 0)) {
      k++;
    } else {
      j++;
    }
  }
  return out;
}

interface Replacement {
  start: number;
  deleteCount: number;
  insert: string[];
  order: number;
}

/** Applies the hunks of `op` to `lines`; throws ApplyPatchError naming the hunk on a mismatch. */
function applyHunks(lines: string[], op: UpdateFileOperation): string[] {
  const replacements: Replacement[] = [];
  let cursor = 0;
  const total = op.hunks.length;
  op.hunks.forEach((hunk, index) => {
    const where = `hunk ${index + 1} of ${total} (patch line ${hunk.line}) for '${op.path}'`;
    let headerAt = -1;
    for (const ctx of hunk.contexts) {
      const found = seek(lines, [ctx], cursor, false);
      if (found < 0) {
        const earlier = cursor > 0 ? seek(lines, [ctx], 0, false) : -1;
        throw new ApplyPatchError(
          `Failed to apply ${where}: the '@@ ${quote(ctx)}' context line was not found` +
            (cursor > 0 ? ` after line ${cursor}` : '') +
            ' in the file.' +
            (earlier >= 0 ? ` It occurs earlier, at line ${earlier + 1}: hunks must be in file order.` : '') +
            ' Re-read the file and retry with exact context.',
          { line: hunk.line, path: op.path },
        );
      }
      headerAt = found;
      cursor = found + 1;
    }

    if (hunk.oldLines.length === 0) {
      const at = hunk.contexts.length > 0 && !hunk.endOfFile ? cursor : lines.length;
      replacements.push({ start: at, deleteCount: 0, insert: hunk.newLines, order: index });
      return; // like Codex, an append at the end does not move the search position of later hunks
    }

    const find = (pattern: string[]): number => {
      const at = seek(lines, pattern, cursor, hunk.endOfFile);
      // The model often repeats the @@ line as the first context line: retry from the header itself.
      return at < 0 && headerAt >= 0 ? seek(lines, pattern, headerAt, hunk.endOfFile) : at;
    };
    let oldLines = hunk.oldLines;
    let newLines = hunk.newLines;
    let found = find(oldLines);
    // Trailing empty lines of a hunk are often the blank separator before the next section, not context.
    while (found < 0 && oldLines.length > 1 && oldLines.at(-1) === '') {
      oldLines = oldLines.slice(0, -1);
      if (newLines.at(-1) === '') newLines = newLines.slice(0, -1);
      found = find(oldLines);
    }
    if (found < 0) {
      const parts = [
        `Failed to apply ${where}: these expected lines were not found in the file` +
          (hunk.endOfFile ? ' at its end (the hunk has *** End of File)' : cursor > 0 ? ` after line ${cursor}` : '') +
          ':',
        quoteBlock(hunk.oldLines),
      ];
      const earlier = cursor > 0 ? seek(lines, hunk.oldLines, 0, false) : -1;
      if (earlier >= 0 && earlier < cursor) {
        parts.push(`They occur earlier, at line ${earlier + 1}: hunks must be in file order, each after the previous one.`);
      } else if (hunk.endOfFile && seek(lines, hunk.oldLines, cursor, false) >= 0) {
        parts.push(`They occur at line ${seek(lines, hunk.oldLines, cursor, false) + 1}, not at the end of the file: drop '${END_OF_FILE}'.`);
      } else {
        const close = closestMatch(lines, hunk.oldLines, cursor);
        if (close && close.matched < hunk.oldLines.length) {
          const fileLine = lines[close.at + close.matched];
          parts.push(
            `Closest match: the first ${close.matched} expected line(s) match at line ${close.at + 1}, but then the file has` +
              (fileLine === undefined
                ? ' no more lines'
                : ` line ${close.at + close.matched + 1}: '${quote(fileLine)}'`) +
              ` where the patch expects '${quote(hunk.oldLines[close.matched] ?? '')}'.`,
          );
        }
      }
      parts.push('The file differs from what the patch assumes: re-read the file and retry with exact context.');
      throw new ApplyPatchError(parts.join('\n'), { line: hunk.line, path: op.path });
    }
    replacements.push({
      start: found,
      deleteCount: oldLines.length,
      insert: keepFileContext(lines.slice(found, found + oldLines.length), oldLines, newLines),
      order: index,
    });
    cursor = found + oldLines.length;
  });

  replacements.sort((a, b) => a.start - b.start || a.order - b.order);
  const out: string[] = [];
  let pos = 0;
  for (const r of replacements) {
    if (r.start < pos) {
      throw new ApplyPatchError(`Failed to apply hunk ${r.order + 1} of ${total} for '${op.path}': it overlaps an earlier hunk.`, {
        path: op.path,
      });
    }
    out.push(...lines.slice(pos, r.start), ...r.insert);
    pos = r.start + r.deleteCount;
  }
  out.push(...lines.slice(pos));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text files

interface TextFile {
  lines: string[];
  eol: '\n' | '\r\n';
  /** The text ended with a line terminator (an empty file counts as true, so new content gets one). */
  finalNewline: boolean;
  bom: boolean;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeText(data: Buffer, relPath: string): TextFile {
  let text: string;
  try {
    if (data.includes(0)) throw new Error('NUL byte');
    text = UTF8.decode(data);
  } catch {
    throw new ApplyPatchError(`Cannot update '${relPath}': it is not a UTF-8 text file. Use the shell to change binary files.`, {
      path: relPath,
    });
  }
  const bom = text.startsWith('\uFEFF');
  if (bom) text = text.slice(1);
  const newlines = text.split('\n').length - 1;
  const crlf = text.split('\r\n').length - 1;
  const eol = newlines > 0 && crlf === newlines ? '\r\n' : '\n';
  const finalNewline = text === '' || text.endsWith('\n');
  const body = finalNewline && text !== '' ? text.slice(0, -eol.length) : text;
  const lines = text === '' ? [] : body.split(eol);
  return { lines, eol, finalNewline, bom };
}

function encodeText(file: TextFile, lines: string[]): Buffer {
  let text = lines.join(file.eol);
  if (lines.length > 0 && file.finalNewline) text += file.eol;
  if (file.bom) text = `\uFEFF${text}`;
  return Buffer.from(text, 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Paths

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** Checks a patch path lexically; returns it normalised (`a/./b` → `a/b`). */
function normaliseRelative(p: string, where: string): string {
  const fail = (why: string): never => {
    throw new ApplyPatchError(`Invalid path '${quote(p)}' in ${where}: ${why}`, { path: p });
  };
  if (p.includes('\0')) fail('it contains a NUL character.');
  if (path.posix.isAbsolute(p) || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\') || p.startsWith('~/')) {
    fail('absolute paths are not allowed; use a path relative to the repository root.');
  }
  const norm = path.posix.normalize(p);
  if (norm === '..' || norm.startsWith('../')) fail("it escapes the repository root through '..'; paths must stay inside the root.");
  if (norm === '.' || norm === './' || norm === '') fail('it names the root directory, not a file.');
  return norm.replace(/\/+$/, '');
}

/**
 * Resolves `rel` (already lexically checked) against the real root: existing symlinks in the parent
 * chain are followed and must stay inside the root. The final component is followed too when it is
 * a symlink and `followFinal` is set (updates), and left as is otherwise (a delete removes the link).
 */
async function resolveInRoot(rootReal: string, rel: string, followFinal: boolean, where: string): Promise<string> {
  const escape = (): never => {
    throw new ApplyPatchError(
      `Invalid path '${rel}' in ${where}: it resolves through a symbolic link to outside the repository root.`,
      { path: rel },
    );
  };
  const parts = rel.split('/');
  const name = parts.pop() ?? rel;
  let probe = path.join(rootReal, ...parts);
  const rest: string[] = [];
  let parentReal: string | undefined;
  for (;;) {
    try {
      parentReal = await realpath(probe);
      break;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTDIR') {
        throw new ApplyPatchError(`Invalid path '${rel}' in ${where}: a parent of it is a file, not a directory.`, { path: rel });
      }
      if (code !== 'ENOENT') throw err;
      const dangling = await lstat(probe).then(
        () => true,
        () => false,
      );
      if (dangling) escape(); // a dangling symlink we cannot follow safely
      if (probe === rootReal) throw err;
      rest.unshift(path.basename(probe));
      probe = path.dirname(probe);
    }
  }
  if (!isInside(rootReal, parentReal)) escape();
  if (rest.length === 0) {
    const st = await stat(parentReal);
    if (!st.isDirectory()) {
      throw new ApplyPatchError(`Invalid path '${rel}' in ${where}: a parent of it is a file, not a directory.`, { path: rel });
    }
  }
  const full = path.join(parentReal, ...rest, name);
  if (followFinal) {
    const st = await lstat(full).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      const target = await realpath(full).catch(() => undefined);
      if (target === undefined || !isInside(rootReal, target)) escape();
      return target ?? full;
    }
  }
  return full;
}

// ---------------------------------------------------------------------------------------------
// Applying

/** What a path should hold after the patch: bytes and optional mode, or null for "deleted". */
interface Planned {
  data: Buffer | null;
  mode?: number;
}

interface OnDisk {
  exists: boolean;
  isFile: boolean;
  /** Target of a symbolic link (for the rollback). */
  linkTarget?: string;
  data?: Buffer;
  mode?: number;
}

/**
 * Applies a patch under `root`. Every operation is parsed, resolved and computed in memory first
 * (later sections see the result of earlier ones, so `Add` then `Update` of one file works); files are
 * written only when all succeed, and on a write failure the ones already written are restored.
 *
 * Rules: paths are relative to `root` and must stay inside it (also through existing symlinks); Add
 * File fails on an existing path, Update/Delete on a missing one; Move to fails on an existing
 * destination (delete it earlier in the same patch to replace it). Updated files keep their line
 * ending style (CRLF stays CRLF), trailing-newline state, UTF-8 BOM and mode bits (a move keeps the
 * executable bit); added files are written with `\n` line ends and a final newline.
 *
 * @param input the patch text (see {@link parsePatch}).
 * @param root directory the paths are relative to (the workspace).
 * @returns changed files and a summary for the model.
 * @throws ApplyPatchError for anything the model can fix (syntax, paths, missing context); other
 *   errors (I/O failures while writing) are rethrown after the rollback.
 */
export async function applyPatch(input: string, root: string): Promise<ApplyPatchResult> {
  const ops = parsePatch(input);
  if (ops.length === 0) {
    throw new ApplyPatchError(`The patch has no file sections; add ${FILE_HEADER_HINT} sections between the markers.`);
  }
  const rootReal = await realpath(root);
  const planned = new Map<string, Planned>();
  const originals = new Map<string, OnDisk>();

  const readDisk = async (abs: string): Promise<OnDisk> => {
    const cached = originals.get(abs);
    if (cached) return cached;
    let result: OnDisk;
    const st = await lstat(abs).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    });
    if (!st) result = { exists: false, isFile: false };
    else if (st.isFile()) result = { exists: true, isFile: true, data: await readFile(abs), mode: st.mode & 0o7777 };
    else if (st.isSymbolicLink()) result = { exists: true, isFile: false, linkTarget: await readlink(abs) };
    else result = { exists: true, isFile: false };
    originals.set(abs, result);
    return result;
  };
  /** Current state of `abs` as seen by this patch so far. */
  const current = async (abs: string): Promise<OnDisk> => {
    const p = planned.get(abs);
    if (p) return p.data === null ? { exists: false, isFile: false } : { exists: true, isFile: true, data: p.data, mode: p.mode };
    return readDisk(abs);
  };
  const plan = async (abs: string, data: Buffer | null, mode?: number): Promise<void> => {
    if (data !== null) {
      for (const [other, p] of planned) {
        if (p.data === null || other === abs) continue;
        if (other.startsWith(`${abs}${path.sep}`) || abs.startsWith(`${other}${path.sep}`)) {
          const [file, dir] = other.startsWith(abs) ? [abs, other] : [other, abs];
          throw new ApplyPatchError(
            `The patch both creates the file '${path.relative(rootReal, file)}' and writes` +
              ` '${path.relative(rootReal, dir)}' beneath it; a path cannot be a file and a directory.`,
          );
        }
      }
    }
    await readDisk(abs); // remember the original for the rollback
    const entry: Planned = { data };
    if (mode !== undefined) entry.mode = mode;
    planned.delete(abs); // keep the Map in the order of the last change
    planned.set(abs, entry);
  };

  const files: ChangedFile[] = [];
  for (const op of ops) {
    const where = `'${op.kind === 'add' ? ADD_FILE : op.kind === 'delete' ? DELETE_FILE : UPDATE_FILE} ${op.path}' (patch line ${op.line})`;
    const rel = normaliseRelative(op.path, where);
    if (op.kind === 'add') {
      const abs = await resolveInRoot(rootReal, rel, false, where);
      if ((await current(abs)).exists) {
        throw new ApplyPatchError(
          `Cannot add '${rel}' (patch line ${op.line}): it already exists. Use '${UPDATE_FILE} ${rel}' to change it,` +
            ` or '${DELETE_FILE} ${rel}' earlier in the patch to replace it.`,
          { line: op.line, path: rel },
        );
      }
      await plan(abs, Buffer.from(op.content, 'utf8'));
      files.push({ path: rel, kind: 'add' });
    } else if (op.kind === 'delete') {
      const abs = await resolveInRoot(rootReal, rel, false, where);
      const cur = await current(abs);
      if (!cur.exists) {
        throw new ApplyPatchError(`Cannot delete '${rel}' (patch line ${op.line}): it does not exist.`, { line: op.line, path: rel });
      }
      if (!cur.isFile && cur.linkTarget === undefined) {
        throw new ApplyPatchError(`Cannot delete '${rel}' (patch line ${op.line}): it is not a regular file.`, {
          line: op.line,
          path: rel,
        });
      }
      await plan(abs, null);
      files.push({ path: rel, kind: 'delete' });
    } else {
      const moveWhere = `'${MOVE_TO} ${op.moveTo}' (patch line ${op.line})`;
      const moveRel = op.moveTo === undefined ? undefined : normaliseRelative(op.moveTo, moveWhere);
      const abs = await resolveInRoot(rootReal, rel, true, where);
      const cur = await current(abs);
      if (!cur.exists || !cur.isFile || cur.data === undefined) {
        throw new ApplyPatchError(
          cur.exists
            ? `Cannot update '${rel}' (patch line ${op.line}): it is not a regular file.`
            : `Cannot update '${rel}' (patch line ${op.line}): it does not exist. Use '${ADD_FILE} ${rel}' to create it.`,
          { line: op.line, path: rel },
        );
      }
      let data = cur.data;
      if (op.hunks.length > 0) {
        const file = decodeText(cur.data, rel);
        data = encodeText(file, applyHunks(file.lines, op));
      }
      if (moveRel === undefined || moveRel === rel) {
        await plan(abs, data, cur.mode);
        files.push({ path: rel, kind: 'update' });
      } else {
        const dest = await resolveInRoot(rootReal, moveRel, false, moveWhere);
        if ((await current(dest)).exists) {
          throw new ApplyPatchError(
            `Cannot move '${rel}' to '${moveRel}' (patch line ${op.line}): the destination already exists.` +
              ` Add '${DELETE_FILE} ${moveRel}' before this section to replace it.`,
            { line: op.line, path: moveRel },
          );
        }
        await plan(abs, null);
        await plan(dest, data, cur.mode);
        files.push({ path: rel, kind: 'move', moveTo: moveRel });
      }
    }
  }

  await commit(planned, originals);
  return { changed: files, summary: summarise(files) };
}

/** Writes the planned state; on failure restores what was touched and rethrows. */
async function commit(planned: Map<string, Planned>, originals: Map<string, OnDisk>): Promise<void> {
  const touched: string[] = [];
  const createdDirs: string[] = [];
  const entries = [...planned];
  try {
    for (const [abs, p] of entries) {
      if (p.data !== null) continue;
      const orig = originals.get(abs);
      if (!orig?.exists) continue;
      touched.push(abs);
      await unlink(abs);
    }
    for (const [abs, p] of entries) {
      if (p.data === null) continue;
      touched.push(abs);
      const made = await mkdir(path.dirname(abs), { recursive: true });
      if (made !== undefined) createdDirs.push(made);
      await writeFile(abs, p.data);
      if (p.mode !== undefined) await chmod(abs, p.mode);
    }
  } catch (err) {
    for (const abs of touched.reverse()) {
      const orig = originals.get(abs);
      try {
        if (orig?.exists && orig.isFile && orig.data !== undefined) {
          await writeFile(abs, orig.data);
          if (orig.mode !== undefined) await chmod(abs, orig.mode);
        } else if (orig?.linkTarget !== undefined) {
          await rm(abs, { force: true });
          await symlink(orig.linkTarget, abs);
        } else if (!orig?.exists) {
          await rm(abs, { force: true });
        }
      } catch {
        // best effort
      }
    }
    for (const dir of createdDirs.reverse()) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

function summarise(files: ChangedFile[]): string {
  const added: string[] = [];
  const modified: string[] = [];
  const deleted: string[] = [];
  const push = (list: string[], p: string): void => {
    if (!list.includes(p)) list.push(p);
  };
  for (const f of files) {
    if (f.kind === 'add') push(added, f.path);
    else if (f.kind === 'update') push(modified, f.path);
    else if (f.kind === 'delete') push(deleted, f.path);
    else push(modified, f.moveTo ?? f.path);
  }
  return [
    'Success. Updated the following files:',
    ...added.map((p) => `A ${p}`),
    ...modified.map((p) => `M ${p}`),
    ...deleted.map((p) => `D ${p}`),
  ].join('\n');
}
