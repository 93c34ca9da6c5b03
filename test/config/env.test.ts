import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, EnvSchema, isSetupMode, loadEnvConfig, type ConfigIssue } from '../../src/config/env.ts';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const SECRET = 'whsec-very-secret-value';
const OPENAI_KEY = 'sk-test-openai-key-123';

/** A complete, valid environment for normal operation. */
function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { APP_ID: '12345', PRIVATE_KEY: PKCS1, WEBHOOK_SECRET: SECRET, OPENAI_API_KEY: OPENAI_KEY, ...extra };
}

function issuesOf(env: NodeJS.ProcessEnv, opts?: { cwd?: string }): ConfigIssue[] {
  try {
    loadEnvConfig(env, opts);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const { message, issues } = error as ConfigError;
    for (const secret of [SECRET, OPENAI_KEY, PKCS1.split('\n')[1]!, 'not-a-real-key-material']) {
      expect(message).not.toContain(secret);
    }
    return issues;
  }
  throw new Error('expected loadEnvConfig to throw');
}

describe('loadEnvConfig: defaults and shape', () => {
  test('a minimal environment gets every default', () => {
    const config = loadEnvConfig(baseEnv());
    expect(config).toEqual({
      setupMode: false,
      appId: 12345,
      privateKey: PKCS1,
      webhookSecret: SECRET,
      github: { protocol: 'https', apiUrl: 'https://api.github.com' },
      githubThrottle: true,
      port: 3000,
      logLevel: 'info',
      openai: { apiKey: OPENAI_KEY, baseUrl: 'https://api.openai.com/v1' },
      publicUrl: 'http://localhost:3000',
      dataDir: '.data',
      concurrency: 2,
      mention: '@codex',
      model: 'gpt-5.1-codex',
      allowedBots: [],
      taskTimeoutMs: 60 * 60_000,
      maxTokens: 4_000_000,
      modelRetry: { retries: 4, baseMs: 1000 },
      runner: { backend: 'local', standby: true },
      environments: { maxAgeMs: 12 * 3_600_000, maxArchiveBytes: 2048 * 1024 * 1024, maxTotalBytes: 10_240 * 1024 * 1024, unpackedCopies: 2 },
    });
  });

  test('every variable set', () => {
    const config = loadEnvConfig(
      baseEnv({
        GHE_HOST: '127.0.0.1:8443',
        GHE_PROTOCOL: 'http',
        PORT: '8080',
        HOST: '0.0.0.0',
        LOG_LEVEL: 'debug',
        OPENAI_BASE_URL: 'http://127.0.0.1:9000/v1/',
        CODEX_PUBLIC_URL: 'https://codex.example.com/',
        CODEX_DATA_DIR: '/var/lib/codex',
        CODEX_CONCURRENCY: '8',
        CODEX_MENTION: '@my-bot',
        CODEX_MODEL: 'o4-mini',
        CODEX_REASONING_EFFORT: 'high',
        CODEX_ALLOWED_BOTS: ' renovate[bot], dependabot[bot] ,,some-user ',
        CODEX_TASK_TIMEOUT_MINUTES: '90',
        CODEX_MAX_TOKENS: '123456',
        CODEX_RUNNER_COMMAND: '["node","dist/cli.js","runner"]',
        CODEX_GITHUB_THROTTLE: 'false',
        CODEX_TOKEN_PRICES: '{"o4-mini":{"inputPerMillion":1.1,"cachedInputPerMillion":0.275,"outputPerMillion":4.4}}',
      }),
    );
    expect(config).toMatchObject({
      github: { host: '127.0.0.1:8443', protocol: 'http', apiUrl: 'http://127.0.0.1:8443/api/v3' },
      port: 8080,
      host: '0.0.0.0',
      logLevel: 'debug',
      openai: { apiKey: OPENAI_KEY, baseUrl: 'http://127.0.0.1:9000/v1' },
      publicUrl: 'https://codex.example.com',
      dataDir: '/var/lib/codex',
      concurrency: 8,
      mention: '@my-bot',
      model: 'o4-mini',
      reasoningEffort: 'high',
      allowedBots: ['renovate[bot]', 'dependabot[bot]', 'some-user'],
      taskTimeoutMs: 90 * 60_000,
      maxTokens: 123_456,
      runner: { backend: 'local', command: ['node', 'dist/cli.js', 'runner'], standby: true },
      githubThrottle: false,
      tokenPrices: { 'o4-mini': { inputPerMillion: 1.1, cachedInputPerMillion: 0.275, outputPerMillion: 4.4 } },
    });
  });

  test('CODEX_RUNNER_USER: a user name or uid:gid for the local runner', () => {
    expect(loadEnvConfig(baseEnv({ CODEX_RUNNER_USER: 'codex-runner' })).runner).toEqual({ backend: 'local', user: 'codex-runner', standby: true });
    expect(loadEnvConfig(baseEnv({ CODEX_RUNNER_USER: ' 1500:1600 ' })).runner).toEqual({ backend: 'local', user: '1500:1600', standby: true });
    expect(loadEnvConfig(baseEnv({})).runner).toEqual({ backend: 'local', standby: true });
  });

  test('CODEX_RUNNER_NICE: a nice increment from 0 to 19 for the local runners', () => {
    expect(loadEnvConfig(baseEnv({ CODEX_RUNNER_NICE: '5' })).runner).toEqual({ backend: 'local', nice: 5, standby: true });
    expect(loadEnvConfig(baseEnv({ CODEX_RUNNER_NICE: '0' })).runner).toEqual({ backend: 'local', nice: 0, standby: true });
    expect(loadEnvConfig(baseEnv({ CODEX_RUNNER_STANDBY: 'false' })).runner).toEqual({ backend: 'local', standby: false });
    for (const bad of ['-1', '20', '2.5', 'low']) {
      expect(() => loadEnvConfig(baseEnv({ CODEX_RUNNER_NICE: bad }))).toThrow(/CODEX_RUNNER_NICE.*expected an integer from 0 to 19/);
    }
  });

  test('the default public URL follows PORT', () => {
    expect(loadEnvConfig(baseEnv({ PORT: '4567' })).publicUrl).toBe('http://localhost:4567');
  });

  test('GHE_PROTOCOL defaults to https for a GHE host; PORT 0 (any free port) is allowed', () => {
    const config = loadEnvConfig(baseEnv({ GHE_HOST: 'github.acme.corp', PORT: '0' }));
    expect(config.github).toEqual({ host: 'github.acme.corp', protocol: 'https', apiUrl: 'https://github.acme.corp/api/v3' });
    expect(config.port).toBe(0);
  });

  test('an empty variable counts as unset', () => {
    const config = loadEnvConfig(baseEnv({ CODEX_CONCURRENCY: '', PORT: '', CODEX_MENTION: '', GHE_HOST: '' }));
    expect(config).toMatchObject({ concurrency: 2, port: 3000, mention: '@codex', github: { apiUrl: 'https://api.github.com' } });
  });

  test('unrelated variables are ignored', () => {
    expect(() => loadEnvConfig(baseEnv({ PATH: '/usr/bin', SOMETHING_ELSE: 'x' }))).not.toThrow();
  });

  test.each(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])('LOG_LEVEL %s is accepted', (level) => {
    expect(loadEnvConfig(baseEnv({ LOG_LEVEL: level as NodeJS.ProcessEnv['LOG_LEVEL'] })).logLevel).toBe(level);
  });

  test.each(['minimal', 'low', 'medium', 'high', 'xhigh'])('CODEX_REASONING_EFFORT %s is accepted', (effort) => {
    expect(loadEnvConfig(baseEnv({ CODEX_REASONING_EFFORT: effort })).reasoningEffort).toBe(effort);
  });

  test('the exported schema describes the variables', () => {
    expect(Object.keys(EnvSchema.shape)).toEqual(expect.arrayContaining(['APP_ID', 'OPENAI_API_KEY', 'CODEX_ECS_SUBNETS']));
  });
});

