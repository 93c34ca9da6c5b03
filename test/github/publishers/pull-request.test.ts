import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { TaskResult } from '../../../src/contract.ts';
import {
  branchDecision,
  nextBranchName,
  publishPullRequest,
  workCommitMessage,
  workTitle,
  type PublishCheckpoint,
  type PullRequestWork,
} from '../../../src/github/publishers/pull-request.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../../support/github-stand-in.ts';

describe('pure parts', () => {
  test('nextBranchName counts up from the first name', () => {
    expect(nextBranchName('codex/1-x', 'codex/1-x')).toBe('codex/1-x-2');
    expect(nextBranchName('codex/1-x', 'codex/1-x-2')).toBe('codex/1-x-3');
    expect(nextBranchName('codex/1-x', 'codex/1-x-10')).toBe('codex/1-x-11');
    // A stored name that is not of the sequence restarts it.
    expect(nextBranchName('codex/1-x', 'codex/1-y')).toBe('codex/1-x-2');
    expect(nextBranchName('codex/1-x', 'codex/1-x-abc')).toBe('codex/1-x-2');
  });

  test('branchDecision: create a missing branch, reuse ours, move one left at the base, leave others', () => {
    const ours = { commitSha: 'c'.repeat(40), baseSha: 'b'.repeat(40) };
    expect(branchDecision(undefined, ours)).toBe('create');
    expect(branchDecision('c'.repeat(40), ours)).toBe('reuse');
    expect(branchDecision('b'.repeat(40), ours)).toBe('fast-forward');
    expect(branchDecision('d'.repeat(40), ours)).toBe('taken');
  });

  test('workTitle: the runner title, else the issue title', () => {
    expect(workTitle({ pullRequest: { title: 'Fix add', body: '' } }, 'Issue')).toBe('Fix add');
    expect(workTitle({ pullRequest: { title: '  ', body: '' } }, 'Issue')).toBe('Issue');
  });

  test("workCommitMessage: the runner's message, else the title as subject and the pull request body as the commit body", () => {
    expect(workCommitMessage({ commitMessage: 'Fix add\n\nBody', pullRequest: { title: 'Fix add', body: 'Body' } }, 'Fix add')).toBe('Fix add\n\nBody');
    expect(workCommitMessage({ commitMessage: '', pullRequest: { title: '', body: '## Summary\n- x' } }, 'Issue')).toBe('Issue\n\n## Summary\n- x');
    expect(workCommitMessage({ commitMessage: ' ', pullRequest: { title: '', body: '' } }, 'Issue')).toBe('Issue');
  });
});

