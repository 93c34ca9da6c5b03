/**
 * The checkout phase: fetch the base commit of the repository into a private git directory and
 * check it out into an empty workspace.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { gitIn, type GitConfigEntry, type TrustedRepository } from './git.ts';
import { handOverWorkspace, initPrivateGitDir } from './trusted-repo.ts';

/** Inputs of {@link checkoutRepository}. */
export interface CheckoutOptions {
  /** HTTP(S) clone URL without credentials. */
  cloneUrl: string;
  /** Installation token, sent as HTTP basic auth with the user `x-access-token`. */
  token?: string;
  /** Commit to check out (40 hex). */
  baseSha: string;
  /** Branch name given to the checked-out commit (so tools that ask for the branch get an answer). */
  baseRef: string;
  /**
   * Pull request work: the head commit to check out instead of `baseSha` (40 hex). The checkout then
   * holds the pull request's commits and the merge base with `baseSha`, so `git diff <baseSha>...HEAD`
   * and `git log <baseSha>..HEAD` work, and `refs/remotes/origin/<baseRef>` points at `baseSha`.
   */
  headSha?: string;
  /** Local branch name for `headSha` (the pull request's head branch). Default `baseRef`. */
  headRef?: string;
  /**
   * Ref holding `headSha` in this repository, fetched when the server refuses a fetch by SHA:
   * `refs/pull/<n>/head` for a fork's pull request. Default `refs/heads/<headRef>`.
   */
  fetchRef?: string;
  /** The pull request's number of commits: the first fetch takes that many plus one. Default 50. */
  prCommits?: number;
  /** Target directory (the workspace); created; must be empty or absent. */
  dir: string;
  /**
   * The private git directory to create, outside every path the sandbox can write (the runner uses
   * `<workDir>/git`); must be absent or empty.
   */
  gitDir: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Command-scope configuration that makes git send `Authorization: Basic base64(x-access-token:TOKEN)`
 * for this one command (passed through GIT_CONFIG_COUNT/KEY/VALUE, git >= 2.31). The token is never
 * written to a git config file, never part of the remote URL and never on a command line (visible
 * in `ps`).
 */
function gitAuthConfig(token: string | undefined): GitConfigEntry[] {
  if (!token) return [];
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  return [['http.extraHeader', `Authorization: Basic ${basic}`]];
}

/**
 * The transport scheme git uses for a clone URL (`https`, `http`, `file`, `ssh`...), which
 * the hardened configuration of git.ts otherwise forbids (`protocol.allow=never`).
 */
function cloneProtocol(cloneUrl: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(cloneUrl)?.[1]?.toLowerCase();
  return scheme ?? 'file';
}

/**
 * Shallow-fetches `baseSha` (depth 1, all blobs of that commit: the sandbox has no network, so a
 * blobless clone would fail later when a tool needs a missing blob) into the private git directory
 * `gitDir` and checks it out into `dir` on a local branch named `baseRef`. Falls back to fetching
 * `baseRef` when the server refuses a fetch by SHA. Then gives the agent a copy of the git directory
 * as `dir/.git` (see {@link handOverWorkspace}); the host only ever uses `gitDir`.
 * With `headSha` (pull request work) it checks out that commit instead, with the history between it
 * and `baseSha` (see {@link CheckoutOptions.headSha}).
 * @returns the checked-out SHA and the trusted repository (absolute paths) to collect changes with.
 * @throws GitError (credentials redacted) when the repository cannot be fetched.
 */
export async function checkoutRepository(opts: CheckoutOptions): Promise<{ sha: string; repository: TrustedRepository }> {
  await mkdir(opts.dir, { recursive: true });
  const repo: TrustedRepository = { gitDir: path.resolve(opts.gitDir), workTree: path.resolve(opts.dir) };
  const run = (args: string[], config?: GitConfigEntry[]) =>
    gitIn(repo, args, { config, timeoutMs: opts.timeoutMs, signal: opts.signal });
  await initPrivateGitDir(repo.gitDir);
  await run(['remote', 'add', 'origin', opts.cloneUrl]);
  const fetchConfig: GitConfigEntry[] = [[`protocol.${cloneProtocol(opts.cloneUrl)}.allow`, 'always'], ...gitAuthConfig(opts.token)];
  if (opts.headSha) {
    const sha = await checkoutPullRequestHead(opts, opts.headSha, run, fetchConfig);
    await handOverWorkspace(repo);
    return { sha, repository: repo };
  }
  try {
    await run(['fetch', '-q', '--no-tags', '--no-recurse-submodules', '--depth=1', 'origin', opts.baseSha], fetchConfig);
  } catch (error) {
    // Some servers only serve advertised refs; the base SHA is then the tip of (or close to) baseRef.
    try {
      await run(['fetch', '-q', '--no-tags', '--no-recurse-submodules', '--depth=50', 'origin', `+refs/heads/${opts.baseRef}:refs/remotes/origin/${opts.baseRef}`], fetchConfig);
      await run(['cat-file', '-e', `${opts.baseSha}^{commit}`]);
    } catch {
      throw error;
    }
  }
  // Parallel checkout, one worker per core (git >= 2.32; older git ignores the key; trees under
  // checkout.thresholdForParallelism, 100 files, stay sequential). Writing thousands of files is
  // latency-bound: for 5,000 files (17 MiB) on 2 cores it was about as fast as sequential on a quiet
  // disk (median 0.23 s vs 0.27 s) and 2-2.5x faster while the disk was busy (1.8 s vs 4.4 s), with
  // a much shorter tail (see bench/runner.bench.ts).
  await run(['checkout', '-q', '-B', opts.baseRef, opts.baseSha], [['checkout.workers', '0']]);
  const head = (await run(['rev-parse', 'HEAD'])).stdout.toString('utf8').trim();
  await handOverWorkspace(repo);
  return { sha: head, repository: repo };
}

/** Default number of pull request commits assumed when the spec does not say. */
const DEFAULT_PR_COMMITS = 50;
/** Deepening rounds (each doubling the depth) before giving up on finding the merge base. */
const MAX_DEEPEN_ROUNDS = 8;

type RunGit = (args: string[], config?: GitConfigEntry[]) => Promise<{ stdout: Buffer }>;

/**
 * Pull request checkout: fetches `baseSha` and `headSha` with depth `prCommits + 1` (the pull
 * request's commits and, for a linear branch, its merge base), then deepens both (doubling, at most
 * {@link MAX_DEEPEN_ROUNDS} times) until `git merge-base` finds their common ancestor, so the history
 * covers the pull request and not the whole repository. Without a merge base after that (unrelated
 * or very old histories) the checkout still succeeds. Falls back to fetching `fetchRef` and
 * `refs/heads/<baseRef>` when the server refuses a fetch by SHA.
 * @returns the checked-out SHA (`headSha`).
 * @throws GitError when the commits cannot be fetched.
 */
async function checkoutPullRequestHead(opts: CheckoutOptions, headSha: string, run: RunGit, fetchConfig: GitConfigEntry[]): Promise<string> {
  const fetchRef = opts.fetchRef ?? (opts.headRef ? `refs/heads/${opts.headRef}` : undefined);
  let depth = Math.max(1, opts.prCommits ?? DEFAULT_PR_COMMITS) + 1;
  let wants = [opts.baseSha, headSha];
  const fetch = (extra: string[]) => run(['fetch', '-q', '--no-tags', '--no-recurse-submodules', ...extra, 'origin', ...wants], fetchConfig);
  try {
    await fetch([`--depth=${depth}`]);
  } catch (error) {
    if (!fetchRef) throw error;
    wants = [`+${fetchRef}:refs/remotes/origin/codex-head`, `+refs/heads/${opts.baseRef}:refs/remotes/origin/${opts.baseRef}`];
    try {
      await fetch([`--depth=${depth}`]);
      await run(['cat-file', '-e', `${headSha}^{commit}`]);
      await run(['cat-file', '-e', `${opts.baseSha}^{commit}`]);
    } catch {
      throw error;
    }
  }
  const hasMergeBase = () => run(['merge-base', opts.baseSha, headSha]).then(() => true, () => false);
  for (let round = 0; round < MAX_DEEPEN_ROUNDS && !(await hasMergeBase()); round++) {
    // --deepen counts from the current shallow boundary, so doubling the total each round.
    await fetch([`--deepen=${depth}`]);
    depth *= 2;
  }
  await run(['checkout', '-q', '-B', opts.headRef ?? opts.baseRef, headSha], [['checkout.workers', '0']]);
  // `origin/<baseRef>...HEAD` works like on a developer's clone.
  await run(['update-ref', `refs/remotes/origin/${opts.baseRef}`, opts.baseSha]);
  return (await run(['rev-parse', 'HEAD'])).stdout.toString('utf8').trim();
}
