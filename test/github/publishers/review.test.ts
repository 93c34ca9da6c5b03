import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { CommandRecord, ReviewFinding, ReviewVerdict } from '../../../src/contract.ts';
import {
  earlierFindingsFrom,
  findingId,
  listEarlierFindings,
  planReview,
  publishReview,
  toEarlierFindings,
  renderFindingComment,
  renderReviewBody,
  type ReviewOutcome,
} from '../../../src/github/publishers/review.ts';
import { diffIndexFromFiles } from '../../../src/github/review-diff.ts';
import { GitHubStandIn, ProbotOctokitForTests, type Json } from '../../support/github-stand-in.ts';

const LINES = Array.from({ length: 60 }, (_, i) => `export const v${i + 1} = ${i + 1};`);
const text = (lines: string[]) => `${lines.join('\n')}\n`;
const finding = (over: Partial<ReviewFinding>): ReviewFinding => ({ title: 'A problem', body: 'Why it is wrong.', priority: 1, path: 'src/a.js', line: 20, confidence: 0.8, ...over });
const verdict = (over: Partial<ReviewVerdict> = {}): ReviewVerdict => ({ correctness: 'incorrect', explanation: 'The change drops data.', confidence: 0.8, resolvedFindings: [], ...over });
const command = (argv: string[], exitCode: number | null): CommandRecord => ({ phase: 'agent', command: argv, workdir: '.', exitCode, durationMs: 10, timedOut: false });

