/**
 * Review benchmark (`npm run bench:review [-- --runs N --files N --findings N --repo-files N]`): a
 * pull request of 40 changed files (two edited places each) on a generated repository of 2,000 files
 * (bench/support/big-repo.ts; `--repo-files 5000` for its full size, slower to set up), and 30 review findings (most on diff lines, some ranges, some outside
 * the diff, a few below the threshold) published through the review publisher to the GitHub stand-in.
 *
 * It prints, per run: the time from the start of publishing to the review being posted (the stand-in's
 * answer to `POST …/reviews`), the total publish time, the GitHub requests made by route with the
 * stand-in's serving time (it validates each comment against `git diff`, as GitHub does), and what is
 * left for the publisher itself.
 * Target: exactly one review-creating request and no per-finding request (no `POST …/pulls/{n}/comments`).
 * A missed target exits 1.
 *
 * Stages are separate functions (`setUp`, `openPullRequest`, `makeFindings`, `publish`) so the end-to-end
 * variant (the real app and runner, the scripted model answering with these findings) can reuse them
 * once review tasks are wired into the app.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ReviewFinding } from '../src/contract.ts';
import { publishReview, type ReviewOutcome } from '../src/github/publishers/review.ts';
import { GitHubStandIn, ProbotOctokitForTests, type ApiRequestRecord } from '../test/support/github-stand-in.ts';
import { generateRepo } from './support/big-repo.ts';

const REPO = 'acme/platform';
const AUTHOR = 'contributor';

/** One changed file of the pull request: where the edits are (1-based head lines). */
interface ChangedFile {
  path: string;
  /** Lines the pull request edited, in the head's numbering. */
  edited: number[];
  /** A line far from any edit (not in the diff). */
  untouched: number;
}

/** Starts the stand-in with the generated repository. */
export async function setUp(repoFiles: number): Promise<{ gh: GitHubStandIn; files: Record<string, string> }> {
  const gh = await GitHubStandIn.start();
  const generated = generateRepo(repoFiles);
  await gh.addRepo(REPO, generated, { permissions: { [AUTHOR]: 'write' } });
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

/** Route of a recorded request with ids and names templated: `POST /repos/{owner}/{repo}/pulls/{n}/reviews`. */
function route(r: ApiRequestRecord): string {
  const path = r.path
    .replace(/^\/repos\/[^/]+\/[^/]+/, '/repos/{owner}/{repo}')
    .replace(/\/\d+(?=\/|$)/g, '/{n}');
  return `${r.method} ${path}`;
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

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      files: { type: 'string', default: '40' },
      findings: { type: 'string', default: '30' },
      'repo-files': { type: 'string', default: '2000' },
    },
  });
  const runs = Number(values.runs);
  const fileCount = Number(values.files);
  const findingCount = Number(values.findings);
  const setupStart = performance.now();
  const { gh, files } = await setUp(Number(values['repo-files']));
  console.log(`repository: ${Object.keys(files).length} text files, set up in ${(performance.now() - setupStart).toFixed(0)} ms`);
  let failed = false;
  try {
    for (let run = 0; run < runs; run++) {
      const pr = await openPullRequest(gh, files, fileCount, run);
      const findings = makeFindings(pr.changed, findingCount);
      const { outcome, totalMs, toReviewMs, requests } = await publish(gh, pr, findings);
      const byRoute = new Map<string, number>();
      for (const r of requests) byRoute.set(route(r), (byRoute.get(route(r)) ?? 0) + 1);
      const reviewPosts = byRoute.get('POST /repos/{owner}/{repo}/pulls/{n}/reviews') ?? 0;
      const perFinding = (byRoute.get('POST /repos/{owner}/{repo}/pulls/{n}/comments') ?? 0) + (byRoute.get('POST /repos/{owner}/{repo}/issues/{n}/comments') ?? 0);
      const plan = outcome.plan;
      console.log(
        `run ${run + 1}: PR #${pr.number}, ${fileCount} files, ${findingCount} findings → ${plan.inline.length} inline, ${plan.outside.length} outside the diff, ${plan.belowThreshold.length} below P2` +
          ` | to posted review ${toReviewMs.toFixed(0)} ms, publish total ${totalMs.toFixed(0)} ms | ${requests.length} GitHub requests:`,
      );
      const standInMs = new Map<string, number>();
      for (const r of requests) standInMs.set(route(r), (standInMs.get(route(r)) ?? 0) + r.durationMs);
      for (const [r, n] of [...byRoute.entries()].sort()) console.log(`    ${String(n).padStart(3)} × ${r}  (stand-in ${standInMs.get(r)!.toFixed(0)} ms)`);
      const served = [...standInMs.values()].reduce((a, b) => a + b, 0);
      console.log(`    publisher and transport (total minus the stand-in's serving time): ${(totalMs - served).toFixed(0)} ms`);
      const bad = requests.filter((r) => r.status >= 400);
      if (reviewPosts !== 1 || perFinding !== 0 || bad.length || outcome.kind !== 'reviewed') {
        failed = true;
        console.log(`  MISSED: ${reviewPosts} review requests (target 1), ${perFinding} per-finding requests (target 0), ${bad.length} failed requests`);
      }
    }
  } finally {
    await gh.close();
  }
  console.log(failed ? 'target missed' : 'target met: one review request per run, no per-finding requests');
  return failed ? 1 : 0;
}

process.exitCode = await main();
