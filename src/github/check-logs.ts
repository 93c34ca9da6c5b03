/**
 * What failed on a commit, as untrusted context for a fix task: the failing check runs of the head SHA
 * (latest only, without the App's own), each with its output and annotations; for GitHub Actions jobs,
 * the job's steps and its log cut to the failing step (see job-log.ts); and the workflow files that
 * define those jobs, read from the head commit, so the agent can run the same command.
 *
 * Failing means a check run conclusion of `failure` or `timed_out` (https://docs.github.com/en/rest/checks/runs):
 * `action_required` waits for a person (e.g. approving a fork's workflows), `cancelled` is usually a
 * person or a concurrency group, `neutral`, `skipped` and `stale` are not failures; none of them is
 * something a code change fixes.
 *
 * APIs (installation token, `checks: read`, `actions: read`, `contents: read`):
 * - `GET /repos/{o}/{r}/commits/{ref}/check-runs?filter=latest` (https://docs.github.com/en/rest/checks/runs#list-check-runs-for-a-git-reference)
 * - `GET /repos/{o}/{r}/check-runs/{id}/annotations` (https://docs.github.com/en/rest/checks/runs#list-check-run-annotations)
 * - `GET /repos/{o}/{r}/actions/jobs/{job_id}` and `GET /repos/{o}/{r}/actions/runs/{run_id}` (https://docs.github.com/en/rest/actions)
 * - `GET /repos/{o}/{r}/actions/jobs/{job_id}/logs`, which answers 302 with a short-lived presigned URL on
 *   another host (https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run).
 *   The redirect is NOT followed by Octokit (`redirect: 'manual'`): the URL is fetched separately
 *   without any credentials, so the installation token never leaves for the log host.
 * - `GET /repos/{o}/{r}/contents/{path}?ref={head_sha}` for the workflow file.
 * For an Actions check run the job id is the check run id (GitHub uses the same id for both; the
 * check run's `details_url` `…/actions/runs/{run_id}/job/{job_id}` confirms it).
 */
import type { ContextItem } from '../contract.ts';
import { statusOf } from './client.ts';
import type { Octokit } from './client.ts';
import { DEFAULT_JOB_LOG_BYTES, cutJobLog } from './job-log.ts';
import type { CutJobLog, JobStep } from './job-log.ts';

/** Check run conclusions that count as failing (see the module doc for why only these). */
export const FAILING_CONCLUSIONS: readonly string[] = ['failure', 'timed_out'];

/** GitHub Actions' app slug (`app.slug` of its check runs). */
export const GITHUB_ACTIONS_SLUG = 'github-actions';

/** Bounds of {@link failingChecksContext}. Bytes are UTF-8 bytes. */
export interface CheckLogsLimits {
  /** Failing check runs read in detail (the others are listed by name in the summary). Default 5. */
  maxChecks: number;
  /** Output (title, summary, text together) kept per check run, bytes. Default 8 KiB. */
  maxOutputBytes: number;
  /** Annotations kept per check run. Default 30. */
  maxAnnotations: number;
  /** Bytes of annotations kept per check run. Default 4 KiB. */
  maxAnnotationBytes: number;
  /** Cut log kept per job, bytes. Default 12 KiB ({@link DEFAULT_JOB_LOG_BYTES}). */
  maxLogBytes: number;
  /** Bytes of a raw log downloaded at most; a longer log keeps its end (where failures are). Default 16 MiB. */
  maxDownloadBytes: number;
  /** Timeout of the log download, ms. Default 30 s. */
  downloadTimeoutMs: number;
  /** Bytes of a workflow file kept. Default 16 KiB. */
  maxWorkflowFileBytes: number;
}

/** Default {@link CheckLogsLimits}. */
export const DEFAULT_CHECK_LOGS_LIMITS: CheckLogsLimits = {
  maxChecks: 5,
  maxOutputBytes: 8 * 1024,
  maxAnnotations: 30,
  maxAnnotationBytes: 4 * 1024,
  maxLogBytes: DEFAULT_JOB_LOG_BYTES,
  maxDownloadBytes: 16 * 1024 * 1024,
  downloadTimeoutMs: 30_000,
  maxWorkflowFileBytes: 16 * 1024,
};

