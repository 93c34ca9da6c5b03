/**
 * Validation of a runner's changes before the app writes them to GitHub. The runner is untrusted (the
 * model read attacker-controllable text), so everything it returns is checked here: paths stay inside
 * the repository and out of `.git`, symlinks cannot point outside it, workflow files change only when
 * the repository allows it, and sizes are bounded. See DESIGN.md, "Trust boundary".
 */
import { posix } from 'node:path';
import { FileChange, TaskResult, describeZodError } from '../contract.ts';

/** Options of {@link validateChanges}. Sizes are bytes of decoded content. */
export interface ValidateChangesOptions {
  /**
   * Whether changes under `.github/workflows/` are allowed (the `allow_workflow_changes` key of
   * `.github/codex.yml`). GitHub refuses such writes unless the App has the `workflows` permission.
   */
  allowWorkflowChanges: boolean;
  /** Most changes (adds, modifications and deletions) in one result. Default {@link DEFAULT_MAX_FILES}. */
  maxFiles?: number;
  /** Largest decoded content of one file, bytes. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  maxFileBytes?: number;
  /** Largest decoded content of all files together, bytes. Default {@link DEFAULT_MAX_TOTAL_BYTES}. */
  maxTotalBytes?: number;
}

/** Outcome of a validation: `ok`, or every problem found, one message per problem naming the path. */
export type ValidationOutcome = { ok: true } | { ok: false; errors: string[] };

/** Default {@link ValidateChangesOptions.maxFiles}: 300 changes. */
export const DEFAULT_MAX_FILES = 300;
/** Default {@link ValidateChangesOptions.maxFileBytes}: 5 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024;
/** Default {@link ValidateChangesOptions.maxTotalBytes}: 50 MiB. */
export const DEFAULT_MAX_TOTAL_BYTES = 50 * 1024 * 1024;

/** Symlink hops followed when resolving a link target (Linux's limit is 40 as well). */
const MAX_SYMLINK_HOPS = 40;
const SYMLINK_MODE = '120000';

/** Quotes a path for an error message (JSON string syntax, so control characters stay visible). */
function q(path: string): string {
  return JSON.stringify(path);
}

/**
 * Invisible characters refused anywhere in a path or symlink target: Unicode format characters
 * (category Cf: zero-width spaces and joiners U+200B–U+200F, bidi controls U+202A–U+202E and
 * U+2066–U+2069, U+2060–U+2064, U+206A–U+206F, U+FEFF, …), control characters (Cc) and the line and
 * paragraph separators. macOS (HFS+) ignores several of them when it compares names, so `.git\u200c`
 * is `.git` there (git's own `is_hfs_dotgit`); elsewhere they make a path look like another one.
 * No repository needs them in a file name, so they are refused rather than stripped.
 */
const INVISIBLE = /[\p{Cf}\p{Cc}\u2028\u2029]/u;

