import { describe, expect, test } from '@jest/globals';
import { TITLE_MAX_CHARS, clipTitle, commitMessageOf, parseFinalMessage } from '../../src/agent/final-message.ts';

const BODY = '## Summary\n- `src/math.js`: `add` now adds.\n\n## Testing\n- `node --test` (passed)';

describe('parseFinalMessage', () => {
  test('a leading `# Title` is the title; the rest is the body', () => {
    expect(parseFinalMessage(`# Fix add() to return the sum\n\n${BODY}`, 'add is broken')).toEqual({
      title: 'Fix add() to return the sum',
      body: BODY,
    });
    // Closing hashes and CRLF line ends are handled.
    expect(parseFinalMessage(`# Fix add ##\r\n\r\n${BODY}`, 'x').title).toBe('Fix add');
  });

  test('a plain first line standing alone is the title', () => {
    expect(parseFinalMessage(`Fix add() to return the sum\n\n${BODY}`, 'add is broken')).toEqual({
      title: 'Fix add() to return the sum',
      body: BODY,
    });
    expect(parseFinalMessage('Nothing to change: add() already sums.', 'add is broken')).toEqual({
      title: 'Nothing to change: add() already sums.',
      body: '',
    });
  });

  test('without a title line the issue title is used, never the instruction, and the whole message is the body', () => {
    for (const message of [BODY, `- changed a\n- changed b`, `First line of a paragraph\nthat goes on`, '```\ncode\n```', '']) {
      const parsed = parseFinalMessage(message, 'add is broken');
      expect(parsed.title).toBe('add is broken');
      expect(parsed.body).toBe(message.trim());
    }
    expect(parseFinalMessage(BODY, '')).toEqual({ title: '', body: BODY });
  });

  test('titles are cut to 72 characters on a word boundary', () => {
    const long = 'Make the rate limiter configurable per installation and document every new setting in the README';
    const { title } = parseFinalMessage(`# ${long}\n\n${BODY}`, 'x');
    expect(title).toBe('Make the rate limiter configurable per installation and document every…');
    expect([...title].length).toBeLessThanOrEqual(TITLE_MAX_CHARS);
    expect(parseFinalMessage(BODY, `${long} (issue)`).title).toBe(title);
  });
});

describe('clipTitle', () => {
  test('short text stays, whitespace is one space, one long word is cut inside, no split surrogate pairs', () => {
    expect(clipTitle('  Fix\tthe   bug \n')).toBe('Fix the bug');
    expect(clipTitle('x'.repeat(100))).toBe(`${'x'.repeat(71)}…`);
    const emoji = clipTitle('😀'.repeat(100));
    expect([...emoji]).toHaveLength(72);
    expect(emoji).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(clipTitle('word, '.repeat(20))).toMatch(/word…$/);
  });
});

describe('commitMessageOf', () => {
  test('subject, blank line, summary; the subject alone without a body; nothing without a title', () => {
    expect(commitMessageOf({ title: 'Fix add', body: BODY })).toBe(`Fix add\n\n${BODY}`);
    expect(commitMessageOf({ title: 'Fix add', body: '' })).toBe('Fix add');
    expect(commitMessageOf({ title: '', body: BODY })).toBe('');
  });
});
