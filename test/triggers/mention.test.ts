import { describe, expect, test } from '@jest/globals';
import {
  DEFAULT_MENTION,
  locateMention,
  MAX_PARSED_BODY_CHARS,
  mayMention,
  MentionParseError,
  mentionsBot,
  parseMention,
  UNTIMED_PARSE_MAX_CHARS,
} from '../../src/triggers/mention.ts';

describe('word boundary and case', () => {
  test.each([
    ['@codex', ''],
    ['hey @Codex, do X', 'do X'],
    ['@CODEX fix the bug', 'fix the bug'],
    ['(@codex) fix it', ') fix it'],
    ['Thanks! @codex.', ''],
    ["@codex's turn: add tests", "'s turn: add tests"],
    ['first line\n@codex second line', 'second line'],
    ['é @codex x', 'x'],
  ])('matches in %j', (body, instruction) => {
    expect(parseMention(body)).toEqual({ command: 'task', instruction });
    expect(mentionsBot(body)).toBe(true);
  });

  test.each([
    '@codexbot do X',
    'mail email@codex.dev about it',
    '@codex-team please look',
    'x@codex',
    '@codex/team please look',
    '@codex.dev is a domain',
    'a@b @@codex',
    'https://github.com/@codex',
    'no mention here',
    '',
    'codex do X',
    'über@codex',
    '@codex_bot',
  ])('does not match in %j', (body) => {
    expect(parseMention(body)).toBeNull();
    expect(mentionsBot(body)).toBe(false);
  });

  test('the default mention is @codex', () => {
    expect(DEFAULT_MENTION).toBe('@codex');
  });

  test('a custom mention, including regex characters, matches on the same rules', () => {
    expect(parseMention('@my-bot.v2 run it', { mention: '@my-bot.v2' })).toEqual({ command: 'task', instruction: 'run it' });
    expect(parseMention('@MY-BOT.V2', { mention: '@my-bot.v2' })).toEqual({ command: 'task', instruction: '' });
    expect(parseMention('@my-botxv2 run it', { mention: '@my-bot.v2' })).toBeNull();
    expect(parseMention('@codex run it', { mention: '@my-bot' })).toBeNull();
    expect(mentionsBot('@my-bot-two', { mention: '@my-bot' })).toBe(false);
  });

  test('an empty mention is a programming error', () => {
    expect(() => parseMention('@codex', { mention: '' })).toThrow(TypeError);
    expect(() => mentionsBot('@codex', { mention: '  ' })).toThrow(TypeError);
  });

  test('locateMention gives offsets into the body of the first valid mention', () => {
    const body = '`@codex` no, but @Codex yes and @codex again';
    const at = locateMention(body);
    expect(at).toEqual({ start: 17, end: 23 });
    expect(body.slice(at!.start, at!.end)).toBe('@Codex');
    expect(locateMention('nothing')).toBeNull();
  });
});