const PRICES_MESSAGE =
  'expected a JSON object of model name to {"inputPerMillion","cachedInputPerMillion","outputPerMillion"} (USD per million tokens, numbers ≥ 0)';

describe('loadEnvConfig: bad values name the variable', () => {
  test.each([
    ['CODEX_CONCURRENCY', 'abc', 'expected a positive integer, got "abc"'],
    ['CODEX_CONCURRENCY', '0', 'expected a positive integer, got "0"'],
    ['CODEX_CONCURRENCY', '2.5', 'expected a positive integer, got "2.5"'],
    ['CODEX_CONCURRENCY', '-1', 'expected a positive integer, got "-1"'],
    ['CODEX_TASK_TIMEOUT_MINUTES', 'an hour', 'expected a positive integer, got "an hour"'],
    ['CODEX_MAX_TOKENS', '4,000,000', 'expected a positive integer, got "4,000,000"'],
    ['CODEX_MAX_TOKENS', '99999999999999999999', 'expected a positive integer, got "99999999999999999999"'],
    ['APP_ID', 'Iv1.abc', 'expected a positive integer, got "Iv1.abc"'],
    ['PORT', 'http', 'expected a port number (0-65535), got "http"'],
    ['PORT', '70000', 'expected a port number (0-65535), got "70000"'],
    ['LOG_LEVEL', 'verbose', 'expected one of trace, debug, info, warn, error, fatal, got "verbose"'],
    ['GHE_PROTOCOL', 'ftp', 'expected http or https, got "ftp"'],
    ['GHE_HOST', 'https://github.acme.corp', 'expected a host name with an optional :port (no scheme or path), got "https://github.acme.corp"'],
    ['GHE_HOST', 'github.acme.corp/api/v3', 'expected a host name with an optional :port (no scheme or path), got "github.acme.corp/api/v3"'],
    ['OPENAI_BASE_URL', 'api.openai.com/v1', 'expected an http(s) URL (the OpenAI-compatible API base, e.g. https://api.openai.com/v1), got "api.openai.com/v1"'],
    ['CODEX_PUBLIC_URL', 'ftp://x', 'expected an http(s) URL (where GitHub users and runners reach the app), got "ftp://x"'],
    ['CODEX_MENTION', 'codex', 'expected @ followed by a name, e.g. @codex, got "codex"'],
    ['CODEX_MENTION', '@', 'expected @ followed by a name, e.g. @codex, got "@"'],
    ['CODEX_MENTION', '@co dex', 'expected @ followed by a name, e.g. @codex, got "@co dex"'],
    ['CODEX_REASONING_EFFORT', 'max', 'expected one of minimal, low, medium, high, xhigh, got "max"'],
    ['CODEX_ALLOWED_BOTS', 'renovate[bot],not a login', 'expected comma-separated GitHub logins, got "renovate[bot],not a login"'],
    ['CODEX_RUNNER_BACKEND', 'k8s', 'expected local or ecs, got "k8s"'],
    ['CODEX_RUNNER_COMMAND', 'node runner.js', 'expected a JSON array of strings (argv), e.g. ["node","runner.js"], got "node runner.js"'],
    ['CODEX_RUNNER_COMMAND', '"node"', 'expected a JSON array of strings (argv), e.g. ["node","runner.js"], got "\\"node\\""'],
    ['CODEX_RUNNER_COMMAND', '[]', 'expected a non-empty JSON array of strings (argv), got "[]"'],
    ['CODEX_RUNNER_COMMAND', '["node", 1]', 'expected a JSON array of strings (argv), e.g. ["node","runner.js"], got "[\\"node\\", 1]"'],
    ['CODEX_RUNNER_COMMAND', '["", "x"]', 'expected a program name as the first element, got "[\\"\\", \\"x\\"]"'],
    ['CODEX_RUNNER_USER', 'codex runner', 'expected a user name or uid:gid, e.g. codex-runner or 1500:1500, got "codex runner"'],
    ['CODEX_RUNNER_USER', '1500', 'expected a user name or uid:gid, e.g. codex-runner or 1500:1500, got "1500"'],
    ['CODEX_RUNNER_USER', 'root', 'must not be root (uid 0 or gid 0), got "root"'],
    ['CODEX_RUNNER_USER', '0:1500', 'must not be root (uid 0 or gid 0), got "0:1500"'],
    ['CODEX_RUNNER_USER', '1500:00', 'must not be root (uid 0 or gid 0), got "1500:00"'],
    ['CODEX_ECS_ASSIGN_PUBLIC_IP', 'maybe', 'expected true or false, got "maybe"'],
    ['CODEX_GITHUB_THROTTLE', 'disabled', 'expected true or false, got "disabled"'],
    ['CODEX_TOKEN_PRICES', '1.25', `${PRICES_MESSAGE}, got "1.25"`],
    ['CODEX_TOKEN_PRICES', '{"m":{"inputPerMillion":1}}', `${PRICES_MESSAGE}, got "{\\"m\\":{\\"inputPerMillion\\":1}}"`],
    ['CODEX_TOKEN_PRICES', '{"m":{"inputPerMillion":-1,"cachedInputPerMillion":0,"outputPerMillion":1}}', expect.stringMatching(/^expected a JSON object of model name/)],
  ])('%s=%j', (variable, value, message) => {
    expect(issuesOf(baseEnv({ [variable]: value }))).toEqual([{ variable, message }]);
  });

  test('a long value is shortened in the message', () => {
    const [issue] = issuesOf(baseEnv({ CODEX_CONCURRENCY: 'x'.repeat(500) }));
    expect(issue!.message.length).toBeLessThan(150);
  });

  test('OPENAI_API_KEY is required', () => {
    expect(issuesOf(baseEnv({ OPENAI_API_KEY: undefined }))).toEqual([
      { variable: 'OPENAI_API_KEY', message: 'required (the OpenAI API key the model gateway forwards with)' },
    ]);
  });

  test('every bad variable is listed at once, one line each', () => {
    let caught: unknown;
    try {
      loadEnvConfig(baseEnv({ CODEX_CONCURRENCY: 'abc', PORT: 'x', OPENAI_API_KEY: '', CODEX_MENTION: 'codex' }));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.name).toBe('ConfigError');
    expect(error.issues.map((i) => i.variable).sort()).toEqual(['CODEX_CONCURRENCY', 'CODEX_MENTION', 'OPENAI_API_KEY', 'PORT']);
    const lines = error.message.split('\n');
    expect(lines[0]).toBe('Invalid configuration in the environment:');
    expect(lines).toContain('  CODEX_CONCURRENCY: expected a positive integer, got "abc"');
    expect(lines).toHaveLength(5);
  });
});

