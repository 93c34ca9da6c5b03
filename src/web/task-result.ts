/**
 * The result part of the task page, rendered on the server from the stored TaskResult: status, links
 * (thread, pull request, commit, review), the summary as safe markdown, the diff, each command with its
 * output, and usage (tokens, turns, time per phase, and an estimated model cost when token prices are
 * configured). Every piece of task text is escaped or sanitised; no `style` attribute is emitted (the
 * page's CSP allows only its own nonce'd stylesheet).
 */
import type { CommandRecord, TaskResult } from '../contract.ts';
import { renderDiffHtml, type FileDiff } from './diff.ts';
import { renderMarkdown } from './markdown.ts';

/**
 * Prices of a model's tokens, in US dollars per million tokens (as OpenAI's pricing page states them,
 * https://openai.com/api/pricing/). Reasoning tokens are billed as output tokens.
 */
export interface TokenPrices {
  inputPerMillion: number;
  cachedInputPerMillion: number;
  outputPerMillion: number;
}

/** Where the task's work came from and went (absolute http(s) URLs; others are not linked). */
export interface TaskLinks {
  /** The issue or pull request thread the task was asked in. */
  thread?: string;
  pullRequest?: { url: string; number: number; title?: string };
  commit?: { url?: string; sha: string };
  review?: string;
}

