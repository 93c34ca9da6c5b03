import { describe, expect, it } from '@jest/globals';
import { renderMarkdown } from '../../src/web/markdown.ts';

describe('renderMarkdown', () => {
  it('renders GitHub Flavored Markdown: headings, lists, code, tables, task lists', () => {
    const html = renderMarkdown('## Summary\n- `src/a.ts`: **fixed**\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n- [x] done\n\n```js\nconst a = 1 < 2;\n```\n');
    expect(html).toContain('<h2>Summary</h2>');
    expect(html).toContain('<li><code>src/a.ts</code>: <strong>fixed</strong></li>');
    expect(html).toContain('<td align="right">2</td>');
    expect(html).toContain('<input type="checkbox" checked disabled>');
    expect(html).toContain('<pre><code class="language-js">const a = 1 &#x3C; 2;\n</code></pre>');
  });

  it('drops raw HTML, keeps its text as text, and never emits script, handlers or styles', () => {
    const html = renderMarkdown(
      'Hi <img src=x onerror=alert(1)> <b style="color:red" onclick="x()">bold</b> <script>alert(2)</script>\n\n<div style="position:fixed">block</div>\n\n<style>body{display:none}</style>\n',
    );
    expect(html).not.toMatch(/<(img|script|style|div|b)\b/i);
    expect(html).not.toMatch(/onerror|onclick|style=/i);
    expect(html).toContain('bold');
  });

  it('links only absolute http(s) URLs, without a referrer; images become links', () => {
    const html = renderMarkdown(
      '[a](https://example.com/x?y=1) [b](javascript:alert(1)) [c](data:text/html,<script>alert(1)</script>) [d](/relative) [e](mailto:a@b.c) <http://auto.example> ![shot](https://example.com/s.png)',
    );
    const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
    expect(hrefs).toEqual(['https://example.com/x?y=1', 'http://auto.example', 'https://example.com/s.png']);
    expect(html.match(/rel="nofollow noopener noreferrer"/g)).toHaveLength(3);
    expect(html).toContain('>shot</a>');
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/javascript:|data:text/);
  });

  it('renders empty text as nothing', () => {
    expect(renderMarkdown('')).toBe('');
  });
});