describe('loadEnvConfig: private key', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'env-test-'));
    await writeFile(join(dir, 'app.pem'), PKCS8);
    await writeFile(join(dir, 'not-a-key.pem'), 'not-a-real-key-material\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('PEM with real newlines, PKCS#1 or PKCS#8', () => {
    expect(loadEnvConfig(baseEnv({ PRIVATE_KEY: PKCS1 })).privateKey).toBe(PKCS1);
    expect(loadEnvConfig(baseEnv({ PRIVATE_KEY: PKCS8 })).privateKey).toBe(PKCS8);
  });

  test('PEM with literal \\n escapes (one line, as in .env files) is turned into a usable key', () => {
    const escaped = PKCS1.replace(/\n/g, '\\n');
    expect(escaped).not.toContain('\n');
    const key = loadEnvConfig(baseEnv({ PRIVATE_KEY: escaped })).privateKey!;
    expect(key).toBe(PKCS1);
    expect(createPrivateKey(key).asymmetricKeyType).toBe('rsa');
  });

  test('base64 of the PEM is accepted, as Probot does', () => {
    expect(loadEnvConfig(baseEnv({ PRIVATE_KEY: Buffer.from(PKCS8).toString('base64') })).privateKey).toBe(PKCS8);
  });

  test('PRIVATE_KEY_PATH is read, relative to the working directory', () => {
    const env = baseEnv({ PRIVATE_KEY: undefined, PRIVATE_KEY_PATH: 'app.pem' });
    expect(loadEnvConfig(env, { cwd: dir }).privateKey).toBe(PKCS8);
    expect(loadEnvConfig({ ...env, PRIVATE_KEY_PATH: join(dir, 'app.pem') }).privateKey).toBe(PKCS8);
  });

  test('PRIVATE_KEY wins over PRIVATE_KEY_PATH', () => {
    expect(loadEnvConfig(baseEnv({ PRIVATE_KEY_PATH: 'missing.pem' }), { cwd: dir }).privateKey).toBe(PKCS1);
  });

  test('an invalid PRIVATE_KEY is reported without its value', () => {
    expect(issuesOf(baseEnv({ PRIVATE_KEY: 'not-a-real-key-material' }))).toEqual([
      { variable: 'PRIVATE_KEY', message: 'expected a PEM private key (PKCS#1 or PKCS#8; literal \\n and base64 accepted)' },
    ]);
  });

  test('a missing key file or one that is not a key is reported with its path', () => {
    expect(issuesOf(baseEnv({ PRIVATE_KEY: undefined, PRIVATE_KEY_PATH: 'missing.pem' }), { cwd: dir })).toEqual([
      { variable: 'PRIVATE_KEY_PATH', message: 'cannot read "missing.pem" (ENOENT)' },
    ]);
    expect(issuesOf(baseEnv({ PRIVATE_KEY: undefined, PRIVATE_KEY_PATH: 'not-a-key.pem' }), { cwd: dir })).toEqual([
      { variable: 'PRIVATE_KEY_PATH', message: '"not-a-key.pem" does not hold a PEM private key' },
    ]);
  });
});

