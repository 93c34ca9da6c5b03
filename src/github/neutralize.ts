/**
 * Makes untrusted text inert before the app publishes it on GitHub (pull request titles and bodies,
 * commit messages, comments): it must not notify anyone, and must not link, or on merge close, other
 * issues and pull requests. The model's text is attacker-influenced (prompt injection), and a
 * commenter's text is the attacker's own.
 *
 * The forms GitHub turns into notifications or references
 * (https://docs.github.com/en/get-started/writing-on-github/working-with-advanced-formatting/autolinked-references-and-urls,
 * https://docs.github.com/en/issues/tracking-your-work-with-issues/using-issues/linking-a-pull-request-to-an-issue):
 * - `@user`, `@org/team` — mentions (notifications);
 * - `#12`, `owner/repo#12`, `GH-12` — issue and pull request references (backlinks in the target's
 *   timeline; after a closing keyword such as `Closes`, `fixes:` or `Resolves`, the target is closed
 *   on merge);
 * - issue, pull request and discussion URLs (`https://github.com/o/r/issues/12`, any host, as on
 *   GitHub Enterprise Server) — references as well, also after closing keywords.
 *
 * Each is broken with a zero-width joiner (U+200D) where GitHub's matcher needs a specific character:
 * after `@`, after `#` and `GH-` before the digits, and right after `://` (or `www`) of such a URL,
 * so that it is neither a reference nor an autolink. The text reads the same; only the app's own
 * `Closes #N` (written after this runs) stays live. With every reference broken, a closing keyword
 * has nothing to close, so the keywords themselves are left alone.
 */

/** Zero-width joiner: invisible, breaks GitHub's mention and reference matchers. */
const ZWJ = '\u200d';

/** An http(s) URL (or a `www.` one) whose path names an issue, pull request or discussion by number. */
const ISSUE_URL_PATH = String.raw`[^\s<>"'\x60]*?\/(?:issues|pulls?|discussions)\/\d`;
const ISSUE_URL_SCHEME = new RegExp(String.raw`(https?:\/\/)(?!\u200d)(?=${ISSUE_URL_PATH})`, 'gi');
const ISSUE_URL_WWW = new RegExp(String.raw`\b(www)(?=\.${ISSUE_URL_PATH})`, 'gi');

/**
 * True when `url` (e.g. a markdown link's destination) points at an issue, pull request or discussion
 * by number, on any host: `https://github.com/o/r/issues/12`, `http://ghe.corp/o/r/pull/3/files`.
 */
export function isIssueUrl(url: string): boolean {
  return /^(?:https?:\/\/|www\.)[^\s]*?\/(?:issues|pulls?|discussions)\/\d/i.test(url.trim());
}

/**
 * Breaks every mention and issue reference in plain text (see the module comment for the forms):
 * `@bob` → `@\u200dbob`, `#12` and `o/r#12` → `#\u200d12`, `GH-12` → `GH-\u200d12`,
 * `https://github.com/o/r/issues/12` → `https://\u200dgithub.com/o/r/issues/12`. Idempotent; nothing
 * else changes. For markdown, apply it to text, not to code (GitHub links nothing inside code), and
 * mind character references and escapes (`&#35;12` renders as `#12`): see `sanitizeMarkdown`.
 */
export function neutralizeReferences(text: string): string {
  return text
    .replace(/@(?=[A-Za-z0-9_-])/g, `@${ZWJ}`)
    .replace(/#(?=\d)/g, `#${ZWJ}`)
    .replace(/(GH-)(?=\d)/gi, `$1${ZWJ}`)
    .replace(ISSUE_URL_SCHEME, `$1${ZWJ}`)
    .replace(ISSUE_URL_WWW, `$1${ZWJ}`);
}

/**
 * Plain text as markdown that renders as exactly this text: every ASCII punctuation character is
 * backslash-escaped (CommonMark §2.4), so nothing in it starts markup, a character reference or a
 * block (`#`, `-`, `>` at a line start), and GFM autolinks do not form.
 */
export function escapeMarkdownText(text: string): string {
  return text.replace(/[!-/:-@[-`{-~]/g, '\\$&');
}
