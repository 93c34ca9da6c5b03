/**
 * Where a review finding can be an inline comment: the lines of a pull request's diff that GitHub
 * accepts a review comment on with `side: RIGHT` (the head's added and context lines inside hunks),
 * read from the `patch` fields of `GET /pulls/{pull_number}/files`
 * (https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files) or from a unified diff
 * (`application/vnd.github.diff`, `git diff` output). A finding whose lines are not there is published
 * in the review body as "outside the diff": GitHub answers 422 "Line could not be resolved" for such a
 * comment and rejects the whole review with it.
 *
 * On the RIGHT side, the lines of one hunk are contiguous (context and added lines, numbered in the
 * new file), so a hunk is kept as its line interval.
 */

import path from 'node:path';

/** A changed file as `GET /pulls/{pull_number}/files` lists it (the fields used here). */
export interface PullRequestFile {
  filename: string;
  /** `added`, `removed`, `modified`, `renamed`, `copied`, `changed` or `unchanged`. */
  status: string;
  /** The file's hunks (unified diff without the file headers); absent for binary files and diffs too large to show. */
  patch?: string | undefined;
  /** For `renamed` (and `copied`) files: the path in the base. */
  previous_filename?: string | undefined;
  /** Lines changed (additions + deletions); 0 for binary files. */
  changes?: number | undefined;
}

/** The RIGHT-side lines of one hunk: `start`..`end`, 1-based and inclusive, in the head's file. */
export interface RightRange {
  start: number;
  end: number;
}

/** Why a file has no commentable lines although it changed. */
export type NoLinesReason = 'removed' | 'binary' | 'too_large' | 'renamed_only';

/** One changed file of the diff, by its head path. */
export interface FileDiff {
  path: string;
  /** The base path when the file was renamed or copied. */
  previousPath?: string;
  status: string;
  /** RIGHT-side ranges of the hunks, in order; empty for the files {@link noLines} explains. */
  hunks: RightRange[];
  /** Set when the file changed but has no RIGHT lines to comment on. */
  noLines?: NoLinesReason;
}

/** The diff of a pull request by head path. */
export type DiffIndex = Map<string, FileDiff>;

const HUNK_HEADER = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

/**
 * RIGHT-side ranges of the hunks of one file's patch (hunk headers `@@ -a,b +c,d @@` and their lines;
 * file headers before the first hunk are ignored). A hunk with `d = 0` (lines only removed) has none.
 */
export function patchRightRanges(patch: string): RightRange[] {
  const out: RightRange[] = [];
  for (const line of patch.split('\n')) {
    const m = HUNK_HEADER.exec(line);
    if (!m) continue;
    const start = Number(m[3]);
    const count = m[4] === undefined ? 1 : Number(m[4]);
    if (count > 0) out.push({ start, end: start + count - 1 });
  }
  return out;
}

function fileDiff(path: string, status: string, patch: string | undefined, opts: { previousPath?: string | undefined; binary?: boolean; changes?: number | undefined }): FileDiff {
  const file: FileDiff = { path, status, hunks: [] };
  if (opts.previousPath && opts.previousPath !== path) file.previousPath = opts.previousPath;
  if (status === 'removed') {
    file.noLines = 'removed';
    return file;
  }
  if (patch === undefined || patch === '') {
    if (opts.binary) file.noLines = 'binary';
    else if ((status === 'renamed' || status === 'copied') && !opts.changes) file.noLines = 'renamed_only';
    else if (opts.changes) file.noLines = 'too_large';
    else file.noLines = 'binary';
    return file;
  }
  file.hunks = patchRightRanges(patch);
  return file;
}

/**
 * The diff index of a pull request from its `GET /pulls/{n}/files` entries. A file without `patch`
 * is binary when it has no line changes, else too large for GitHub to show (both: no inline comments).
 */
