import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, unlinkSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { diffIndexFromFiles, diffIndexFromUnifiedDiff, isPathIgnored, patchRightRanges, placeFinding } from '../../src/github/review-diff.ts';

// A `patch` field as GET /pulls/{n}/files returns it: two hunks, no file headers.
const PATCH = [
  '@@ -10,7 +10,9 @@ export function paginate(items, size) {',
  '   const pages = [];',
  '   let start = 0;',
  '   while (start < items.length) {',
  '-    pages.push(items.slice(start, start + size));',
  '+    const end = start + size - 1;',
  '+    pages.push(items.slice(start, end));',
  '+    // next page',
  '     start += size;',
  '   }',
  '   return pages;',
  '@@ -40,4 +42,3 @@ export function total(pages) {',
  '   let sum = 0;',
  '-  for (const p of pages) sum += p.length;',
  '-  return sum;',
  '+  return pages.reduce((n, p) => n + p.length, sum);',
  ' }',
  '\\ No newline at end of file',
].join('\n');

describe('patchRightRanges', () => {
  test('each hunk gives its RIGHT-side interval; a removal-only hunk gives none', () => {
    expect(patchRightRanges(PATCH)).toEqual([{ start: 10, end: 18 }, { start: 42, end: 44 }]);
    expect(patchRightRanges('@@ -5,2 +4,0 @@\n-a\n-b')).toEqual([]);
    expect(patchRightRanges('@@ -1 +1 @@\n-a\n+b')).toEqual([{ start: 1, end: 1 }]);
  });
});

describe('diffIndexFromFiles and placeFinding', () => {
  const index = diffIndexFromFiles([
    { filename: 'src/paginate.js', status: 'modified', patch: PATCH, changes: 7 },
    { filename: 'src/new-name.js', previous_filename: 'src/old-name.js', status: 'renamed', patch: '@@ -3,3 +3,3 @@\n a\n-b\n+B\n c', changes: 2 },
    { filename: 'src/moved.js', previous_filename: 'src/was.js', status: 'renamed', changes: 0 },
    { filename: 'src/gone.js', status: 'removed', patch: '@@ -1,2 +0,0 @@\n-a\n-b', changes: 2 },
    { filename: 'assets/logo.png', status: 'added', changes: 0 },
    { filename: 'data/huge.json', status: 'modified', changes: 24000 },
  ]);

  test('a line in a hunk (added or context) is inline on the RIGHT side', () => {
    expect(placeFinding(index, { path: 'src/paginate.js', line: 14 })).toEqual({ kind: 'inline', path: 'src/paginate.js', line: 14, side: 'RIGHT', clipped: false });
    expect(placeFinding(index, { path: 'src/paginate.js', line: 10 })).toMatchObject({ kind: 'inline', line: 10 });
    expect(placeFinding(index, { path: 'src/paginate.js', line: 18 })).toMatchObject({ kind: 'inline', line: 18 });
  });

  test('a range in one hunk gets start_line; a range reaching outside is cut to the hunk', () => {
    expect(placeFinding(index, { path: 'src/paginate.js', startLine: 13, line: 15 })).toEqual({
      kind: 'inline', path: 'src/paginate.js', start_line: 13, line: 15, side: 'RIGHT', clipped: false,
    });
    expect(placeFinding(index, { path: 'src/paginate.js', startLine: 5, line: 11 })).toEqual({
      kind: 'inline', path: 'src/paginate.js', start_line: 10, line: 11, side: 'RIGHT', clipped: true,
    });
    // Spanning both hunks: the first one only, never start_line and line in different hunks.
    expect(placeFinding(index, { path: 'src/paginate.js', startLine: 17, line: 43 })).toMatchObject({ start_line: 17, line: 18, clipped: true });
    expect(placeFinding(index, { path: 'src/paginate.js', startLine: 18, line: 30 })).toEqual({
      kind: 'inline', path: 'src/paginate.js', line: 18, side: 'RIGHT', clipped: true,
    });
  });

  test('lines between hunks, other files, deleted, binary, renamed-only and too-large files are outside the diff', () => {
    expect(placeFinding(index, { path: 'src/paginate.js', line: 19 })).toEqual({ kind: 'outside', reason: 'lines_not_in_diff' });
    expect(placeFinding(index, { path: 'src/paginate.js', line: 41 })).toEqual({ kind: 'outside', reason: 'lines_not_in_diff' });
    expect(placeFinding(index, { path: 'src/other.js', line: 1 })).toEqual({ kind: 'outside', reason: 'file_not_in_diff' });
    expect(placeFinding(index, { path: 'src/gone.js', line: 1 })).toEqual({ kind: 'outside', reason: 'removed' });
    expect(placeFinding(index, { path: 'assets/logo.png', line: 1 })).toEqual({ kind: 'outside', reason: 'binary' });
    expect(placeFinding(index, { path: 'src/moved.js', line: 1 })).toEqual({ kind: 'outside', reason: 'renamed_only' });
    expect(placeFinding(index, { path: 'data/huge.json', line: 1 })).toEqual({ kind: 'outside', reason: 'too_large' });
    // A renamed file is commented on by its new path; the old path is not in the head.
    expect(placeFinding(index, { path: 'src/new-name.js', line: 4 })).toMatchObject({ kind: 'inline', path: 'src/new-name.js' });
    expect(placeFinding(index, { path: 'src/old-name.js', line: 4 })).toEqual({ kind: 'outside', reason: 'file_not_in_diff' });
    expect(index.get('src/new-name.js')?.previousPath).toBe('src/old-name.js');
  });
});