/** Why a job's log could not be read: `expired` (404/410: past retention or deleted), `forbidden` (403), `error` (5xx, network, bad redirect). */
export type LogUnavailableReason = 'expired' | 'forbidden' | 'error';

/** One failing check run, for the reply and the fix commit message. */
export interface FailingCheck {
  /** Check run name (for Actions: the job name, e.g. `test (ubuntu-latest, 20)`). */
  name: string;
  /** `failure` or `timed_out`. */
  conclusion: string;
  checkRunId: number;
  /** The check run's web page (`html_url`). */
  url: string;
  /** Slug of the app that created it, e.g. `github-actions`. */
  appSlug: string;
  /** For GitHub Actions jobs. */
  job?: {
    id: number;
    runId: number;
    /** The job's web page (its log), for the reply. */
    url: string;
    /** The step the log was cut to (first failed step), when known. */
    failingStep?: { number: number; name: string };
    /** The workflow file (`path` of the workflow run, e.g. `.github/workflows/ci.yml`). */
    workflowPath?: string;
    /** True when the log was read (and is in the context). */
    logRead: boolean;
  };
  /** Set when the check is an Actions job whose log could not be read; the check run's output is still in the context. */
  logUnavailable?: { reason: LogUnavailableReason; detail: string };
}

/** What {@link failingChecksContext} found, for the reply. */
export interface FailingChecksSummary {
  headSha: string;
  /** The failing checks read in detail, in the order of the API (newest first). */
  checks: FailingCheck[];
  /** Names of further failing checks not read (beyond `maxChecks`). */
  omitted: string[];
  /** Names of failing checks skipped because the App created them. */
  ownSkipped: string[];
}

/** Arguments of {@link failingChecksContext}. */
export interface FailingChecksOptions {
  owner: string;
  repo: string;
  /** The commit whose checks failed (the pull request's head), 40 hex. */
  headSha: string;
  /** This App's id: its own check runs are never read (they must not trigger fixes of themselves). */
  appId: number;
  /** Which check names to read (e.g. the repository's `autofix.checks` patterns); default all. */
  include?: (name: string) => boolean;
  limits?: Partial<CheckLogsLimits>;
}

/** A check run as the API returns it (the fields used here). */
interface CheckRunData {
  id: number;
  name: string;
  conclusion: string | null;
  html_url: string | null;
  details_url: string | null;
  output: { title: string | null; summary: string | null; text: string | null; annotations_count: number };
  app: { id: number; slug?: string; name: string } | null;
}

function bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Cuts `text` to at most `max` UTF-8 bytes (on a character boundary), marking the cut. */
export function clipBytes(text: string, max: number, marker = '\n[… cut …]'): string {
  if (bytes(text) <= max) return text;
  const room = Math.max(0, max - bytes(marker));
  let out = Buffer.from(text, 'utf8').subarray(0, room).toString('utf8');
  // A cut inside a multi-byte character leaves U+FFFD at the end: drop it.
  out = out.replace(/\uFFFD$/, '');
  return `${out}${marker}`;
}

/** True for a check run conclusion this module treats as failing ({@link FAILING_CONCLUSIONS}). */
export function isFailingConclusion(conclusion: string | null | undefined): boolean {
  return conclusion !== null && conclusion !== undefined && FAILING_CONCLUSIONS.includes(conclusion);
}

