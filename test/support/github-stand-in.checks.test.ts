/** The stand-in's Checks and Actions endpoints: check runs (latest/all, pagination), suites, annotations, workflow runs, jobs, job logs. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GITHUB_ACTIONS_APP, GitHubStandIn, ProbotOctokitForTests, actionsJobLog, statusOf } from './github-stand-in.ts';

const REPO = 'octo/checks';

describe('GitHubStandIn checks and actions', () => {
  let gh: GitHubStandIn;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let head: string;
  const base = { owner: 'octo', repo: 'checks' };

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo(REPO, { 'README.md': '# r\n' }, { permissions: { alice: 'write' } });
    head = await gh.commitFiles(REPO, 'feature', { 'a.txt': 'a\n' });
    await gh.addPull(REPO, { head: 'feature', title: 'A', user: 'alice' });
    octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
  });
  afterAll(async () => gh.close());

  test('check runs: latest per app and name by default, every attempt with filter=all, paginated like GitHub', async () => {
    for (let i = 0; i < 5; i++) gh.addCheckRun(REPO, { headSha: head, name: `lint-${i}`, conclusion: 'success' });
    gh.addCheckRun(REPO, { headSha: head, name: 'lint-0', conclusion: 'failure' });
    const latest = await octokit.rest.checks.listForRef({ ...base, ref: head });
    expect(latest.data.total_count).toBe(5);
    expect(latest.data.check_runs.find((c) => c.name === 'lint-0')).toMatchObject({ conclusion: 'failure', head_sha: head, pull_requests: [{ number: 1 }] });
    const all = await octokit.rest.checks.listForRef({ ...base, ref: head, filter: 'all' });
    expect(all.data.total_count).toBe(6);
    const page = await octokit.rest.checks.listForRef({ ...base, ref: 'feature', per_page: 2 });
    expect(page.data.check_runs).toHaveLength(2);
    expect(page.headers.link).toContain('rel="next"');
    const paged = await octokit.paginate(octokit.rest.checks.listForRef, { ...base, ref: head, per_page: 2 });
    expect(paged).toHaveLength(5);
    const byName = await octokit.rest.checks.listForRef({ ...base, ref: head, check_name: 'lint-3' });
    expect(byName.data.check_runs.map((c) => c.name)).toEqual(['lint-3']);
  });

  test('a check run of the App carries the App; suites list per app', async () => {
    const created = gh.addCheckRun(REPO, { headSha: head, name: 'Codex Cloud', app: 'own', output: { title: 't', summary: 's' } });
    const { data } = await octokit.rest.checks.get({ ...base, check_run_id: Number(created.id) });
    expect(data.app).toMatchObject({ id: gh.appId, slug: gh.appSlug });
    expect(data.output).toMatchObject({ title: 't', summary: 's', text: null, annotations_count: 0 });
    const suites = await octokit.rest.checks.listSuitesForRef({ ...base, ref: head });
    expect(suites.data.check_suites.map((s) => s.app?.slug).sort()).toEqual([gh.appSlug, 'stand-in-ci']);
    const own = suites.data.check_suites.find((s) => s.app?.id === gh.appId)!;
    expect(own).toMatchObject({ status: 'completed', conclusion: 'failure', head_sha: head, head_branch: 'feature' });
    expect((await octokit.rest.checks.getSuite({ ...base, check_suite_id: own.id })).data.id).toBe(own.id);
  });

  test('workflow runs, jobs, annotations, and the job log behind a presigned redirect on another origin', async () => {
    const { run, jobs, checkRuns, suite } = await gh.addWorkflowRun(REPO, {
      headSha: head,
      jobs: [{ name: 'test', steps: [{ name: 'Set up job' }, { name: 'Run npm test', lines: ['boom'], conclusion: 'failure' }, { name: 'Complete job' }] }],
    });
    expect(suite).toMatchObject({ conclusion: 'failure', app: { slug: GITHUB_ACTIONS_APP.slug } });
    expect(checkRuns[0]!.id).toBe(jobs[0]!.id);
    const wr = (await octokit.rest.actions.getWorkflowRun({ ...base, run_id: Number(run.id) })).data;
    expect(wr).toMatchObject({ path: '.github/workflows/ci.yml', head_sha: head, conclusion: 'failure', check_suite_id: suite.id, head_branch: 'feature' });
    const listed = (await octokit.rest.actions.listJobsForWorkflowRun({ ...base, run_id: wr.id })).data;
    expect(listed.total_count).toBe(1);
    const job = (await octokit.rest.actions.getJobForWorkflowRun({ ...base, job_id: Number(jobs[0]!.id) })).data;
    expect(job.steps?.map((s) => [s.number, s.name, s.conclusion])).toEqual([[1, 'Set up job', 'success'], [2, 'Run npm test', 'failure'], [3, 'Complete job', 'success']]);
    const notes = (await octokit.rest.checks.listAnnotations({ ...base, check_run_id: job.id })).data;
    expect(notes).toEqual([expect.objectContaining({ path: '.github', start_line: 1, annotation_level: 'failure', message: 'Process completed with exit code 1.' })]);

    const redirect = await octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...base, job_id: job.id, request: { redirect: 'manual' } });
    expect(redirect.status).toBe(302);
    const location = new URL(String(redirect.headers.location));
    expect(location.origin).toBe(gh.logHostUrl);
    expect(location.origin).not.toBe(gh.url);
    // Response.text() drops a BOM: read the bytes.
    const text = Buffer.from(await (await fetch(location)).arrayBuffer()).toString('utf8');
    expect(text.startsWith('\uFEFF')).toBe(true);
    expect(text).toMatch(/^\uFEFF\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z Current runner version/);
    expect(text).toContain('Z ##[group]Run npm test\n');
    expect(text).toContain('Z boom\n');
    expect(text).toContain('Z ##[error]Process completed with exit code 1.\n');
    // A tampered signature is refused, like an expired presigned URL.
    location.searchParams.set('sig', 'forged');
    expect((await fetch(location)).status).toBe(403);

    gh.setJobLogStatus(job.id, 404);
    expect(await statusOf(octokit.request('GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs', { ...base, job_id: job.id }))).toBe(404);
    gh.setJobLogStatus(job.id, undefined);
  });

  test('actionsJobLog: steps with times at second precision, lines inside them', () => {
    const built = actionsJobLog([{ name: 'Set up job' }, { name: 'Build', command: 'make', lines: ['cc -o x'], durationMs: 2500 }, { name: 'Skipped', conclusion: 'skipped' }], Date.parse('2025-01-01T00:00:00.400Z'));
    expect(built.steps[1]).toEqual({ name: 'Build', status: 'completed', conclusion: 'success', number: 2, started_at: expect.stringMatching(/Z$/), completed_at: expect.any(String) });
    expect(built.steps[2]!.started_at).toBe(built.steps[2]!.completed_at);
    expect(built.log).toContain('##[group]Run make');
  });

  test('actions endpoints need actions: read', async () => {
    const limited = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1, { permissions: { checks: 'read' } }).token }, baseUrl: gh.apiUrl });
    expect(await statusOf(limited.rest.actions.getJobForWorkflowRun({ ...base, job_id: 1 }))).toBe(403);
    expect(await statusOf(limited.rest.checks.listForRef({ ...base, ref: head }))).toBe(200);
  });
});
