/**
 * Finds the app's mention (`@codex` by default) in a GitHub comment or issue body and turns it into a
 * command. The body is parsed as CommonMark with `mdast-util-from-markdown`
 * (https://github.com/syntax-tree/mdast-util-from-markdown) and the mention only counts in prose
 * (mdast `text` nodes), never in:
 * - fenced code blocks (``` or ~~~ of any length, indented up to 3 spaces) and indented code blocks;
 * - inline code spans (any number of backticks);
 * - quoted replies: lines that start with `>` (any nesting, also inside list items). A line with no `>`
 *   that CommonMark folds into the quote above it ("lazy continuation", e.g. typing straight under a
 *   quote without a blank line) is not a quoted line and does count;
 * - HTML comments (`<!-- … -->`; an unterminated one that starts a line hides the rest of the body,
 *   while an unterminated `<!--` inside a paragraph is literal text in CommonMark) and raw HTML: a block that starts with an HTML tag is not scanned; a block made only of comments and
 *   text (e.g. `<!-- template --> @codex fix it` on one line) is scanned with the comments blanked out;
 * - link texts and images (GitHub does not turn mentions inside links into mentions either).
 *
 * The mention must stand on a word boundary, case-insensitively: it matches in `hey @Codex, do X` and
 * `(@codex)`, not in `@codexbot`, `@codex-team`, `@codex/team`, `email@codex.dev` or `x@codex`.
 * GFM autolink literals are not parsed (plain CommonMark), so bare e-mail addresses and URLs are text;
 * the boundary rule keeps them from matching (`a@codex.dev`, `https://host/@codex`).
 *
 * Instruction: everything after the first valid mention to the end of the body, as written (markdown
 * kept), trimmed. Code blocks, quotes and comments that come *after* the mention stay in the
 * instruction on purpose: "@codex fix this:" followed by a stack trace in a fence, or a quoted error,
 * is the task's context. Text before the mention is not part of the instruction (the whole body is
 * thread context anyway). Removing hidden HTML comments and invisible characters before the text
 * reaches the model is the prompt builder's job, not this parser's.
 */
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Nodes, Parents } from 'mdast';

/** The mention the app answers to when none is configured (`CODEX_MENTION`). */
export const DEFAULT_MENTION = '@codex';

/**
 * A command parsed from a comment.
 * - `task`: do what `instruction` says; an empty instruction (a bare mention) means "resolve this
 *   issue / address this thread".
 * - `retry`: run the last task of this thread again (`instruction` is `''`).
 * - `stop`: cancel the running task of this thread (`@codex stop` or `@codex cancel`; `instruction`
 *   is `''`).
 * - `review`: review the pull request; `instruction` is the optional focus (`@codex review security`
 *   → `'security'`).
 */
export type MentionCommand = {
  command: 'task' | 'retry' | 'stop' | 'review';
  instruction: string;
};

/** Options of {@link parseMention} and {@link mentionsBot}. */
export type MentionOptions = {
  /** The mention to look for, including the `@`, matched case-insensitively. Default `@codex`. */
  mention?: string;
};

/** Where a mention was found: UTF-16 offsets into the body, `end` exclusive. */
export type MentionLocation = { start: number; end: number };

/** Node types whose content never holds a mention (code, links, images, definitions). */
const OPAQUE = new Set([
  'code',
  'inlineCode',
  'link',
  'linkReference',
  'image',
  'imageReference',
  'definition',
]);

/** Inline containers whose closing markup may directly follow a mention (`**@codex** do X`). */
const INLINE_WRAPPERS = new Set(['emphasis', 'strong', 'delete']);

/** A line that is a quoted line: optional indentation and list markers, then `>`. */
const QUOTED_LINE = /^(?:[ \t]*(?:[-+*]|\d{1,9}[.)])(?=[ \t]))*[ \t]*>/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function mentionPattern(mention: string): RegExp {
  if (mention.trim() === '') throw new TypeError('mention must be a non-empty string such as "@codex"');
  // Before: not a word character nor a character of e-mail local parts, paths or another mention.
  // After: not a word character or `-`, and not `.` or `/` followed by a word character
  // (`@codex.dev`, `@codex/team`), so `@codex.` at the end of a sentence still matches.
  return new RegExp(
    `(?<![\\p{L}\\p{N}\\p{M}_@.+/-])${escapeRegExp(mention)}(?![\\p{L}\\p{N}\\p{M}_-])(?![./][\\p{L}\\p{N}_])`,
    'giu',
  );
}

type Found = MentionLocation & { ancestors: Parents[] };

/**
 * Finds the first valid mention in `body` (see the module comment for what counts).
 * @returns its offsets, or `null` when there is none.
 * @throws TypeError when `opts.mention` is empty.
 */
export function locateMention(body: string, opts: MentionOptions = {}): MentionLocation | null {
  const found = find(body, opts.mention ?? DEFAULT_MENTION);
  return found ? { start: found.start, end: found.end } : null;
}