/** The first invisible character of `text` as `U+XXXX`, or undefined. */
function invisibleCharacter(text: string): string | undefined {
  const match = INVISIBLE.exec(text);
  return match ? `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : undefined;
}

/**
 * A path segment as the least forgiving file system a checkout may land on would compare it: NFKC
 * compatibility form (`．ｇｉｔ` → `.git`), format characters removed (HFS+ ignores them), lower case
 * (NTFS, HFS+, APFS fold case), an NTFS alternate data stream suffix (`.git::$INDEX_ALLOCATION`)
 * dropped, and trailing dots and spaces dropped (NTFS ignores them). Used to compare segments against
 * protected names, never to rewrite paths.
 */
function normalizedSegment(segment: string): string {
  return segment
    .normalize('NFKC')
    .replace(/\p{Cf}/gu, '')
    .toLowerCase()
    .replace(/:.*$/s, '')
    .replace(/[. ]+$/, '');
}

/** A path with each segment in {@link normalizedSegment} form (for collisions and protected names). */
function normalizedPath(path: string): string {
  return path.split('/').map(normalizedSegment).join('/');
}

/**
 * True for path segments a file system may treat as the repository directory: `.git` after
 * {@link normalizedSegment} (so `.GIT`, `.git.`, `.git `, `.git::$INDEX_ALLOCATION`, `.gi\u200ct`,
 * `．git`), and the NTFS 8.3 short name `git~1` — the names git's `verify_path` refuses
 * (`is_ntfs_dotgit`, `is_hfs_dotgit`).
 */
function isDotGitSegment(segment: string): boolean {
  const name = normalizedSegment(segment);
  return name === '.git' || name === 'git~1';
}

/** Files git refuses as symlinks (`verify_path`: they are read from the work tree, a link would read elsewhere). */
const NO_SYMLINK_NAMES = new Set(['.gitmodules', '.gitattributes', '.gitignore', '.mailmap']);
/** Their NTFS 8.3 short names as git's `is_ntfs_dotgitmodules` and friends know them (`GITMOD~1`, `gi7eba~1`, …). */
const NO_SYMLINK_SHORT_NAMES = /^(?:gitmod|gi7eba|gitatt|gi7d29|gitign|gi250a|mailma|maba30)~\d$/;

/** True for a path segment that names one of {@link NO_SYMLINK_NAMES} on some file system. */
function isNoSymlinkName(segment: string): boolean {
  const name = normalizedSegment(segment);
  return NO_SYMLINK_NAMES.has(name) || NO_SYMLINK_SHORT_NAMES.test(name);
}

/** Problems with the shape of one path (relative, normalized, outside `.git`), as rule phrases. */
function pathProblems(path: string): string[] {
  const problems: string[] = [];
  if (path.includes('\0')) problems.push('path contains a NUL byte');
  else {
    const invisible = invisibleCharacter(path);
    if (invisible) problems.push(`path contains an invisible or control character (${invisible})`);
  }
  if (path.includes('\\')) problems.push('path contains a backslash');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) problems.push('path must be relative');
  // An absolute path is reported once as such, not also for its leading empty segment.
  const segments = path.replace(/^\/+(?=.)/, '').split('/');
  if (segments.some((s) => s === '')) problems.push('path has an empty segment (leading, trailing or double slash)');
  if (segments.some((s) => s === '.' || s === '..')) problems.push('path must be normalized (no "." or ".." segments)');
  if (segments.some(isDotGitSegment)) problems.push('path is inside a .git directory');
  return problems;
}

/**
 * True when `path` touches the workflows: it is `.github/workflows` or below it, or it is `.github`
 * itself (a file, symlink or deletion there replaces the directory and so the workflows in it).
 * Compared on {@link normalizedSegment} forms, so `.GitHub/Workflows` and `.github./workflows` count.
 */
function isWorkflowPath(path: string): boolean {
  const [first, second] = normalizedPath(path).split('/');
  return first === '.github' && (second === undefined || second === 'workflows');
}

/** Decodes canonical base64 (what `Buffer#toString('base64')` writes); undefined when it does not round-trip. */
function decodeBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** The proper ancestor directories of a path: `a/b/c` → `a`, `a/b`. */
function ancestors(path: string): string[] {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

/**
 * Paths among the written ones (with their parent directories) that a case-insensitive or
 * normalizing file system would take for one another (compared with {@link normalizedPath}), one
 * error message per colliding spelling. Deletions take no part: a deletion and a write that differ in
 * case are a case-only rename, which is allowed.
 */
function caseCollisions(valid: FileChange[], written: Set<string>): string[] {
  /** normalized path → the first spelling seen (a file or a directory of one). */
  const spellings = new Map<string, string>();
  const reported = new Set<string>();
  const errors: string[] = [];
  for (const change of valid) {
    if (!written.has(change.path)) continue;
    for (const name of [...ancestors(change.path), change.path]) {
      const key = normalizedPath(name);
      const first = spellings.get(key);
      if (first === undefined) spellings.set(key, name);
      else if (first !== name && !reported.has(`${first}\0${name}`)) {
        reported.add(`${first}\0${name}`);
        errors.push(`${q(change.path)}: ${q(name)} and ${q(first)} differ only in case or Unicode form and collide on macOS and Windows`);
      }
    }
  }
  return errors;
}

/**
 * Resolves the target of the symlink at `linkPath` the way a file system would, from the link's
 * directory, following other symlinks of the same change set (symlinks already in the base tree are not
 * known here). @returns the resolved repository-relative path, or the rule it breaks.
 */
function resolveSymlink(linkPath: string, target: string, links: Map<string, string>): { path: string } | { problem: string } {
  const stack = posix.dirname(linkPath) === '.' ? [] : posix.dirname(linkPath).split('/');
  let pending = target.split('/');
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!stack.length) return { problem: `symlink target ${q(target)} resolves outside the repository` };
      stack.pop();
      continue;
    }
    stack.push(part);
    const next = links.get(stack.join('/'));
    if (next === undefined) continue;
    if (++hops > MAX_SYMLINK_HOPS) return { problem: `symlink target ${q(target)} loops (more than ${MAX_SYMLINK_HOPS} links)` };
    if (next.startsWith('/')) return { problem: `symlink target ${q(target)} goes through an absolute symlink` };
    stack.pop();
    pending = [...next.split('/'), ...pending];
  }
  return { path: stack.join('/') };
}

