/**
 * The app computes the environment key from GitHub's tree listing (the GitHub stand-in's real
 * `GET /git/trees/:sha?recursive=1`); it equals the key the runner computes from its checkout.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { environmentKey, manifestsAtCommit as runnerManifests, runnerImageVersion } from '../../src/agent/environment/key.ts';
import { environmentSpecFor, manifestsFromGitHub } from '../../src/github/environment-spec.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../support/github-stand-in.ts';

let gh: GitHubStandIn;
let dir: string;
beforeAll(async () => {
  gh = await GitHubStandIn.start();
  dir = await mkdtemp(path.join(tmpdir(), 'env-spec-'));
});
afterAll(async () => {
  await gh?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('environmentSpecFor', () => {
  test('manifests by blob SHA from the tree; the same key as the runner computes from the checkout', async () => {
    const repo = await gh.addRepo('octo/envs', {
      'package.json': '{"name":"envs"}\n',
      'package-lock.json': '{"lockfileVersion":3}\n',
      'apps/api/requirements.txt': 'flask\n',
      'src/index.js': 'x\n',
      'vendor/lib/composer.json': '{}\n',
    });
    const octokit = new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl });
    const manifests = await manifestsFromGitHub(octokit, 'octo', 'envs', repo.headSha);
    expect(manifests?.map(([p]) => p).sort()).toEqual(['apps/api/requirements.txt', 'package-lock.json', 'package.json']);

    const spec = await environmentSpecFor({
      octokit, owner: 'octo', repo: 'envs', repositoryId: repo.id, sha: repo.headSha, scope: 'default',
      setupScript: 'npm ci', autoInstall: true, fresh: true, maxBytes: 1000,
    });
    expect(spec).toMatchObject({ repositoryId: String(repo.id), scope: 'default', fresh: true, maxBytes: 1000 });
    // The runner's view: host-side git on the same commit (here the stand-in's bare repository).
    const fromGit = await runnerManifests({ gitDir: repo.path, workTree: dir }, repo.headSha);
    expect(spec?.key).toBe(environmentKey({
      repositoryId: String(repo.id), scope: 'default', setupScript: 'npm ci', autoInstall: true, manifests: fromGit, imageVersion: runnerImageVersion(),
    }));
  });
});
