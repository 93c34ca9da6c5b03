import { describe, expect, test } from '@jest/globals';
import type { FileChange } from '../../src/contract.ts';
import { validateChanges, validateTaskResult } from '../../src/github/validate-result.ts';

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');
const add = (path: string, content: string | Buffer = 'x\n', mode: '100644' | '100755' | '120000' = '100644'): FileChange => ({
  action: 'add',
  path,
  mode,
  contentBase64: b64(content),
});
const link = (path: string, target: string): FileChange => add(path, target, '120000');
const del = (path: string): FileChange => ({ action: 'delete', path });

/** The errors of a change set that must be refused (fails the test if it is accepted). */
function errorsOf(changes: FileChange[], opts: Partial<Parameters<typeof validateChanges>[1]> = {}): string[] {
  const out = validateChanges(changes, { allowWorkflowChanges: false, ...opts });
  if (out.ok) throw new Error(`expected a refusal of ${JSON.stringify(changes.map((c) => c.path))}`);
  return out.errors;
}

describe('validateChanges', () => {
  test('accepts an ordinary change set, including type changes between files and directories', () => {
    expect(
      validateChanges(
        [
          add('src/index.ts', 'export {};\n'),
          { action: 'modify', path: 'README.md', mode: '100644', contentBase64: b64('# hi\n') },
          add('scripts/run.sh', '#!/bin/sh\n', '100755'),
          del('old.txt'),
          link('docs/latest', '../src/index.ts'),
          link('self-dir', '.'),
          // `notes` was a file and becomes a directory; `lib` was a directory and becomes a file.
          del('notes'),
          add('notes/a.md'),
          del('lib/a.js'),
          add('lib'),
          add('.github/dependabot.yml'),
          add('a/.gitignore'),
          add('.gitattributes'),
          add('empty', ''),
        ],
        { allowWorkflowChanges: false },
      ),
    ).toEqual({ ok: true });
  });

  test.each([
    ['/etc/passwd', 'path must be relative'],
    ['C:/x', 'path must be relative'],
    ['a//b', 'empty segment'],
    ['a/', 'empty segment'],
    ['./a', 'must be normalized'],
    ['a/../../b', 'must be normalized'],
    ['a\\b', 'backslash'],
    ['a\0b', 'NUL'],
    ['.git/config', 'inside a .git directory'],
    ['a/.git/config', 'inside a .git directory'],
    ['sub/.GIT/hooks/pre-commit', 'inside a .git directory'],
    ['.git./config', 'inside a .git directory'],
    ['GIT~1/config', 'inside a .git directory'],
  ])('refuses the path %j (%s)', (path, rule) => {
    const errors = errorsOf([add(path)]);
    expect(errors).toEqual([expect.stringContaining(rule)]);
    expect(errors[0]!.startsWith(`${JSON.stringify(path)}: `)).toBe(true);
  });

  test('deletions are checked as well', () => {
    expect(errorsOf([del('a/.git/index')])).toEqual([`"a/.git/index": path is inside a .git directory`]);
  });

  test('workflow changes (add, modify, delete; any case) need allowWorkflowChanges, named in one error', () => {
    const changes = [
      add('.github/workflows/ci.yml', 'on: push\n'),
      { action: 'modify' as const, path: '.GitHub/Workflows/release.yml', mode: '100644' as const, contentBase64: b64('x') },
      del('.github/workflows/old.yml'),
      add('.github/CODEOWNERS'),
    ];
    const errors = errorsOf(changes).filter((e) => !e.includes('differ only in case'));
    expect(errors[0]).toContain('".github/workflows/ci.yml", ".GitHub/Workflows/release.yml", ".github/workflows/old.yml"');
    expect(errors[0]).toContain('allow_workflow_changes');
    expect(errors[0]).toContain('.github/codex.yml');
    expect(errors[0]).not.toContain('CODEOWNERS');
    // Two spellings of one directory collide (macOS, Windows); each alone is a workflow change.
    expect(errors.slice(1)).toEqual([]);
    expect(validateChanges(changes.filter((c) => c.path !== '.GitHub/Workflows/release.yml'), { allowWorkflowChanges: true })).toEqual({ ok: true });
  });

  test('duplicate paths are refused', () => {
    expect(errorsOf([add('a.txt'), del('a.txt')])).toEqual(['"a.txt": duplicate path (changed more than once)']);
  });

  test('a path written as a file and as a directory of another written path is refused', () => {
    expect(errorsOf([add('lib'), add('lib/x/y.js')])).toEqual([
      '"lib/x/y.js": "lib" is written as a file and is also a parent directory of this path',
    ]);
  });

  test.each([
    ['absolute target', link('etc', '/etc/passwd'), 'symlink target "/etc/passwd" is absolute'],
    ['escaping target', link('docs/up', '../../secret'), 'symlink target "../../secret" resolves outside the repository'],
    ['escape from the root', link('up', '..'), 'resolves outside the repository'],
    ['escape through a later segment', link('a/b', 'c/../../../x'), 'resolves outside the repository'],
    ['target inside .git', link('hooks', 'sub/../.git/hooks'), 'resolves inside a .git directory'],
    ['empty target', link('nothing', ''), 'symlink target is empty'],
    ['backslash target', link('win', '..\\..\\x'), 'contains a backslash'],
  ])('refuses a symlink with an %s', (_name, change, message) => {
    const errors = errorsOf([change]);
    expect(errors).toEqual([expect.stringContaining(message)]);
    expect(errors[0]!.startsWith(`${JSON.stringify(change.path)}: symlink target`)).toBe(true);
  });

  test('symlink targets are resolved through other symlinks of the same change set', () => {
    // `here` points at the root, so `here/..` leaves the repository although `here/../x` looks harmless.
    const errors = errorsOf([link('here', '.'), link('out', 'here/../x')]);
    expect(errors).toEqual(['"out": symlink target "here/../x" resolves outside the repository']);
    expect(errorsOf([link('a', 'b'), link('b', 'a')])).toEqual([
      expect.stringMatching(/^"a": symlink target "b" loops/),
      expect.stringMatching(/^"b": symlink target "a" loops/),
    ]);
    expect(validateChanges([link('dir', 'real/deep'), link('x', 'dir/../y')], { allowWorkflowChanges: false })).toEqual({ ok: true });
  });

  test('a file written through a symlink of the same change set is refused', () => {
    expect(errorsOf([link('vendor', 'third_party'), add('vendor/lib/x.js')])).toEqual([
      '"vendor/lib/x.js": path goes through "vendor", a symlink added in the same change',
    ]);
    expect(errorsOf([link('ghw', '.github/workflows'), add('ghw/evil.yml')])).toEqual([
      expect.stringMatching(/^"ghw": symlink target ".github\/workflows" points at .github\/workflows/),
      '"ghw/evil.yml": path goes through "ghw", a symlink added in the same change',
    ]);
    // Replacing a directory by a symlink deletes the files below it: allowed.
    expect(validateChanges([del('vendor/x.js'), link('vendor', 'third_party')], { allowWorkflowChanges: false })).toEqual({ ok: true });
  });

  test('content must be canonical base64', () => {
    const bad = (contentBase64: string): FileChange => ({ action: 'add', path: 'f.bin', mode: '100644', contentBase64 });
    for (const text of ['not base64!', 'YQ', 'YR==', ' YQ==']) {
      expect(errorsOf([bad(text)])).toEqual(['"f.bin": content is not valid base64']);
    }
    expect(validateChanges([bad('YQ==')], { allowWorkflowChanges: false })).toEqual({ ok: true });
  });

  test('malformed changes from an untrusted runner are refused with their path', () => {
    const weird = [{ action: 'add', path: 'x.sh', mode: '100777', contentBase64: '' }] as unknown as FileChange[];
    expect(errorsOf(weird)).toEqual([expect.stringMatching(/^"x\.sh": invalid change: mode:/)]);
    expect(errorsOf([null] as unknown as FileChange[])).toEqual([expect.stringMatching(/^changes\[0\]: invalid change/)]);
  });

  test('size limits: files, bytes per file, bytes in total', () => {
    expect(errorsOf([add('a'), add('b'), del('c')], { maxFiles: 2 })).toEqual(['changes: 3 files changed, more than the limit of 2']);
    expect(errorsOf([add('big.bin', Buffer.alloc(11)), add('ok.bin', Buffer.alloc(10))], { maxFileBytes: 10 })).toEqual([
      '"big.bin": file is 11 bytes, more than the limit of 10 bytes per file',
    ]);
    expect(errorsOf([add('a', Buffer.alloc(6)), add('b', Buffer.alloc(6))], { maxTotalBytes: 10 })).toEqual([
      'changes: 12 bytes in total, more than the limit of 10 bytes',
    ]);
    // Defaults: 300 files, 5 MiB per file.
    expect(errorsOf(Array.from({ length: 301 }, (_, i) => del(`f${i}`)))).toEqual([expect.stringContaining('limit of 300')]);
    expect(errorsOf([add('huge', Buffer.alloc(5 * 1024 * 1024 + 1))])).toEqual([expect.stringContaining('limit of 5242880 bytes per file')]);
  });

  test.each([
    ['.git\u200c/config', 'U+200C'],
    ['.gi\u200bt/hooks/pre-commit', 'U+200B'],
    ['a/\ufeff.git/config', 'U+FEFF'],
    ['src/\u202etxt.exe', 'U+202E'],
    ['src/a\u2060b.ts', 'U+2060'],
    ['docs/a\u0007.md', 'U+0007'],
    ['x\u2028y', 'U+2028'],
  ])('refuses the path %j: invisible character %s, wherever it is', (path, code) => {
    const errors = errorsOf([add(path)]);
    expect(errors[0]).toBe(`${JSON.stringify(path)}: path contains an invisible or control character (${code})`);
  });

  test.each([
    ['.GIT/config'],
    ['.git /config'],
    ['.git. . /config'],
    ['.git::$INDEX_ALLOCATION/config'],
    ['deep/er/.Git/objects/x'],
    ['\uff0e\uff47\uff49\uff54/config'],
    ['Git~1/config'],
  ])('refuses %j: a .git variant some file system takes for .git', (path) => {
    expect(errorsOf([add(path)])).toContain(`${JSON.stringify(path)}: path is inside a .git directory`);
    expect(errorsOf([del(path)])).toContain(`${JSON.stringify(path)}: path is inside a .git directory`);
  });

  test('names that only resemble .git are allowed', () => {
    expect(validateChanges([add('.github/x.yml'), add('a/.gitx'), add('git/a'), add('.gitkeep'), add('x.git/a')], { allowWorkflowChanges: false })).toEqual({ ok: true });
  });

  test.each([
    ['a file', add('.github', 'not a directory any more\n')],
    ['a symlink', link('.github', 'docs')],
    ['a deletion', del('.github')],
    ['a file in another case', add('.GitHub')],
    ['a file with a trailing dot', add('.github.')],
    ['a file at the workflows directory', add('.github/workflows')],
    ['a symlink at the workflows directory', link('.github/workflows', '../docs')],
    ['a deletion of the workflows directory', del('.github/workflows')],
  ])('replacing .github or .github/workflows by %s needs allowWorkflowChanges', (_name, change) => {
    const errors = errorsOf([change]);
    expect(errors).toEqual([expect.stringContaining(`${JSON.stringify(change.path)}: changes to .github/workflows are not allowed`)]);
    expect(validateChanges([change], { allowWorkflowChanges: true })).toEqual({ ok: true });
  });

  test('a symlink pointing at the workflows needs allowWorkflowChanges; one into .git never passes', () => {
    expect(errorsOf([link('ci', '.github/workflows')])).toEqual([
      '"ci": symlink target ".github/workflows" points at .github/workflows, which this repository does not allow changing (`allow_workflow_changes`)',
    ]);
    expect(errorsOf([link('docs/ci', '../.GitHub/Workflows/ci.yml')])).toEqual([expect.stringContaining('points at .github/workflows')]);
    expect(errorsOf([link('gh', '.github')])).toEqual([expect.stringContaining('points at .github/workflows')]);
    expect(validateChanges([link('ci', '.github/workflows')], { allowWorkflowChanges: true })).toEqual({ ok: true });
    expect(errorsOf([link('cfg', '.GIT./config')], { allowWorkflowChanges: true })).toEqual([expect.stringContaining('resolves inside a .git directory')]);
    expect(errorsOf([link('z', 'a\u200c')])).toEqual(['"z": symlink target "a\u200c" contains an invisible or control character (U+200C)']);
  });

  test('.gitmodules, .gitattributes, .gitignore and .mailmap cannot be symlinks', () => {
    for (const name of ['.gitmodules', 'sub/.gitattributes', '.GITIGNORE', '.mailmap', '.gitmodules.', 'GITMOD~1', 'gi7eba~2']) {
      expect(errorsOf([link(name, 'README.md')])).toEqual([`${JSON.stringify(name)}: git refuses this file as a symlink`]);
    }
  });

  test('written paths that differ only in case or Unicode form collide; a case-only rename is allowed', () => {
    expect(errorsOf([add('README.md'), add('readme.md')])).toEqual([
      '"readme.md": "readme.md" and "README.md" differ only in case or Unicode form and collide on macOS and Windows',
    ]);
    expect(errorsOf([add('Docs/a.md'), add('docs/b.md')])).toEqual([expect.stringContaining('"docs" and "Docs" differ only in case')]);
    // NFC and NFD spellings of "é".
    expect(errorsOf([add('caf\u00e9.txt'), add('cafe\u0301.txt')])).toEqual([expect.stringContaining('differ only in case or Unicode form')]);
    expect(validateChanges([del('README'), add('Readme')], { allowWorkflowChanges: false })).toEqual({ ok: true });
    expect(validateChanges([add('a/x'), add('a/y'), add('a/b/z')], { allowWorkflowChanges: false })).toEqual({ ok: true });
  });

  test('all problems are reported at once', () => {
    expect(errorsOf([add('/abs'), add('.git/x'), link('l', '/etc')])).toHaveLength(3);
  });
});

