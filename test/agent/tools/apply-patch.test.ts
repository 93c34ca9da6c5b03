import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplyPatchError, applyPatch, parsePatch } from '../../../src/agent/tools/apply-patch.ts';

let root: string;
let outside: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'apply-patch-'));
  outside = await mkdtemp(path.join(tmpdir(), 'apply-patch-outside-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const put = async (rel: string, content: string | Buffer): Promise<void> => {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
  await writeFile(path.join(root, rel), content);
};
const get = (rel: string): Promise<string> => readFile(path.join(root, rel), 'utf8');
const exists = (rel: string): Promise<boolean> =>
  stat(path.join(root, rel)).then(
    () => true,
    () => false,
  );
const patch = (...body: string[]): string => ['*** Begin Patch', ...body, '*** End Patch'].join('\n');

async function applyError(input: string): Promise<ApplyPatchError> {
  const error = await applyPatch(input, root).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ApplyPatchError);
  return error as ApplyPatchError;
}

describe('parsePatch', () => {
  it('parses every kind of section into typed operations', () => {
    const ops = parsePatch(
      patch(
        '*** Add File: a/new.txt',
        '+one',
        '+',
        '*** Update File: src/old.ts',
        '*** Move to: src/renamed.ts',
        '@@ function f() {',
        ' keep',
        '-old',
        '+new',
        '@@',
        '@@ class B',
        '@@ method()',
        ' x',
        '+y',
        '*** End of File',
        '*** Delete File: gone.txt',
      ),
    );
    expect(ops).toEqual([
      { kind: 'add', path: 'a/new.txt', content: 'one\n\n', line: 2 },
      {
        kind: 'update',
        path: 'src/old.ts',
        moveTo: 'src/renamed.ts',
        line: 5,
        hunks: [
          { contexts: ['function f() {'], oldLines: ['keep', 'old'], newLines: ['keep', 'new'], endOfFile: false, line: 7 },
          { contexts: ['class B', 'method()'], oldLines: ['x'], newLines: ['x', 'y'], endOfFile: true, line: 11 },
        ],
      },
      { kind: 'delete', path: 'gone.txt', line: 17 },
    ]);
  });

  it('takes empty lines inside a hunk as empty context lines and accepts a first hunk without @@', () => {
    const [op] = parsePatch(patch('*** Update File: f.txt', ' a', '', '-b', '+c'));
    expect(op).toMatchObject({ kind: 'update', hunks: [{ contexts: [], oldLines: ['a', '', 'b'], newLines: ['a', '', 'c'] }] });
  });

  it('ignores the numbers of a unified-diff @@ header but keeps its trailing text', () => {
    const [op] = parsePatch(patch('*** Update File: f.txt', '@@ -10,3 +10,4 @@ def main():', '-a', '+b'));
    expect(op).toMatchObject({ hunks: [{ contexts: ['def main():'] }] });
  });

  it('names the patch line and what was expected for an invalid hunk line', () => {
    const input = patch('*** Update File: f.txt', '@@', ' a', 'b without prefix', '+c');
    expect(() => parsePatch(input)).toThrow(ApplyPatchError);
    expect(() => parsePatch(input)).toThrow(/line 5: 'b without prefix'.*must start with ' ' \(context.*'-' \(removed\) or '\+' \(added\)/);
  });

  it('reports a missing End Patch, a missing Begin Patch, an unknown header and an empty update', () => {
    expect(() => parsePatch('*** Begin Patch\n*** Add File: a\n+x')).toThrow(/last line must be '\*\*\* End Patch'/);
    expect(() => parsePatch('*** Add File: a\n+x\n*** End Patch')).toThrow(/line 1: the first line must be '\*\*\* Begin Patch'/);
    expect(() => parsePatch(patch('*** Modify File: a'))).toThrow(/line 2: .* is not a valid section header/);
    expect(() => parsePatch(patch('*** Update File: a'))).toThrow(/line 2: .*has no hunks/);
    expect(() => parsePatch(patch('*** Add File: a', 'oops'))).toThrow(/line 3: 'oops'. Every line of an added file must start with '\+'/);
  });

  it('unwraps a heredoc and surrounding whitespace, reporting line numbers of the original text', () => {
    const inner = patch('*** Add File: x.txt', '+hi');
    for (const wrapped of [`<<'EOF'\n${inner}\nEOF\n`, `<<EOF\n${inner}\nEOF`, `apply_patch <<"PATCH"\n${inner}\nPATCH`, `\n  ${inner}  \n\n`]) {
      expect(parsePatch(wrapped)).toEqual([{ kind: 'add', path: 'x.txt', content: 'hi\n', line: expect.any(Number) }]);
    }
    expect(() => parsePatch(`<<'EOF'\n${patch('*** Bogus')}\nEOF`)).toThrow(/line 3:/);
  });
});

describe('applyPatch', () => {
  it('adds a file in new directories, ending with a newline', async () => {
    const result = await applyPatch(patch('*** Add File: docs/guide/new.md', '+# Title', '+', '+text'), root);
    expect(await get('docs/guide/new.md')).toBe('# Title\n\ntext\n');
    expect(result).toEqual({
      changed: [{ path: 'docs/guide/new.md', kind: 'add' }],
      summary: 'Success. Updated the following files:\nA docs/guide/new.md',
    });
  });

  it('updates a file with several hunks, using @@ headers to pick the right place', async () => {
    await put(
      'src/app.py',
      ['def a():', '    x = 1', '    return x', '', 'def b():', '    x = 1', '    return x', '', 'def c():', '    pass', ''].join('\n'),
    );
    const result = await applyPatch(
      patch(
        '*** Update File: src/app.py',
        '@@ def b():',
        '-    x = 1',
        '+    x = 2',
        '     return x',
        '@@ def c():',
        '-    pass',
        '+    return 3',
      ),
      root,
    );
    expect(await get('src/app.py')).toBe(
      ['def a():', '    x = 1', '    return x', '', 'def b():', '    x = 2', '    return x', '', 'def c():', '    return 3', ''].join('\n'),
    );
    expect(result.changed).toEqual([{ path: 'src/app.py', kind: 'update' }]);
    expect(result.summary).toBe('Success. Updated the following files:\nM src/app.py');
  });

  it('deletes a file', async () => {
    await put('old/gone.txt', 'bye\n');
    await put('keep.txt', 'stay\n');
    const result = await applyPatch(patch('*** Delete File: old/gone.txt'), root);
    expect(await exists('old/gone.txt')).toBe(false);
    expect(await get('keep.txt')).toBe('stay\n');
    expect(result.summary).toBe('Success. Updated the following files:\nD old/gone.txt');
  });

  it('moves a file without content changes, keeping its bytes', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x0a, 0x0d]);
    await put('img/logo.bin', bytes);
    const result = await applyPatch(patch('*** Update File: img/logo.bin', '*** Move to: assets/logo.bin'), root);
    expect(await exists('img/logo.bin')).toBe(false);
    expect(await readFile(path.join(root, 'assets/logo.bin'))).toEqual(bytes);
    expect(result.changed).toEqual([{ path: 'img/logo.bin', kind: 'move', moveTo: 'assets/logo.bin' }]);
    expect(result.summary).toBe('Success. Updated the following files:\nM assets/logo.bin');
  });

  it('moves a file and changes its content', async () => {
    await put('a.txt', 'one\ntwo\nthree\n');
    await applyPatch(patch('*** Update File: a.txt', '*** Move to: dir/b.txt', '@@', ' one', '-two', '+TWO'), root);
    expect(await exists('a.txt')).toBe(false);
    expect(await get('dir/b.txt')).toBe('one\nTWO\nthree\n');
  });

  it('refuses to move onto an existing file unless the patch deletes it first', async () => {
    await put('a.txt', 'a\n');
    await put('b.txt', 'b\n');
    const error = await applyError(patch('*** Update File: a.txt', '*** Move to: b.txt'));
    expect(error.message).toMatch(/destination already exists/);
    await applyPatch(patch('*** Delete File: b.txt', '*** Update File: a.txt', '*** Move to: b.txt'), root);
    expect(await get('b.txt')).toBe('a\n');
    expect(await exists('a.txt')).toBe(false);
  });

  it('explains a context mismatch: file, hunk number, expected lines, closest match, what to do', async () => {
    const original = 'alpha\nbeta\ngamma\ndelta\n';
    await put('notes.txt', original);
    const error = await applyError(
      patch('*** Update File: notes.txt', '@@', '-alpha', '+ALPHA', '@@', ' beta', '-gamma-typo', '+GAMMA', ' delta'),
    );
    expect(error.message).toContain("hunk 2 of 2 (patch line 6) for 'notes.txt'");
    expect(error.message).toContain('these expected lines were not found in the file after line 1:\n    beta\n    gamma-typo\n    delta');
    expect(error.message).toContain("line 3: 'gamma' where the patch expects 'gamma-typo'");
    expect(error.message).toContain('re-read the file and retry with exact context');
    expect(error.path).toBe('notes.txt');
    expect(error.line).toBe(6);
    expect(await get('notes.txt')).toBe(original);
  });

  it('says when hunks are out of order', async () => {
    await put('f.txt', 'a\nb\nc\nd\n');
    const error = await applyError(patch('*** Update File: f.txt', '@@', '-c', '+C', '@@', '-a', '+A'));
    expect(error.message).toMatch(/occur earlier, at line 1: hunks must be in file order/);
  });

  it('matches context that differs in trailing whitespace and typographic punctuation', async () => {
    await put('t.md', 'title   \n\u201Cquoted\u201D \u2014 text\t\nend\n');
    await applyPatch(patch('*** Update File: t.md', ' title', '-"quoted" - text', '+plain', ' end'), root);
    expect(await get('t.md')).toBe('title   \nplain\nend\n');
  });

  it('matches context that differs in indentation as a last resort', async () => {
    await put('i.py', 'if x:\n        call()\n');
    await applyPatch(patch('*** Update File: i.py', ' if x:', '-    call()', '+    other()'), root);
    expect(await get('i.py')).toBe('if x:\n    other()\n');
  });

  it('keeps CRLF line endings of a CRLF file', async () => {
    await put('win.txt', 'one\r\ntwo\r\nthree\r\n');
    await applyPatch(patch('*** Update File: win.txt', ' one', '-two', '+2', '+2b', ' three'), root);
    expect(await get('win.txt')).toBe('one\r\n2\r\n2b\r\nthree\r\n');
  });

  it('accepts a CRLF patch against an LF file', async () => {
    await put('lf.txt', 'one\ntwo\n');
    await applyPatch(patch('*** Update File: lf.txt', ' one', '-two', '+2').replaceAll('\n', '\r\n'), root);
    expect(await get('lf.txt')).toBe('one\n2\n');
  });

  it('keeps a file without a trailing newline without one, also when its last line changes', async () => {
    await put('nonl.txt', 'a\nb\nc');
    await applyPatch(patch('*** Update File: nonl.txt', ' b', '-c', '+C', '+D'), root);
    expect(await get('nonl.txt')).toBe('a\nb\nC\nD');
    await applyPatch(patch('*** Update File: nonl.txt', '@@', '-a', '+A'), root);
    expect(await get('nonl.txt')).toBe('A\nb\nC\nD');
  });

  it('gives an empty file a trailing newline when lines are added', async () => {
    await put('empty.txt', '');
    await applyPatch(patch('*** Update File: empty.txt', '@@', '+first'), root);
    expect(await get('empty.txt')).toBe('first\n');
  });

  it('anchors a hunk with *** End of File at the end of the file', async () => {
    await put('end.txt', 'x\nend\nmiddle\nx\nend\n');
    await applyPatch(patch('*** Update File: end.txt', '@@', ' x', '-end', '+END', '*** End of File'), root);
    expect(await get('end.txt')).toBe('x\nend\nmiddle\nx\nEND\n');
    const error = await applyError(patch('*** Update File: end.txt', '@@', '-middle', '+M', '*** End of File'));
    expect(error.message).toMatch(/at its end .*\n {4}middle\n.*not at the end of the file/);
  });

  it('appends a pure addition without header at the end, and inserts after an @@ header line', async () => {
    await put('p.txt', 'start\nfn main() {\n}\n');
    await applyPatch(patch('*** Update File: p.txt', '@@ fn main() {', '+  body();', '@@', '+tail'), root);
    expect(await get('p.txt')).toBe('start\nfn main() {\n  body();\n}\ntail\n');
    await applyPatch(patch('*** Update File: p.txt', '@@', '+more', '@@', '-start', '+START'), root);
    expect(await get('p.txt')).toBe('START\nfn main() {\n  body();\n}\ntail\nmore\n');
  });

  it('applies a heredoc-wrapped patch', async () => {
    await put('h.txt', 'old\n');
    await applyPatch(`<<'EOF'\n${patch('*** Update File: h.txt', '-old', '+new')}\nEOF\n`, root);
    expect(await get('h.txt')).toBe('new\n');
  });

  it('supports sections that build on each other in one patch', async () => {
    await applyPatch(patch('*** Add File: n.txt', '+a', '*** Update File: n.txt', '-a', '+b'), root);
    expect(await get('n.txt')).toBe('b\n');
  });

  it('rejects paths that escape the root: .., absolute, symlinked directory, symlinked file', async () => {
    await writeFile(path.join(outside, 'secret.txt'), 'secret\n');
    await symlink(outside, path.join(root, 'link-dir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link-file'));

    expect((await applyError(patch('*** Add File: ../evil.txt', '+x'))).message).toMatch(/Invalid path '..\/evil.txt'.*escapes the repository root/);
    expect((await applyError(patch('*** Add File: a/../../evil.txt', '+x'))).message).toMatch(/escapes the repository root/);
    const absolute = path.join(outside, 'abs.txt');
    expect((await applyError(patch(`*** Add File: ${absolute}`, '+x'))).message).toMatch(/absolute paths are not allowed/);
    expect((await applyError(patch('*** Add File: link-dir/new.txt', '+x'))).message).toMatch(/symbolic link to outside the repository root/);
    expect((await applyError(patch('*** Update File: link-dir/secret.txt', '-secret', '+owned'))).message).toMatch(
      /symbolic link to outside/,
    );
    expect((await applyError(patch('*** Update File: link-file', '-secret', '+owned'))).message).toMatch(/symbolic link to outside/);
    expect((await applyError(patch('*** Update File: ok.txt', '*** Move to: ../moved.txt'))).message).toMatch(/escapes/);

    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    expect(await exists('../evil.txt')).toBe(false);
    expect(await stat(absolute).catch(() => undefined)).toBeUndefined();
    expect(await stat(path.join(outside, 'new.txt')).catch(() => undefined)).toBeUndefined();
  });

  it('follows symlinks that stay inside the root', async () => {
    await put('real/file.txt', 'a\n');
    await symlink('real', path.join(root, 'alias'));
    await applyPatch(patch('*** Update File: alias/file.txt', '-a', '+b'), root);
    expect(await get('real/file.txt')).toBe('b\n');
  });

  it('rejects Add File on an existing file and Update/Delete on a missing one', async () => {
    await put('here.txt', 'x\n');
    expect((await applyError(patch('*** Add File: here.txt', '+y'))).message).toMatch(/'here.txt'.*already exists.*Update File/);
    expect((await applyError(patch('*** Update File: nope.txt', '-a', '+b'))).message).toMatch(/'nope.txt'.*does not exist.*Add File/);
    expect((await applyError(patch('*** Delete File: nope.txt'))).message).toMatch(/Cannot delete 'nope.txt'.*does not exist/);
    expect(await get('here.txt')).toBe('x\n');
  });

  it('is atomic: when a later section fails, nothing is written', async () => {
    await put('first.txt', 'one\n');
    await put('third.txt', 'three\n');
    const error = await applyError(
      patch(
        '*** Update File: first.txt',
        '-one',
        '+ONE',
        '*** Add File: created.txt',
        '+new',
        '*** Delete File: third.txt',
        '*** Update File: second.txt',
        '-missing',
        '+x',
      ),
    );
    expect(error.message).toMatch(/second.txt/);
    expect(await get('first.txt')).toBe('one\n');
    expect(await exists('created.txt')).toBe(false);
    expect(await get('third.txt')).toBe('three\n');
  });

  it('rejects a patch that makes one path both a file and a directory, writing nothing', async () => {
    const error = await applyError(patch('*** Add File: a', '+x', '*** Add File: a/b.txt', '+y'));
    expect(error.message).toMatch(/creates the file 'a' and writes 'a\/b.txt' beneath it/);
    expect(await exists('a')).toBe(false);
  });

  it('preserves the executable bit on update and on move', async () => {
    await put('bin/run.sh', '#!/bin/sh\necho hi\n');
    await chmod(path.join(root, 'bin/run.sh'), 0o755);
    await applyPatch(patch('*** Update File: bin/run.sh', ' #!/bin/sh', '-echo hi', '+echo hello'), root);
    expect((await stat(path.join(root, 'bin/run.sh'))).mode & 0o777).toBe(0o755);
    await applyPatch(patch('*** Update File: bin/run.sh', '*** Move to: scripts/run.sh', '@@', '-echo hello', '+echo moved'), root);
    expect((await stat(path.join(root, 'scripts/run.sh'))).mode & 0o777).toBe(0o755);
    expect(await get('scripts/run.sh')).toBe('#!/bin/sh\necho moved\n');
  });

  it('refuses to patch a binary file and an empty patch', async () => {
    await put('b.bin', Buffer.from([0x61, 0x00, 0x62, 0x0a]));
    expect((await applyError(patch('*** Update File: b.bin', '-a', '+b'))).message).toMatch(/not a UTF-8 text file/);
    expect((await applyError(patch())).message).toMatch(/no file sections/);
  });
});
