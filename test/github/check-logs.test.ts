import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { actionsJobOf, clipBytes, failingCheckNames, failingChecksContext, isFailingConclusion } from '../../src/github/check-logs.ts';
import { ASSERTION_MESSAGE, CI_WORKFLOW, FAILING_STEP_NAME, failingTestJobSteps } from '../support/ci-logs.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../support/github-stand-in.ts';

const REPO = 'octo/app';
const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('pure helpers', () => {
  test('failing conclusions are failure and timed_out only', () => {
    expect(['failure', 'timed_out'].every(isFailingConclusion)).toBe(true);
    for (const c of ['success', 'cancelled', 'action_required', 'neutral', 'skipped', 'stale', null, undefined]) expect(isFailingConclusion(c)).toBe(false);
  });

  test('an Actions check run maps to its job; other apps have none', () => {
    const app = { id: 15368, slug: 'github-actions', name: 'GitHub Actions' };
    expect(actionsJobOf({ id: 5, app, details_url: 'https://github.com/o/r/actions/runs/77/job/88', html_url: null })).toEqual({ runId: 77, jobId: 88 });
    expect(actionsJobOf({ id: 5, app, details_url: null, html_url: null })).toEqual({ jobId: 5 });
    expect(actionsJobOf({ id: 5, app: { id: 1, slug: 'circleci', name: 'CircleCI' }, details_url: 'https://x/actions/runs/1/job/2', html_url: null })).toBeUndefined();
  });

  test('clipBytes cuts on a character boundary with a marker', () => {
    expect(clipBytes('short', 100)).toBe('short');
    const cut = clipBytes('é'.repeat(100), 51);
    expect(bytes(cut)).toBeLessThanOrEqual(51);
    expect(cut).toMatch(/^é+\n\[… cut …\]$/);
  });
});