describe('planReview and rendering', () => {
  const diff = diffIndexFromFiles([
    { filename: 'src/a.js', status: 'modified', patch: '@@ -17,7 +17,8 @@\n a\n b\n c\n+d\n e\n f\n g\n h', changes: 1 },
  ]);
  const head = 'f'.repeat(40);

  test('order by priority then confidence; threshold; inline vs outside; identical findings once', () => {
    const plan = planReview({
      findings: [
        finding({ title: 'low confidence P1', confidence: 0.3 }),
        finding({ title: 'P3 nit', priority: 3 }),
        finding({ title: 'outside', priority: 0, path: 'src/b.js', line: 3 }),
        finding({ title: 'high confidence P1', confidence: 0.95, startLine: 18, line: 21 }),
        finding({ title: 'high confidence P1', confidence: 0.95, startLine: 18, line: 21 }),
        finding({ title: 'P2', priority: 2, line: 24 }),
      ],
      diff, headSha: head, minPriority: 2, earlier: [], resolvedIds: [],
    });
    expect(plan.inline.map((p) => p.finding.title)).toEqual(['high confidence P1', 'low confidence P1', 'P2']);
    expect(plan.inline[0]!.placement).toEqual({ kind: 'inline', path: 'src/a.js', start_line: 18, line: 21, side: 'RIGHT', clipped: false });
    expect(plan.outside.map((p) => [p.finding.title, p.placement.reason])).toEqual([['outside', 'file_not_in_diff']]);
    expect(plan.belowThreshold.map((p) => p.finding.title)).toEqual(['P3 nit']);
    expect(plan.inline[0]!.id).toBe(findingId(plan.inline[0]!.finding, head));
    const ignoring = planReview({ findings: [finding({ path: 'docs/x.md' }), finding({})], diff, headSha: head, minPriority: 1, earlier: [], resolvedIds: [], pathsIgnore: ['docs/**'] });
    expect(ignoring.ignored.map((p) => p.finding.path)).toEqual(['docs/x.md']);
    expect(ignoring.inline).toHaveLength(1);
  });

  test('an inline comment reads back as an earlier finding; model text cannot forge a marker or mention anyone', () => {
    const hostile = finding({
      title: 'Leak @alice #12 **bold** <b>',
      body: 'See @bob and #3.\n<!-- codex-finding:forged -->\n<details>\n\n```js\nconst at = "@carol";\n```',
    });
    const plan = planReview({ findings: [hostile], diff, headSha: head, minPriority: 1, earlier: [], resolvedIds: [] });
    const body = renderFindingComment(plan.inline[0]!);
    expect(body.split('\n')[0]).toBe(`<!-- codex-finding:${plan.inline[0]!.id} -->`);
    expect(body.split('\n')[1]).toBe('🟠 **P1** **Leak @\u200dalice \\#\u200d12 \\*\\*bold\\*\\* \\<b\\>**');
    expect(body).not.toMatch(/@bob|#3|<!-- codex-finding:forged|<details>/);
    expect(body).toContain('const at = "@carol";');
    const back = earlierFindingsFrom([{ id: 7, body, path: 'src/a.js', line: 20, start_line: null, user: { login: 'app[bot]' } }], 'app[bot]');
    expect(back).toEqual([{
      id: plan.inline[0]!.id, commentId: 7, path: 'src/a.js', line: 20, startLine: null, originalLine: 20, priority: 1,
      renderedTitle: 'Leak @\u200dalice \\#\u200d12 \\*\\*bold\\*\\* \\<b\\>', title: 'Leak @alice #12 **bold** <b>', open: true, reviewId: null,
    }]);
    // Someone else's comment with the marker is not ours.
    expect(earlierFindingsFrom([{ id: 8, body, path: 'src/a.js', line: 20, user: { login: 'mallory' } }], 'app[bot]')).toEqual([]);
  });

  test('the body: verdict line, commit, counts, outside the diff, collapsed lower priorities, commands', () => {
    const plan = planReview({
      findings: [finding({ title: 'Drops the last record' }), finding({ title: 'Unchecked error', priority: 2, path: 'lib/io.js', startLine: 3, line: 5, body: 'The promise rejection is ignored.' }), finding({ title: 'Typo', priority: 3 })],
      diff, headSha: head, minPriority: 2, earlier: [], resolvedIds: [],
    });
    const body = renderReviewBody({ plan, headSha: head, minPriority: 2, verdict: verdict(), commands: [command(['node', '--test'], 1), command(['rg', '-n', 'slice'], 0)], runKey: 'task-1' });
    expect(body).toBe([
      '<!-- codex-review:task-1 -->',
      '⚠️ **Changes needed** — The change drops data.',
      '',
      `Reviewed commit: ${head} · 2 findings (1 × P1, 1 × P2): 1 inline, 1 outside the diff.`,
      '',
      '### Outside the diff',
      '- 🟡 **P2** **Unchecked error** — `lib/io.js` lines 3–5 (file not changed by this pull request)',
      '',
      '  The promise rejection is ignored.',
      '',
      '',
      '<details><summary>1 finding below P2 not posted (1 × P3)</summary>',
      '',
      '- 🟢 **P3** Typo — `src/a.js` line 20',
      '',
      '</details>',
      '',
      '<details><summary>Commands the reviewer ran</summary>',
      '',
      '- `node --test` → exit 1',
      '- `rg -n slice` → exit 0',
      '',
      '</details>',
    ].join('\n'));
  });

  test('a body past GitHub\'s limit drops the outside-the-diff bodies first', () => {
    const many = Array.from({ length: 60 }, (_, i) => finding({ title: `Outside ${i}`, path: `lib/f${i}.js`, body: 'x'.repeat(1900) }));
    const plan = planReview({ findings: many, diff, headSha: head, minPriority: 1, earlier: [], resolvedIds: [] });
    const body = renderReviewBody({ plan, headSha: head, minPriority: 1 });
    expect(body.length).toBeLessThan(65_536);
    expect(body).toContain('Outside 59');
    expect(body).not.toContain('xxxx');
  });
});

describe('publishReview against the GitHub stand-in', () => {
  const REPO = 'octo/review';
  let gh: GitHubStandIn;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let branchNo = 0;

  /** A pull request changing src/a.js lines 20-22 and 50, adding src/new.js, deleting old.txt, adding a binary. */
  async function pullRequest(): Promise<{ number: number; head: string; branch: string }> {
    const branch = `feature-${++branchNo}`;
    const changed = [...LINES];
    changed[19] = 'export const v20 = 20 - 1;';
    changed.splice(21, 0, 'export const extra = v20 * 2;');
    changed[50] = 'export const v50 = null;';
    const head = await gh.commitFiles(REPO, branch, {
      'src/a.js': text(changed), 'src/new.js': 'export function f(x) {\n  return x.y;\n}\n', 'old.txt': null,
      'logo.png': { content: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 0]) },
    }, { from: 'main' });
    const pr = await gh.addPull(REPO, { head: branch, title: `Feature ${branchNo}`, user: 'alice' });
    return { number: Number(pr.number), head, branch };
  }
  const reviewPosts = (n: number) => gh.requestsTo(`POST /repos/octo/review/pulls/${n}/reviews`);
  const singleCommentPosts = (n: number) => gh.requestsTo(`POST /repos/octo/review/pulls/${n}/comments`);
  const base = (n: number, head: string) => ({ owner: 'octo', repo: 'review', pullNumber: n, headSha: head, botLogin: gh.botLogin, minPriority: 1 as const });

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo(REPO, { 'src/a.js': text(LINES), 'old.txt': 'old\n', 'README.md': '# r\n' }, { permissions: { alice: 'write' } });
    octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  });
  afterAll(async () => gh.close());

  test('one review on the head: inline comments on diff lines (ranges in one hunk), the rest outside the diff, no 422', async () => {
    const { number, head } = await pullRequest();
    const findings = [
      finding({ title: 'Off by one', startLine: 20, line: 22, confidence: 0.9 }),
      finding({ title: 'Null deref', priority: 0, path: 'src/new.js', line: 2 }),
      finding({ title: 'Outside lines', priority: 2, line: 5 }),
      finding({ title: 'Deleted file', priority: 1, path: 'old.txt', line: 1 }),
      finding({ title: 'Binary', priority: 1, path: 'logo.png', line: 1 }),
      finding({ title: 'Range spanning two hunks', priority: 1, startLine: 30, line: 51 }),
      finding({ title: 'Nit', priority: 3, line: 21 }),
    ];
    const out = await publishReview(octokit, {
      ...base(number, head), minPriority: 2, findings, verdict: verdict(), origin: { kind: 'pull_request' }, runKey: 'task-a',
      commands: [command(['node', '--test'], 1)],
    });
    expect(out).toMatchObject({ kind: 'reviewed', reused: false });
    expect(reviewPosts(number)).toHaveLength(1);
    expect(reviewPosts(number)[0]!.status).toBe(200);
    expect(singleCommentPosts(number)).toHaveLength(0);
    const reviews = gh.reviews(REPO, number);
    expect(reviews).toHaveLength(1);
    expect(reviews[0]).toMatchObject({ state: 'COMMENTED', commit_id: head, user: { login: gh.botLogin } });
    const comments = gh.reviewComments(REPO, number);
    expect(comments.map((c: Json) => [c.path, c.start_line, c.line, c.side, String(c.body).split('\n')[1]])).toEqual([
      ['src/new.js', null, 2, 'RIGHT', '🔴 **P0** **Null deref**'],
      ['src/a.js', 20, 22, 'RIGHT', '🟠 **P1** **Off by one**'],
      ['src/a.js', 48, 51, 'RIGHT', '🟠 **P1** **Range spanning two hunks**'],
    ]);
    expect(String(comments[2]!.body)).toContain('The finding covers lines 30–51; shown on the part inside the diff.');
    const body = String(reviews[0]!.body);
    expect(body).toContain(`Reviewed commit: ${head} · 6 findings (1 × P0, 4 × P1, 1 × P2): 3 inline, 3 outside the diff.`);
    expect(body).toContain('- 🟠 **P1** **Deleted file** — `old.txt` line 1 (file deleted by this pull request)');
    expect(body).toContain('- 🟠 **P1** **Binary** — `logo.png` line 1 (binary file)');
    expect(body).toContain('- 🟡 **P2** **Outside lines** — `src/a.js` line 5 (lines not changed by this pull request)');
    expect(body).toContain('<details><summary>1 finding below P2 not posted (1 × P3)</summary>');
    expect(body).toContain('- `node --test` → exit 1');
  });

  test('a retry of the same run (same runKey) posts nothing new', async () => {
    const { number, head } = await pullRequest();
    const pub = { ...base(number, head), findings: [finding({ line: 21 })], origin: { kind: 'pull_request' as const }, runKey: 'task-b' };
    const first = await publishReview(octokit, pub);
    const second = await publishReview(octokit, pub);
    expect(second).toMatchObject({ kind: 'reviewed', reused: true, reviewId: (first as Extract<ReviewOutcome, { kind: 'reviewed' }>).reviewId });
    expect(reviewPosts(number)).toHaveLength(1);
    expect(gh.reviewComments(REPO, number)).toHaveLength(1);
  });

  test('nothing at or above the threshold: no review, a 👍 on the request and one comment naming the commit', async () => {
    const { number, head } = await pullRequest();
    const request = gh.addComment(REPO, number, { body: '@codex review', user: 'alice' });
    const out = await publishReview(octokit, {
      ...base(number, head), findings: [finding({ priority: 3, title: 'Nit' })], verdict: verdict({ correctness: 'correct' }),
      origin: { kind: 'issue_comment', commentId: request.id }, runKey: 'task-c',
    });
    expect(out).toMatchObject({ kind: 'nothing_to_report', reused: false });
    expect(reviewPosts(number)).toHaveLength(0);
    expect(gh.reactions(REPO, { commentId: request.id }).map((r) => [r.content, r.user])).toEqual([['+1', gh.botLogin]]);
    const replies = gh.comments(REPO, number).filter((c) => c.user.login === gh.botLogin);
    expect(replies).toHaveLength(1);
    expect(replies[0]!.body).toBe(`<!-- codex-review:task-c -->\n👍 No new issues at P1 or above in ${head}.\n<sub>1 lower-priority finding not posted (1 × P3).</sub>`);
    await publishReview(octokit, { ...base(number, head), findings: [], origin: { kind: 'issue_comment', commentId: request.id }, runKey: 'task-c' });
    expect(gh.comments(REPO, number).filter((c) => c.user.login === gh.botLogin)).toHaveLength(1);
    expect(gh.reactions(REPO, { commentId: request.id })).toHaveLength(1);
  });

  test('a re-review after a fix: "Fixed in" in the fixed thread, an unchanged finding is not repeated, closed threads stay closed', async () => {
    const { number, head, branch } = await pullRequest();
    const keep = finding({ title: 'Off by one', startLine: 20, line: 22 });
    const fixed = finding({ title: 'Null deref', priority: 0, path: 'src/new.js', line: 2 });
    await publishReview(octokit, { ...base(number, head), findings: [keep, fixed], origin: { kind: 'pull_request' } });
    // Someone else quoting our marker is not an earlier finding.
    await gh.addReviewComment(REPO, number, { user: 'alice', body: `<!-- codex-finding:${findingId(fixed, head)} -->\n🔴 **P0** **Null deref**`, path: 'src/new.js', line: 1 });
    const earlier = await listEarlierFindings(octokit, { owner: 'octo', repo: 'review', pullNumber: number, botLogin: gh.botLogin });
    expect(earlier.map((e) => [e.title, e.path, e.startLine, e.line, e.open])).toEqual([['Null deref', 'src/new.js', null, 2, true], ['Off by one', 'src/a.js', 20, 22, true]]);
    expect(toEarlierFindings(earlier)).toEqual([
      { id: earlier[0]!.id, title: 'Null deref', path: 'src/new.js', line: 2 },
      { id: earlier[1]!.id, title: 'Off by one', path: 'src/a.js', startLine: 20, line: 22 },
    ]);
    const fixedId = earlier.find((e) => e.title === 'Null deref')!.id;
    expect(fixedId).toBe(findingId(fixed, head));

    const newHead = await gh.commitFiles(REPO, branch, { 'src/new.js': 'export function f(x) {\n  return x?.y;\n}\n' });
    const out = await publishReview(octokit, {
      ...base(number, newHead), findings: [keep, finding({ title: 'New problem', line: 51 })], verdict: verdict({ resolvedFindings: [fixedId, 'unknown-id'] }),
      origin: { kind: 'pull_request' },
    });
    expect(out.kind).toBe('reviewed');
    expect(out.plan.duplicates.map((p) => p.finding.title)).toEqual(['Off by one']);
    expect(reviewPosts(number)).toHaveLength(2);
    const second = gh.reviews(REPO, number).filter((r) => String(r.body).includes('Reviewed commit')).at(-1)!;
    expect(second.commit_id).toBe(newHead);
    expect(String(second.body)).toContain('1 finding already reported on the same lines not repeated.');
    expect(String(second.body)).toContain('1 earlier finding fixed by this commit (answered in its thread).');
    const threads = gh.reviewComments(REPO, number);
    const fixedThread = threads.find((c: Json) => c.in_reply_to_id === earlier[0]!.commentId);
    expect(fixedThread).toMatchObject({ body: `Fixed in \`${newHead.slice(0, 7)}\`.`, user: { login: gh.botLogin } });
    expect(threads.filter((c: Json) => String(c.body).includes('**Off by one**'))).toHaveLength(1);

    // Third run: the fixed thread is closed (no second reply even if listed again); only duplicates left → no review, no 👍.
    const third = await publishReview(octokit, {
      ...base(number, newHead), findings: [keep, finding({ title: 'New problem', line: 51 })], verdict: verdict({ resolvedFindings: [fixedId] }),
      origin: { kind: 'pull_request' },
    });
    expect(third).toMatchObject({ kind: 'nothing_to_report' });
    expect(third.plan.resolved).toEqual([]);
    const afterFix = await listEarlierFindings(octokit, { owner: 'octo', repo: 'review', pullNumber: number, botLogin: gh.botLogin });
    expect(toEarlierFindings(afterFix).map((f) => f.title)).toEqual(['Off by one', 'New problem']);
    expect(reviewPosts(number)).toHaveLength(2);
    expect(gh.reviewComments(REPO, number).filter((c: Json) => String(c.body).startsWith('Fixed in'))).toHaveLength(1);
    expect(gh.reactions(REPO, { issueNumber: number })).toHaveLength(0);
    expect(gh.comments(REPO, number).at(-1)!.body).toBe(`👍 No new issues at P1 or above in ${newHead} (2 earlier findings still open).`);
  });
});
