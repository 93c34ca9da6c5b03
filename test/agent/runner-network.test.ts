/**
 * End to end: the real `codex-cloud runner` with a TaskSpec `network`, the real agent proxy
 * (src/proxy/) on loopback, and agent commands (curl, Node's fetch) run by the scripted model inside
 * the bubblewrap sandbox: an allowlisted host (a local HTTP server, its name mapped to loopback by
 * the proxy's resolver) is reachable through the bound socket and the in-sandbox relay; another host
 * is refused (403), reported by the proxy and visible in the task's command records; nothing else
 * is reachable.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProgressEvent, TaskResult, type TaskSpecInput } from '../../src/contract.ts';
import { AgentProxy, type BlockReason } from '../../src/proxy/agent-proxy.ts';
import { ProxyGrants } from '../../src/proxy/grants.ts';
import { runCli } from '../support/cli.ts';
import { buggyNodeRepo } from '../support/fixtures.ts';
import { createBareRepo, GitHttpServer } from '../support/git-http.ts';
import { ScriptedModel, toolOutputs, type RecordedRequest } from '../support/scripted-model.ts';

const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
const TASK_TOKEN = 'cct_task_token_network';

let dir: string;
let git: GitHttpServer;
let baseSha: string;
let web: http.Server;
let webPort: number;
let proxy: AgentProxy;
let proxyPort: number;
const grants = new ProxyGrants();
const blocked: { taskId: string; host: string; reason: BlockReason }[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'runner-network-'));
  const repo = await createBareRepo(path.join(dir, 'repos'), 'acme/calc', buggyNodeRepo());
  baseSha = repo.headSha;
  git = await GitHttpServer.start({
    root: path.join(dir, 'repos'),
    tokens: new Map([[CLONE_TOKEN, { repos: ['acme/calc'], write: false }]]),
  });
  web = http.createServer((req, res) => res.end(`package index for ${req.headers.host}${req.url}`));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as AddressInfo).port;
  proxy = new AgentProxy({
    grants,
    onBlocked: (taskId, host, reason) => blocked.push({ taskId, host, reason }),
    // Tests only have loopback: both names lead there, and loopback is allowed.
    resolve: async (name) => (['pkg.example.org', 'evil.example.com'].includes(name) ? ['127.0.0.1'] : []),
    allowPrivateAddresses: true,
    connectPort: webPort,
    httpPort: webPort,
  });
  proxyPort = await proxy.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await proxy?.close();
  await new Promise((resolve) => web?.close(resolve));
  await git?.close();
  await rm(dir, { recursive: true, force: true });
});

function lastOutput(req: RecordedRequest): string {
  return toolOutputs(req).at(-1)?.output ?? '';
}

describe('codex-cloud runner with agent_network', () => {
  test('agent commands reach an allowlisted host through the proxy from inside the sandbox; another host is refused and reported', async () => {
    const taskId = `task-net-${Math.random().toString(36).slice(2)}`;
    const secret = grants.issue(taskId, { allow: ['pkg.example.org'], ttlMs: 5 * 60_000 });
    const seen: string[] = [];
    const shell = (command: string[]) => [{ type: 'function_call' as const, name: 'shell', arguments: { command, timeout_ms: 30_000 } }];
    const model = await ScriptedModel.start({
      requireAuth: TASK_TOKEN,
      turns: [
        // CONNECT through the relay and the bridge (curl -p: a tunnel even for http://).
        shell(['curl', '-sS', '--max-time', '20', '-p', `http://pkg.example.org:${webPort}/simple/`]),
        (req) => {
          seen.push(lastOutput(req));
          return shell(['node', '-e', `fetch('http://pkg.example.org:${webPort}/from-node').then((r) => r.text()).then(console.log)`]);
        },
        (req) => {
          seen.push(lastOutput(req));
          return shell(['curl', '-sS', '--max-time', '20', '-p', `http://evil.example.com:${webPort}/steal`]);
        },
        (req) => {
          seen.push(lastOutput(req));
          // Around the proxy: nothing (the sandbox has only its own loopback).
          return shell(['curl', '-sS', '--max-time', '5', '--noproxy', '*', `http://127.0.0.1:${webPort}/direct`]);
        },
        (req) => {
          seen.push(lastOutput(req));
          return shell(['sh', '-c', 'echo "$HTTPS_PROXY|$NO_PROXY"']);
        },
        (req) => {
          seen.push(lastOutput(req));
          return [{ type: 'message', text: '# Checked the network\n\n## Summary\nDone.\n\n## Testing\nNone.' }];
        },
      ],
    });
    try {
      const spec: TaskSpecInput = {
        id: taskId,
        kind: 'task',
        repository: { cloneUrl: git.cloneUrl('acme/calc'), fullName: 'acme/calc', token: CLONE_TOKEN, baseRef: 'main', baseSha },
        instruction: 'Check the package index.',
        model: { baseUrl: model.baseUrl, apiKey: TASK_TOKEN, name: 'gpt-test', retryBaseMs: 10 },
        setup: { autoInstall: false },
        network: { proxyUrl: `http://${taskId}:${secret}@127.0.0.1:${proxyPort}`, allow: ['pkg.example.org'] },
      };
      const run = await runCli(['runner', '--workdir', path.join(dir, 'work')], { stdin: JSON.stringify(spec) });
      expect(run.stderr).toBe('');
      const events = run.stdout.split('\n').filter((l) => l.trim()).map((l) => ProgressEvent.parse(JSON.parse(l)));
      const last = events.at(-1);
      if (last?.type !== 'result') throw new Error(`no result in:\n${run.stdout.slice(-2000)}`);
      const result = TaskResult.parse(last.result);
      expect(result.failure).toBeUndefined();
      expect(result.status).toBe('no_changes');

      const [viaCurl, viaNode, refused, direct, env] = seen;
      expect(viaCurl).toContain(`package index for pkg.example.org:${webPort}/simple/`);
      expect(viaNode).toContain(`package index for pkg.example.org:${webPort}/from-node`);
      expect(refused).toMatch(/403/);
      expect(refused).not.toContain('package index');
      expect(direct).not.toContain('package index');
      expect(env).toContain(`http://${taskId}:${secret}@127.0.0.1:3128|localhost,127.0.0.1,::1`);

      // The refused host is reported by the proxy once, and shows in the task's command records.
      expect(blocked).toEqual([{ taskId, host: 'evil.example.com', reason: 'not_allowed' }]);
      const refusedRecord = result.commands.find((c) => c.command.includes(`http://evil.example.com:${webPort}/steal`));
      expect(refusedRecord?.exitCode).not.toBe(0);
      expect(refusedRecord?.output?.head).toMatch(/403/);
      expect(result.commands.map((c) => c.exitCode)).toEqual([0, 0, refusedRecord?.exitCode, expect.any(Number), 0]);
      expect(result.commands[3]!.exitCode).not.toBe(0);
      expect(events.some((e) => e.type === 'log' && e.message.includes("agent network: only through the app's proxy, to pkg.example.org"))).toBe(true);
      // The model is told which hosts it may reach.
      expect(JSON.stringify(model.requests[0]!.body.input)).toContain('network: only these hosts, through the proxy in HTTPS_PROXY/HTTP_PROXY (already set): pkg.example.org;');
    } finally {
      grants.revoke(taskId);
      await model.close();
    }
  });
});
