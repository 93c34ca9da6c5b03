/**
 * The private git directory of a task (a {@link TrustedRepository}): created by the runner outside
 * the sandbox's writable paths, it is the only git directory host-side git uses, so nothing the
 * agent writes under the workspace's `.git` (config, hooks, `info/attributes`, the index) is ever
 * read on the host. The agent gets its own copy as `<workspace>/.git` and may use git freely.
 */
import { constants } from 'node:fs';
import { appendFile, copyFile, cp, mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git, gitIn, type TrustedRepository } from './git.ts';

/** Thrown when an in-place working tree cannot be given a private git directory. */
export class TrustedRepositoryError extends Error {
  override name = 'TrustedRepositoryError';
}

/**
 * Creates an empty private git directory at `gitDir` (no templates: no sample hooks), non-bare so
 * that it is used with an explicit `--work-tree`.
 * @param objectFormat `sha1` (default) or `sha256`.
 * @throws GitError when git cannot create it.
 */
export async function initPrivateGitDir(gitDir: string, objectFormat = 'sha1'): Promise<void> {
  const parent = path.dirname(gitDir);
  await mkdir(parent, { recursive: true });
  await git(['init', '-q', '--bare', '--template=', `--object-format=${objectFormat}`, gitDir], { cwd: parent });
  await git([`--git-dir=${gitDir}`, 'config', 'core.bare', 'false'], { cwd: parent, safeDirectories: [gitDir] });
}

/**
 * Finishes a fresh checkout before anything untrusted runs in it: copies the private git directory
 * to `<workTree>/.git` for the agent (objects, refs, the index with its timestamps so that the
 * agent's `git status` keeps the stat cache; copy-on-write where the file system supports it), and
 * protects the private index's submodules (see {@link protectSubmodules}).
 * @throws Error (EEXIST) when `<workTree>/.git` already exists; GitError when the index is unusable.
 */
export async function handOverWorkspace(repo: TrustedRepository): Promise<void> {
  // The listing reads the private index while it is copied; the marking writes it after the copy.
  const [, gitlinks] = await Promise.all([
    cp(repo.gitDir, path.join(repo.workTree, '.git'), {
      recursive: true,
      errorOnExist: true,
      force: false,
      preserveTimestamps: true,
      mode: constants.COPYFILE_FICLONE,
    }),
    listGitlinks(repo),
  ]);
  await markSkipWorktree(repo, gitlinks);
}

/**
 * Marks every submodule (gitlink) of the private index `skip-worktree`. `git add` would otherwise
 * run `git status` inside each submodule directory, with that directory's own `.git` (agent-written:
 * a filter driver there runs on the host), whatever `diff.ignoreSubmodules` says. The result cannot
 * carry submodule changes anyway; new nested repositories the agent creates are added without
 * looking inside them and reported as skipped.
 * @throws GitError when the index cannot be read or written.
 */
async function protectSubmodules(repo: TrustedRepository): Promise<void> {
  await markSkipWorktree(repo, await listGitlinks(repo));
}

/** Paths of the submodules (gitlinks, mode 160000) in the private index. */
async function listGitlinks(repo: TrustedRepository): Promise<string[]> {
  const listed = (await gitIn(repo, ['ls-files', '--stage', '-z'])).stdout.toString('utf8');
  return listed
    .split('\0')
    .filter((entry) => entry.startsWith('160000 '))
    .map((entry) => entry.slice(entry.indexOf('\t') + 1));
}

async function markSkipWorktree(repo: TrustedRepository, paths: string[]): Promise<void> {
  if (paths.length === 0) return;
  await gitIn(repo, ['update-index', '--skip-worktree', '-z', '--stdin'], { input: `${paths.join('\0')}\0` });
}

/**
 * Gives an existing working tree (`codex-cloud exec`, in place) a private git directory at `gitDir`
 * before the agent runs: it borrows the repository's objects read-only (`objects/info/alternates`)
 * and starts from a copy of its index (mtime kept, for git's racy-entry check). Configuration,
 * hooks and attributes files of the repository are not used afterwards.
 * @returns the trusted repository (its work tree is the repository's top level), or undefined when
 *   `dir` is not inside a git working tree.
 * @throws TrustedRepositoryError when the repository's paths cannot be used (a newline in them).
 * @throws GitError when the private git directory cannot be created.
 */
export async function adoptWorkingTree(dir: string, gitDir: string): Promise<TrustedRepository | undefined> {
  let lines: string[];
  try {
    const out = await git(
      ['rev-parse', '--path-format=absolute', '--show-toplevel', '--absolute-git-dir', '--git-common-dir', '--show-object-format'],
      { cwd: dir },
    );
    lines = out.stdout.toString('utf8').replace(/\n$/, '').split('\n');
  } catch {
    return undefined;
  }
  if (lines.length !== 4) throw new TrustedRepositoryError(`cannot use the git repository at ${dir}: unexpected paths ${JSON.stringify(lines)}`);
  const [workTree, ownGitDir, commonDir, objectFormat] = lines as [string, string, string, string];
  const repo: TrustedRepository = { gitDir: path.resolve(gitDir), workTree };
  await initPrivateGitDir(repo.gitDir, objectFormat);
  await writeFile(path.join(repo.gitDir, 'objects/info/alternates'), `${path.join(commonDir, 'objects')}\n`);
  const index = path.join(ownGitDir, 'index');
  const info = await stat(index).catch(() => undefined);
  if (info?.isFile()) {
    const copy = path.join(repo.gitDir, 'index');
    await copyFile(index, copy);
    await utimes(copy, info.atime, info.mtime);
    await protectSubmodules(repo);
  }
  return repo;
}

/**
 * Keeps what the setup phase left in the checkout out of the task's changes: every untracked path
 * that `.gitignore` does not already ignore (e.g. `node_modules/` in a repository without a
 * `.gitignore`, coverage output) is appended, anchored and escaped, to the private git directory's
 * `info/exclude`, which only the host-side collection reads. Changes the agent makes later under
 * those paths are not collected either.
 * @returns the excluded paths (directories end with `/`), as git listed them.
 * @throws GitError when git cannot list the working tree.
 */
export async function excludeSetupOutput(repo: TrustedRepository): Promise<string[]> {
  const { stdout } = await gitIn(repo, ['ls-files', '--others', '--exclude-standard', '--directory', '--no-empty-directory', '-z']);
  const paths = stdout.toString('utf8').split('\0').filter(Boolean);
  if (paths.length === 0) return paths;
  // gitignore syntax: a leading `/` anchors at the root; `\` escapes wildcards, `!`, `#` and trailing spaces.
  const lines = paths.map((p) => `/${p.replace(/[\\*?[\]!#]/g, '\\$&').replace(/ $/, '\\ ')}`);
  const file = path.join(repo.gitDir, 'info', 'exclude');
  await mkdir(path.dirname(file), { recursive: true });
  await appendFile(file, `\n# left by the setup phase\n${lines.join('\n')}\n`);
  return paths;
}