describe('excluded regions', () => {
  test.each([
    ['backtick fence', '```\n@codex do X\n```'],
    ['long backtick fence with info', '`````ts\n```\n@codex do X\n```\n`````'],
    ['tilde fence', '~~~\n@codex do X\n~~~'],
    ['long tilde fence indented 3', '   ~~~~~\n@codex do X\n   ~~~~~'],
    ['unclosed fence runs to the end', 'look:\n```\n@codex do X'],
    ['indented code block', 'text\n\n    @codex do X'],
    ['inline code', 'use `@codex do X` to ask'],
    ['inline code with two backticks', 'use ``a ` @codex`` to ask'],
    ['inline code with three backticks', 'use ```@codex``` to ask'],
    ['quote', '> @codex do X'],
    ['nested quote', '> > > @codex do X'],
    ['quote without space', '>@codex do X'],
    ['indented quote', '   > @codex do X'],
    ['quote in a list item', '- > @codex do X'],
    ['second line of a quote', '> said:\n> @codex do X'],
    ['html comment', '<!-- @codex do X -->'],
    ['multi-line html comment', '<!--\nTemplate:\n@codex do X\n-->\nthe bug'],
    ['inline html comment', 'see <!-- @codex --> this'],
    ['unterminated html comment block', '<!--\n\n@codex do X\n\nmore'],
    ['raw html block', '<div>@codex do X</div>'],
    ['link text', 'see [@codex docs](https://example.com)'],
    ['link url', 'see [docs](https://example.com/@codex)'],
    ['image alt', '![@codex](https://example.com/a.png)'],
    ['autolink', '<https://example.com/@codex>'],
  ])('ignores a mention in a %s', (_name, body) => {
    expect(parseMention(body)).toBeNull();
    expect(mentionsBot(body)).toBe(false);
  });

  test('a mention outside the excluded regions still counts', () => {
    const body = [
      '> @codex old request',
      '',
      '```',
      '@codex in code',
      '```',
      '<!-- @codex hidden -->',
      'Inline `@codex` and then @codex fix the parser',
    ].join('\n');
    expect(parseMention(body)).toEqual({ command: 'task', instruction: 'fix the parser' });
  });

  test('a fence indented four spaces is an indented code block, its contents excluded too', () => {
    expect(parseMention('para\n\n    ```\n    @codex x\n    ```')).toBeNull();
  });

  test('a fence of four spaces after a paragraph is paragraph text, not code', () => {
    // Four-space indentation cannot start a code block inside a paragraph: it is continuation text.
    expect(mentionsBot('para\n    ```\n    @codex x')).toBe(true);
  });

  test('a line typed right under a quote (lazy continuation) is not a quoted line', () => {
    expect(parseMention('> the error\n@codex fix this')).toEqual({ command: 'task', instruction: 'fix this' });
    expect(parseMention('- > quoted item\n  @codex fix this')).toEqual({ command: 'task', instruction: 'fix this' });
  });

  test('an unterminated comment inside a paragraph is literal text (CommonMark), so it counts', () => {
    expect(parseMention('text <!-- @codex do X')).toEqual({ command: 'task', instruction: 'do X' });
  });

  test('text after a comment on the same line counts', () => {
    expect(parseMention('<!-- template --> @codex fix it')).toEqual({ command: 'task', instruction: 'fix it' });
  });

  test('a mention in prose inside HTML-ish blocks separated by blank lines counts', () => {
    expect(parseMention('<details>\n\n@codex fix it\n\n</details>')?.command).toBe('task');
  });

  test('mentions inside emphasis, headings and lists count', () => {
    expect(parseMention('**@codex** fix it')).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention('_@codex_ fix it')).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention('***@codex*** fix it')).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention('**@codex fix it**')).toEqual({ command: 'task', instruction: 'fix it**' });
    expect(parseMention('## @codex fix it')).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention('1. @codex fix it')).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention('- item\n  continued @codex fix it')).toEqual({ command: 'task', instruction: 'fix it' });
  });
});