export function diffIndexFromFiles(files: readonly PullRequestFile[]): DiffIndex {
  const index: DiffIndex = new Map();
  for (const f of files) {
    index.set(f.filename, fileDiff(f.filename, f.status, f.patch, { previousPath: f.previous_filename, changes: f.changes }));
  }
  return index;
}

/** A git path from a diff header: C-style quoted (`"a/sp\303\251 ce"`) or plain, without its `a/`/`b/` prefix. */
function gitPath(raw: string): string {
  let p = raw.trim();
  if (p.startsWith('"') && p.endsWith('"')) {
    const bytes: number[] = [];
    const body = p.slice(1, -1);
    const simple: Record<string, number> = { n: 10, t: 9, '"': 34, '\\': 92, a: 7, b: 8, f: 12, r: 13, v: 11 };
    for (let i = 0; i < body.length; i++) {
      const ch = body[i]!;
      if (ch !== '\\') {
        bytes.push(...Buffer.from(ch));
        continue;
      }
      const next = body[i + 1] ?? '';
      const octal = /^[0-7]{3}/.exec(body.slice(i + 1));
      if (octal) {
        bytes.push(parseInt(octal[0], 8));
        i += 3;
      } else {
        bytes.push(simple[next] ?? next.charCodeAt(0));
        i += 1;
      }
    }
    p = Buffer.from(bytes).toString('utf8');
  }
  return p.replace(/^[ab]\//, '');
}

/**
 * The diff index of a unified diff of several files (`git diff` output, or a pull request fetched
 * with `Accept: application/vnd.github.diff`): `diff --git` sections with their rename, new/deleted
 * file and binary markers, then `---`/`+++` headers and hunks. Renames are keyed by the new path.
 */
export function diffIndexFromUnifiedDiff(diff: string): DiffIndex {
  const index: DiffIndex = new Map();
  interface Section { oldPath?: string; newPath?: string; headerPaths?: [string, string]; status: string; binary: boolean; patch: string[] }
  let current: Section | undefined;
  let oldLeft = 0;
  let newLeft = 0;
  const flush = (): void => {
    if (!current) return;
    const path = current.newPath ?? current.headerPaths?.[1] ?? current.oldPath ?? current.headerPaths?.[0];
    if (path) {
      index.set(
        path,
        fileDiff(path, current.status, current.patch.length ? current.patch.join('\n') : undefined, {
          previousPath: current.status === 'renamed' || current.status === 'copied' ? current.oldPath : undefined,
          binary: current.binary,
          changes: current.patch.length,
        }),
      );
    }
    current = undefined;
  };
  for (const line of diff.split('\n')) {
    if (current && (oldLeft > 0 || newLeft > 0)) {
      // Inside a hunk: counts decide where it ends (a `+diff --git` line is content).
      const kind = line[0];
      if (kind === '\\') continue;
      if (kind !== '+') oldLeft--;
      if (kind !== '-') newLeft--;
      current.patch.push(line);
      continue;
    }
    if (line.startsWith('diff --git ')) {
      flush();
      const rest = line.slice('diff --git '.length);
      // Plain paths: "a/x b/x"; the split is ambiguous with spaces, so ---/+++ and rename lines win when present.
      const quoted = /^("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/.exec(rest);
      const half = rest.length > 4 && rest.startsWith('a/') ? rest.indexOf(' b/') : -1;
      const headerPaths: [string, string] | undefined = quoted
        ? [gitPath(quoted[1]!), gitPath(quoted[2]!)]
        : half > 0
          ? [gitPath(rest.slice(0, half)), gitPath(rest.slice(half + 1))]
          : undefined;
      current = { status: 'modified', binary: false, patch: [], ...(headerPaths ? { headerPaths } : {}) };
      continue;
    }
    if (!current) continue;
    const hunk = HUNK_HEADER.exec(line);
    if (hunk) {
      oldLeft = hunk[2] === undefined ? 1 : Number(hunk[2]);
      newLeft = hunk[4] === undefined ? 1 : Number(hunk[4]);
      current.patch.push(line);
    } else if (line.startsWith('rename from ') || line.startsWith('copy from ')) {
      current.oldPath = gitPath(line.replace(/^(rename|copy) from /, ''));
      current.status = line.startsWith('rename') ? 'renamed' : 'copied';
    } else if (line.startsWith('rename to ') || line.startsWith('copy to ')) {
      current.newPath = gitPath(line.replace(/^(rename|copy) to /, ''));
    } else if (line.startsWith('new file mode')) {
      current.status = 'added';
    } else if (line.startsWith('deleted file mode')) {
      current.status = 'removed';
    } else if (line.startsWith('Binary files ') || line === 'GIT binary patch') {
      current.binary = true;
    } else if (line.startsWith('--- ')) {
      const p = line.slice(4);
      if (p !== '/dev/null') current.oldPath ??= gitPath(p);
    } else if (line.startsWith('+++ ')) {
      const p = line.slice(4);
      if (p !== '/dev/null') current.newPath ??= gitPath(p);
    }
  }
  flush();
  return index;
}

/** Why a finding cannot be an inline comment. */
export type OutsideReason =
  /** The file is not part of the pull request's changes. */
  | 'file_not_in_diff'
  /** The file changed, but not around the finding's lines. */
  | 'lines_not_in_diff'
  | NoLinesReason;

/** Where a finding goes: an inline comment (GitHub's review comment fields) or the review body. */
export type FindingPlacement =
  | {
      kind: 'inline';
      path: string;
      /** The last line of the comment (RIGHT side, head's numbering). */
      line: number;
      /** The first line, only for a multi-line comment (same hunk as `line`, always before it). */
      start_line?: number;
      side: 'RIGHT';
      /** True when the finding's range reached outside the hunk and was cut to the part inside it. */
      clipped: boolean;
    }
  | { kind: 'outside'; reason: OutsideReason };

/**
 * Places a finding on the diff. Its range `startLine..line` (or just `line`) becomes an inline
 * comment on the first hunk it overlaps, cut to that hunk when it reaches outside it (`clipped`), so
 * `start_line` and `line` are always in the same hunk, as GitHub requires for multi-line comments.
 * @param finding `path` relative to the repository root; lines 1-based in the head's file.
 */
export function placeFinding(index: DiffIndex, finding: { path: string; line: number; startLine?: number | undefined }): FindingPlacement {
  const file = index.get(finding.path);
  if (!file) return { kind: 'outside', reason: 'file_not_in_diff' };
  if (file.noLines) return { kind: 'outside', reason: file.noLines };
  const first = Math.min(finding.startLine ?? finding.line, finding.line);
  const last = Math.max(finding.startLine ?? finding.line, finding.line);
  const hunk = file.hunks.find((h) => h.start <= last && h.end >= first);
  if (!hunk) return { kind: 'outside', reason: 'lines_not_in_diff' };
  const start = Math.max(first, hunk.start);
  const end = Math.min(last, hunk.end);
  return {
    kind: 'inline',
    path: file.path,
    line: end,
    ...(start < end ? { start_line: start } : {}),
    side: 'RIGHT',
    clipped: start !== first || end !== last,
  };
}

/**
 * True when `file` (repository-relative, `/`-separated) matches one of `patterns` (`review.paths_ignore`):
 * glob patterns as `path.matchesGlob` reads them (`*` within one segment, `**` across segments,
 * `{a,b}`, `[…]`); a pattern without a `/` also matches the file name in any directory (`*.lock`
 * matches `web/yarn.lock`), as in `.gitignore`.
 */
export function isPathIgnored(file: string, patterns: readonly string[]): boolean {
  const name = file.slice(file.lastIndexOf('/') + 1);
  return patterns.some((pattern) => path.posix.matchesGlob(file, pattern) || (!pattern.includes('/') && path.posix.matchesGlob(name, pattern)));
}
