/**
 * The agent's final message as the app publishes it: a one-line title (the pull request title and the
 * commit subject) and a markdown body (Summary, Testing; the pull request body and the commit body).
 * The base prompt asks for `# <title>` on the first line, as Codex does. The rule:
 * 1. the first line is a level-1 heading `# Title` → its text;
 * 2. else the first line is plain text standing alone (followed by a blank line or nothing; not a
 *    heading, list item, quote, fence, table row or HTML) → that line;
 * 3. else the fallback: the title of the issue or pull request the work answers (never the
 *    requester's raw instruction), or `''` when there is none (the publisher then uses its own).
 * Titles are cut to {@link TITLE_MAX_CHARS} on a word boundary.
 */

/** Longest title, characters (git's convention for a commit subject; GitHub shows it in full). */
export const TITLE_MAX_CHARS = 72;

/** A parsed final message. */
export interface ParsedFinalMessage {
  /** One line, at most {@link TITLE_MAX_CHARS} characters; `''` when neither the message nor the fallback gives one. */
  title: string;
  /** The message without its title line, trimmed (markdown). */
  body: string;
}

/**
 * `text` on one line (runs of whitespace made one space), cut to at most `max` characters at the
 * last word boundary that leaves at least half of it, ending with `…` when cut; a single long word
 * is cut inside it. Never splits a surrogate pair.
 */
export function clipTitle(text: string, max = TITLE_MAX_CHARS): string {
  const line = text.replace(/\s+/g, ' ').trim();
  const chars = [...line];
  if (chars.length <= max) return line;
  const head = chars.slice(0, max - 1).join('');
  const space = head.lastIndexOf(' ');
  const cut = space >= head.length / 2 ? head.slice(0, space) : head;
  return `${cut.replace(/[\s,;:.-]+$/, '')}…`;
}

/** A first line that is plain text, fit to be a title (not block markdown). */
function isPlainLine(line: string): boolean {
  return line.trim() !== '' && !/^\s*(?:#|[-*+]\s|\d+[.)]\s|>|```|~~~|\||<|!\[|={3,}|-{3,})/.test(line);
}

/**
 * Splits the agent's final message into a title and a body by the rule above.
 * @param message the agent's final message (markdown, untrusted).
 * @param fallbackTitle the or pull request's title; `''` when there is none.
 */
export function parseFinalMessage(message: string, fallbackTitle: string): ParsedFinalMessage {
  const text = message.replace(/\r\n?/g, '\n').trim();
  const [first = '', ...rest] = text.split('\n');
  const heading = /^#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$/.exec(first);
  if (heading && clipTitle(heading[1]!)) return { title: clipTitle(heading[1]!), body: rest.join('\n').trim() };
  if (isPlainLine(first) && (rest.length === 0 || rest[0]!.trim() === '')) {
    return { title: clipTitle(first), body: rest.join('\n').trim() };
  }
  return { title: clipTitle(fallbackTitle), body: text };
}

/** The commit message: the title as subject, a blank line, the body; the title alone without a body; `''` without a title. */
export function commitMessageOf(parsed: ParsedFinalMessage): string {
  if (!parsed.title) return '';
  return parsed.body ? `${parsed.title}\n\n${parsed.body}` : parsed.title;
}
