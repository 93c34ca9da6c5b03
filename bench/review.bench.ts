/**
 * Review benchmark (`npm run bench:review [-- --runs N --files N --findings N --repo-files N --publisher-only]`):
 * a pull request of 40 changed files (two edited places each) on a generated repository of 2,000 files
 * (bench/support/big-repo.ts; `--repo-files 5000` for its full size, slower to set up), and 30 review
 * findings (most on diff lines, some ranges, some outside the diff, a few below the threshold).
 *
 * End to end (the default, 1 run): the REAL app (`codex-cloud serve`) and local runner
 * (test/support/app-harness.ts) with the GitHub stand-in and the scripted model, which ends the review
 * with these findings as review JSON. `@codex review` is delivered as a comment in the pull request's
 * conversation. It prints, per run: the time from the delivery to the posted review (the stand-in's
 * answer to `POST …/pulls/{n}/reviews`) and to the task's end, the task's timeline from the app's store
 * (queued → running → publishing → succeeded, and the runner's checkout / setup / agent / result
 * phases), the GitHub API requests made during the task by route with the stand-in's serving time,
 * the git requests of the runner's fetch, and how the findings came out (inline comments, listed in the
 * review body, missing).
 * Targets: exactly one review-creating request, no per-finding request (`POST …/pulls/{n}/comments`,
 * and no issue comment besides the task's progress comment), every finding either inline or listed in
 * the review body (the ones below `min_priority` in its collapsed section), no failed request.
 *
 * Publisher only (a second section after the end-to-end runs, or alone with `--publisher-only`,
 * default 3 runs then): the same findings published through `publishReview` directly, with the total
 * publish time, the requests by route with the stand-in's serving time (it validates each comment
 * against `git diff`, as GitHub does), and what is left for the publisher itself. Targets: one review
 * request, no per-finding request.
 *
 * A missed correctness target exits 1. Stages are separate functions (`setUp`, `openPullRequest`,
 * `makeFindings`, `reviewEndToEnd`, `publish`).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import type { ProgressEvent, ReviewFinding } from '../src/contract.ts';
import { publishReview, type ReviewOutcome } from '../src/github/publishers/review.ts';
import { AppHarness, waitFor } from '../test/support/app-harness.ts';
import type { GitRequestRecord } from '../test/support/git-http.ts';
import { GitHubStandIn, ProbotOctokitForTests, type ApiRequestRecord } from '../test/support/github-stand-in.ts';
import { botReviews, finalTurn, reviewJson, type ModelFinding } from '../test/support/reviews.ts';
import { generateRepo } from './support/big-repo.ts';

const REPO = 'acme/platform';
const AUTHOR = 'contributor';
/** Who asks for the review (`@codex review`); has write access. */
const REQUESTER = 'maintainer';
/** The repository's review settings: findings from P2 up are posted, P3 only counted in the body. */
const CODEX_YML = 'review:\n  min_priority: P2\n';

/** One changed file of the pull request: where the edits are (1-based head lines). */
interface ChangedFile {
  path: string;
  /** Lines the pull request edited, in the head's numbering. */
  edited: number[];
  /** A line far from any edit (not in the diff). */
  untouched: number;
}

