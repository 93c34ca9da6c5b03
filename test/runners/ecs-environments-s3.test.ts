/**
 * The S3 environment planner of the ECS backend (src/runners/ecs-environments.ts) against the S3
 * stand-in: which runner tasks a spec becomes (miss: setup with a PUT URL, agent with neither URL;
 * hit: agent with a GET URL; `fresh`: setup even on a hit), and afterSetup's check that the archive
 * is in the bucket. The runner tasks themselves: test/runners/ecs-app-environments.test.ts.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { TaskSpec } from '../../src/contract.ts';
import { EnvironmentNotSavedError, S3EcsEnvironments } from '../../src/runners/ecs-environments.ts';
import { S3EnvironmentStore } from '../../src/runners/environment-s3.ts';
import { S3StandIn } from '../support/s3-stand-in.ts';

const CREDENTIALS = { accessKeyId: 'AKIDPLANTEST', secretAccessKey: 'plan-secret-key' };
const KEY = 'c'.repeat(64);

let s3: S3StandIn;
let planner: S3EcsEnvironments;

beforeAll(async () => {
  s3 = await S3StandIn.start({ ...CREDENTIALS, region: 'eu-west-1' });
  planner = new S3EcsEnvironments(
    new S3EnvironmentStore(
      { bucket: 'codex-envs', prefix: 'environments/', maxAgeMs: 3_600_000, maxArchiveBytes: 1024 ** 2, client: { region: 'eu-west-1', credentials: CREDENTIALS } },
      { AWS_ENDPOINT_URL_S3: s3.endpoint },
    ),
  );
});
afterAll(async () => {
  await s3?.close();
});

function spec(environment?: { fresh?: boolean }): TaskSpec {
  return TaskSpec.parse({
    id: 'task_plan',
    kind: 'task',
    repository: { cloneUrl: 'https://github.com/acme/envs.git', fullName: 'acme/envs', token: 'ghs_x', baseRef: 'main', baseSha: 'a'.repeat(40) },
    instruction: 'check',
    model: { baseUrl: 'http://127.0.0.1:1/v1', apiKey: 'cct_x', name: 'gpt-test' },
    ...(environment ? { environment: { key: KEY, repositoryId: '1', maxBytes: 10 * 1024 ** 2, ...environment } } : {}),
  });
}

test('without an environment, one task as given', async () => {
  const s = spec();
  expect(await planner.plan(s)).toEqual({ agent: s });
});

test('a miss: a setup task with a PUT URL, then afterSetup refuses until the archive is in the bucket; a hit: the agent task with a GET URL', async () => {
  const miss = await planner.plan(spec({}));
  expect(miss.setup?.environment).toMatchObject({ key: KEY, save: { url: expect.stringContaining('X-Amz-Signature') }, maxBytes: 1024 ** 2 });
  expect(miss.setup?.environment?.restore).toBeUndefined();
  expect(miss.agent.environment?.save).toBeUndefined();
  expect(miss.agent.environment?.restore).toBeUndefined();
  await expect(planner.afterSetup(miss)).rejects.toThrow(EnvironmentNotSavedError);

  // The setup task's upload, through its presigned PUT URL.
  const put = await fetch((miss.setup!.environment!.save as { url: string }).url, { method: 'PUT', body: Buffer.from('archive') });
  expect(put.status).toBe(200);
  const agent = await planner.afterSetup(miss);
  expect(agent.environment).toMatchObject({ key: KEY, fresh: false, restore: { from: { url: expect.stringContaining('X-Amz-Signature') } } });
  const got = await fetch((agent.environment!.restore!.from as { url: string }).url);
  expect(await got.text()).toBe('archive');

  const hit = await planner.plan(spec({}));
  expect(hit.setup).toBeUndefined();
  expect(hit.agent.environment?.restore?.from).toEqual({ url: expect.stringContaining(`/codex-envs/environments/${KEY}.tar`) });

  // `@codex retry --fresh`: setup again although the archive is fresh.
  const fresh = await planner.plan(spec({ fresh: true }));
  expect(fresh.setup?.environment?.save).toBeDefined();
});
