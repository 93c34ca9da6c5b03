import { describe, expect, test } from '@jest/globals';
import { parseSetupEnvNames, setupEnvironment } from '../../src/agent/setup-env.ts';

describe('setupEnvironment', () => {
  test('passes the set CA and proxy variables, both cases, and binds the CA files read-only', () => {
    const got = setupEnvironment({
      NODE_EXTRA_CA_CERTS: '/etc/corp/ca.pem',
      SSL_CERT_DIR: '/etc/corp/certs:/opt/certs',
      PIP_CERT: '/etc/corp/ca.pem',
      HTTPS_PROXY: 'http://proxy:3128',
      no_proxy: 'localhost',
      OPENAI_API_KEY: 'sk-secret',
      GITHUB_TOKEN: 'ghs_x',
      EMPTY: '',
    });
    expect(got.env).toEqual({
      NODE_EXTRA_CA_CERTS: '/etc/corp/ca.pem',
      SSL_CERT_DIR: '/etc/corp/certs:/opt/certs',
      PIP_CERT: '/etc/corp/ca.pem',
      HTTPS_PROXY: 'http://proxy:3128',
      no_proxy: 'localhost',
    });
    expect(got.readOnlyPaths).toEqual(['/etc/corp/ca.pem', '/etc/corp/certs', '/opt/certs']);
    expect(got.refused).toEqual([]);
  });

  test('CODEX_SETUP_ENV names more variables; secret-looking, reserved and invalid names are refused', () => {
    const got = setupEnvironment({
      CODEX_SETUP_ENV: 'npm_config_registry, PIP_INDEX_URL GOPROXY,NPM_TOKEN,OPENAI_API_KEY,AWS_SECRET_ACCESS_KEY,PATH,1BAD,UNSET',
      npm_config_registry: 'https://mirror.example/npm/',
      PIP_INDEX_URL: 'https://mirror.example/pypi/simple',
      GOPROXY: 'https://mirror.example/go',
      NPM_TOKEN: 'npm_x',
      OPENAI_API_KEY: 'sk-x',
      AWS_SECRET_ACCESS_KEY: 'x',
      PATH: '/evil',
    });
    expect(got.env).toEqual({
      npm_config_registry: 'https://mirror.example/npm/',
      PIP_INDEX_URL: 'https://mirror.example/pypi/simple',
      GOPROXY: 'https://mirror.example/go',
    });
    expect(got.refused).toEqual([
      'NPM_TOKEN: looks like a secret; CODEX_SETUP_ENV never passes secrets',
      'OPENAI_API_KEY: looks like a secret; CODEX_SETUP_ENV never passes secrets',
      'AWS_SECRET_ACCESS_KEY: looks like a secret; CODEX_SETUP_ENV never passes secrets',
      'PATH: set by the runner',
      '1BAD: not a variable name',
    ]);
  });

  test('a relative CA path is dropped and reported', () => {
    const got = setupEnvironment({ SSL_CERT_FILE: 'certs/ca.pem', CURL_CA_BUNDLE: '/ca.pem' });
    expect(got.env).toEqual({ CURL_CA_BUNDLE: '/ca.pem' });
    expect(got.readOnlyPaths).toEqual(['/ca.pem']);
    expect(got.refused).toEqual(['SSL_CERT_FILE: "certs/ca.pem" is not an absolute path']);
  });

  test('nothing set, nothing passed', () => {
    expect(setupEnvironment({})).toEqual({ env: {}, readOnlyPaths: [], refused: [] });
    expect(parseSetupEnvNames(undefined)).toEqual({ names: [], refused: [] });
  });
});