/**
 * Checks a runner's changes against the rules the app enforces before writing them to GitHub.
 *
 * Rules (each error message starts with the JSON-quoted path and names the rule):
 * - each change matches the {@link FileChange} schema (action, mode 100644/100755/120000);
 * - paths are relative and normalized: no leading `/` or drive letter, no empty, `.` or `..` segments,
 *   no backslash, no NUL, no invisible character (Unicode format characters such as U+200C, controls;
 *   refused anywhere in the path, see {@link INVISIBLE}); no segment at any depth that a file system
 *   may take for `.git` (compared after {@link normalizedSegment}: `.GIT`, `.git.`, `.git `,
 *   `.git::$INDEX_ALLOCATION`, `．git`, and `git~1`), as git's own `verify_path` refuses;
 * - changes (add, modify, delete; file or symlink) at or under `.github/workflows/`, and any change
 *   at `.github` itself (a file, symlink or deletion there replaces the directory holding the
 *   workflows), compared on normalized segments, only with `allowWorkflowChanges`; one error lists
 *   every such path and names `allow_workflow_changes`;
 * - no path appears twice; no two written paths, or directories of written paths, differ only in
 *   case or Unicode form (`README` and `readme`, `Docs/a` and `docs/b`): they collide in checkouts on
 *   macOS and Windows. A deletion and a write that differ in case (a case-only rename) are allowed;
 * - `.gitmodules`, `.gitattributes`, `.gitignore` and `.mailmap` (any case, NTFS short names such as
 *   `GITMOD~1` included) are never symlinks (git refuses them);
 * - no written path (add/modify) is also the parent directory of another written path (deleting a file
 *   and writing files below the same name, or the reverse, is a legitimate type change and allowed);
 * - symlinks (mode 120000): the decoded target is non-empty, relative, has no NUL, backslash or
 *   invisible character, and resolves inside the repository (not into `.git`; not to `.github`
 *   or into `.github/workflows` without `allowWorkflowChanges`) from the link's directory, following
 *   the other symlinks of the same change set;
 * - no written path goes through a directory that the same change set writes as a symlink;
 * - `contentBase64` is canonical base64; decoded sizes within `maxFileBytes` each and `maxTotalBytes`
 *   together; at most `maxFiles` changes.
 *
 * Symlinks already in the base tree are not known here and are not followed, and collisions with
 * paths of the base tree are not checked.
 * @returns `{ ok: true }`, or `{ ok: false, errors }` with every problem found. Never throws.
 */