describe('publishPullRequest against the GitHub stand-in', () => {
  const REPO = 'acme/pub';
  let gh: GitHubStandIn;
  let baseSha: string;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    ({ headSha: baseSha } = await gh.addRepo(REPO, { 'src/a.js': 'a\n' }, { permissions: { maintainer: 'write' } }));
    const token = gh.createInstallationToken(1).token;
    octokit = new ProbotOctokitForTests({ auth: { token }, baseUrl: gh.apiUrl });
  });

  afterAll(async () => {
    await gh?.close();
  });

  function work(title: string, content = 'fixed\n'): PullRequestWork {
    const number = gh.addIssue(REPO, { title: 'the issue', body: 'x', user: 'maintainer' }).number as number;
    const result: TaskResult = {
      version: 1,
      id: 'task_x',
      status: 'succeeded',
      stopReason: 'completed',
      baseSha,
      summary: 'done',
      changes: [{ action: 'modify', path: 'src/a.js', mode: '100644', contentBase64: Buffer.from(content).toString('base64') }],
      commitMessage: 'Fix a',
      pullRequest: { title, body: 'the body' },
      commands: [],
      findings: [],
      plan: [],
      usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 },
    };
    return {
      owner: 'acme',
      repo: 'pub',
      issueNumber: number,
      issueTitle: 'the issue',
      requester: { login: 'maintainer', id: Number(gh.addUser('maintainer').id) },
      baseRef: 'main',
      baseSha,
      result,
      partial: false,
      draft: false,
      model: 'gpt-test',
      taskUrl: 'http://127.0.0.1/tasks/x?key=k',
    };
  }

  /** A store stand-in: the checkpoint as the task store would keep it, and every save in order. */
  function checkpoints(): { checkpoint: PublishCheckpoint; saves: PublishCheckpoint[]; save: (p: PublishCheckpoint) => void } {
    const checkpoint: PublishCheckpoint = {};
    const saves: PublishCheckpoint[] = [];
    return { checkpoint, saves, save: (p) => (saves.push(p), Object.assign(checkpoint, p)) };
  }

  const branches = async (prefix: string) =>
    (await gh.git(REPO, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/codex/')).split('\n').filter((b) => b.startsWith(prefix));

  test('stores the branch name before the commit, the commit before the branch; parent is the dispatched base', async () => {
    const w = work('Fix a');
    const c = checkpoints();
    const pr = await publishPullRequest(octokit, w, c.checkpoint, c.save);
    expect(pr.created).toBe(true);
    expect(c.saves.map((s) => Object.keys(s)[0])).toEqual(['branch', 'commitSha']);
    expect(c.checkpoint.branch).toBe(`codex/${w.issueNumber}-fix-a`);
    expect((await gh.git(REPO, 'rev-parse', `${c.checkpoint.commitSha}^`)).trim()).toBe(baseSha);
    expect((await gh.git(REPO, 'rev-parse', c.checkpoint.branch!)).trim()).toBe(c.checkpoint.commitSha);
  });

  test('a crash before the pull request: the rerun reuses the branch and commit, one branch, one pull request', async () => {
    const w = work('Crash before PR');
    const c = checkpoints();
    gh.failNext('POST /repos/{owner}/{repo}/pulls', { status: 502 });
    await expect(publishPullRequest(octokit, w, c.checkpoint, c.save)).rejects.toMatchObject({ status: 502 });
    const commits = gh.requestsTo('POST /repos/{owner}/{repo}/git/commits').length;
    const again = await publishPullRequest(octokit, w, { ...c.checkpoint }, c.save);
    expect(again.created).toBe(true);
    expect(gh.requestsTo('POST /repos/{owner}/{repo}/git/commits')).toHaveLength(commits); // no second commit
    expect(await branches(`codex/${w.issueNumber}-`)).toEqual([`codex/${w.issueNumber}-crash-before-pr`]);
    // And a third run (a crash after the pull request) finds the same pull request.
    const third = await publishPullRequest(octokit, w, { ...c.checkpoint }, c.save);
    expect(third).toMatchObject({ number: again.number, created: false });
    expect((await gh.pulls(REPO)).filter((p) => (p.head as { ref: string }).ref === c.checkpoint.branch)).toHaveLength(1);
  });

  test('a crash after the branch name was stored but before the ref: the rerun creates that branch', async () => {
    const w = work('Name stored');
    const branch = `codex/${w.issueNumber}-name-stored`;
    const pr = await publishPullRequest(octokit, w, { branch }, () => undefined);
    expect(pr.created).toBe(true);
    expect(await branches(`codex/${w.issueNumber}-`)).toEqual([branch]);
  });

  test('a branch of that name at the dispatched base is moved forward; one holding other work is left alone', async () => {
    const w1 = work('At base');
    await gh.git(REPO, 'update-ref', `refs/heads/codex/${w1.issueNumber}-at-base`, baseSha);
    const c1 = checkpoints();
    await publishPullRequest(octokit, w1, c1.checkpoint, c1.save);
    expect(c1.checkpoint.branch).toBe(`codex/${w1.issueNumber}-at-base`);
    expect((await gh.git(REPO, 'rev-parse', c1.checkpoint.branch!)).trim()).toBe(c1.checkpoint.commitSha);

    const w2 = work('Taken');
    const other = await gh.commitFiles(REPO, `codex/${w2.issueNumber}-taken`, { 'other.txt': 'someone else\n' }, { from: baseSha });
    const c2 = checkpoints();
    await publishPullRequest(octokit, w2, c2.checkpoint, c2.save);
    expect(c2.checkpoint.branch).toBe(`codex/${w2.issueNumber}-taken-2`);
    expect(c2.saves.filter((s) => s.branch)).toEqual([{ branch: `codex/${w2.issueNumber}-taken` }, { branch: `codex/${w2.issueNumber}-taken-2` }]);
    expect((await gh.git(REPO, 'rev-parse', `codex/${w2.issueNumber}-taken`)).trim()).toBe(other);
  });

  test("the pull request body carries the app's Checks run: a failed setup and a claim of passing tests the last test run refutes", async () => {
    const w = work('Claims green');
    w.result = {
      ...w.result,
      pullRequest: { title: 'Claims green', body: '## Summary\n- fixed\n\n## Testing\n- All tests pass' },
      commitMessage: '',
      commands: [
        { phase: 'setup', command: ['npm', 'ci'], workdir: '.', exitCode: 1, durationMs: 5000, timedOut: false },
        { phase: 'agent', command: ['npm', 'test'], workdir: '.', exitCode: 1, durationMs: 70_000, timedOut: false },
      ],
      setup: { status: 'failed', reason: 'npm (package-lock.json) exited with 1; the agent went on without it' },
    };
    const c = checkpoints();
    const pr = await publishPullRequest(octokit, w, c.checkpoint, c.save);
    const body = String((await gh.pulls(REPO)).find((p) => p.number === pr.number)!.body);
    expect(body).toContain('### Checks run');
    expect(body).toContain('- `npm test` · ❌ exit 1 · 1m 10s');
    expect(body).toContain('- Setup (dependency install): ❌ failed: npm (package-lock.json) exited with 1');
    expect(body).toContain("**Note:** the last run of `npm test` exited 1; the summary's claim that tests pass is not supported.");
    // Without a runner commit message, the subject is the title and the body the summary.
    const message = (await gh.git(REPO, 'log', '-1', '--format=%B', c.checkpoint.commitSha!)).trim();
    expect(message.startsWith('Claims green\n\n## Summary\n- fixed')).toBe(true);
  });
});