describe('setup mode', () => {
  test.each([
    [{}, true],
    [{ APP_ID: '1' }, true],
    [{ PRIVATE_KEY: 'k' }, true],
    [{ PRIVATE_KEY_PATH: 'k.pem' }, true],
    [{ APP_ID: '', PRIVATE_KEY: 'k' }, true],
    [{ APP_ID: '1', PRIVATE_KEY: 'k' }, false],
    [{ APP_ID: '1', PRIVATE_KEY_PATH: 'k.pem' }, false],
    [{ NODE_ENV: 'production' }, false],
    [{ NODE_ENV: 'production', APP_ID: '1' }, false],
    [{ NODE_ENV: 'development' }, true],
    [{ NODE_ENV: 'test', APP_ID: '1' }, true],
  ])('isSetupMode(%j) is %s', (env, expected) => {
    expect(isSetupMode(env)).toBe(expected);
  });

  test('the App credentials may be absent in setup mode', () => {
    const config = loadEnvConfig({ OPENAI_API_KEY: OPENAI_KEY });
    expect(config.setupMode).toBe(true);
    expect(config).not.toHaveProperty('appId');
    expect(config).not.toHaveProperty('privateKey');
    expect(config).not.toHaveProperty('webhookSecret');
  });

  test('values given in setup mode are still validated and returned', () => {
    expect(issuesOf({ OPENAI_API_KEY: OPENAI_KEY, APP_ID: 'abc' })).toEqual([
      { variable: 'APP_ID', message: 'expected a positive integer, got "abc"' },
    ]);
    expect(loadEnvConfig({ OPENAI_API_KEY: OPENAI_KEY, APP_ID: '7', WEBHOOK_SECRET: SECRET })).toMatchObject({
      setupMode: true,
      appId: 7,
      webhookSecret: SECRET,
    });
  });

  test('in production the App credentials are required', () => {
    expect(issuesOf({ OPENAI_API_KEY: OPENAI_KEY, NODE_ENV: 'production' })).toEqual([
      { variable: 'APP_ID', message: "required (NODE_ENV is production): the GitHub App's ID" },
      {
        variable: 'PRIVATE_KEY',
        message: "required (NODE_ENV is production): set PRIVATE_KEY or PRIVATE_KEY_PATH to the GitHub App's private key",
      },
      { variable: 'WEBHOOK_SECRET', message: "required (NODE_ENV is production): the GitHub App's webhook secret" },
    ]);
  });

  test('outside setup mode the webhook secret is required', () => {
    expect(issuesOf(baseEnv({ WEBHOOK_SECRET: undefined }))).toEqual([
      { variable: 'WEBHOOK_SECRET', message: "required: the GitHub App's webhook secret" },
    ]);
    expect(loadEnvConfig(baseEnv({ NODE_ENV: 'production' })).setupMode).toBe(false);
  });
});

