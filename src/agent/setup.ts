/**
 * The setup phase: the repository's setup script, or with none, a dependency install chosen from the
 * repository's lockfiles and manifests (as Codex Cloud does), so the agent can run the tests offline.
 */
import { access, realpath } from 'node:fs/promises';
import { readInside } from './repo-files.ts';
import { constants } from 'node:fs';
import path from 'node:path';

/** One setup command and why it was chosen. */
export interface SetupStep {
  /** e.g. `npm (package-lock.json)`. */
  label: string;
  command: string[];
}

/**
 * npm flags of every install: no audit or funding requests, one retry of a failed request with at
 * most 10 s between attempts (npm's defaults: 2 retries, up to 60 s apart, each request up to 5
 * minutes), so a registry that cannot be reached fails the step in seconds, not minutes.
 * See https://docs.npmjs.com/cli/using-npm/config#fetch-retries.
 */
export const NPM_FAIL_FAST = ['--no-audit', '--no-fund', '--fetch-retries=1', '--fetch-retry-mintimeout=2000', '--fetch-retry-maxtimeout=10000'];

/**
 * pip flags of every install: one retry per connection, a 15 s socket timeout (pip's defaults: 5
 * retries, 15 s). See https://pip.pypa.io/en/stable/cli/pip/#general-options.
 */
export const PIP_FAIL_FAST = ['--retries', '1', '--timeout', '15'];

async function exists(file: string): Promise<boolean> {
  try {
    await access(file, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether an executable named `name` is on `pathList` (a PATH-style string). */
export async function onPath(name: string, pathList: string): Promise<boolean> {
  for (const dir of pathList.split(path.delimiter).filter(Boolean)) {
    try {
      await access(path.join(dir, name), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

async function hasNodeDependencies(root: string): Promise<boolean> {
  try {
    // Only a regular file inside the checkout, at most 1 MiB: a symlink to /dev/zero or a secret is not read.
    const read = await readInside(await realpath(root), path.join(root, 'package.json'), 1024 * 1024);
    if (!read || read.bytes > 1024 * 1024) return false;
    const pkg = JSON.parse(read.content) as Record<string, unknown>;
    return ['dependencies', 'devDependencies', 'optionalDependencies'].some(
      (key) => pkg[key] && typeof pkg[key] === 'object' && Object.keys(pkg[key] as object).length > 0,
    );
  } catch {
    return false;
  }
}

/**
 * Chooses the install commands for the repository at `root`, in the order they should run.
 * Python installs go into a virtualenv at `<home>/.venv` (outside the checkout, so it never shows up
 * as a change); callers put `<home>/.venv/bin` on the agent's PATH. A tool that is not installed is
 * reported through `missing` instead of failing the task.
 * @param pathList the PATH the commands will run with.
 */
export async function detectSetup(
  root: string,
  home: string,
  pathList: string,
): Promise<{ steps: SetupStep[]; missing: string[] }> {
  const steps: SetupStep[] = [];
  const missing: string[] = [];
  const has = (f: string) => exists(path.join(root, f));
  const want = async (tool: string, step: SetupStep) => {
    if (await onPath(tool, pathList)) steps.push(step);
    else missing.push(`${step.label}: ${tool} is not installed`);
  };

  // JavaScript: one package manager, chosen by lockfile.
  // npm fails fast: its defaults retry each request for minutes on a network that cannot answer.
  if (await has('pnpm-lock.yaml')) {
    if (await onPath('pnpm', pathList)) steps.push({ label: 'pnpm (pnpm-lock.yaml)', command: ['pnpm', 'install', '--frozen-lockfile'] });
    else await want('npx', { label: 'pnpm (pnpm-lock.yaml)', command: ['npx', '--yes', 'pnpm', 'install', '--frozen-lockfile'] });
  } else if (await has('yarn.lock')) {
    if (await onPath('yarn', pathList)) steps.push({ label: 'yarn (yarn.lock)', command: ['yarn', 'install', '--frozen-lockfile'] });
    else await want('corepack', { label: 'yarn (yarn.lock)', command: ['corepack', 'yarn', 'install', '--immutable'] });
  } else if ((await has('bun.lock')) || (await has('bun.lockb'))) {
    await want('bun', { label: 'bun (bun.lock)', command: ['bun', 'install', '--frozen-lockfile'] });
  } else if ((await has('package-lock.json')) || (await has('npm-shrinkwrap.json'))) {
    await want('npm', { label: 'npm (package-lock.json)', command: ['npm', 'ci', ...NPM_FAIL_FAST] });
  } else if ((await has('package.json')) && (await hasNodeDependencies(root))) {
    await want('npm', {
      label: 'npm (package.json)',
      command: ['npm', 'install', '--no-package-lock', ...NPM_FAIL_FAST],
    });
  }

  // Python: a virtualenv in the sandbox home.
  const venv = path.join(home, '.venv');
  const pip = path.join(venv, 'bin', 'pip');
  const requirements = ['requirements.txt', 'requirements-dev.txt', 'requirements_dev.txt', 'dev-requirements.txt'];
  const presentReqs: string[] = [];
  for (const r of requirements) if (await has(r)) presentReqs.push(r);
  const pyproject = await has('pyproject.toml');
  if ((await has('uv.lock')) && (await onPath('uv', pathList))) {
    steps.push({ label: 'uv (uv.lock)', command: ['uv', 'sync', '--frozen'] });
  } else if ((await has('poetry.lock')) && (await onPath('poetry', pathList))) {
    steps.push({ label: 'poetry (poetry.lock)', command: ['poetry', 'install', '--no-interaction'] });
  } else if (presentReqs.length > 0 || pyproject) {
    if (await onPath('python3', pathList)) {
      steps.push({ label: 'python venv', command: ['python3', '-m', 'venv', venv] });
      for (const r of presentReqs) steps.push({ label: `pip (${r})`, command: [pip, 'install', ...PIP_FAIL_FAST, '-r', r] });
      if (pyproject && presentReqs.length === 0) steps.push({ label: 'pip (pyproject.toml)', command: [pip, 'install', ...PIP_FAIL_FAST, '-e', '.'] });
    } else {
      missing.push('python: python3 is not installed');
    }
  }

  if (await has('Cargo.toml')) await want('cargo', { label: 'cargo (Cargo.toml)', command: ['cargo', 'fetch'] });
  if (await has('go.mod')) await want('go', { label: 'go (go.mod)', command: ['go', 'mod', 'download'] });
  if (await has('Gemfile')) await want('bundle', { label: 'bundler (Gemfile)', command: ['bundle', 'install'] });
  if (await has('composer.json')) await want('composer', { label: 'composer (composer.json)', command: ['composer', 'install', '--no-interaction'] });
  return { steps, missing };
}

/** Directories to put first on the agent's PATH after setup (virtualenv, node_modules/.bin). */
export function toolPaths(root: string, home: string): string[] {
  return [path.join(home, '.venv', 'bin'), path.join(root, 'node_modules', '.bin')];
}