/** The Actions job of a check run: `{runId, jobId}` from `details_url`/`html_url` (`…/actions/runs/{run}/job/{job}`), else the check run id. */
export function actionsJobOf(run: Pick<CheckRunData, 'id' | 'details_url' | 'html_url' | 'app'>): { jobId: number; runId?: number } | undefined {
  if (run.app?.slug !== GITHUB_ACTIONS_SLUG) return undefined;
  for (const url of [run.details_url, run.html_url]) {
    const m = /\/actions\/runs\/(\d+)\/job\/(\d+)(?:[/?#]|$)/.exec(url ?? '');
    if (m) return { runId: Number(m[1]), jobId: Number(m[2]) };
  }
  return { jobId: run.id };
}

/**
 * Downloads a job's log: asks the API without following the redirect, then fetches the presigned
 * `Location` with no credentials, keeping at most `maxBytes` (the end of a longer log).
 * @returns the log text, or why it is unavailable.
 */
async function downloadJobLog(
  octokit: Octokit,
  opts: { owner: string; repo: string; jobId: number; maxBytes: number; timeoutMs: number },
): Promise<{ text: string; truncated: boolean } | { unavailable: { reason: LogUnavailableReason; detail: string } }> {
  let response;
  try {
    response = await octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', {
      owner: opts.owner,
      repo: opts.repo,
      job_id: opts.jobId,
      request: { redirect: 'manual' },
    });
  } catch (error) {
    const status = statusOf(error);
    const reason: LogUnavailableReason = status === 404 || status === 410 ? 'expired' : status === 403 ? 'forbidden' : 'error';
    return { unavailable: { reason, detail: status === undefined ? String((error as Error).message ?? error) : `GitHub answered ${status}` } };
  }
  const status = response.status as number;
  if (status === 200 && typeof response.data === 'string') {
    return keepTail(Buffer.from(response.data, 'utf8'), opts.maxBytes);
  }
  const location = (response.headers as Record<string, string | undefined>).location;
  let url: URL;
  try {
    // Relative locations resolve against the API URL (GitHub sends absolute ones).
    if (!location) throw new Error('no Location');
    url = new URL(location, response.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('not http(s)');
  } catch {
    return { unavailable: { reason: 'error', detail: `GitHub answered ${status} without a usable log location` } };
  }
  try {
    // No Authorization header: the URL is presigned; the installation token stays with api.github.com.
    const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(opts.timeoutMs) });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      const reason: LogUnavailableReason = res.status === 403 || res.status === 404 || res.status === 410 ? 'expired' : 'error';
      return { unavailable: { reason, detail: `the log host answered ${res.status}` } };
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of res.body) {
      const buf = Buffer.from(chunk as Uint8Array);
      chunks.push(buf);
      size += buf.length;
      while (size - (chunks[0]?.length ?? 0) >= opts.maxBytes && chunks.length > 1) {
        size -= chunks.shift()!.length;
        truncated = true;
      }
    }
    const kept = keepTail(Buffer.concat(chunks), opts.maxBytes);
    return { text: kept.text, truncated: truncated || kept.truncated };
  } catch (error) {
    return { unavailable: { reason: 'error', detail: `the log could not be downloaded: ${(error as Error).message}` } };
  }
}

/** The last `maxBytes` of `buf` as text, starting at a line boundary when cut. */
function keepTail(buf: Buffer, maxBytes: number): { text: string; truncated: boolean } {
  if (buf.length <= maxBytes) return { text: buf.toString('utf8'), truncated: false };
  const tail = buf.subarray(buf.length - maxBytes).toString('utf8');
  return { text: tail.slice(tail.indexOf('\n') + 1), truncated: true };
}

/** The check run's output and annotations as a context item body. */
async function checkRunItem(octokit: Octokit, opts: FailingChecksOptions, run: CheckRunData, limits: CheckLogsLimits): Promise<ContextItem> {
  const parts = [`Check run: ${run.name}`, `Conclusion: ${run.conclusion}`, `App: ${run.app?.name ?? 'unknown'}`];
  const output: string[] = [];
  if (run.output.title) output.push(`Output title: ${run.output.title}`);
  if (run.output.summary) output.push(`Output summary:\n${run.output.summary}`);
  if (run.output.text) output.push(`Output text:\n${run.output.text}`);
  if (output.length) parts.push(clipBytes(output.join('\n\n'), limits.maxOutputBytes));
  if (run.output.annotations_count > 0) {
    try {
      const { data } = await octokit.rest.checks.listAnnotations({
        owner: opts.owner,
        repo: opts.repo,
        check_run_id: run.id,
        per_page: Math.min(100, limits.maxAnnotations),
      });
      const lines = data.slice(0, limits.maxAnnotations).map((a) => {
        const where = a.start_line && a.end_line && a.end_line !== a.start_line ? `${a.start_line}-${a.end_line}` : String(a.start_line ?? '');
        const title = a.title ? `${a.title}: ` : '';
        return `- ${a.path}${where ? `:${where}` : ''} (${a.annotation_level ?? 'failure'}): ${title}${(a.message ?? '').replace(/\s*\n\s*/g, ' ⏎ ')}`;
      });
      const more = run.output.annotations_count - lines.length;
      parts.push(
        clipBytes(
          `Annotations (${lines.length} of ${run.output.annotations_count}):\n${lines.join('\n')}${more > 0 ? `\n[… ${more} more annotations omitted …]` : ''}`,
          limits.maxAnnotationBytes,
        ),
      );
    } catch (error) {
      parts.push(`Annotations: could not be read (${statusOf(error) ?? 'error'}).`);
    }
  }
  return {
    kind: 'check_run',
    title: `Failing check "${run.name}" (${run.conclusion})`,
    body: parts.join('\n\n'),
    ...(run.html_url ? { url: run.html_url } : {}),
    trust: 'data',
  };
}

