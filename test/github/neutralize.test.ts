import { describe, expect, test } from '@jest/globals';
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Nodes } from 'mdast';
import { escapeMarkdownText, isIssueUrl, neutralizeReferences } from '../../src/github/neutralize.ts';

const ZWJ = '\u200d';
import { sanitizeMarkdown } from '../../src/github/progress-comment.ts';

/**
 * What GitHub would turn into a mention or an issue reference in a piece of text, approximating its
 * matchers: `@login`, `#N` (also `owner/repo#N`), `GH-N`, and issue/PR/discussion URLs.
 */
function liveReferences(text: string): string[] {
  const patterns = [
    /(?<![\w`])@[A-Za-z0-9][\w-]*(?:\/[\w-]+)?/g,
    /(?:[\w.-]+\/[\w.-]+)?#\d+/g,
    /\bGH-\d+/gi,
    /(?:https?:\/\/|\bwww\.)[\w.-]+(?::\d+)?\/[^\s]*?\/(?:issues|pulls?|discussions)\/\d+/gi,
  ];
  return patterns.flatMap((p) => Array.from(text.matchAll(p), (m) => m[0]));
}

/** The text a markdown document renders (character references and escapes decoded), links' URLs included, code excluded. */
function renderedText(markdown: string): string {
  const out: string[] = [];
  const visit = (node: Nodes): void => {
    if (node.type === 'text') out.push(node.value);
    if (node.type === 'link' || node.type === 'definition') out.push(node.url);
    if ('children' in node) for (const child of node.children) visit(child);
  };
  visit(fromMarkdown(markdown));
  return out.join('\n');
}

/** Every form of mention and reference an attacker may try, one per entry. */
const ATTACKS = [
  '@octocat',
  'cc @octo-org/security-team',
  'Fixes #12',
  'fixes: #12',
  'CLOSES #7',
  'Resolves acme/calc#3',
  'closed owner/repo#45 and #46',
  'See GH-12',
  'gh-9 too',
  'Closes https://github.com/acme/calc/issues/12',
  'fixes https://github.com/acme/calc/pull/3/files',
  'Resolved: http://ghe.corp.example/acme/calc/issues/7#issuecomment-1',
  'see www.github.com/acme/calc/discussions/5',
  'Fix #1, #2 and GH-3; thanks @alice!',
];

describe('neutralizeReferences', () => {
  test.each(ATTACKS)('%j: nothing GitHub would link or notify is left; the text reads the same', (text) => {
    expect(liveReferences(text)).not.toEqual([]);
    const out = neutralizeReferences(text);
    expect(liveReferences(out)).toEqual([]);
    expect(out.replaceAll(ZWJ, '')).toBe(text);
    expect(neutralizeReferences(out)).toBe(out);
  });

  test('exact forms', () => {
    expect(neutralizeReferences('@bob #12 o/r#3 GH-4')).toBe(`@${ZWJ}bob #${ZWJ}12 o/r#${ZWJ}3 GH-${ZWJ}4`);
    expect(neutralizeReferences('Closes https://github.com/o/r/issues/12')).toBe(`Closes https://${ZWJ}github.com/o/r/issues/12`);
    expect(neutralizeReferences('www.github.com/o/r/pull/1')).toBe(`www${ZWJ}.github.com/o/r/pull/1`);
  });

  test('text without references is unchanged', () => {
    for (const text of ['Fix the build', 'C# and F#', 'issue # 12', 'https://github.com/o/r', 'https://example.com/docs/issues', 'a - b', '@ home']) {
      expect(neutralizeReferences(text)).toBe(text);
    }
  });

  test('isIssueUrl', () => {
    expect(isIssueUrl('https://github.com/o/r/issues/1')).toBe(true);
    expect(isIssueUrl('HTTP://ghe.example/o/r/PULL/2')).toBe(true);
    expect(isIssueUrl('https://github.com/o/r/blob/main/README.md')).toBe(false);
    expect(isIssueUrl('mailto:a@b.c')).toBe(false);
  });

  test('escapeMarkdownText renders as the text itself', () => {
    for (const text of ['# heading?', '- item', '> quote', '1. x', '<b>&amp;</b>', '[a](b) `c` *d* \\e', 'https://example.com/x_y']) {
      expect(renderedText(escapeMarkdownText(text))).toBe(text);
    }
  });
});

describe('sanitizeMarkdown (the summary in the pull request body and the progress comment)', () => {
  test.each(ATTACKS)('%j, as markdown: nothing live in the rendered text', (text) => {
    expect(liveReferences(renderedText(sanitizeMarkdown(text, 10_000)))).toEqual([]);
  });

  test.each([
    ['a character reference for #', 'Fixes &#35;12'],
    ['a named reference for #', 'Fixes &num;12'],
    ['a hex reference for @', 'cc &#x40;octocat'],
    ['a named reference for @', 'cc &commat;octocat'],
    ['an entity-encoded URL scheme', 'Closes https&colon;//github.com/o/r/issues/1'],
    ['an escaped hyphen', 'See GH\\-12'],
    ['an escaped hash', 'Fixes \\#12'],
    ['a digit as a reference', 'Fixes #&#49;2'],
    ['a markdown link to an issue', 'Closes [the bug](https://github.com/o/r/issues/12)'],
    ['an autolink to a pull request', 'Closes <https://github.com/o/r/pull/3>'],
    ['a link definition', 'Fixes [bug]\n\n[bug]: https://github.com/o/r/issues/9'],
    ['raw HTML', 'Fixes <a href="https://github.com/o/r/issues/9">#9</a>'],
    ['inside emphasis', 'Fixes *#12* and **@bob**'],
  ])('a reference hidden behind %s is caught', (_name, text) => {
    const out = sanitizeMarkdown(text, 10_000);
    expect(liveReferences(renderedText(out))).toEqual([]);
  });

  test('ordinary markdown stays as it was; code is not touched', () => {
    const text = '## Summary\n- Fixed `add()` in [math](https://github.com/o/r/blob/main/src/math.js)\n\n```\nnpm test # 12 @x\n```';
    expect(sanitizeMarkdown(text, 10_000)).toBe(text);
  });
});
