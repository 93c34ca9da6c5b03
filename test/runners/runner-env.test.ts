import { describe, expect, test } from '@jest/globals';
import { runnerEnvironment } from '../../src/runners/local.ts';

describe('runnerEnvironment (local backend)', () => {
  test('passes the CA and proxy variables, CODEX_SETUP_ENV and what it names, and no secrets', () => {
    const env = runnerEnvironment({
      PATH: '/usr/bin',
      REQUESTS_CA_BUNDLE: '/ca.pem',
      GIT_SSL_CAINFO: '/ca.pem',
      HTTP_PROXY: 'http://p:1',
      http_proxy: 'http://p:1',
      CODEX_SETUP_ENV: 'npm_config_registry,GITHUB_TOKEN',
      npm_config_registry: 'https://mirror.example/',
      GITHUB_TOKEN: 'ghs_x',
      OPENAI_API_KEY: 'sk-x',
      WEBHOOK_SECRET: 'x',
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      REQUESTS_CA_BUNDLE: '/ca.pem',
      GIT_SSL_CAINFO: '/ca.pem',
      HTTP_PROXY: 'http://p:1',
      http_proxy: 'http://p:1',
      CODEX_SETUP_ENV: 'npm_config_registry,GITHUB_TOKEN',
      npm_config_registry: 'https://mirror.example/',
    });
  });
});