describe('diffIndexFromUnifiedDiff', () => {
  test('a real `git diff` with a modification, a rename with edits, a deletion, a binary file, a quoted path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'review-diff-'));
    const git = (...args: string[]) => execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { encoding: 'utf8' });
    try {
      git('init', '-q');
      mkdirSync(join(dir, 'src'));
      const body = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`);
      writeFileSync(join(dir, 'src/a.js'), `${body.join('\n')}\n`);
      writeFileSync(join(dir, 'src/old.js'), `${body.join('\n')}\n`);
      writeFileSync(join(dir, 'src/gone.js'), 'bye\n');
      writeFileSync(join(dir, 'src/sp ace é.js'), 'x\n');
      git('add', '-A');
      git('commit', '-qm', 'base');
      const a = [...body];
      a[4] = 'line 5 changed';
      a.splice(30, 0, '+ diff --git a/x b/x', 'inserted');
      writeFileSync(join(dir, 'src/a.js'), `${a.join('\n')}\n`);
      const moved = [...body];
      moved[19] = 'line 20 renamed';
      renameSync(join(dir, 'src/old.js'), join(dir, 'src/new.js'));
      writeFileSync(join(dir, 'src/new.js'), `${moved.join('\n')}\n`);
      unlinkSync(join(dir, 'src/gone.js'));
      writeFileSync(join(dir, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1, 2, 0, 3]));
      writeFileSync(join(dir, 'src/sp ace é.js'), 'y\n');
      git('add', '-A');
      git('commit', '-qm', 'head');
      const diff = git('diff', '-M', 'HEAD~1', 'HEAD');
      const index = diffIndexFromUnifiedDiff(diff);
      expect([...index.keys()].sort()).toEqual(['logo.png', 'src/a.js', 'src/gone.js', 'src/new.js', 'src/sp ace é.js']);
      expect(index.get('src/a.js')).toEqual({ path: 'src/a.js', status: 'modified', hunks: [{ start: 2, end: 8 }, { start: 28, end: 35 }] });
      expect(index.get('src/new.js')).toMatchObject({ status: 'renamed', previousPath: 'src/old.js', hunks: [{ start: 17, end: 23 }] });
      expect(index.get('src/gone.js')).toMatchObject({ status: 'removed', noLines: 'removed' });
      expect(index.get('logo.png')).toMatchObject({ status: 'added', noLines: 'binary' });
      expect(index.get('src/sp ace é.js')).toMatchObject({ status: 'modified', hunks: [{ start: 1, end: 1 }] });
      expect(placeFinding(index, { path: 'src/a.js', line: 31 })).toMatchObject({ kind: 'inline', line: 31 });
      expect(placeFinding(index, { path: 'src/a.js', line: 20 })).toEqual({ kind: 'outside', reason: 'lines_not_in_diff' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('isPathIgnored', () => {
  test('globs with ** across directories; a pattern without a slash matches the file name anywhere', () => {
    const patterns = ['docs/**', '*.lock', 'src/gen/*.js', '**/__snapshots__/**'];
    expect(isPathIgnored('docs/a/b.md', patterns)).toBe(true);
    expect(isPathIgnored('web/yarn.lock', patterns)).toBe(true);
    expect(isPathIgnored('src/gen/x.js', patterns)).toBe(true);
    expect(isPathIgnored('src/gen/deep/x.js', patterns)).toBe(false);
    expect(isPathIgnored('a/__snapshots__/b.snap', patterns)).toBe(true);
    expect(isPathIgnored('src/docs/readme.md', patterns)).toBe(false);
    expect(isPathIgnored('src/x.js', [])).toBe(false);
  });
});