describe('runner backend', () => {
  const ecs = {
    CODEX_RUNNER_BACKEND: 'ecs',
    CODEX_ECS_CLUSTER: 'codex',
    CODEX_ECS_TASK_DEFINITION: 'codex-runner:3',
    CODEX_ECS_SUBNETS: 'subnet-a, subnet-b',
  };

  test('ecs with the required variables and defaults', () => {
    expect(loadEnvConfig(baseEnv(ecs)).runner).toEqual({
      backend: 'ecs',
      cluster: 'codex',
      taskDefinition: 'codex-runner:3',
      containerName: 'runner',
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: [],
      assignPublicIp: false,
    });
  });

  test('ecs with every variable', () => {
    const runner = loadEnvConfig(
      baseEnv({
        ...ecs,
        CODEX_ECS_CONTAINER_NAME: 'agent',
        CODEX_ECS_SECURITY_GROUPS: 'sg-1,sg-2',
        CODEX_ECS_SETUP_SECURITY_GROUPS: 'sg-setup',
        CODEX_ENV_BUCKET: 'codex-environments-123',
        CODEX_ECS_ASSIGN_PUBLIC_IP: 'TRUE',
        AWS_REGION: 'eu-west-1',
      }),
    ).runner;
    expect(runner).toEqual({
      backend: 'ecs',
      cluster: 'codex',
      taskDefinition: 'codex-runner:3',
      containerName: 'agent',
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: ['sg-1', 'sg-2'],
      setupSecurityGroups: ['sg-setup'],
      environmentBucket: 'codex-environments-123',
      assignPublicIp: true,
      region: 'eu-west-1',
    });
  });

  test('CODEX_ENV_BUCKET must be an S3 bucket name', () => {
    expect(() => loadEnvConfig(baseEnv({ ...ecs, CODEX_ENV_BUCKET: 'Not_A_Bucket' }))).toThrow(/CODEX_ENV_BUCKET: expected an S3 bucket name/);
  });

  test.each([
    ['true', true],
    ['yes', true],
    ['1', true],
    ['on', true],
    ['false', false],
    ['No', false],
    ['0', false],
    ['off', false],
  ])('CODEX_ECS_ASSIGN_PUBLIC_IP=%s is %s', (value, expected) => {
    const runner = loadEnvConfig(baseEnv({ ...ecs, CODEX_ECS_ASSIGN_PUBLIC_IP: value })).runner;
    expect(runner.backend === 'ecs' && runner.assignPublicIp).toBe(expected);
  });

  test('ecs requires cluster, task definition and at least one subnet', () => {
    expect(issuesOf(baseEnv({ CODEX_RUNNER_BACKEND: 'ecs', CODEX_ECS_SUBNETS: ' , ' }))).toEqual([
      { variable: 'CODEX_ECS_CLUSTER', message: 'required when CODEX_RUNNER_BACKEND is ecs' },
      { variable: 'CODEX_ECS_TASK_DEFINITION', message: 'required when CODEX_RUNNER_BACKEND is ecs' },
      {
        variable: 'CODEX_ECS_SUBNETS',
        message: 'required when CODEX_RUNNER_BACKEND is ecs: a comma-separated list of at least one subnet ID',
      },
    ]);
  });

  test('ECS variables are not required by the local backend', () => {
    expect(loadEnvConfig(baseEnv({ CODEX_ECS_CLUSTER: 'ignored' })).runner).toEqual({ backend: 'local', standby: true });
  });
});

