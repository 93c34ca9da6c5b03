/** check_suite.completed and workflow_run.completed payloads, normalised into a CheckFailure (real example payloads, rewritten to the stand-in). */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { checkSuiteTrigger } from '../../src/triggers/check-suite.ts';
import { workflowRunTrigger } from '../../src/triggers/workflow-run.ts';
import { GitHubStandIn } from '../support/github-stand-in.ts';
import { checkSuiteCompleted, workflowRunCompleted } from '../support/webhooks.ts';

let gh: GitHubStandIn;
let created: Awaited<ReturnType<GitHubStandIn['addWorkflowRun']>>;
let head: string;

beforeAll(async () => {
  gh = await GitHubStandIn.start();
  await gh.addRepo('octo/hooks', { 'README.md': '# r\n' }, { permissions: { alice: 'write' } });
  head = await gh.commitFiles('octo/hooks', 'feature', { 'a.txt': 'a\n' });
  await gh.addPull('octo/hooks', { head: 'feature', title: 'A', user: 'alice' });
  created = await gh.addWorkflowRun('octo/hooks', { headSha: head, jobs: [{ name: 'test', steps: [{ name: 'Run npm test', conclusion: 'failure' }] }] });
});
afterAll(async () => gh.close());

test('check_suite.completed: head, conclusion, app and the pull requests', () => {
  const { payload } = checkSuiteCompleted({ repo: gh.repository('octo/hooks'), suite: created.suite, installationId: 7 });
  const parsed = checkSuiteTrigger.schema.parse(payload);
  expect(checkSuiteTrigger.normalize(parsed)).toEqual({ installationId: 7, owner: 'octo', repo: 'hooks', headSha: head, conclusion: 'failure', pullNumbers: [1], appId: 15368 });
});

test('workflow_run.completed: head, conclusion and the pull requests; no app', () => {
  const { payload } = workflowRunCompleted({ repo: gh.repository('octo/hooks'), run: created.run, installationId: 7 });
  const parsed = workflowRunTrigger.schema.parse(payload);
  expect(workflowRunTrigger.normalize(parsed)).toEqual({ installationId: 7, owner: 'octo', repo: 'hooks', headSha: head, conclusion: 'failure', pullNumbers: [1] });
});

test('without an installation nothing is normalised; a malformed head SHA does not parse', () => {
  const { payload } = checkSuiteCompleted({ repo: gh.repository('octo/hooks'), suite: created.suite, installationId: 7 });
  delete payload.installation;
  expect(checkSuiteTrigger.normalize(checkSuiteTrigger.schema.parse(payload))).toBeUndefined();
  const bad = checkSuiteCompleted({ repo: gh.repository('octo/hooks'), suite: { ...created.suite, head_sha: 'main; rm -rf /' }, installationId: 7 }).payload;
  expect(checkSuiteTrigger.schema.safeParse(bad).success).toBe(false);
});