describe('instruction', () => {
  test('is everything after the mention, trimmed, with the markdown as written', () => {
    const body = 'Context first.\n\n@codex please **refactor** `foo()`:\n\n- a\n- b\n\nThanks  \n';
    expect(parseMention(body)).toEqual({
      command: 'task',
      instruction: 'please **refactor** `foo()`:\n\n- a\n- b\n\nThanks',
    });
  });

  test('keeps code blocks, quotes and comments that follow the mention', () => {
    const body = '@codex fix this crash:\n\n```\nTypeError: x is undefined\n  @codex in trace\n```\n\n> quoted\n<!-- note -->';
    expect(parseMention(body)).toEqual({
      command: 'task',
      instruction: 'fix this crash:\n\n```\nTypeError: x is undefined\n  @codex in trace\n```\n\n> quoted\n<!-- note -->',
    });
  });

  test('uses the first valid mention; later mentions are part of the instruction', () => {
    expect(parseMention('@codex ask @codex twice')).toEqual({ command: 'task', instruction: 'ask @codex twice' });
  });

  test('drops separators after the mention on its line', () => {
    expect(parseMention('@codex: fix it')?.instruction).toBe('fix it');
    expect(parseMention('@codex, fix it')?.instruction).toBe('fix it');
    expect(parseMention('@codex - fix it')?.instruction).toBe('fix it');
    expect(parseMention('@codex — fix it')?.instruction).toBe('fix it');
    expect(parseMention('@codex! fix it')?.instruction).toBe('fix it');
  });

  test('keeps a list that starts on the next line', () => {
    expect(parseMention('@codex\n- fix a\n- fix b')?.instruction).toBe('- fix a\n- fix b');
  });

  test('CRLF line endings (as browsers submit comments) work the same', () => {
    expect(parseMention('> @codex old\r\n\r\n```\r\n@codex code\r\n```\r\n@codex fix it\r\nplease\r\n')).toEqual({
      command: 'task',
      instruction: 'fix it\r\nplease',
    });
    expect(parseMention('> quote\r\n> @codex no\r\n')).toBeNull();
    expect(parseMention('@codex review\r\nthe SQL')).toEqual({ command: 'review', instruction: 'the SQL' });
  });

  test('a bare mention is a task with an empty instruction', () => {
    expect(parseMention('@codex')).toEqual({ command: 'task', instruction: '' });
    expect(parseMention('  @codex  \n\n')).toEqual({ command: 'task', instruction: '' });
    expect(parseMention('Can you take this? @codex')).toEqual({ command: 'task', instruction: '' });
  });
});

describe('commands', () => {
  test.each([
    ['@codex retry', 'retry', ''],
    ['@codex RETRY please, with more care', 'retry', ''],
    ['@codex retry.', 'retry', ''],
    ['@codex stop', 'stop', ''],
    ['@codex Stop!', 'stop', ''],
    ['@codex cancel', 'stop', ''],
    ['@codex cancel it now', 'stop', ''],
    ['@codex review', 'review', ''],
    ['@codex Review security and error handling', 'review', 'security and error handling'],
    ['@codex review: the migration', 'review', 'the migration'],
    ['@codex review\n\nfocus on the SQL', 'review', 'focus on the SQL'],
    ['@codex, review this', 'review', 'this'],
  ])('%j → %s', (body, command, instruction) => {
    expect(parseMention(body)).toEqual({ command, instruction });
  });

  test.each(['@codex retry --fresh', '@codex Retry --FRESH.', '@codex retry\n--fresh please'])('%j → retry with a fresh environment', (body) => {
    expect(parseMention(body)).toEqual({ command: 'retry', instruction: '', fresh: true });
  });

  test('a flag other than --fresh after retry is ignored', () => {
    expect(parseMention('@codex retry --fast')).toEqual({ command: 'retry', instruction: '' });
    expect(parseMention('@codex retry fresh')).toEqual({ command: 'retry', instruction: '' });
  });

  test.each([
    ['@codex retrying is flaky, fix it', 'retrying is flaky, fix it'],
    ['@codex stopwatch is broken', 'stopwatch is broken'],
    ['@codex reviewers are missing', 'reviewers are missing'],
    ['@codex please retry', 'please retry'],
    ['@codex `stop` is a keyword here', '`stop` is a keyword here'],
    ['@codex re-view it', 're-view it'],
  ])('%j is a task, not a command', (body, instruction) => {
    expect(parseMention(body)).toEqual({ command: 'task', instruction });
  });
});

