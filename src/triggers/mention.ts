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
 *
 * Bounds (the body is untrusted text): markdown parsing costs grow faster than the input on some
 * shapes (micromark is quadratic on long runs of nested list or quote markers and of unmatched `*`/`_`
 * delimiters: 20 KB of `- - - … text` took 50 s, 16 KB of `1. 1. 1. …` 8.6 s, 16 KB of `*a_` 5 s,
 * while 64 KB of ordinary documentation takes about 100 ms; measured on the 2-core dev VM), so
 * {@link parseMention} refuses bodies longer than {@link MAX_PARSED_BODY_CHARS} (GitHub's own limit on
 * comment and issue bodies, so a real body is never refused for its length) and stops the parser
 * after {@link DEFAULT_PARSE_BUDGET_MS} with a {@link MentionParseError}; callers answer that with a
 * reply. The walk over the tree is iterative and linear in the number of nodes (no recursion, no
 * ancestor copies). {@link mayMention} is the cheap linear pre-test callers run before any parsing
 * (and before the permission check).
 */
import vm from 'node:vm';
import { fromMarkdown } from 'mdast-util-from-markdown';
import type { Nodes, Parents, Root } from 'mdast';

/** The mention the app answers to when none is configured (`CODEX_MENTION`). */
export const DEFAULT_MENTION = '@codex';

/**
 * A command parsed from a comment.
 * - `task`: do what `instruction` says; an empty instruction (a bare mention) means "resolve this
 *   issue / address this thread".
 * - `retry`: run the last task of this thread again (`instruction` is `''`); `retry --fresh` also
 *   rebuilds the repository's cached environment (`fresh: true`).
 * - `stop`: cancel the running task of this thread (`@codex stop` or `@codex cancel`; `instruction`
 *   is `''`).
 * - `review`: review the pull request; `instruction` is the optional focus (`@codex review security`
 *   → `'security'`).
 */
export type MentionCommand = {
  command: 'task' | 'retry' | 'stop' | 'review';
  instruction: string;
  /** `retry --fresh`: run setup again instead of restoring the cached environment. */
  fresh?: boolean;
};

