/**
 * The runner side of the claim: `claimTaskSpec` against the app's real runner API on a local server,
 * and `codex-cloud runner --claim` as a process (exit code 3 when the claim fails).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { runCli } from '../support/cli.ts';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TaskSpec } from '../../src/contract.ts';
import { ClaimError, claimFromEnvironment, claimTaskSpec } from '../../src/agent/claim.ts';
import { CLAIM_FAILED_EXIT_CODE } from '../../src/contract.ts';
import { TaskTokens } from '../../src/gateway/task-tokens.ts';
import { Claims } from '../../src/runners/claims.ts';
import { createRunnerApi } from '../../src/runners/runner-api.ts';


let server: http.Server;
let appUrl: string;
const claims = new Claims();
const handler = createRunnerApi({ claims, tokens: new TaskTokens(), onEvents: () => undefined, onResult: () => undefined });
/** Statuses the server answers before passing requests to the runner API. */
const faults: number[] = [];
let requests = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests++;
    const fault = faults.shift();
    if (fault) {
      req.resume();
      res.writeHead(fault, { 'content-type': 'application/json' }).end('{"error":{"code":"busy","message":"try later"}}');
      return;
    }
    void handler(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  requests = 0;
  faults.length = 0;
});

function spec(id: string, reportUrl = `${appUrl}/runner/v1/tasks/${id}`): TaskSpec {
  return TaskSpec.parse({
    id,
    kind: 'task',
    repository: { cloneUrl: 'https://github.com/acme/calc.git', fullName: 'acme/calc', token: 'ghs_clone', baseRef: 'main', baseSha: 'd'.repeat(40) },
    instruction: 'fix it',
    model: { apiKey: 'cct_x', name: 'gpt-test' },
    sandbox: 'container',
    report: { url: reportUrl, token: 'cct_x' },
  });
}

const quiet = { log: () => undefined, minDelayMs: 1 };

describe('claimTaskSpec', () => {
  test('returns the TaskSpec once; a second use is refused without retrying', async () => {
    const ticket = claims.issue(spec('task_1'));
    expect(await claimTaskSpec({ appUrl, taskId: 'task_1', ticket, ...quiet })).toEqual(spec('task_1'));
    requests = 0;
    const second = claimTaskSpec({ appUrl, taskId: 'task_1', ticket, ...quiet });
    await expect(second).rejects.toThrow(ClaimError);
    await expect(second).rejects.toThrow('the app refused the claim (HTTP 403): claim refused: already used');
    expect(requests).toBe(1);
  });

  test('5xx answers are retried (the app may be restarting)', async () => {
    const ticket = claims.issue(spec('task_2'));
    faults.push(503, 502);
    expect((await claimTaskSpec({ appUrl, taskId: 'task_2', ticket, ...quiet })).id).toBe('task_2');
    expect(requests).toBe(3);
  });

  test('an unreachable app fails after the retries with a clear error', async () => {
    await expect(claimTaskSpec({ appUrl: 'http://127.0.0.1:9', taskId: 't', ticket: 'ccl_x', retries: 1, ...quiet })).rejects.toThrow(/^the app is unreachable: /);
  });

  test('refuses plain http to a non-loopback host, unless explicitly allowed', async () => {
    await expect(claimTaskSpec({ appUrl: 'http://codex.example.com', taskId: 't', ticket: 'ccl_x', env: {}, ...quiet })).rejects.toThrow(
      /CODEX_APP_URL: refusing to send credentials to http:\/\/codex\.example\.com: https is required/,
    );
    // With the opt-in, the URL is accepted (and the request then fails: nothing listens there).
    await expect(
      claimTaskSpec({ appUrl: 'http://127.0.0.2:9', taskId: 't', ticket: 'ccl_x', env: { CODEX_ALLOW_INSECURE_APP_URL: '1' }, retries: 0, ...quiet }),
    ).rejects.toThrow(/unreachable/);
  });

  test('a spec for another task or with an insecure report URL is refused', async () => {
    const other = claims.issue(spec('task_3'));
    // A fake app that answers with another task's spec.
    const fake = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(spec('task_other')));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    try {
      await expect(claimTaskSpec({ appUrl: fakeUrl, taskId: 'task_3', ticket: other, ...quiet })).rejects.toThrow('the claimed TaskSpec is for task "task_other", not "task_3"');
    } finally {
      await new Promise((resolve) => fake.close(resolve));
    }
    const insecure = claims.issue(spec('task_4', 'http://codex.example.com/runner/v1/tasks/task_4'));
    await expect(claimTaskSpec({ appUrl, taskId: 'task_4', ticket: insecure, env: {}, ...quiet })).rejects.toThrow(/^report\.url: refusing/);
  });
});

describe('claimFromEnvironment', () => {
  test('reads the three variables and removes the ticket from the environment', async () => {
    const ticket = claims.issue(spec('task_5'));
    const env: NodeJS.ProcessEnv = { CODEX_TASK_ID: 'task_5', CODEX_APP_URL: appUrl, CODEX_CLAIM_TICKET: ticket };
    expect((await claimFromEnvironment(env, quiet)).id).toBe('task_5');
    expect(env.CODEX_CLAIM_TICKET).toBeUndefined();
    expect(env.CODEX_TASK_ID).toBe('task_5');
  });

  test('names the missing variables', async () => {
    await expect(claimFromEnvironment({ CODEX_TASK_ID: 'x' }, quiet)).rejects.toThrow('runner --claim needs CODEX_APP_URL, CODEX_CLAIM_TICKET in the environment');
  });
});

test('`codex-cloud runner --claim` exits 3 with the reason when the claim is refused', async () => {
  const run = await runCli(['runner', '--claim'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CODEX_TASK_ID: 'task_unknown', CODEX_APP_URL: appUrl, CODEX_CLAIM_TICKET: 'ccl_wrong' },
  });
  expect(run.code).toBe(CLAIM_FAILED_EXIT_CODE);
  expect(run.stdout).toBe('');
  expect(run.stderr).toBe('codex-cloud runner: the app refused the claim (HTTP 403): claim refused: unknown task\n');
});
