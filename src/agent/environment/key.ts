/**
 * The cache key of an environment (DESIGN.md, "Environments"): repository id + cache scope + hash of
 * the setup script + the lockfiles and manifests setup reads (by git blob SHA, so that the app can
 * compute the key from one GitHub trees request and the runner from its trusted git, without reading
 * any content) + the runner image version. Shared by the app (which files the archive under it) and
 * the runner (which re-checks it after checkout before restoring or saving).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gitIn, type TrustedRepository } from '../git.ts';

/**
 * File names (anywhere in the tree, outside vendored directories) whose content decides what setup
 * installs: the lockfiles and manifests of the package managers setup.ts detects, plus `.nvmrc`,
 * `.python-version` and `.tool-versions` which pick toolchain versions.
 */
export const MANIFEST_NAMES: ReadonlySet<string> = new Set([
  'package.json', 'package-lock.json', 'npm-shrinkwrap.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', 'yarn.lock', '.yarnrc.yml',
  'bun.lock', 'bun.lockb', '.npmrc', '.nvmrc',
  'requirements.txt', 'requirements-dev.txt', 'requirements_dev.txt', 'dev-requirements.txt', 'constraints.txt',
  'pyproject.toml', 'poetry.lock', 'uv.lock', 'Pipfile', 'Pipfile.lock', 'setup.py', 'setup.cfg', '.python-version',
  'Cargo.toml', 'Cargo.lock', 'go.mod', 'go.sum', 'Gemfile', 'Gemfile.lock', 'composer.json', 'composer.lock',
  '.tool-versions',
]);

/** Directories whose contents never count (vendored or installed copies of other packages). */
const IGNORED_DIRS = new Set(['node_modules', 'vendor', '.venv', 'venv', '.git']);

/** Whether the repository-relative path `file` (POSIX separators) is a manifest that enters the key. */
export function isManifestPath(file: string): boolean {
  const parts = file.split('/');
  const name = parts.at(-1) ?? '';
  if (!(MANIFEST_NAMES.has(name) || /^requirements[\w.-]*\.txt$/.test(name))) return false;
  return !parts.slice(0, -1).some((dir) => IGNORED_DIRS.has(dir));
}

/** A manifest in the key: repository-relative path and git blob SHA (40 hex). */
export type ManifestEntry = readonly [path: string, blobSha: string];

/** Inputs of {@link environmentKey}. */
export interface EnvironmentKeyInput {
  /** GitHub repository id (`repository.id`), as a string. */
  repositoryId: string;
  /** Cache namespace inside the repository (`default`; e.g. `pull/12` for work on a fork's pull request). */
  scope: string;
  /** The setup script (TaskSpec `setup.script`), or undefined for auto-install. */
  setupScript: string | undefined;
  /** TaskSpec `setup.autoInstall`. */
  autoInstall: boolean;
  /** The manifests of the tree the task starts from (any order; see {@link manifestsFromTree}). */
  manifests: readonly ManifestEntry[];
  /** The runner image version, see {@link runnerImageVersion}. */
  imageVersion: string;
}

/** sha256 hex of a text. */
function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The cache key (64 hex characters, sha256) of an environment. Pure: the same inputs, the same key. */
export function environmentKey(input: EnvironmentKeyInput): string {
  const manifests = [...input.manifests].map(([p, sha]) => [p, sha] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return sha256(JSON.stringify({
    v: 1,
    repositoryId: input.repositoryId,
    scope: input.scope,
    setup: input.setupScript === undefined ? null : sha256(input.setupScript),
    autoInstall: input.autoInstall,
    manifests,
    image: input.imageVersion,
  }));
}

/**
 * The manifests among the entries of a git tree listing: GitHub's "Get a tree" response with
 * `recursive=1` (https://docs.github.com/en/rest/git/trees#get-a-tree: `{path, type, sha}`), or
 * entries parsed from `git ls-tree -r`. Only blobs count.
 */
export function manifestsFromTree(entries: Iterable<{ path: string; type: string; sha: string }>): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  for (const e of entries) if (e.type === 'blob' && isManifestPath(e.path)) out.push([e.path, e.sha]);
  return out;
}

/**
 * The manifests of commit `sha` in a trusted repository, through host-side git
 * (`git ls-tree -r -z`), never through the working tree the setup may have changed.
 * @throws GitError when git fails.
 */
export async function manifestsAtCommit(repo: TrustedRepository, sha: string): Promise<ManifestEntry[]> {
  const { stdout } = await gitIn(repo, ['ls-tree', '-r', '-z', '--full-tree', sha]);
  const entries: { path: string; type: string; sha: string }[] = [];
  for (const record of stdout.toString('utf8').split('\0')) {
    // `<mode> SP <type> SP <object> TAB <file>`
    const match = /^\d+ (\w+) ([0-9a-f]+)\t([\s\S]+)$/.exec(record);
    if (match) entries.push({ type: match[1]!, sha: match[2]!, path: match[3]! });
  }
  return manifestsFromTree(entries);
}

/**
 * The runner image version: this package's version and the Node.js version
 * (`codex-cloud@0.1.0 node@v24.21.0`). An upgrade of either invalidates every environment.
 */
export function runnerImageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/agent/environment/ (sources) or dist/agent/environment/ (built): the package root is three up.
  const pkg = JSON.parse(readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version?: string };
  return `codex-cloud@${pkg.version ?? '0.0.0'} node@${process.version}`;
}