describe('loadEnvConfig: agent proxy', () => {
  test('is absent unless CODEX_AGENT_PROXY_PORT is set; local defaults bind loopback', () => {
    expect(loadEnvConfig(baseEnv()).agentProxy).toBeUndefined();
    expect(loadEnvConfig(baseEnv({ CODEX_AGENT_PROXY_PORT: '3128' })).agentProxy).toEqual({ port: 3128, host: '127.0.0.1' });
    expect(loadEnvConfig(baseEnv({ CODEX_AGENT_PROXY_PORT: '0', CODEX_AGENT_PROXY_HOST: '0.0.0.0', CODEX_AGENT_PROXY_URL: 'http://10.0.0.5:3128/' })).agentProxy)
      .toEqual({ port: 0, host: '0.0.0.0', url: 'http://10.0.0.5:3128' });
  });

  test('ECS needs the URL runners reach it at and a fixed port; bad values are named', () => {
    const ecs = { CODEX_RUNNER_BACKEND: 'ecs', CODEX_ECS_CLUSTER: 'c', CODEX_ECS_TASK_DEFINITION: 'td', CODEX_ECS_SUBNETS: 'subnet-1' };
    expect(loadEnvConfig(baseEnv({ ...ecs, CODEX_AGENT_PROXY_PORT: '3128', CODEX_AGENT_PROXY_URL: 'http://codex-app.internal:3128' })).agentProxy)
      .toEqual({ port: 3128, host: '0.0.0.0', url: 'http://codex-app.internal:3128' });
    expect(issuesOf(baseEnv({ ...ecs, CODEX_AGENT_PROXY_PORT: '0' })).map((i) => i.variable).sort()).toEqual(['CODEX_AGENT_PROXY_PORT', 'CODEX_AGENT_PROXY_URL']);
    expect(issuesOf(baseEnv({ CODEX_AGENT_PROXY_PORT: '70000' }))).toEqual([{ variable: 'CODEX_AGENT_PROXY_PORT', message: 'expected a port number (0-65535), got "70000"' }]);
    expect(issuesOf(baseEnv({ CODEX_AGENT_PROXY_PORT: '3128', CODEX_AGENT_PROXY_URL: 'https://proxy:3128' }))[0]!.variable).toBe('CODEX_AGENT_PROXY_URL');
  });
});