describe('failingChecksContext against the GitHub stand-in', () => {
  let gh: GitHubStandIn;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let token: string;
  let head: string;
  let testJobId: number;

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo(REPO, { 'README.md': '# app\n', '.github/workflows/ci.yml': CI_WORKFLOW }, { permissions: { alice: 'write' } });
    head = await gh.commitFiles(REPO, 'feature', { 'src/parse.js': 'export const parseAmount = (s) => Number(s.replace(",", ""));\n' });
    await gh.addPull(REPO, { head: 'feature', title: 'Parse amounts', user: 'alice' });
    const { jobs } = await gh.addWorkflowRun(REPO, {
      headSha: head,
      jobs: [{ name: 'test', steps: failingTestJobSteps() }, { name: 'lint' }],
    });
    testJobId = Number(jobs[0]!.id);
    gh.addCheckRun(REPO, {
      headSha: head,
      name: 'typecheck',
      output: { title: '2 errors', summary: 'tsc found 2 errors', text: 'src/parse.js(1,1): error TS7006' },
      annotations: [
        { path: 'src/parse.js', startLine: 1, message: "Parameter 's' implicitly has an 'any' type." },
        { path: 'src/other.js', startLine: 3, endLine: 5, level: 'warning', title: 'unused', message: 'x is never read\nsecond line' },
      ],
    });
    gh.addCheckRun(REPO, { headSha: head, name: 'Codex Cloud', app: 'own', output: { title: 'own check' } });
    gh.addCheckRun(REPO, { headSha: head, name: 'deploy-preview', conclusion: 'cancelled' });
    gh.addCheckRun(REPO, { headSha: head, name: 'flaky', conclusion: 'failure' });
    gh.addCheckRun(REPO, { headSha: head, name: 'flaky', conclusion: 'success' });
    token = gh.createInstallationToken(1).token;
    octokit = new ProbotOctokitForTests({ auth: { token }, baseUrl: gh.apiUrl });
  });
  afterAll(async () => gh.close());

  test('reads the failing checks, the job log cut to the failing step, and the workflow file; never the App\'s own', async () => {
    const before = gh.logRequests.length;
    const { items, summary } = await failingChecksContext(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId });
    expect(summary.checks.map((c) => c.name).sort()).toEqual(['test', 'typecheck']);
    expect(summary.ownSkipped).toEqual(['Codex Cloud']);
    expect(summary.omitted).toEqual([]);
    expect(items.every((i) => i.trust === 'data')).toBe(true);
    expect(items.map((i) => i.kind).sort()).toEqual(['check_log', 'check_run', 'check_run', 'workflow_file']);

    const testCheck = summary.checks.find((c) => c.name === 'test')!;
    expect(testCheck).toMatchObject({ conclusion: 'failure', appSlug: 'github-actions', checkRunId: testJobId });
    expect(testCheck.job).toMatchObject({ id: testJobId, logRead: true, failingStep: { number: 5, name: FAILING_STEP_NAME }, workflowPath: '.github/workflows/ci.yml' });
    expect(testCheck.job!.url).toBe(`${gh.url}/${REPO}/actions/runs/${testCheck.job!.runId}/job/${testJobId}`);
    expect(testCheck.logUnavailable).toBeUndefined();

    const log = items.find((i) => i.kind === 'check_log')!;
    expect(log.title).toBe(`Job "test", failing step 5 "${FAILING_STEP_NAME}"`);
    expect(log.body).toContain(ASSERTION_MESSAGE);
    expect(log.body).toContain('5. Run tests: failure  ← failed here');
    expect(log.body).toContain('4. Install dependencies: success');
    expect(bytes(log.body)).toBeLessThan(13 * 1024);
    expect((log.body.match(/handles case/g) ?? []).length).toBeLessThan(60);
    expect(log.url).toBe(testCheck.job!.url);

    const testRun = items.find((i) => i.kind === 'check_run' && i.title === 'Failing check "test" (failure)')!;
    expect(testRun.body).toContain('- .github:1 (failure): Process completed with exit code 1.');
    const typecheck = items.find((i) => i.kind === 'check_run' && i.title?.includes('typecheck'))!;
    expect(typecheck.body).toContain('Output title: 2 errors');
    expect(typecheck.body).toContain('src/parse.js(1,1): error TS7006');
    expect(typecheck.body).toContain("- src/parse.js:1 (failure): Parameter 's' implicitly has an 'any' type.");
    expect(typecheck.body).toContain('- src/other.js:3-5 (warning): unused: x is never read ⏎ second line');
    expect(items.some((i) => i.body.includes('own check'))).toBe(false);

    const workflow = items.find((i) => i.kind === 'workflow_file')!;
    expect(workflow.title).toBe(`.github/workflows/ci.yml (at ${head.slice(0, 7)})`);
    expect(workflow.body).toBe(CI_WORKFLOW);

    // The log came from the presigned URL on the other host, without the installation token.
    const logCalls = gh.logRequests.slice(before);
    expect(logCalls).toHaveLength(1);
    expect(logCalls[0]).toMatchObject({ status: 200 });
    expect(logCalls[0]!.authorization).toBeUndefined();
    expect(gh.requestsTo(`GET /repos/octo/app/actions/jobs/${testJobId}/logs`).at(-1)).toMatchObject({ status: 302, token });
  });

  test('failingCheckNames: the latest failing checks, not the App\'s own, without reading logs', async () => {
    const before = gh.logRequests.length;
    const names = await failingCheckNames(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId });
    expect(names.sort()).toEqual(['test', 'typecheck']);
    expect(gh.logRequests.length).toBe(before);
  });

  test('a very long log keeps its end (where the failure is) within the download cap, and says so', async () => {
    const { items, summary } = await failingChecksContext(octokit, {
      owner: 'octo',
      repo: 'app',
      headSha: head,
      appId: gh.appId,
      include: (n) => n === 'test',
      limits: { maxDownloadBytes: 128 * 1024 },
    });
    expect(summary.checks[0]!.job).toMatchObject({ logRead: true, failingStep: { number: 5 } });
    const log = items.find((i) => i.kind === 'check_log')!;
    expect(log.body).toContain('the download kept only the end of a very long log');
    expect(log.body).toContain(ASSERTION_MESSAGE);
  });

  test('include narrows the checks read', async () => {
    const { summary } = await failingChecksContext(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId, include: (n) => n === 'typecheck' });
    expect(summary.checks.map((c) => c.name)).toEqual(['typecheck']);
  });

  test('maxChecks bounds the checks read; the rest are named', async () => {
    const { summary, items } = await failingChecksContext(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId, limits: { maxChecks: 1 } });
    expect(summary.checks).toHaveLength(1);
    expect(summary.omitted).toHaveLength(1);
    expect(items.filter((i) => i.kind === 'check_run')).toHaveLength(1);
  });

  test('expired logs (404): the check run output is still there and the log is marked unavailable', async () => {
    gh.setJobLogStatus(testJobId, 404);
    try {
      const { items, summary } = await failingChecksContext(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId });
      const testCheck = summary.checks.find((c) => c.name === 'test')!;
      expect(testCheck.logUnavailable).toEqual({ reason: 'expired', detail: 'GitHub answered 404' });
      expect(testCheck.job).toMatchObject({ logRead: false });
      expect(items.some((i) => i.kind === 'check_run' && i.title === 'Failing check "test" (failure)')).toBe(true);
      const log = items.find((i) => i.kind === 'check_log')!;
      expect(log.title).toBe('Job "test": log unavailable');
      expect(log.body).toContain('5. Run tests: failure');
      expect(log.body).not.toContain(ASSERTION_MESSAGE);
    } finally {
      gh.setJobLogStatus(testJobId, undefined);
    }
  });

  test('a failing logs endpoint (500) is an unavailable log, not a failure of the whole read', async () => {
    gh.failNext('GET /repos/{owner}/{repo}/actions/jobs/{id}/logs', { status: 500 });
    const { summary } = await failingChecksContext(octokit, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId });
    expect(summary.checks.find((c) => c.name === 'test')!.logUnavailable).toEqual({ reason: 'error', detail: 'GitHub answered 500' });
  });

  test('a token without checks: read cannot list the check runs', async () => {
    const limited = gh.createInstallationToken(1, { permissions: { contents: 'read', metadata: 'read' } }).token;
    const client = new ProbotOctokitForTests({ auth: { token: limited }, baseUrl: gh.apiUrl });
    await expect(failingChecksContext(client, { owner: 'octo', repo: 'app', headSha: head, appId: gh.appId })).rejects.toMatchObject({ status: 403 });
  });
});