/** Options of {@link parseMention} and {@link mentionsBot}. */
export type MentionOptions = {
  /** The mention to look for, including the `@`, matched case-insensitively. Default `@codex`. */
  mention?: string;
  /** How long the markdown parser may run, ms; default {@link DEFAULT_PARSE_BUDGET_MS}. */
  parseBudgetMs?: number;
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
 * The longest body {@link parseMention} parses, in UTF-16 code units: 65,536, GitHub's limit on the
 * body of a comment, an issue or a pull request.
 */
export const MAX_PARSED_BODY_CHARS = 65_536;

/**
 * How long {@link parseMention} lets the markdown parser run by default, ms. The budget is wall time
 * (node:vm's watchdog), so it leaves room for a loaded machine: ordinary comments parse in about a
 * millisecond, the pathological ones measured take seconds to minutes.
 */
const DEFAULT_PARSE_BUDGET_MS = 1000;

// Compile the parser's code paths once at load, so that the first mention is not the one that pays
// for it inside its budget.
fromMarkdown('# a\n\n- b *c* `d` [e](f)\n\n> g\n\n```\nh\n```\n<!-- i -->\n');

/**
 * A body {@link parseMention} will not parse: `reason` is `too_long` (more than
 * {@link MAX_PARSED_BODY_CHARS} characters) or `too_complex` (the parser ran out of its time budget
 * or of stack). The message is meant for the person who wrote the body.
 */
export class MentionParseError extends Error {
  readonly reason: 'too_long' | 'too_complex';
  constructor(reason: 'too_long' | 'too_complex', message: string) {
    super(message);
    this.name = 'MentionParseError';
    this.reason = reason;
  }
}

/**
 * Whether `body` may hold a mention: the mention on its word boundary (see the module comment) on a
 * line that is not a quoted line (`> …`). Linear in the body's length and parses no markdown, so it
 * runs on any untrusted text before the permission check. It answers `true` for mentions that
 * {@link parseMention} would still reject (in code, HTML comments or links).
 * @throws TypeError when `opts.mention` is empty.
 */
export function mayMention(body: string, opts: MentionOptions = {}): boolean {
  const mention = opts.mention ?? DEFAULT_MENTION;
  const pattern = mentionPattern(mention);
  if (!body.toLowerCase().includes(mention.toLowerCase())) return false;
  let searchFrom = 0;
  for (;;) {
    pattern.lastIndex = searchFrom;
    const match = pattern.exec(body);
    if (!match) return false;
    const lineStart = body.lastIndexOf('\n', match.index - 1) + 1;
    const lineEnd = body.indexOf('\n', match.index);
    if (!QUOTED_LINE.test(body.slice(lineStart, lineEnd === -1 ? undefined : lineEnd))) return true;
    // Each line is tested once: skip the rest of a quoted line.
    if (lineEnd === -1) return false;
    searchFrom = lineEnd + 1;
  }
}

/**
 * What the bounded parse runs in: node:vm's timeout needs a script run in a context, and creating a
 * context costs more than parsing an ordinary comment (about 2 ms each on the 2-core dev VM, most of
 * a mention's handling time in a burst), so one context and one script serve every parse. The body
 * goes through the context's `body` slot, set right before the (synchronous) run and cleared right
 * after it, so parses never see each other's body and none is kept.
 */
const parser: { globals: { body: string | undefined; parse: (body: string) => Root }; context: vm.Context; script: vm.Script } = (() => {
  const globals = { body: undefined as string | undefined, parse: (text: string) => fromMarkdown(text) };
  return { globals, context: vm.createContext(globals), script: new vm.Script('parse(body)', { filename: 'mention-parse' }) };
})();

/**
 * The longest body parsed without node:vm's watchdog, in UTF-16 code units: 256. Its size bounds its
 * cost: the worst shapes known (see the module comment) take under 10 ms at this length on the 2-core
 * dev VM (they grow about 4× per doubling), far under any budget, while the watchdog (a thread
 * started per run) costs about 1 ms, more than parsing a short comment.
 */
export const UNTIMED_PARSE_MAX_CHARS = 256;

/**
 * Parses `body` with the parser stopped after `budgetMs` (node:vm's timeout interrupts it); a body of
 * at most {@link UNTIMED_PARSE_MAX_CHARS} is bounded by its size and parsed directly.
 */
function parseBounded(body: string, budgetMs: number): Root {
  if (body.length > MAX_PARSED_BODY_CHARS) {
    throw new MentionParseError('too_long', `it is longer than ${MAX_PARSED_BODY_CHARS} characters`);
  }
  try {
    if (body.length <= UNTIMED_PARSE_MAX_CHARS) return fromMarkdown(body);
    parser.globals.body = body;
    return parser.script.runInContext(parser.context, { timeout: budgetMs }) as Root;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' || error instanceof RangeError || (error as Error)?.name === 'RangeError') {
      throw new MentionParseError('too_complex', 'its markdown is too complex to read (e.g. very deeply nested lists or quotes)');
    }
    throw error;
  } finally {
    parser.globals.body = undefined;
  }
}

/**
 * Finds the first valid mention in `body` (see the module comment for what counts).
 * @returns its offsets, or `null` when there is none.
 * @throws TypeError when `opts.mention` is empty.
 * @throws MentionParseError when the body is too long or too complex to parse (see the module comment).
 */
export function locateMention(body: string, opts: MentionOptions = {}): MentionLocation | null {
  const found = find(body, opts.mention ?? DEFAULT_MENTION, opts.parseBudgetMs ?? DEFAULT_PARSE_BUDGET_MS);
  return found ? { start: found.start, end: found.end } : null;
}

/** A node on the walk's stack, with its parent's frame (a linked list: no ancestor arrays copied). */
type Frame = { node: Nodes; parent: Frame | null; inQuote: boolean };

function ancestorsOf(frame: Frame | null): Parents[] {
  const ancestors: Parents[] = [];
  for (let f = frame; f; f = f.parent) ancestors.push(f.node as Parents);
  return ancestors.reverse();
}

