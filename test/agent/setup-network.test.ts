/**
 * End to end: the setup phase on a network whose HTTPS is signed by a private CA (a company's
 * TLS-intercepting proxy). The real `codex-cloud runner` installs a package from a local HTTPS npm
 * registry stand-in whose certificate only a test CA (generated here with the `openssl` CLI) vouches
 * for, known to the runner only through `NODE_EXTRA_CA_CERTS`; the agent phase must not see the
 * variable. Without it, the install fails fast and the result says so.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { SETUP_CA_VARIABLES, SETUP_PROXY_VARIABLES } from '../../src/agent/setup-env.ts';
import { ProgressEvent, TaskResult, type TaskSpecInput } from '../../src/contract.ts';
import { runCli } from '../support/cli.ts';
import { createBareRepo, GitHttpServer } from '../support/git-http.ts';
import { ScriptedModel, toolOutputs, type RecordedRequest } from '../support/scripted-model.ts';

const run = promisify(execFile);
const CLONE_TOKEN = 'ghs_readonlyclonetoken0123456789';
const TASK_TOKEN = 'cct_task_token_abcdef';
const PACKAGE = 'tiny-dep';

let dir: string;
let caFile: string;
let registry: https.Server;
let registryUrl: string;
const registryRequests: string[] = [];
let git: GitHttpServer;
let baseSha: string;
let noNpmrcSha: string;

/** A CA and a server certificate for 127.0.0.1 signed by it, with the openssl CLI. */
async function makeCertificates(into: string): Promise<{ ca: string; key: string; cert: string }> {
  const f = (name: string) => path.join(into, name);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=Codex Cloud Test Intercepting CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  return { ca: f('ca.pem'), key: await readFile(f('server.key'), 'utf8'), cert: await readFile(f('server.pem'), 'utf8') };
}

/** `npm pack` of a one-file package: a real tarball for the registry to serve. */
async function packTinyPackage(into: string): Promise<Buffer> {
  const src = path.join(into, 'tiny-dep-src');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'package.json'), JSON.stringify({ name: PACKAGE, version: '1.0.0', main: 'index.js', license: 'MIT' }));
  await writeFile(path.join(src, 'index.js'), "module.exports = 'tiny-dep works';\n");
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', into], { cwd: src });
  return readFile(path.join(into, stdout.trim().split('\n').at(-1)!));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'setup-net-'));
  await mkdir(path.join(dir, 'ca'));
  const certs = await makeCertificates(path.join(dir, 'ca'));
  caFile = certs.ca;
  const tarball = await packTinyPackage(dir);
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  const shasum = createHash('sha1').update(tarball).digest('hex');

  registry = https.createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
    registryRequests.push(req.url ?? '');
    const base = `https://127.0.0.1:${(registry.address() as AddressInfo).port}`;
    if (req.url === `/${PACKAGE}`) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        name: PACKAGE,
        'dist-tags': { latest: '1.0.0' },
        versions: {
          '1.0.0': { name: PACKAGE, version: '1.0.0', main: 'index.js', dist: { tarball: `${base}/${PACKAGE}/-/${PACKAGE}-1.0.0.tgz`, integrity, shasum } },
        },
      }));
    } else if (req.url === `/${PACKAGE}/-/${PACKAGE}-1.0.0.tgz`) {
      res.setHeader('content-type', 'application/octet-stream');
      res.end(tarball);
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  registryUrl = `https://127.0.0.1:${(registry.address() as AddressInfo).port}/`;

  const repo = await createBareRepo(path.join(dir, 'repos'), 'acme/uses-dep', {
    'package.json': `${JSON.stringify({ name: 'uses-dep', version: '0.0.0', private: true, dependencies: { [PACKAGE]: '^1.0.0' } }, null, 2)}\n`,
    '.npmrc': `registry=${registryUrl}\n`,
    'index.js': "console.log(require('tiny-dep'));\n",
  });
  baseSha = repo.headSha;
  // The same project with no .npmrc: the registry comes from CODEX_SETUP_ENV.
  const bare = await createBareRepo(path.join(dir, 'repos'), 'acme/uses-dep-env', {
    'package.json': `${JSON.stringify({ name: 'uses-dep', version: '0.0.0', private: true, dependencies: { [PACKAGE]: '^1.0.0' } }, null, 2)}\n`,
    'index.js': "console.log(require('tiny-dep'));\n",
  });
  noNpmrcSha = bare.headSha;
  git = await GitHttpServer.start({
    root: path.join(dir, 'repos'),
    tokens: new Map([[CLONE_TOKEN, { repos: ['acme/uses-dep', 'acme/uses-dep-env'], write: false }]]),
  });
}, 60_000);