/** The job's steps with their conclusions, one per line, the failing one marked. */
function stepsList(steps: JobStep[], failing: { number: number } | undefined): string {
  return steps.map((s) => `${s.number}. ${s.name}: ${s.conclusion ?? 'pending'}${failing?.number === s.number ? '  ← failed here' : ''}`).join('\n');
}

function logItemBody(steps: JobStep[], cut: CutJobLog, truncatedDownload: boolean): string {
  const where =
    cut.scope === 'whole_log'
      ? `the whole job log (${cut.totalLines} lines; the failing step could not be located)`
      : `step ${cut.step ? `${cut.step.number} "${cut.step.name}"` : '(failing)'}, ${cut.stepLines} of the job's ${cut.totalLines} lines`;
  const how = cut.shownLines < cut.stepLines ? `, cut to ${cut.shownLines} lines around the first errors` : '';
  return [
    `Steps:\n${stepsList(steps, cut.step)}`,
    `Log of ${where}${how}; timestamps and colour codes removed${truncatedDownload ? '; the download kept only the end of a very long log' : ''}:`,
    cut.text,
  ].join('\n\n');
}

/** The latest failing check runs of `headSha` that `include` selects, split into others' and the App's own. */
async function listFailing(
  octokit: Octokit,
  opts: Pick<FailingChecksOptions, 'owner' | 'repo' | 'headSha' | 'appId' | 'include'>,
): Promise<{ failing: CheckRunData[]; ownSkipped: string[] }> {
  const runs = (await octokit.paginate(octokit.rest.checks.listForRef, {
    owner: opts.owner,
    repo: opts.repo,
    ref: opts.headSha,
    filter: 'latest',
    per_page: 100,
  })) as unknown as CheckRunData[];
  const failing = runs.filter((r) => isFailingConclusion(r.conclusion) && (opts.include?.(r.name) ?? true));
  return { failing: failing.filter((r) => r.app?.id !== opts.appId), ownSkipped: failing.filter((r) => r.app?.id === opts.appId).map((r) => r.name) };
}

/**
 * The names of the latest failing check runs of `headSha`, the App's own excluded: one cheap listing
 * (no logs), for deciding whether to start a fix (autofix policy) before {@link failingChecksContext}
 * reads everything.
 * @throws RequestError when the check runs cannot be listed.
 */
export async function failingCheckNames(
  octokit: Octokit,
  opts: Pick<FailingChecksOptions, 'owner' | 'repo' | 'headSha' | 'appId' | 'include'>,
): Promise<string[]> {
  return [...new Set((await listFailing(octokit, opts)).failing.map((r) => r.name))];
}

/**
 * Reads the failing checks of `headSha` (see the module doc) and returns them as context items and a
 * summary. Items, in order, per failing check: `check_run` (output and annotations), then for an
 * Actions job `check_log` (steps and cut log; absent when the log is unavailable, which the summary
 * records in `logUnavailable`); then one `workflow_file` per workflow involved. Every item is
 * `trust: 'data'`.
 * @throws RequestError when the check runs cannot be listed (other read failures are recorded, not thrown).
 */