/** Adds the generated repository (with `.github/codex.yml`) to `gh`, or to a new stand-in. */
export async function setUp(repoFiles: number, existing?: GitHubStandIn): Promise<{ gh: GitHubStandIn; files: Record<string, string> }> {
  const gh = existing ?? (await GitHubStandIn.start());
  const generated = { ...generateRepo(repoFiles), '.github/codex.yml': CODEX_YML };
  await gh.addRepo(REPO, generated, { installationId: 1, permissions: { [AUTHOR]: 'write', [REQUESTER]: 'write' } });
  const files = Object.fromEntries(Object.entries(generated).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { gh, files };
}

/** Opens a pull request editing `count` source files of at least 60 lines, two places each. */
export async function openPullRequest(gh: GitHubStandIn, files: Record<string, string>, count: number, run: number): Promise<{ number: number; head: string; changed: ChangedFile[] }> {
  const candidates = Object.entries(files)
    .filter(([p, c]) => p.startsWith('src/') && p.endsWith('.js') && c.split('\n').length >= 60)
    .sort(([a], [b]) => a.localeCompare(b))
    .slice(run * count, (run + 1) * count);
  if (candidates.length < count) throw new Error(`only ${candidates.length} source files of 60+ lines for run ${run}`);
  const edits: Record<string, string> = {};
  const changed: ChangedFile[] = [];
  for (const [path, content] of candidates) {
    const lines = content.split('\n');
    const a = Math.floor(lines.length * 0.4);
    const b = Math.floor(lines.length * 0.8);
    lines[a] = `${lines[a]} // reviewed change A`;
    lines[b] = `${lines[b]} // reviewed change B`;
    edits[path] = lines.join('\n');
    changed.push({ path, edited: [a + 1, b + 1], untouched: 2 });
  }
  const branch = `feature/bench-${run}`;
  const head = await gh.commitFiles(REPO, branch, edits, { from: 'main', message: `Edit ${count} files` });
  const pr = await gh.addPull(REPO, { head: branch, title: `Bench ${run}`, user: AUTHOR });
  return { number: Number(pr.number), head, changed };
}

/** `count` findings: 70% on an edited line (every third a 2-line range), 20% outside the diff, 10% P3. */
export function makeFindings(changed: ChangedFile[], count: number): ReviewFinding[] {
  return Array.from({ length: count }, (_, i): ReviewFinding => {
    const file = changed[i % changed.length]!;
    const kind = i % 10;
    const onDiff = kind < 7;
    const line = onDiff ? file.edited[i % 2]! : file.untouched;
    return {
      title: `Finding ${i}: ${onDiff ? 'the edited line breaks the contract' : 'a caller outside the diff is affected'}`,
      body: `The value computed here is used by \`${file.path}\` callers.\n\n\`\`\`js\nconst x = compute(${i});\n\`\`\``,
      priority: kind === 9 ? 3 : i % 3,
      path: file.path,
      line,
      ...(onDiff && i % 3 === 0 ? { startLine: line - 1 } : {}),
      confidence: 0.5 + (i % 5) / 10,
    };
  });
}

/**
 * Route of a recorded request with ids and names templated: `POST /repos/{owner}/{repo}/pulls/{n}/reviews`,
 * git traffic as `GET /{owner}/{repo}.git/info/refs?service=git-upload-pack`.
 */
function route(r: { method: string; path: string }): string {
  const path = r.path
    .replace(/^\/repos\/[^/]+\/[^/]+/, '/repos/{owner}/{repo}')
    .replace(/^(?:\/[^/]+)*\/[^/]+\/[^/]+\.git(?=\/|$)/, '/{owner}/{repo}.git')
    .replace(/\/(?:[0-9a-f]{40}|\d+)(?=\/|$)/g, '/{n}');
  return `${r.method} ${path}`;
}

/** Requests counted by route, and the stand-in's serving time per route (ms). */
function byRoute(requests: ApiRequestRecord[]): Map<string, { count: number; servedMs: number }> {
  const out = new Map<string, { count: number; servedMs: number }>();
  for (const r of requests) {
    const e = out.get(route(r)) ?? { count: 0, servedMs: 0 };
    e.count++;
    e.servedMs += r.durationMs;
    out.set(route(r), e);
  }
  return out;
}

const REVIEW_ROUTE = 'POST /repos/{owner}/{repo}/pulls/{n}/reviews';
const INLINE_COMMENT_ROUTE = 'POST /repos/{owner}/{repo}/pulls/{n}/comments';
const ISSUE_COMMENT_ROUTE = 'POST /repos/{owner}/{repo}/issues/{n}/comments';

/** A finding as the model writes it in the review JSON (`code_location.line_range` start..end). */
export function toModelFinding(f: ReviewFinding): ModelFinding {
  return {
    title: f.title,
    body: f.body,
    priority: f.priority as ModelFinding['priority'],
    path: f.path,
    start: f.startLine ?? f.line,
    end: f.line,
    ...(f.confidence !== undefined ? { confidence: f.confidence } : {}),
  };
}

/** What one end-to-end review run measured. Times in ms. */
export interface EndToEndRun {
  /** The webhook's HTTP status. */
  status: number;
  /** Delivery sent → the stand-in answered `POST …/pulls/{n}/reviews` (NaN when none). */
  toReviewMs: number;
  /** Delivery sent → the task reached a final state and the progress comment says "Reviewed". */
  toDoneMs: number;
  state: string;
  /** State transitions of the task, ms after the delivery. */
  transitions: Array<{ atMs: number; to: string }>;
  /** The runner's phases (from its `phase` events): start ms after the delivery, duration ms. */
  phases: Array<{ phase: string; startMs: number; durationMs: number }>;
  /** GitHub API requests from the delivery to the end of the task. */
  requests: ApiRequestRecord[];
  /** Git requests in the same time (the runner's fetch of the repository). */
  gitRequests: GitRequestRecord[];
  /** Findings found back on GitHub: as inline comments, listed in the review body, nowhere. */
  inline: number;
  inBody: number;
  missing: string[];
  reviews: number;
}

/** The task of pull request `number`: its transitions and progress events, from the app's store (read-only). */
function taskTimeline(h: AppHarness, number: number): { transitions: Array<{ at: number; to_state: string }>; events: ProgressEvent[] } {
  const db = new DatabaseSync(path.join(h.dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    const task = db.prepare('SELECT id FROM tasks WHERE issue_number = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(number) as { id: string } | undefined;
    if (!task) return { transitions: [], events: [] };
    const transitions = db.prepare('SELECT at, to_state FROM task_transitions WHERE task_id = ? ORDER BY rowid').all(task.id) as Array<{ at: number; to_state: string }>;
    const events = (db.prepare('SELECT json FROM task_events WHERE task_id = ? ORDER BY seq').all(task.id) as Array<{ json: string }>).map((e) => JSON.parse(e.json) as ProgressEvent);
    return { transitions, events };
  } finally {
    db.close();
  }
}

/**
 * Runs one review end to end: the scripted model will answer with `findings`, `@codex review` is
 * delivered as a comment in the pull request's conversation, and the task is followed to its end.
 * @throws Error when the task does not end within 5 minutes.
 */
export async function reviewEndToEnd(h: AppHarness, pr: { number: number }, findings: ReviewFinding[]): Promise<EndToEndRun> {
  h.model.push(finalTurn(reviewJson(findings.map(toModelFinding))));
  const delivery = h.mention(REPO, pr.number, '@codex review', REQUESTER);
  const from = h.github.requests.length;
  const gitFrom = h.github.gitRequests.length;
  const t0 = Date.now();
  const status = await h.deliver(delivery);
  const final = new Set(['succeeded', 'no_changes', 'failed', 'cancelled']);
  const task = await waitFor('the review task to end', () => {
    const t = h.task(pr.number);
    return t && final.has(t.state) ? t : undefined;
  }, 300_000);
  if (task.state === 'succeeded') await waitFor('the "Reviewed" progress line', () => h.botComments(REPO, pr.number).some((c) => /Reviewed/.test(String(c.body))), 30_000);
  const toDoneMs = Date.now() - t0;
  const requests = h.github.requests.slice(from);
  const gitRequests = h.github.gitRequests.slice(gitFrom);
  const post = requests.find((r) => r.method === 'POST' && /\/pulls\/\d+\/reviews$/.test(r.path));
  const { transitions, events } = taskTimeline(h, pr.number);
  const phases = events
    .filter((e): e is Extract<ProgressEvent, { type: 'phase' }> => e.type === 'phase' && e.status !== 'started' && e.durationMs !== undefined)
    .map((e) => ({ phase: e.phase, startMs: Date.parse(e.at) - e.durationMs! - t0, durationMs: e.durationMs! }));
  const reviews = botReviews(h, REPO, pr.number);
  const body = String(reviews[0]?.body ?? '');
  const comments = h.github.reviewComments(REPO, pr.number).filter((c) => (c.user as { login: string }).login === h.github.botLogin).map((c) => String(c.body));
  let inline = 0;
  let inBody = 0;
  const missing: string[] = [];
  findings.forEach((f, i) => {
    const key = `Finding ${i}:`;
    if (comments.some((c) => c.includes(key))) inline++;
    else if (body.includes(key)) inBody++;
    else missing.push(f.title);
  });
  return {
    status,
    toReviewMs: post ? post.at + post.durationMs - t0 : NaN,
    toDoneMs,
    state: task.state,
    transitions: transitions.map((t) => ({ atMs: t.at - t0, to: t.to_state })),
    phases,
    requests,
    gitRequests,
    inline,
    inBody,
    missing,
    reviews: reviews.length,
  };
}

/** Publishes the findings; returns the outcome, timings (ms) and the requests made. */
export async function publish(gh: GitHubStandIn, pr: { number: number; head: string }, findings: ReviewFinding[]): Promise<{ outcome: ReviewOutcome; totalMs: number; toReviewMs: number; requests: ApiRequestRecord[] }> {
  const octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  const from = gh.requests.length;
  const startedAt = Date.now();
  const t0 = performance.now();
  const outcome = await publishReview(octokit, {
    owner: 'acme', repo: 'platform', pullNumber: pr.number, headSha: pr.head, findings, minPriority: 2,
    verdict: { correctness: 'incorrect', explanation: 'Several callers break.', confidence: 0.7, resolvedFindings: [] },
    origin: { kind: 'pull_request' }, botLogin: gh.botLogin, runKey: `bench-${pr.number}`,
  });
  const totalMs = performance.now() - t0;
  const requests = gh.requests.slice(from);
  const post = requests.find((r) => r.method === 'POST' && /\/pulls\/\d+\/reviews$/.test(r.path));
  const toReviewMs = post ? post.at + post.durationMs - startedAt : NaN;
  return { outcome, totalMs, toReviewMs, requests };
}

/** Prints one route table: count, route, and the stand-in's serving time. */
function printRoutes(requests: ApiRequestRecord[]): void {
  for (const [r, e] of [...byRoute(requests).entries()].sort()) console.log(`    ${String(e.count).padStart(3)} × ${r}  (stand-in ${e.servedMs.toFixed(0)} ms)`);
}

/** The end-to-end runs; @returns whether a target was missed. */
async function endToEndSection(h: AppHarness, files: Record<string, string>, runs: number, fileCount: number, findingCount: number): Promise<boolean> {
  console.log(`\n== end to end: the app and local runner, @codex review in the conversation (${runs} run${runs === 1 ? '' : 's'}) ==`);
  let failed = false;
  for (let run = 0; run < runs; run++) {
    const pr = await openPullRequest(h.github, files, fileCount, run);
    const findings = makeFindings(pr.changed, findingCount);
    const r = await reviewEndToEnd(h, pr, findings);
    const routes = byRoute(r.requests);
    const reviewPosts = routes.get(REVIEW_ROUTE)?.count ?? 0;
    const perFinding = routes.get(INLINE_COMMENT_ROUTE)?.count ?? 0;
    // The progress comment is the one issue comment the task posts; more would be per-finding replies.
    const issueComments = routes.get(ISSUE_COMMENT_ROUTE)?.count ?? 0;
    const bad = r.requests.filter((q) => q.status >= 400);
    console.log(
      `run ${run + 1}: PR #${pr.number}, ${fileCount} files, ${findingCount} findings | delivery → posted review ${r.toReviewMs.toFixed(0)} ms, → task ${r.state} and "Reviewed" line ${r.toDoneMs.toFixed(0)} ms`,
    );
    console.log(`  task: ${r.transitions.map((t) => `${t.to} +${t.atMs} ms`).join(', ')}`);
    console.log(`  runner phases: ${r.phases.map((p) => `${p.phase} ${p.durationMs.toFixed(0)} ms (from +${p.startMs.toFixed(0)})`).join(', ') || 'none recorded'}`);
    const publishing = r.transitions.find((t) => t.to === 'publishing');
    if (publishing && Number.isFinite(r.toReviewMs)) console.log(`  publishing (state publishing → review posted): ${(r.toReviewMs - publishing.atMs).toFixed(0)} ms`);
    console.log(`  findings: ${r.inline} inline comments, ${r.inBody} listed in the review body, ${r.missing.length} missing; ${r.reviews} review(s) by the app`);
    console.log(`  ${r.requests.length} GitHub API requests by route:`);
    printRoutes(r.requests);
    const gitRoutes = new Map<string, number>();
    for (const q of r.gitRequests) gitRoutes.set(route(q), (gitRoutes.get(route(q)) ?? 0) + 1);
    console.log(`  ${r.gitRequests.length} git requests (the runner's fetch):`);
    for (const [k, n] of [...gitRoutes.entries()].sort()) console.log(`    ${String(n).padStart(3)} × ${k}`);
    const misses = [
      r.status !== 200 ? `webhook answered ${r.status}` : '',
      r.state !== 'succeeded' ? `task ended ${r.state}` : '',
      reviewPosts !== 1 ? `${reviewPosts} review requests (target 1)` : '',
      perFinding !== 0 ? `${perFinding} per-finding \`${INLINE_COMMENT_ROUTE}\` requests (target 0)` : '',
      issueComments > 1 ? `${issueComments} issue comments posted (target 1, the progress comment)` : '',
      r.missing.length ? `${r.missing.length} findings neither inline nor in the body (target 0): ${r.missing.slice(0, 3).join('; ')}` : '',
      r.reviews !== 1 ? `${r.reviews} reviews on the pull request (target 1)` : '',
      bad.length ? `${bad.length} failed requests: ${bad.slice(0, 3).map((q) => `${q.status} ${route(q)}`).join(', ')}` : '',
    ].filter(Boolean);
    console.log(misses.length ? `  FAIL: ${misses.join('; ')}` : '  PASS: one review request, no per-finding request, every finding inline or in the body');
    if (misses.length) failed = true;
  }
  return failed;
}

/** The publisher-only runs (`publishReview` directly); @returns whether a target was missed. */
async function publisherSection(gh: GitHubStandIn, files: Record<string, string>, firstRun: number, runs: number, fileCount: number, findingCount: number): Promise<boolean> {
  console.log(`\n== publisher only: publishReview to the stand-in (${runs} run${runs === 1 ? '' : 's'}) ==`);
  let failed = false;
  for (let run = 0; run < runs; run++) {
    const pr = await openPullRequest(gh, files, fileCount, firstRun + run);
    const findings = makeFindings(pr.changed, findingCount);
    const { outcome, totalMs, toReviewMs, requests } = await publish(gh, pr, findings);
    const routes = byRoute(requests);
    const reviewPosts = routes.get(REVIEW_ROUTE)?.count ?? 0;
    const perFinding = (routes.get(INLINE_COMMENT_ROUTE)?.count ?? 0) + (routes.get(ISSUE_COMMENT_ROUTE)?.count ?? 0);
    const plan = outcome.plan;
    console.log(
      `run ${run + 1}: PR #${pr.number}, ${fileCount} files, ${findingCount} findings → ${plan.inline.length} inline, ${plan.outside.length} outside the diff, ${plan.belowThreshold.length} below P2` +
        ` | to posted review ${toReviewMs.toFixed(0)} ms, publish total ${totalMs.toFixed(0)} ms | ${requests.length} GitHub requests:`,
    );
    printRoutes(requests);
    const served = requests.reduce((a, r) => a + r.durationMs, 0);
    console.log(`    publisher and transport (total minus the stand-in's serving time): ${(totalMs - served).toFixed(0)} ms`);
    const bad = requests.filter((r) => r.status >= 400);
    if (reviewPosts !== 1 || perFinding !== 0 || bad.length || outcome.kind !== 'reviewed') {
      failed = true;
      console.log(`  FAIL: ${reviewPosts} review requests (target 1), ${perFinding} per-finding requests (target 0), ${bad.length} failed requests, outcome ${outcome.kind}`);
    } else console.log('  PASS: one review request, no per-finding request');
  }
  return failed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      files: { type: 'string', default: '40' },
      findings: { type: 'string', default: '30' },
      'repo-files': { type: 'string', default: '2000' },
      'publisher-only': { type: 'boolean', default: false },
    },
  });
  const publisherOnly = values['publisher-only'];
  const runs = Number(values.runs ?? (publisherOnly ? 3 : 1));
  const fileCount = Number(values.files);
  const findingCount = Number(values.findings);
  const setupStart = performance.now();
  const h = publisherOnly ? undefined : await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  let failed = false;
  try {
    const { gh, files } = await setUp(Number(values['repo-files']), h?.github);
    console.log(`repository: ${Object.keys(files).length} text files, ${h ? 'app started and ' : ''}set up in ${(performance.now() - setupStart).toFixed(0)} ms`);
    try {
      if (h) failed = (await endToEndSection(h, files, runs, fileCount, findingCount)) || failed;
      failed = (await publisherSection(gh, files, h ? runs : 0, runs, fileCount, findingCount)) || failed;
    } finally {
      if (!h) await gh.close();
    }
  } catch (error) {
    if (h && process.env.DEBUG_APP_LOGS) console.log(h.logs.slice(-8000));
    throw error;
  } finally {
    await h?.close();
  }
  console.log(failed ? '\nFAIL: a target was missed' : '\nPASS: targets met (one review request per run, no per-finding requests, every finding accounted for)');
  return failed ? 1 : 0;
}

process.exitCode = await main();