export function validateChanges(changes: FileChange[], opts: ValidateChangesOptions): ValidationOutcome {
  const maxFiles = opts.maxFiles ?? DEFAULT_MAX_FILES;
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const maxTotalBytes = opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES;
  const errors: string[] = [];

  if (!Array.isArray(changes)) return { ok: false, errors: ['changes: must be an array'] };
  if (changes.length > maxFiles) {
    errors.push(`changes: ${changes.length} files changed, more than the limit of ${maxFiles}`);
  }

  const valid: FileChange[] = [];
  const seen = new Set<string>();
  const workflowPaths: string[] = [];
  let totalBytes = 0;
  /** Written symlinks with a decodable target: path → target. */
  const links = new Map<string, string>();
  /** Written paths (add/modify) with a well-formed path. */
  const written = new Set<string>();

  changes.forEach((raw, index) => {
    const parsed = FileChange.safeParse(raw);
    if (!parsed.success) {
      const path = typeof (raw as { path?: unknown })?.path === 'string' ? q((raw as { path: string }).path) : `changes[${index}]`;
      errors.push(`${path}: invalid change: ${describeZodError(parsed.error).replace(/\n/g, '; ')}`);
      return;
    }
    const change = parsed.data;
    const { path } = change;
    const shapeProblems = pathProblems(path);
    for (const problem of shapeProblems) errors.push(`${q(path)}: ${problem}`);
    if (seen.has(path)) {
      errors.push(`${q(path)}: duplicate path (changed more than once)`);
      return;
    }
    seen.add(path);
    if (isWorkflowPath(path)) workflowPaths.push(path);
    if (change.action === 'delete') {
      valid.push(change);
      return;
    }
    const bytes = decodeBase64(change.contentBase64);
    if (!bytes) {
      errors.push(`${q(path)}: content is not valid base64`);
      return;
    }
    if (bytes.length > maxFileBytes) {
      errors.push(`${q(path)}: file is ${bytes.length} bytes, more than the limit of ${maxFileBytes} bytes per file`);
    }
    totalBytes += bytes.length;
    valid.push(change);
    if (shapeProblems.length) return;
    written.add(path);
    if (change.mode === SYMLINK_MODE) {
      links.set(path, bytes.toString('utf8'));
      if (isNoSymlinkName(path.split('/').at(-1)!)) {
        errors.push(`${q(path)}: git refuses this file as a symlink`);
      }
    }
  });

  errors.push(...caseCollisions(valid, written));

  if (totalBytes > maxTotalBytes) {
    errors.push(`changes: ${totalBytes} bytes in total, more than the limit of ${maxTotalBytes} bytes`);
  }

  if (workflowPaths.length && !opts.allowWorkflowChanges) {
    errors.push(
      `${workflowPaths.map(q).join(', ')}: changes to .github/workflows are not allowed for this repository ` +
        '(set `allow_workflow_changes: true` in .github/codex.yml to allow them; the GitHub App also needs the ' +
        '`workflows` permission)',
    );
  }

  for (const change of valid) {
    const { path } = change;
    if (!written.has(path)) continue;
    const parents = ancestors(path);
    const throughLink = parents.find((dir) => links.has(dir));
    if (throughLink !== undefined) {
      errors.push(`${q(path)}: path goes through ${q(throughLink)}, a symlink added in the same change`);
    } else {
      const fileParent = parents.find((dir) => written.has(dir));
      if (fileParent !== undefined) {
        errors.push(`${q(path)}: ${q(fileParent)} is written as a file and is also a parent directory of this path`);
      }
    }
    const target = links.get(path);
    if (target === undefined) continue;
    if (target === '') errors.push(`${q(path)}: symlink target is empty`);
    else if (target.includes('\0')) errors.push(`${q(path)}: symlink target contains a NUL byte`);
    else if (invisibleCharacter(target)) {
      errors.push(`${q(path)}: symlink target ${q(target)} contains an invisible or control character (${invisibleCharacter(target)})`);
    }
    else if (target.includes('\\')) errors.push(`${q(path)}: symlink target ${q(target)} contains a backslash`);
    else if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) errors.push(`${q(path)}: symlink target ${q(target)} is absolute`);
    else {
      const resolved = resolveSymlink(path, target, links);
      if ('problem' in resolved) errors.push(`${q(path)}: ${resolved.problem}`);
      else if (resolved.path.split('/').some(isDotGitSegment)) {
        errors.push(`${q(path)}: symlink target ${q(target)} resolves inside a .git directory`);
      } else if (!opts.allowWorkflowChanges && isWorkflowPath(resolved.path)) {
        errors.push(
          `${q(path)}: symlink target ${q(target)} points at .github/workflows, which this repository does not allow changing ` +
            '(`allow_workflow_changes`)',
        );
      }
    }
  }

  return errors.length ? { ok: false, errors } : { ok: true };
}

/**
 * Parses an untrusted TaskResult (e.g. the JSON a runner reported) with the {@link TaskResult} schema,
 * checks it answers the expected task and base commit, then runs {@link validateChanges} on its changes.
 * @returns the parsed result, or every problem (schema errors as `field.path: message`).
 */
export function validateTaskResult(
  input: unknown,
  opts: ValidateChangesOptions & { expectedId?: string; expectedBaseSha?: string },
): { ok: true; result: TaskResult } | { ok: false; errors: string[] } {
  const parsed = TaskResult.safeParse(input);
  if (!parsed.success) return { ok: false, errors: describeZodError(parsed.error).split('\n') };
  const result = parsed.data;
  const errors: string[] = [];
  if (opts.expectedId !== undefined && result.id !== opts.expectedId) {
    errors.push(`id: result is for task ${q(result.id)}, expected ${q(opts.expectedId)}`);
  }
  if (opts.expectedBaseSha !== undefined && result.baseSha !== opts.expectedBaseSha) {
    errors.push(`baseSha: changes are against ${result.baseSha}, expected ${opts.expectedBaseSha}`);
  }
  const changes = validateChanges(result.changes, opts);
  if (!changes.ok) errors.push(...changes.errors);
  return errors.length ? { ok: false, errors } : { ok: true, result };
}