export async function failingChecksContext(
  octokit: Octokit,
  opts: FailingChecksOptions,
): Promise<{ items: ContextItem[]; summary: FailingChecksSummary }> {
  const limits = { ...DEFAULT_CHECK_LOGS_LIMITS, ...opts.limits };
  const { owner, repo, headSha } = opts;
  const { failing: candidates, ownSkipped } = await listFailing(octokit, opts);
  const chosen = candidates.slice(0, limits.maxChecks);
  const summary: FailingChecksSummary = { headSha, checks: [], omitted: candidates.slice(limits.maxChecks).map((r) => r.name), ownSkipped };
  const items: ContextItem[] = [];
  const workflows = new Map<string, { path: string; runId: number }>();

  for (const run of chosen) {
    items.push(await checkRunItem(octokit, opts, run, limits));
    const check: FailingCheck = {
      name: run.name,
      conclusion: run.conclusion ?? 'failure',
      checkRunId: run.id,
      url: run.html_url ?? run.details_url ?? '',
      appSlug: run.app?.slug ?? '',
    };
    summary.checks.push(check);
    const ref = actionsJobOf(run);
    if (!ref) continue;
    let job;
    try {
      job = (await octokit.rest.actions.getJobForWorkflowRun({ owner, repo, job_id: ref.jobId })).data;
    } catch (error) {
      check.logUnavailable = { reason: 'error', detail: `the job could not be read (${statusOf(error) ?? 'error'})` };
      continue;
    }
    const steps: JobStep[] = (job.steps ?? []).map((s) => ({
      name: s.name,
      number: s.number,
      conclusion: s.conclusion,
      started_at: s.started_at ?? null,
      completed_at: s.completed_at ?? null,
    }));
    check.job = { id: job.id, runId: job.run_id, url: job.html_url ?? check.url, logRead: false };
    if (!workflows.has(String(job.run_id))) {
      try {
        const { data: wr } = await octokit.rest.actions.getWorkflowRun({ owner, repo, run_id: job.run_id });
        const path = (wr.path ?? '').replace(/@.*$/, '');
        if (path.startsWith('.github/workflows/')) workflows.set(String(job.run_id), { path, runId: job.run_id });
      } catch {
        /* the workflow file is a convenience: go on without it */
      }
    }
    const wf = workflows.get(String(job.run_id));
    if (wf) check.job.workflowPath = wf.path;
    const log = await downloadJobLog(octokit, { owner, repo, jobId: job.id, maxBytes: limits.maxDownloadBytes, timeoutMs: limits.downloadTimeoutMs });
    if ('unavailable' in log) {
      check.logUnavailable = log.unavailable;
      items.push({
        kind: 'check_log',
        title: `Job "${job.name}": log unavailable`,
        body: `Steps:\n${stepsList(steps, undefined)}\n\nThe log could not be read (${log.unavailable.reason}: ${log.unavailable.detail}).`,
        url: check.job.url,
        trust: 'data',
      });
      continue;
    }
    const cut = cutJobLog(log.text, { steps, maxBytes: limits.maxLogBytes });
    if (cut.step) check.job.failingStep = cut.step;
    check.job.logRead = true;
    items.push({
      kind: 'check_log',
      title: `Job "${job.name}"${cut.step ? `, failing step ${cut.step.number} "${cut.step.name}"` : ''}`,
      body: logItemBody(steps, cut, log.truncated),
      url: check.job.url,
      trust: 'data',
    });
  }

  const seenPaths = new Set<string>();
  for (const { path } of workflows.values()) {
    if (seenPaths.has(path)) continue;
    seenPaths.add(path);
    try {
      const { data } = await octokit.rest.repos.getContent({ owner, repo, path, ref: headSha, mediaType: { format: 'raw' } });
      const text = typeof data === 'string' ? data : '';
      items.push({
        kind: 'workflow_file',
        title: `${path} (at ${headSha.slice(0, 7)})`,
        body: clipBytes(text, limits.maxWorkflowFileBytes),
        trust: 'data',
      });
    } catch {
      /* deleted or renamed on the head commit: the log still says what ran */
    }
  }
  return { items, summary };
}