function find(body: string, mention: string): Found | null {
  const pattern = mentionPattern(mention);
  // Fast path: most comments do not mention the app at all.
  if (!body.toLowerCase().includes(mention.toLowerCase())) return null;
  const tree = fromMarkdown(body);

  const scan = (text: string, offset: number, ancestors: Parents[]): Found | null => {
    const inQuote = ancestors.some((a) => a.type === 'blockquote');
    for (const match of text.matchAll(pattern)) {
      const start = offset + match.index;
      if (inQuote) {
        const lineStart = body.lastIndexOf('\n', start - 1) + 1;
        const lineEnd = body.indexOf('\n', start);
        if (QUOTED_LINE.test(body.slice(lineStart, lineEnd === -1 ? undefined : lineEnd))) continue;
      }
      return { start, end: start + match[0].length, ancestors };
    }
    return null;
  };

  const visit = (node: Nodes, ancestors: Parents[]): Found | null => {
    if (OPAQUE.has(node.type)) return null;
    const { start, end } = node.position ?? {};
    if (node.type === 'text' && start?.offset !== undefined && end?.offset !== undefined) {
      // Scan the source, not `node.value`: offsets must point into the body (values have escapes and
      // entities decoded and container prefixes removed).
      return scan(body.slice(start.offset, end.offset), start.offset, ancestors);
    }
    if (node.type === 'html' && start?.offset !== undefined && end?.offset !== undefined) {
      const blanked = body
        .slice(start.offset, end.offset)
        .replace(/<!--[\s\S]*?(?:-->|$)/g, (comment) => ' '.repeat(comment.length));
      return blanked.includes('<') ? null : scan(blanked, start.offset, ancestors);
    }
    if ('children' in node) {
      const inner = [...ancestors, node];
      for (const child of node.children) {
        const hit = visit(child, inner);
        if (hit) return hit;
      }
    }
    return null;
  };
  return visit(tree, []);
}

/**
 * Whether `body` mentions the app outside code, quotes, comments and links (see the module comment).
 * @throws TypeError when `opts.mention` is empty.
 */
export function mentionsBot(body: string, opts: MentionOptions = {}): boolean {
  return find(body, opts.mention ?? DEFAULT_MENTION) !== null;
}

/** Drops separators right after the mention on its line: `@codex, do X`, `@codex: X`, `@codex - X`. */
function stripLeadingSeparators(text: string): string {
  return text.replace(/^[ \t]*(?:[,:;.!?]+|[-–—](?=[ \t]))?/, '').trim();
}

/**
 * Parses the first valid mention of the app in a comment or issue body into a command.
 *
 * The instruction is the body after the mention, as written, trimmed, with separators on the mention's
 * line dropped (`@codex: fix it` → `fix it`) and closing emphasis skipped (`**@codex** fix` → `fix`).
 * Its first word, compared case-insensitively and ignoring trailing `.,:;!?`, selects the command:
 * `retry` → `{command: 'retry', instruction: ''}`; `stop` or `cancel` → `{command: 'stop',
 * instruction: ''}` (the rest is ignored); `review` → `{command: 'review', instruction: <the rest>}`
 * (the focus, possibly empty); anything else → `{command: 'task', instruction}` where `''` means
 * "resolve this issue".
 *
 * @param body Markdown of the comment, issue or pull request body (GitHub's format, CommonMark-based:
 *   https://github.github.com/gfm/).
 * @returns the command, or `null` when the body does not mention the app (see the module comment for
 *   what counts).
 * @throws TypeError when `opts.mention` is empty.
 */
export function parseMention(body: string, opts: MentionOptions = {}): MentionCommand | null {
  const found = find(body, opts.mention ?? DEFAULT_MENTION);
  if (!found) return null;

  let from = found.end;
  // `**@codex** fix`: the mention ends its text node; skip the closers of the wrappers it ends.
  for (let i = found.ancestors.length - 1; i >= 0; i -= 1) {
    const wrapper = found.ancestors[i]!;
    const wrapperEnd = wrapper.position?.end.offset;
    if (!INLINE_WRAPPERS.has(wrapper.type) || wrapperEnd === undefined) break;
    if (!/^[*_~]*$/.test(body.slice(from, wrapperEnd))) break;
    from = wrapperEnd;
  }

  const instruction = stripLeadingSeparators(body.slice(from));
  const firstWord = /^(\S+)/.exec(instruction)?.[1] ?? '';
  const keyword = firstWord.toLowerCase().replace(/[.,:;!?]+$/, '');
  switch (keyword) {
    case 'retry':
      return { command: 'retry', instruction: '' };
    case 'stop':
    case 'cancel':
      return { command: 'stop', instruction: '' };
    case 'review':
      return { command: 'review', instruction: stripLeadingSeparators(instruction.slice(firstWord.length)) };
    default:
      return { command: 'task', instruction };
  }
}