describe('loadEnvConfig: environments', () => {
  test('CODEX_ENV_* set the cache; CODEX_ENV_CACHE_HOURS=0 turns environments off', () => {
    expect(loadEnvConfig(baseEnv({ CODEX_ENV_CACHE_HOURS: '1.5', CODEX_ENV_MAX_MB: '100', CODEX_ENV_CACHE_MAX_MB: '500', CODEX_ENV_UNPACKED_COPIES: '0' })).environments).toEqual({
      maxAgeMs: 5_400_000,
      maxArchiveBytes: 100 * 1024 * 1024,
      maxTotalBytes: 500 * 1024 * 1024,
      unpackedCopies: 0,
    });
    expect(() => loadEnvConfig(baseEnv({ CODEX_ENV_UNPACKED_COPIES: '-1' }))).toThrow(/CODEX_ENV_UNPACKED_COPIES/);
    expect(loadEnvConfig(baseEnv({ CODEX_ENV_CACHE_HOURS: '0' })).environments).toBeUndefined();
  });

  test('bad values are named', () => {
    expect(() => loadEnvConfig(baseEnv({ CODEX_ENV_CACHE_HOURS: '-1', CODEX_ENV_MAX_MB: '0', CODEX_ENV_CACHE_MAX_MB: 'lots' }))).toThrow(
      expect.objectContaining({
        issues: expect.arrayContaining([
          expect.objectContaining({ variable: 'CODEX_ENV_CACHE_HOURS' }),
          expect.objectContaining({ variable: 'CODEX_ENV_MAX_MB' }),
          expect.objectContaining({ variable: 'CODEX_ENV_CACHE_MAX_MB' }),
        ]),
      }),
    );
  });
});
