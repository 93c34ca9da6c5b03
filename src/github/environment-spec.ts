/**
 * The app's side of the environment key (issue 12): the manifests of the commit a task starts from,
 * from one GitHub "Get a tree" request (recursive; https://docs.github.com/en/rest/git/trees#get-a-tree),
 * by blob SHA without reading any content, and the TaskSpec `environment` built from them. The runner
 * re-computes the same key from its checkout and neither restores nor saves on a mismatch.
 */
import type { EnvironmentSpec } from '../contract.ts';
import { environmentKey, manifestsFromTree, runnerImageVersion, type ManifestEntry } from '../agent/environment/key.ts';
import type { GitHubClient } from './publish.ts';

/**
 * The manifests of commit `sha`, or undefined when GitHub truncated the listing (a very large
 * repository: the key would be incomplete, so the task runs without a cached environment).
 * @throws the Octokit error when the request fails.
 */
export async function manifestsFromGitHub(octokit: GitHubClient, owner: string, repo: string, sha: string): Promise<ManifestEntry[] | undefined> {
  const { data } = await octokit.rest.git.getTree({ owner, repo, tree_sha: sha, recursive: 'true' });
  if (data.truncated) return undefined;
  return manifestsFromTree(data.tree.flatMap((e) => (e.path && e.type && e.sha ? [{ path: e.path, type: e.type, sha: e.sha }] : [])));
}

/** Inputs of {@link environmentSpecFor}. */
export interface EnvironmentSpecInput {
  octokit: GitHubClient;
  owner: string;
  repo: string;
  /** GitHub's repository id (`repository.id` of the webhook payload). */
  repositoryId: number;
  /** The commit the runner checks out (the base SHA, or the pull request's head SHA). */
  sha: string;
  /**
   * Cache namespace: `default` for work on the repository's own branches; give a pull request from a
   * fork its own (e.g. `pull/<n>`), so that its setup cannot prepare the environment of other tasks.
   */
  scope: string;
  /** The TaskSpec's `setup.script` and `setup.autoInstall`. */
  setupScript: string | undefined;
  autoInstall: boolean;
  /** `@codex retry --fresh`: rebuild instead of restoring. */
  fresh: boolean;
  /** Largest archive, bytes (`CODEX_ENV_MAX_MB`). */
  maxBytes: number;
}

/**
 * The TaskSpec `environment` of a task (without `restore`/`save`: the backend fills them), or
 * undefined when the tree listing was truncated.
 * @throws the Octokit error when the tree cannot be read.
 */
export async function environmentSpecFor(input: EnvironmentSpecInput): Promise<EnvironmentSpec | undefined> {
  const manifests = await manifestsFromGitHub(input.octokit, input.owner, input.repo, input.sha);
  if (!manifests) return undefined;
  const repositoryId = String(input.repositoryId);
  return {
    key: environmentKey({
      repositoryId,
      scope: input.scope,
      setupScript: input.setupScript,
      autoInstall: input.autoInstall,
      manifests,
      imageVersion: runnerImageVersion(),
    }),
    repositoryId,
    scope: input.scope,
    fresh: input.fresh,
    maxBytes: input.maxBytes,
  };
}