/** What {@link renderResultHtml} shows. */
export interface TaskResultView {
  /** The task's state (see FINAL_TASK_STATES in task-page.ts). */
  state: string;
  result?: TaskResult;
  /** Why the task failed, when it did (the app's reason, which may differ from the runner's). */
  failure?: { phase: string; reason: string };
  links?: TaskLinks;
  /** The model's name, to look up `prices`. */
  model?: string;
  /** The diff of `result.changes` (see diffChanges). */
  diff?: FileDiff[];
  /** Token prices per model name; no cost is shown for a model without one. */
  prices?: Readonly<Record<string, TokenPrices>>;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The URL when it is an absolute http(s) URL, else undefined (links on the page are never `javascript:` or relative). */
export function webUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

function link(url: string | undefined, text: string): string {
  const href = webUrl(url);
  return href ? `<a href="${escapeHtml(href)}" rel="noopener noreferrer">${escapeHtml(text)}</a>` : escapeHtml(text);
}

/** `1.2 s`, `850 ms`, `3 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms - minutes * 60_000) / 1000)} s`;
}

function tokens(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toLocaleString('en-US');
}

/** The command as typed: `bash -lc "script"` shows the script; other argv is shell-quoted. */
export function commandText(argv: string[]): string {
  if (argv.length === 3 && /^(ba)?sh$/.test(argv[0]!) && /^-l?c$/.test(argv[1]!)) return argv[2]!;
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}

function outcome(command: CommandRecord): { text: string; cls: string } {
  if (command.timedOut) return { text: 'timed out', cls: 'bad' };
  if (command.exitCode === null) return { text: 'killed', cls: 'bad' };
  return { text: `exit ${command.exitCode}`, cls: command.exitCode === 0 ? 'ok' : 'bad' };
}

function renderCommand(command: CommandRecord): string {
  const { text, cls } = outcome(command);
  const where = command.workdir && command.workdir !== '.' ? ` <span class="muted">in ${escapeHtml(command.workdir)}</span>` : '';
  const summary =
    `<summary><span class="phase-tag">${escapeHtml(command.phase)}</span> <code class="cmd">${escapeHtml(commandText(command.command))}</code>${where} ` +
    `<span class="${cls}">${text}</span> <span class="muted">· ${formatDuration(command.durationMs)}</span></summary>`;
  const out = command.output;
  let body: string;
  if (!out) body = '<p class="muted">No output recorded.</p>';
  else if (!out.head && !out.tail) body = '<p class="muted">No output.</p>';
  else {
    const omitted = out.tail ? `<span class="omitted">… ${Math.max(0, out.bytes - Buffer.byteLength(out.head) - Buffer.byteLength(out.tail)).toLocaleString('en-US')} bytes omitted …</span>\n` : '';
    body = `<pre class="output">${escapeHtml(out.head)}${out.tail ? `\n${omitted}${escapeHtml(out.tail)}` : ''}</pre>`;
  }
  // Failed commands are open: they are what a reader looks for.
  return `<details class="command"${cls === 'bad' ? ' open' : ''}>${summary}${body}</details>`;
}

function money(usd: number): string {
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

function renderUsage(result: TaskResult, model: string | undefined, prices: TaskResultView['prices']): string {
  const u = result.usage;
  const price = model ? prices?.[model] : undefined;
  const uncached = Math.max(0, u.inputTokens - u.cachedInputTokens);
  const cost = price
    ? (uncached * price.inputPerMillion + u.cachedInputTokens * price.cachedInputPerMillion + u.outputTokens * price.outputPerMillion) / 1e6
    : undefined;
  const rows = (['checkout', 'setup', 'agent', 'result'] as const)
    .filter((phase) => u.phaseMs[phase] !== undefined)
    .map((phase) => {
      const agent = phase === 'agent';
      const tokenCells = agent
        ? `<td>${tokens(u.inputTokens)}</td><td>${tokens(u.cachedInputTokens)}</td><td>${tokens(u.outputTokens)}${u.reasoningTokens ? ` <span class="muted">(${tokens(u.reasoningTokens)} reasoning)</span>` : ''}</td><td>${u.turns}</td>`
        : '<td>–</td><td>–</td><td>–</td><td>–</td>';
      const costCell = price ? `<td>${agent ? money(cost!) : '–'}</td>` : '';
      return `<tr><th scope="row">${phase}</th><td>${formatDuration(u.phaseMs[phase]!)}</td>${tokenCells}${costCell}</tr>`;
    })
    .join('');
  const costHead = price ? '<th scope="col">Est. cost</th>' : '';
  const costFoot = price ? `<td>${money(cost!)}</td>` : '';
  const note = price
    ? `<p class="muted">Estimated model cost at the configured prices for <code>${escapeHtml(model!)}</code> (per million tokens: $${price.inputPerMillion} input, $${price.cachedInputPerMillion} cached input, $${price.outputPerMillion} output); only the agent phase calls the model, and compute time is not priced.</p>`
    : '';
  const split = u.modelMs || u.commandMs ? `<p class="muted">Agent time: ${formatDuration(u.modelMs)} waiting for the model, ${formatDuration(u.commandMs)} in commands.</p>` : '';
  return (
    `<table class="usage"><thead><tr><th scope="col">Phase</th><th scope="col">Time</th><th scope="col">Input tokens</th><th scope="col">Cached</th><th scope="col">Output tokens</th><th scope="col">Turns</th>${costHead}</tr></thead>` +
    `<tbody>${rows}</tbody><tfoot><tr><th scope="row">total</th><td>${formatDuration(u.totalMs)}</td><td>${tokens(u.inputTokens)}</td><td>${tokens(u.cachedInputTokens)}</td><td>${tokens(u.outputTokens)}</td><td>${u.turns}</td>${costFoot}</tr></tfoot></table>${split}${note}`
  );
}

const STATUS_LABEL: Record<string, string> = {
  succeeded: 'Succeeded',
  no_changes: 'No changes',
  failed: 'Failed',
  cancelled: 'Cancelled',
  publishing: 'Publishing…',
};

/**
 * Renders the result section's content (without the section element), or '' when there is nothing
 * to show yet (no result and no failure).
 */
export function renderResultHtml(view: TaskResultView): string {
  const { result, links } = view;
  const failure = view.failure ?? result?.failure;
  if (!result && !failure) return '';
  const parts: string[] = [];

  const status = view.state in STATUS_LABEL ? view.state : (result?.status ?? view.state);
  const cls = status === 'failed' || status === 'cancelled' ? 'bad' : status === 'publishing' ? 'run' : 'ok';
  const linkItems: string[] = [];
  if (links?.pullRequest) {
    const pr = links.pullRequest;
    linkItems.push(`Pull request ${link(pr.url, `#${pr.number}${pr.title ? ` ${pr.title}` : ''}`)}`);
  }
  if (links?.commit) linkItems.push(`Commit ${link(links.commit.url, links.commit.sha.slice(0, 7))}`);
  if (links?.review) linkItems.push(link(links.review, 'Review'));
  if (links?.thread) linkItems.push(link(links.thread, 'Thread'));
  parts.push(
    `<p class="status-line"><span class="badge badge-${cls}">${escapeHtml(STATUS_LABEL[status] ?? status)}</span>` +
      (result ? ` <span class="muted">stopped: ${escapeHtml(result.stopReason.replace(/_/g, ' '))}</span>` : '') +
      (linkItems.length ? ` <span class="links">${linkItems.join(' · ')}</span>` : '') +
      '</p>',
  );
  if (failure) parts.push(`<div class="failure"><p class="bad">Failed in ${escapeHtml(failure.phase)}:</p><pre>${escapeHtml(failure.reason)}</pre></div>`);
  if (result?.summary.trim()) parts.push(`<div class="markdown">${renderMarkdown(result.summary)}</div>`);
  if (result && result.changes.length) {
    const diff = view.diff ?? [];
    const adds = diff.reduce((n, f) => n + f.additions, 0);
    const dels = diff.reduce((n, f) => n + f.deletions, 0);
    parts.push(
      `<h3>Changes <span class="muted">${result.changes.length} file${result.changes.length === 1 ? '' : 's'}</span> <span class="add">+${adds}</span> <span class="del">−${dels}</span></h3>`,
      `<div class="diff-files">${renderDiffHtml(diff)}</div>`,
    );
  }
  if (result?.commands.length) {
    const failed = result.commands.filter((c) => c.timedOut || c.exitCode !== 0).length;
    parts.push(
      `<h3>Commands <span class="muted">${result.commands.length} run${failed ? `, <span class="bad">${failed} failed</span>` : ''}</span></h3>`,
      `<div class="commands">${result.commands.map(renderCommand).join('')}</div>`,
    );
  }
  if (result) parts.push(`<h3>Usage</h3>${renderUsage(result, view.model, view.prices)}`);
  return parts.join('\n');
}
