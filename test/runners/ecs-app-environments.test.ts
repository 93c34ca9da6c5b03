/**
 * Environments end to end on ECS through the real app (issue 12): `codex-cloud serve` with
 * CODEX_RUNNER_BACKEND=ecs and CODEX_ENV_BUCKET, the ECS stand-in (each RunTask starts the real
 * runner) and the S3 stand-in (checks presigned signatures, their expiry and method). A cache miss
 * makes two RunTask calls, the setup task in the setup security groups then the agent task in the
 * agent groups, the archive going up through a presigned PUT and down through a presigned GET; a hit
 * makes one. No RunTask carries a secret.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppHarness, UPSTREAM_KEY, waitFor } from '../support/app-harness.ts';
import { EcsStandIn, type RecordedEcsRequest } from '../support/ecs-stand-in.ts';
import { S3StandIn } from '../support/s3-stand-in.ts';
import { toolOutputs } from '../support/scripted-model.ts';

const REPO = 'acme/envs';
const TOKEN_SHAPED = /(?<![A-Za-z0-9])(ghs_|sk-|cct_)/;
const SETUP = ['mkdir -p node_modules/dep', 'echo "module.exports = \'dep-ok\';" > node_modules/dep/index.js', 'echo SETUP-MARKER-ran'].join('\n');
const ENDED = /Finished with no changes|✅ \*\*Done\*\*|❌ \*\*Failed\*\*|⏹️ \*\*Cancelled\*\*/;

let h: AppHarness;
let ecs: EcsStandIn;
let s3: S3StandIn;
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'ecs-app-env-'));
  await mkdir(path.join(tmp, 'runner-tmp'));
  ecs = await EcsStandIn.start({ extraEnv: { TMPDIR: path.join(tmp, 'runner-tmp') } });
  const aws = ecs.env();
  s3 = await S3StandIn.start({ accessKeyId: aws.AWS_ACCESS_KEY_ID!, secretAccessKey: aws.AWS_SECRET_ACCESS_KEY!, ...(aws.AWS_REGION ? { region: aws.AWS_REGION } : {}) });
  h = await AppHarness.start({
    env: {
      ...aws,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      CODEX_RUNNER_BACKEND: 'ecs',
      CODEX_ECS_CLUSTER: 'codex',
      CODEX_ECS_TASK_DEFINITION: 'codex-cloud-runner',
      CODEX_ECS_CONTAINER_NAME: 'runner',
      CODEX_ECS_SUBNETS: 'subnet-1',
      CODEX_ECS_SECURITY_GROUPS: 'sg-agent',
      CODEX_ECS_SETUP_SECURITY_GROUPS: 'sg-setup',
      CODEX_ENV_BUCKET: 'codex-envs',
      CODEX_MODEL_RETRY_BASE_MS: '10',
    },
  });
  await h.github.addRepo(
    REPO,
    {
      'package.json': JSON.stringify({ name: 'envs', version: '1.0.0', dependencies: { dep: '*' } }) + '\n',
      'package-lock.json': JSON.stringify({ name: 'envs', version: '1', lockfileVersion: 3 }) + '\n',
      'index.js': "console.log(require('dep'));\n",
      '.gitignore': 'node_modules/\n',
      '.github/codex.yml': `setup: |\n${SETUP.split('\n')
        .map((l) => `  ${l}`)
        .join('\n')}\n`,
    },
    { installationId: 1, permissions: { maintainer: 'write' } },
  );
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
  await ecs?.close();
  await s3?.close();
  await rm(tmp, { recursive: true, force: true });
});

function runTasksOf(taskId: string): RecordedEcsRequest[] {
  return ecs
    .requestsOf('RunTask')
    .filter((r) => r.body.overrides.containerOverrides[0].environment.some((e: { name: string; value: string }) => e.name === 'CODEX_TASK_ID' && e.value === taskId));
}

/** One mention on a new issue; the agent runs `node index.js`. @returns the task id, its final reply and what the agent saw. */
async function mention(): Promise<{ taskId: string; body: string; agentSaw: string }> {
  let agentSaw = '';
  h.model.push([{ type: 'function_call', name: 'shell', arguments: { command: ['node', 'index.js'] } }], (req) => {
    agentSaw = toolOutputs(req).at(-1)?.output ?? '';
    return [{ type: 'message', text: 'The dependency loads.' }];
  });
  const { number, delivery } = h.mentionOnNewIssue(REPO, '@codex check that the dependency loads');
  expect(await h.deliver(delivery)).toBe(200);
  const body = await waitFor('the final reply', () => h.botComments(REPO, number).find((c) => ENDED.test(c.body))?.body, 120_000);
  const taskId = h.task(number)!.id;
  const tasks = [...ecs.tasks.values()].filter((t) => t.env.CODEX_TASK_ID === taskId);
  expect({ body, logs: /Finished with no changes/.test(body) ? '' : tasks.map((t) => t.logs.slice(-2000)) }).toEqual({ body: expect.stringMatching(/Finished with no changes/), logs: '' });
  return { taskId, body, agentSaw };
}

test('a cache miss runs the setup task then the agent task; a hit runs the agent task only; the archive travels through presigned URLs', async () => {
  const miss = await mention();
  const missCalls = runTasksOf(miss.taskId).map((c) => c.body);
  expect(missCalls.map((c) => c.networkConfiguration.awsvpcConfiguration.securityGroups)).toEqual([['sg-setup'], ['sg-agent']]);
  expect(miss.agentSaw).toContain('dep-ok');
  // The agent task restored what the setup task built: the comment tells of the build.
  expect(miss.body).toMatch(/setup: \d+ s, cached for next time/);
  // One object under the prefix: written with a presigned PUT, read with a presigned GET.
  expect([...s3.objects.keys()]).toEqual([expect.stringMatching(/^codex-envs\/environments\/[0-9a-f]{64}\.tar$/)]);
  expect(s3.requests.filter((r) => r.method === 'PUT' && r.status === 200)).toHaveLength(1);
  expect(s3.requests.filter((r) => r.method === 'GET' && r.status === 200)).toHaveLength(1);
  expect(s3.requests.filter((r) => r.status >= 400 && r.status !== 404)).toEqual([]);
  const setupTask = [...ecs.tasks.values()].find((t) => t.env.CODEX_TASK_ID === miss.taskId && t.logs.includes('SETUP-MARKER-ran'));
  expect(setupTask).toBeDefined();

  const hit = await mention();
  const hitCalls = runTasksOf(hit.taskId).map((c) => c.body);
  expect(hitCalls.map((c) => c.networkConfiguration.awsvpcConfiguration.securityGroups)).toEqual([['sg-agent']]);
  expect(hit.agentSaw).toContain('dep-ok');
  expect(hit.body).toMatch(/setup: cached \(under a minute old\)/);
  expect([...ecs.tasks.values()].filter((t) => t.env.CODEX_TASK_ID === hit.taskId && t.logs.includes('SETUP-MARKER-ran'))).toEqual([]);

  // Nothing sent to ECS holds a secret.
  const cloneTokens = h.github.tokens.map((t) => t.token);
  for (const request of ecs.requests) {
    for (const token of cloneTokens) expect(request.raw).not.toContain(token);
    expect(request.raw).not.toContain(UPSTREAM_KEY);
    expect(request.raw).not.toMatch(TOKEN_SHAPED);
    expect(request.raw).not.toContain('X-Amz-Signature');
  }
  expect(h.model.pendingTurns).toBe(0);
}, 300_000);
