/** check_suite.completed and workflow_run.completed deliveries built from the real examples, rewritten to the stand-in. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { GitHubStandIn } from './github-stand-in.ts';
import { checkSuiteCompleted, workflowRunCompleted } from './webhooks.ts';

describe('check webhooks', () => {
  let gh: GitHubStandIn;
  let created: Awaited<ReturnType<GitHubStandIn['addWorkflowRun']>>;
  let head: string;

  beforeAll(async () => {
    gh = await GitHubStandIn.start();
    await gh.addRepo('octo/hooks', { 'README.md': '# r\n' }, { permissions: { alice: 'write' } });
    head = await gh.commitFiles('octo/hooks', 'feature', { 'a.txt': 'a\n' });
    await gh.addPull('octo/hooks', { head: 'feature', title: 'A', user: 'alice' });
    created = await gh.addWorkflowRun('octo/hooks', { headSha: head, actor: 'alice', jobs: [{ name: 'test', steps: [{ name: 'Run npm test', conclusion: 'failure' }] }] });
  });
  afterAll(async () => gh.close());

  test('check_suite.completed carries the stand-in suite, its app, head and pull requests', () => {
    const d = checkSuiteCompleted({ repo: gh.repository('octo/hooks'), suite: created.suite, installationId: 1 });
    expect(d.event).toBe('check_suite');
    expect(d.headers['x-github-event']).toBe('check_suite');
    const p = d.payload;
    expect(p).toMatchObject({
      action: 'completed',
      installation: { id: 1 },
      repository: { full_name: 'octo/hooks' },
      sender: { login: 'github-actions[bot]', type: 'Bot' },
      check_suite: { id: created.suite.id, head_sha: head, conclusion: 'failure', status: 'completed', app: { slug: 'github-actions' }, pull_requests: [{ number: 1 }] },
    });
    expect((p.check_suite as Record<string, unknown>).repository).toBeUndefined();
    expect(d.body).not.toContain('api.github.com');
    expect(d.body).not.toContain('Codertocat/Hello-World');
  });

  test('workflow_run.completed carries the run (path, head, conclusion) and its workflow', () => {
    const d = workflowRunCompleted({ repo: gh.repository('octo/hooks'), run: created.run, installationId: 1 });
    expect(d.payload).toMatchObject({
      action: 'completed',
      sender: { login: 'alice' },
      workflow_run: { id: created.run.id, path: '.github/workflows/ci.yml', head_sha: head, conclusion: 'failure', check_suite_id: created.suite.id, pull_requests: [{ number: 1 }] },
      workflow: { id: created.run.workflow_id, name: 'CI', path: '.github/workflows/ci.yml' },
    });
    expect(d.body).not.toContain('api.github.com');
  });
});
