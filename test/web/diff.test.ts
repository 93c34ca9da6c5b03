import { describe, expect, it } from '@jest/globals';
import type { FileChange } from '../../src/contract.ts';
import { diffChanges, renderDiffHtml } from '../../src/web/diff.ts';

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');
const base: Record<string, string> = {
  'src/math.js': 'export function add(a, b) {\n  return a - b;\n}\n',
  'old.txt': 'gone\n',
  'bin.dat': 'x',
};
const readBase = async (path: string) => (path in base ? Buffer.from(base[path]!) : null);

describe('diffChanges', () => {
  it('diffs modified, added and deleted files against the base as unified hunks', async () => {
    const changes: FileChange[] = [
      { action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: b64('export function add(a, b) {\n  return a + b;\n}\n') },
      { action: 'add', path: 'scripts/run.sh', mode: '100755', contentBase64: b64('#!/bin/sh\nnode --test\n') },
      { action: 'delete', path: 'old.txt' },
    ];
    const files = await diffChanges(changes, readBase);
    expect(files[0]).toEqual({
      path: 'src/math.js',
      action: 'modify',
      mode: '100644',
      additions: 1,
      deletions: 1,
      hunks: [{ header: '@@ -1,3 +1,3 @@', lines: [' export function add(a, b) {', '-  return a - b;', '+  return a + b;', ' }'] }],
    });
    expect(files[1]).toMatchObject({ action: 'add', additions: 2, deletions: 0, hunks: [{ header: '@@ -0,0 +1,2 @@' }] });
    expect(files[2]).toMatchObject({ action: 'delete', additions: 0, deletions: 1, hunks: [{ lines: ['-gone'] }] });
  });

  it('notes binary files, unreadable bases and a missing base reader instead of failing', async () => {
    const changes: FileChange[] = [
      { action: 'modify', path: 'bin.dat', mode: '100644', contentBase64: b64(Buffer.from([0, 1, 2])) },
      { action: 'modify', path: 'src/math.js', mode: '100644', contentBase64: b64('x\n') },
    ];
    const files = await diffChanges(changes, async (path) => {
      if (path === 'src/math.js') throw new Error('HTTP 502');
      return readBase(path);
    });
    expect(files[0]).toMatchObject({ note: 'binary file', hunks: [] });
    // The base could not be read: the new content is shown as added lines, with a note.
    expect(files[1]).toMatchObject({ note: 'the base version could not be read (HTTP 502)', additions: 1 });
    const noReader = await diffChanges([{ action: 'delete', path: 'old.txt' }], undefined);
    expect(noReader[0]).toMatchObject({ note: 'the base version is not available', hunks: [] });
  });

  it('cuts long diffs and lists files past the limits by name', async () => {
    const long = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
    const changes: FileChange[] = [
      { action: 'add', path: 'a.txt', mode: '100644', contentBase64: b64(long) },
      { action: 'add', path: 'b.txt', mode: '100644', contentBase64: b64(long) },
      { action: 'add', path: 'c.txt', mode: '100644', contentBase64: b64('c') },
    ];
    const files = await diffChanges(changes, readBase, { maxLines: 30, maxFiles: 2 });
    expect(files[0]!.hunks[0]!.lines).toHaveLength(30);
    expect(files[0]!.note).toBe('cut (the diff is too long)');
    expect(files[0]!.additions).toBe(50);
    expect(files[1]).toMatchObject({ note: 'not shown (the diff is too long)', hunks: [] });
    expect(files[2]).toMatchObject({ note: 'not shown (too many files)' });
  });
});

describe('diffChanges reading the base', () => {
  it('reads base files a few at a time, and keeps the order of the changes', async () => {
    let inFlight = 0;
    let most = 0;
    const changes: FileChange[] = Array.from({ length: 12 }, (_, i) => ({ action: 'modify' as const, path: `f${i}.txt`, mode: '100644' as const, contentBase64: b64(`new ${i}\n`) }));
    const files = await diffChanges(
      changes,
      async (path) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        return Buffer.from(`old ${path.slice(1, -4)}\n`);
      },
      { concurrency: 3 },
    );
    expect(most).toBe(3);
    expect(files.map((f) => f.hunks[0]!.lines)).toEqual(changes.map((_, i) => [`-old ${i}`, `+new ${i}`]));
  });
});

describe('renderDiffHtml', () => {
  it('escapes file names and lines and classes each line by kind', async () => {
    const files = await diffChanges(
      [{ action: 'add', path: 'x<script>.html', mode: '100644', contentBase64: b64('<img src=x onerror=alert(1)>\n') }],
      readBase,
    );
    const html = renderDiffHtml(files);
    expect(html).not.toMatch(/<script|<img/);
    expect(html).toContain('<code>x&#60;script&#62;.html</code>');
    expect(html).toContain('<span class="line hunk">@@ -0,0 +1,1 @@</span><span class="line add">+&#60;img src=x onerror=alert(1)&#62;</span>');
  });
});
