/**
 * The task page in a real browser: Debian's Chromium driven by playwright-core, against the real app
 * (`codex-cloud serve` with the local runner, the GitHub stand-in and the scripted model). The page
 * loads under its CSP without a violation, shows the live events while the task runs, and the stored
 * result after it ends (summary, pull request link, diff, commands, usage). Screenshots go to
 * test/artifacts/ (git-ignored) for people to look at.
 *
 * Needs Chromium (`apt-get install chromium`; CHROMIUM_PATH overrides /usr/bin/chromium). Without it
 * the test is skipped with a message, except in CI (CI set), where it fails.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AppHarness, waitFor } from '../support/app-harness.ts';
import { buggyNodeRepo, fixTurns } from '../support/fixtures.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../artifacts');
const REPO = 'acme/calc';
const available = existsSync(CHROMIUM);
if (!available && process.env.CI) throw new Error(`Chromium is required in CI for the task page test: ${CHROMIUM} is missing (apt-get install chromium)`);
if (!available) console.warn(`SKIPPED: the task page browser test needs Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

const maybe = available ? describe : describe.skip;

let h: AppHarness;
let browser: Browser;

beforeAll(async () => {
  if (!available) return;
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Chromium's own sandbox needs a non-root user; the test runs as root in CI.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
});

afterAll(async () => {
  await browser?.close();
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

/** Opens a page that records CSP violations and console errors. */
async function openPage(url: string, colorScheme: 'light' | 'dark' = 'light') {
  const context = await browser.newContext({ colorScheme, viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Runs before the page's own script (through the DevTools protocol, not subject to the CSP).
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));",
  });
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-security-policy']).toMatch(/^default-src 'none'; script-src 'nonce-/);
  return { page, problems, close: () => context.close() };
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

maybe('the task page in Chromium', () => {
  test('shows live events while the task runs, then the result, under its CSP', async () => {
    // The model's last turn waits until the page has shown the running task.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const turns = fixTurns();
    const last = turns.pop()!;
    h.model.push(...turns, async (req) => {
      await released;
      return typeof last === 'function' ? last(req) : last;
    });
    const issue = h.github.addIssue(REPO, { title: 'add() is broken', body: 'add(2, 3) returns -1', user: 'maintainer' }).number as number;
    expect(await h.deliver(h.mention(REPO, issue, '@codex please fix the failing add test'))).toBe(200);
    const link = await waitFor('the task page link in the progress comment', () =>
      h.botComments(REPO, issue).map((c) => /\((http:\/\/127\.0\.0\.1:\d+\/tasks\/[^)\s]+)\)/.exec(c.body)?.[1]).find(Boolean),
    );

    const { page, problems, close } = await openPage(link);
    try {
      // Live: the plan, the failing test run and the patch arrive while the task runs.
      await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 30_000 }).catch(() => {});
      await page.locator('#log li', { hasText: 'node --test' }).first().waitFor({ timeout: 30_000 });
      await page.locator('#log li', { hasText: 'patch' }).waitFor({ timeout: 30_000 });
      expect(await text(page, '#state')).toBe('running');
      expect(await text(page, '#plan')).toContain('Run the tests');
      expect(await text(page, '#log')).toMatch(/node --test\s+exit 1/);
      expect(await page.locator('#result-section').isHidden()).toBe(true);
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'task-page-running.png'), fullPage: true, caret: 'initial' });

      release();
      // After: the result section, swapped in without a reload.
      await page.locator('#state', { hasText: 'succeeded' }).waitFor({ timeout: 60_000 });
      await page.locator('#result .status-line a', { hasText: '#' }).waitFor({ timeout: 30_000 });
      const pulls = (await h.github.pulls(REPO)) as Array<{ number: number; html_url: string }>;
      const pr = pulls.at(-1)!;
      const prLink = page.locator('#result .status-line a', { hasText: `#${pr.number}` });
      expect(await prLink.getAttribute('href')).toBe(pr.html_url);
      expect(await page.locator('#result .status-line a', { hasText: 'Thread' }).getAttribute('href')).toMatch(new RegExp(`/${REPO}/issues/${issue}$`));
      expect(await text(page, '#result .badge')).toBe('Succeeded');
      // The summary as markdown: headings and inline code, not raw markdown.
      expect(await page.locator('#result .markdown h2').allInnerTexts()).toEqual(['Summary', 'Testing']);
      expect(await text(page, '#result .markdown')).not.toContain('##');
      expect(await page.locator('#result .markdown code', { hasText: 'src/math.js' }).count()).toBeGreaterThan(0);
      // The diff against the base: the one changed line, as a deletion and an addition.
      expect(await text(page, '#result details.file summary')).toContain('src/math.js');
      expect(await text(page, '#result pre.diff .line.del')).toBe('-  return a - b;');
      expect(await text(page, '#result pre.diff .line.add')).toBe('+  return a + b;');
      // The commands, the failing run open.
      const commands = page.locator('#result details.command');
      expect(await commands.count()).toBeGreaterThanOrEqual(2);
      expect(await text(page, '#result .commands')).toMatch(/node --test\s+exit 1[\s\S]*node --test\s+exit 0/);
      expect(await page.locator('#result details.command[open]', { hasText: 'exit 1' }).count()).toBeGreaterThan(0);
      // Usage: tokens and turns in the agent row and the total.
      const usage = await text(page, '#result table.usage');
      expect(usage).toMatch(/agent\s+[\d.]+ (ms|s)/);
      expect(usage).toMatch(/total[\s\S]*\t5$/m);
      // The live log is still there.
      expect(await page.locator('#log li').count()).toBeGreaterThan(5);
      // The plan as the model left it, without an in-progress marker on a finished task.
      expect(await page.locator('#plan-section.finished').count()).toBe(1);
      await page.screenshot({ path: path.join(ARTIFACTS, 'task-page.png'), fullPage: true, caret: 'initial' });
      expect(problems).toEqual([]);
    } finally {
      await close();
    }

    // Opened after the end, the page shows the result at once (rendered by the server), dark too.
    const again = await openPage(link, 'dark');
    try {
      expect(await text(again.page, '#result .badge')).toBe('Succeeded');
      await again.page.locator('#log li', { hasText: 'patch' }).waitFor({ timeout: 30_000 });
      await again.page.screenshot({ path: path.join(ARTIFACTS, 'task-page-dark.png'), fullPage: true, caret: 'initial' });
      expect(again.problems).toEqual([]);
    } finally {
      await again.close();
    }
  });
});