afterAll(async () => {
  await git?.close();
  await new Promise((resolve) => registry?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function spec(model: ScriptedModel, repo: 'acme/uses-dep' | 'acme/uses-dep-env' = 'acme/uses-dep'): TaskSpecInput {
  const sha = repo === 'acme/uses-dep' ? baseSha : noNpmrcSha;
  return {
    id: `task-${Math.random().toString(36).slice(2)}`,
    kind: 'task',
    repository: { cloneUrl: git.cloneUrl(repo), fullName: repo, token: CLONE_TOKEN, baseRef: 'main', baseSha: sha },
    instruction: 'Check that the dependency loads.',
    context: [{ kind: 'issue', title: 'Does tiny-dep load?', body: 'Please check.' }],
    model: { baseUrl: model.baseUrl, apiKey: TASK_TOKEN, name: 'gpt-test', retryBaseMs: 10 },
  };
}

function resultOf(stdout: string): TaskResult {
  const last = stdout.split('\n').filter((l) => l.trim()).map((l) => ProgressEvent.parse(JSON.parse(l))).at(-1);
  if (last?.type !== 'result') throw new Error(`no result event in:\n${stdout.slice(-2000)}`);
  return TaskResult.parse(last.result);
}

/** This process's environment without any CA, proxy or CODEX_SETUP_ENV variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of [...SETUP_CA_VARIABLES, ...SETUP_PROXY_VARIABLES, 'CODEX_SETUP_ENV']) delete env[k];
  return { ...env, ...extra };
}

const lastOutput = (req: RecordedRequest): string => toolOutputs(req).at(-1)?.output ?? '';

/** The agent prints its environment, loads the installed dependency (offline), and finishes. */
function agentTurns(seen: { env?: string; load?: string }) {
  return [
    [{ type: 'function_call' as const, name: 'shell', arguments: { command: ['env'] } }],
    (req: RecordedRequest) => {
      seen.env = lastOutput(req);
      return [{ type: 'function_call' as const, name: 'shell', arguments: { command: ['node', 'index.js'] } }];
    },
    (req: RecordedRequest) => {
      seen.load = lastOutput(req);
      return [{ type: 'message' as const, text: '# Check that tiny-dep loads\n\n## Summary\n- It loads.\n\n## Testing\n- `node index.js`' }];
    },
  ];
}

describe('setup phase behind a private CA', () => {
  test('npm install reaches the HTTPS registry through NODE_EXTRA_CA_CERTS; the agent phase does not get the variable', async () => {
    const seen: { env?: string; load?: string } = {};
    const model = await ScriptedModel.start({ turns: agentTurns(seen), requireAuth: TASK_TOKEN });
    try {
      registryRequests.length = 0;
      const cli = await runCli(['runner', '--workdir', path.join(dir, 'runs', 'with-ca')], {
        stdin: JSON.stringify(spec(model)),
        env: cleanEnv({ NODE_EXTRA_CA_CERTS: caFile, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' }),
      });
      const result = resultOf(cli.stdout);
      expect(result.failure).toBeUndefined();
      expect(result.setup).toEqual({ status: 'succeeded' });
      const install = result.commands.filter((c) => c.phase === 'setup');
      expect(install).toHaveLength(1);
      expect(install[0]!.command.slice(0, 2)).toEqual(['npm', 'install']);
      expect(install[0]!.command).toContain('--fetch-retries=1');
      expect(install[0]!.exitCode).toBe(0);
      expect(registryRequests).toEqual(expect.arrayContaining([`/${PACKAGE}`, `/${PACKAGE}/-/${PACKAGE}-1.0.0.tgz`]));

      // The agent phase: the dependency is installed, the CA and proxy variables are gone.
      expect(seen.load).toContain('tiny-dep works');
      expect(seen.env).toContain('HOME=');
      expect(seen.env).not.toContain('NODE_EXTRA_CA_CERTS');
      expect(seen.env).not.toContain('NO_PROXY');
      expect(seen.env).not.toContain(caFile);
    } finally {
      await model.close();
    }
  }, 120_000);

  test('through an HTTPS_PROXY (a CONNECT proxy), the registry named through CODEX_SETUP_ENV: the install tunnels through it; the agent phase gets neither', async () => {
    const connects: string[] = [];
    const proxy = http.createServer((_req, res) => {
      res.statusCode = 405;
      res.end();
    });
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      connects.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const seen: { env?: string; load?: string } = {};
    const model = await ScriptedModel.start({ turns: agentTurns(seen), requireAuth: TASK_TOKEN });
    try {
      registryRequests.length = 0;
      const cli = await runCli(['runner', '--workdir', path.join(dir, 'runs', 'proxy')], {
        stdin: JSON.stringify(spec(model, 'acme/uses-dep-env')),
        env: cleanEnv({ NODE_EXTRA_CA_CERTS: caFile, HTTPS_PROXY: proxyUrl, CODEX_SETUP_ENV: 'npm_config_registry', npm_config_registry: registryUrl }),
      });
      const result = resultOf(cli.stdout);
      expect(result.failure).toBeUndefined();
      expect(result.setup).toEqual({ status: 'succeeded' });
      expect(connects.length).toBeGreaterThan(0);
      expect(new Set(connects)).toEqual(new Set([new URL(registryUrl).host]));
      expect(registryRequests).toContain(`/${PACKAGE}/-/${PACKAGE}-1.0.0.tgz`);
      expect(seen.load).toContain('tiny-dep works');
      expect(seen.env).not.toContain('HTTPS_PROXY');
      expect(seen.env).not.toContain(proxyUrl);
      expect(seen.env).not.toContain('npm_config_registry');
    } finally {
      await model.close();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  }, 120_000);

  test('without the CA the install fails fast and the result says setup failed', async () => {
    const seen: { env?: string; load?: string } = {};
    const model = await ScriptedModel.start({ turns: agentTurns(seen), requireAuth: TASK_TOKEN });
    try {
      registryRequests.length = 0;
      const cli = await runCli(['runner', '--workdir', path.join(dir, 'runs', 'without-ca')], { stdin: JSON.stringify(spec(model)), env: cleanEnv() });
      const result = resultOf(cli.stdout);
      expect(result.setup?.status).toBe('failed');
      expect(result.setup?.reason).toMatch(/^npm \(package\.json\) exited with 1/);
      const install = result.commands.find((c) => c.phase === 'setup')!;
      expect(install.exitCode).not.toBe(0);
      // Fail fast: one retry at most, seconds not minutes (npm's defaults retry for over a minute).
      expect(install.durationMs).toBeLessThan(60_000);
      expect(seen.load).not.toContain('tiny-dep works');
    } finally {
      await model.close();
    }
  }, 120_000);
});