describe('validateTaskResult', () => {
  const result = {
    id: 't1',
    status: 'succeeded',
    stopReason: 'completed',
    baseSha: 'a'.repeat(40),
    summary: 'done',
    changes: [add('a.txt')],
    commitMessage: 'Add a',
    pullRequest: { title: 'Add a', body: 'done' },
    commands: [],
    usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, turns: 1, phaseMs: {}, totalMs: 5 },
  };

  test('parses a valid result and checks id, base and changes', () => {
    const ok = validateTaskResult(result, { allowWorkflowChanges: false, expectedId: 't1', expectedBaseSha: 'a'.repeat(40) });
    expect(ok.ok && ok.result.changes).toHaveLength(1);
    const bad = validateTaskResult(
      { ...result, id: 't2', changes: [add('../x')] },
      { allowWorkflowChanges: false, expectedId: 't1', expectedBaseSha: 'b'.repeat(40) },
    );
    expect(bad.ok ? [] : bad.errors).toEqual([
      'id: result is for task "t2", expected "t1"',
      `baseSha: changes are against ${'a'.repeat(40)}, expected ${'b'.repeat(40)}`,
      '"../x": path must be normalized (no "." or ".." segments)',
    ]);
    const schema = validateTaskResult({ ...result, status: 'great' }, { allowWorkflowChanges: false });
    expect(schema.ok ? [] : schema.errors).toEqual([expect.stringMatching(/^status: /)]);
  });
});