describe('the cheap pre-test (mayMention)', () => {
  test.each([
    ['@codex fix it', true],
    ['hey @Codex', true],
    ['```\n@codex in code\n```', true], // no markdown: code still counts here
    ['> @codex quoted\nthanks', false],
    ['> @codex quoted\n@codex for real', true],
    ['- > @codex quoted in a list', false],
    ['@codexbot', false],
    ['mail x@codex.dev', false],
    ['no mention', false],
    ['', false],
  ])('%j → %s', (body, expected) => {
    expect(mayMention(body)).toBe(expected);
  });

  test('is linear: 64 KiB of quoted mentions on one line and on many lines', () => {
    const oneLine = `> ${'@codex '.repeat(9_000)}`;
    const manyLines = '> @codex\n'.repeat(7_000);
    const started = performance.now();
    expect(mayMention(oneLine)).toBe(false);
    expect(mayMention(manyLines)).toBe(false);
    // Generous: a quadratic scan of these takes minutes.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('bounds (untrusted bodies)', () => {
  test('a body longer than GitHub allows is refused with a typed error', () => {
    const body = `@codex ${'x'.repeat(MAX_PARSED_BODY_CHARS)}`;
    expect(() => parseMention(body)).toThrow(MentionParseError);
    try {
      parseMention(body);
    } catch (error) {
      expect((error as MentionParseError).reason).toBe('too_long');
    }
    // A body without the mention is not parsed at all, whatever its length.
    expect(parseMention('x'.repeat(MAX_PARSED_BODY_CHARS * 2))).toBeNull();
  });

  test('quadratic markdown stops at the time budget with a typed error', () => {
    for (const body of [`${'1. '.repeat(6_800)}@codex fix`, `${'*a_'.repeat(6_000)} @codex fix`]) {
      const started = performance.now();
      let caught: unknown;
      try {
        parseMention(body, { parseBudgetMs: 100 });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(MentionParseError);
      expect((caught as MentionParseError).reason).toBe('too_complex');
      expect(performance.now() - started).toBeLessThan(3_000);
    }
  });

  test('the attack body (10,000 nested list items, 20 KB) is refused at the budget, not after 50 s', () => {
    const started = performance.now();
    expect(() => parseMention(`${'- '.repeat(10_000)}@codex fix it`, { parseBudgetMs: 200 })).toThrow(MentionParseError);
    expect(() => locateMention(`${'> '.repeat(10_000)}@codex`, { parseBudgetMs: 200 })).toThrow(MentionParseError);
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  test(`bodies up to UNTIMED_PARSE_MAX_CHARS are bounded by their size: the worst shapes known parse quickly at that length`, () => {
    const n = UNTIMED_PARSE_MAX_CHARS;
    const shapes = ['- ', '1. ', '*a_', '_a*', '- > 1. ', '-\t', '> ', '[a](', '``a`', '<a '];
    const started = performance.now();
    for (const unit of shapes) {
      const body = `${unit.repeat(n).slice(0, n - ' @codex x'.length)} @codex x`;
      expect(body.length).toBeLessThanOrEqual(n);
      expect(() => locateMention(body)).not.toThrow();
    }
    // Ten worst-case bodies; about 20 ms in all on the 2-core dev VM. The bound only catches a parser
    // that became much slower on short bodies, which would call for a lower UNTIMED_PARSE_MAX_CHARS.
    expect(performance.now() - started).toBeLessThan(1_000);
    // Longer bodies still run under the watchdog: a budget too small for the body stops it.
    expect(() => parseMention(`${'- '.repeat(10_000)}@codex fix it`, { parseBudgetMs: 1 })).toThrow(MentionParseError);
  });

  test('a parse stopped at its budget leaves the next parse intact (the parser context is shared)', () => {
    expect(() => parseMention(`${'1. '.repeat(6_800)}@codex first`, { parseBudgetMs: 50 })).toThrow(MentionParseError);
    expect(parseMention('@codex second')).toEqual({ command: 'task', instruction: 'second' });
    expect(parseMention('no mention of the app, then `@codex third` in code')).toBeNull();
    expect(parseMention('**@codex** fourth')).toEqual({ command: 'task', instruction: 'fourth' });
  });

  test('moderately nested lists and quotes still parse, in document order', () => {
    expect(parseMention(`${'- '.repeat(100)}@codex fix it`)).toEqual({ command: 'task', instruction: 'fix it' });
    expect(parseMention(`${'> '.repeat(100)}@codex quoted\n\n${'  '.repeat(50)}text\n\n@codex real`)).toEqual({ command: 'task', instruction: 'real' });
  });
});
