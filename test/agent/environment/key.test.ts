/** The environment cache key: which files count, and what changes the key. */
import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { environmentKey, isManifestPath, manifestsFromTree, runnerImageVersion, type EnvironmentKeyInput } from '../../../src/agent/environment/key.ts';

const base: EnvironmentKeyInput = {
  repositoryId: '42',
  scope: 'default',
  setupScript: undefined,
  autoInstall: true,
  manifests: [['package.json', 'a'.repeat(40)], ['package-lock.json', 'b'.repeat(40)]],
  imageVersion: 'codex-cloud@0.1.0 node@v24.0.0',
};

describe('environmentKey', () => {
  test('is 64 hex characters, independent of the manifests order', () => {
    const key = environmentKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(environmentKey({ ...base, manifests: [...base.manifests].reverse() })).toBe(key);
  });

  test.each<[string, Partial<EnvironmentKeyInput>]>([
    ['another repository', { repositoryId: '43' }],
    ['another scope', { scope: 'pull/7' }],
    ['a setup script', { setupScript: 'npm ci' }],
    ['no auto-install', { autoInstall: false }],
    ['a changed lockfile', { manifests: [['package.json', 'a'.repeat(40)], ['package-lock.json', 'c'.repeat(40)]] }],
    ['a new manifest', { manifests: [...base.manifests, ['packages/app/package.json', 'd'.repeat(40)]] }],
    ['another runner image', { imageVersion: 'codex-cloud@0.2.0 node@v24.0.0' }],
  ])('changes with %s', (_name, change) => {
    expect(environmentKey({ ...base, ...change })).not.toBe(environmentKey(base));
  });

  test('manifests: lockfiles and manifests anywhere, not vendored copies, only blobs', () => {
    expect(isManifestPath('package-lock.json')).toBe(true);
    expect(isManifestPath('packages/web/package.json')).toBe(true);
    expect(isManifestPath('requirements-test.txt')).toBe(true);
    expect(isManifestPath('go.sum')).toBe(true);
    expect(isManifestPath('src/index.ts')).toBe(false);
    expect(isManifestPath('node_modules/x/package.json')).toBe(false);
    expect(isManifestPath('vendor/y/composer.json')).toBe(false);
    // GitHub's "Get a tree" entries (recursive).
    expect(manifestsFromTree([
      { path: 'package.json', type: 'blob', sha: '1'.repeat(40) },
      { path: 'package.json', type: 'tree', sha: '2'.repeat(40) },
      { path: 'README.md', type: 'blob', sha: '3'.repeat(40) },
      { path: 'api/poetry.lock', type: 'blob', sha: '4'.repeat(40) },
    ])).toEqual([['package.json', '1'.repeat(40)], ['api/poetry.lock', '4'.repeat(40)]]);
  });

  test('the runner image version names this package and Node.js', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(runnerImageVersion()).toBe(`codex-cloud@${version} node@${process.version}`);
  });
});