function find(body: string, mention: string, budgetMs: number): Found | null {
  const pattern = mentionPattern(mention);
  // Fast path: most comments do not mention the app at all.
  if (!body.toLowerCase().includes(mention.toLowerCase())) return null;
  const tree = parseBounded(body, budgetMs);

  const scan = (text: string, offset: number, inQuote: boolean): MentionLocation | null => {
    for (const match of text.matchAll(pattern)) {
      const start = offset + match.index;
      if (inQuote) {
        const lineStart = body.lastIndexOf('\n', start - 1) + 1;
        const lineEnd = body.indexOf('\n', start);
        if (QUOTED_LINE.test(body.slice(lineStart, lineEnd === -1 ? undefined : lineEnd))) continue;
      }
      return { start, end: start + match[0].length };
    }
    return null;
  };

  // Depth-first, in document order, with an explicit stack: the tree's depth is the input's nesting.
  const stack: Frame[] = [{ node: tree, parent: null, inQuote: false }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { node } = frame;
    if (OPAQUE.has(node.type)) continue;
    const { start, end } = node.position ?? {};
    let hit: MentionLocation | null = null;
    if (node.type === 'text' && start?.offset !== undefined && end?.offset !== undefined) {
      // Scan the source, not `node.value`: offsets must point into the body (values have escapes and
      // entities decoded and container prefixes removed).
      hit = scan(body.slice(start.offset, end.offset), start.offset, frame.inQuote);
    } else if (node.type === 'html' && start?.offset !== undefined && end?.offset !== undefined) {
      const blanked = body
        .slice(start.offset, end.offset)
        .replace(/<!--[\s\S]*?(?:-->|$)/g, (comment) => ' '.repeat(comment.length));
      hit = blanked.includes('<') ? null : scan(blanked, start.offset, frame.inQuote);
    } else if ('children' in node) {
      const inQuote = frame.inQuote || node.type === 'blockquote';
      for (let i = node.children.length - 1; i >= 0; i -= 1) stack.push({ node: node.children[i]!, parent: frame, inQuote });
    }
    if (hit) return { ...hit, ancestors: ancestorsOf(frame.parent) };
  }
  return null;
}

/**
 * Whether `body` mentions the app outside code, quotes, comments and links (see the module comment).
 * @throws TypeError when `opts.mention` is empty.
 * @throws MentionParseError when the body is too long or too complex to parse.
 */
export function mentionsBot(body: string, opts: MentionOptions = {}): boolean {
  return find(body, opts.mention ?? DEFAULT_MENTION, opts.parseBudgetMs ?? DEFAULT_PARSE_BUDGET_MS) !== null;
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
 * `retry` → `{command: 'retry', instruction: ''}` (`retry --fresh` adds `fresh: true`); `stop` or `cancel` → `{command: 'stop',
 * instruction: ''}` (the rest is ignored); `review` → `{command: 'review', instruction: <the rest>}`
 * (the focus, possibly empty); anything else → `{command: 'task', instruction}` where `''` means
 * "resolve this issue".
 *
 * @param body Markdown of the comment, issue or pull request body (GitHub's format, CommonMark-based:
 *   https://github.github.com/gfm/).
 * @returns the command, or `null` when the body does not mention the app (see the module comment for
 *   what counts).
 * @throws TypeError when `opts.mention` is empty.
 * @throws MentionParseError when the body is longer than {@link MAX_PARSED_BODY_CHARS} or the parser
 *   needs more than `opts.parseBudgetMs`.
 */
export function parseMention(body: string, opts: MentionOptions = {}): MentionCommand | null {
  const found = find(body, opts.mention ?? DEFAULT_MENTION, opts.parseBudgetMs ?? DEFAULT_PARSE_BUDGET_MS);
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
    case 'retry': {
      const flag = /^\s*(\S+)/.exec(instruction.slice(firstWord.length))?.[1]?.toLowerCase().replace(/[.,:;!?]+$/, '');
      return flag === '--fresh' ? { command: 'retry', instruction: '', fresh: true } : { command: 'retry', instruction: '' };
    }
    case 'stop':
    case 'cancel':
      return { command: 'stop', instruction: '' };
    case 'review':
      return { command: 'review', instruction: stripLeadingSeparators(instruction.slice(firstWord.length)) };
    default:
      return { command: 'task', instruction };
  }
}
