/**
 * Safe markdown for the task page: the model's summary (untrusted text) rendered as GitHub Flavored
 * Markdown (https://github.github.com/gfm/) to HTML that cannot run script, load anything, or style
 * itself under the page's CSP. Built from the unified ecosystem: `mdast-util-from-markdown` (with the
 * GFM extensions), `mdast-util-to-hast`, `hast-util-sanitize` (GitHub's schema, narrowed) and
 * `hast-util-to-html`.
 * - Raw HTML in the markdown is dropped (its text between tags is kept as text).
 * - Links keep an `href` only when it is an absolute `http:` or `https:` URL; they open with
 *   `rel="nofollow noopener noreferrer"`.
 * - Images become links to the image (the page loads no images: its CSP has no `img-src`).
 * - No `style` attribute or element survives.
 */
import type { Element, Root as HastRoot, RootContent as HastContent } from 'hast';
import { defaultSchema, sanitize, type Schema } from 'hast-util-sanitize';
import { toHtml } from 'hast-util-to-html';
import type { Nodes as MdastNodes, Parent as MdastParent, PhrasingContent } from 'mdast';
import { fromMarkdown } from 'mdast-util-from-markdown';
import { gfmFromMarkdown } from 'mdast-util-gfm';
import { toHast } from 'mdast-util-to-hast';
import { gfm } from 'micromark-extension-gfm';

/** GitHub's sanitising schema without images, and with `http`/`https` links only. */
const SCHEMA: Schema = {
  ...defaultSchema,
  tagNames: (defaultSchema.tagNames ?? []).filter((tag) => !['img', 'picture', 'source'].includes(tag)),
  protocols: { href: ['http', 'https'] },
};

/** Replaces each image with a link to it (its alt text as the link text). */
function imagesToLinks(node: MdastNodes): void {
  if (!('children' in node)) return;
  const parent = node as MdastParent;
  parent.children = parent.children.map((child) => {
    if (child.type === 'image') {
      const link: PhrasingContent = { type: 'link', url: child.url, children: [{ type: 'text', value: child.alt || child.url }] };
      return link;
    }
    imagesToLinks(child);
    return child;
  }) as MdastParent['children'];
}

function isWebUrl(href: unknown): boolean {
  if (typeof href !== 'string') return false;
  try {
    const url = new URL(href);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Keeps only absolute http(s) link targets, and makes links leak nothing to where they lead. */
function fixLinks(node: HastRoot | HastContent): void {
  if (node.type === 'element') {
    const element = node as Element;
    if (element.tagName === 'a') {
      if (isWebUrl(element.properties.href)) element.properties.rel = ['nofollow', 'noopener', 'noreferrer'];
      else delete element.properties.href;
    }
    delete element.properties.style;
  }
  if ('children' in node) for (const child of node.children) fixLinks(child);
}

/**
 * Renders untrusted markdown to safe HTML (see the module comment).
 * @param markdown GFM text, e.g. the agent's final message.
 * @returns an HTML fragment (no wrapping element); '' for empty input.
 */
export function renderMarkdown(markdown: string): string {
  const mdast = fromMarkdown(markdown, { extensions: [gfm()], mdastExtensions: [gfmFromMarkdown()] });
  imagesToLinks(mdast);
  // Raw HTML nodes are not passed through (allowDangerousHtml is off): they vanish here.
  const hast = sanitize(toHast(mdast), SCHEMA) as HastRoot;
  fixLinks(hast);
  return toHtml(hast);
}
