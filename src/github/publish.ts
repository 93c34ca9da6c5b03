/**
 * Writes a validated change set to GitHub as the App: blobs, a tree and a commit through the Git Data
 * API (https://docs.github.com/en/rest/git), a branch, and the pull request
 * (https://docs.github.com/en/rest/pulls/pulls). The runner never pushes; this module does, with the
 * App's installation token. Commits are created without author or committer so that GitHub commits
 * and signs them itself and shows them as verified.
 *
 * Validate changes with `validateChanges` (validate-result.ts) first: nothing here re-checks paths.
 * Errors from GitHub propagate as Octokit `RequestError`s (with `status`) unless documented otherwise.
 */
import PQueue from 'p-queue';
import type { ProbotOctokit } from 'probot';
import type { FileChange } from '../contract.ts';
import { neutralizeReferences } from './neutralize.ts';

/** An authenticated Octokit as Probot hands it out (`context.octokit`, `app.auth(installationId)`). */
export type GitHubClient = InstanceType<typeof ProbotOctokit>;

/** Blob uploads run at once in {@link createCommit}. */
const BLOB_CONCURRENCY = 4;
/** Longest slug of {@link branchName}, characters. */
const MAX_SLUG_CHARS = 40;
/** Longest pull request title we send, characters (longer ones are cut with an ellipsis). */
const MAX_TITLE_CHARS = 256;

/** HTTP status of an Octokit error, if it has one. */
function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The branch for work on an issue: `codex/<issueNumber>-<slug>`, where the slug is the title's ASCII
 * letters and digits, lower-cased, accents dropped, other runs replaced by `-`, cut at a word boundary
 * to at most 40 characters (e.g. `Fix the "add()" bug!` on #12 → `codex/12-fix-the-add-bug`). A title
 * with no usable characters gives `codex/<issueNumber>`. The result is a valid git ref name.
 * @throws RangeError when `issueNumber` is not a positive integer.
 */
export function branchName(issueNumber: number, title: string): string {
  if (!Number.isSafeInteger(issueNumber) || issueNumber <= 0) {
    throw new RangeError(`issue number must be a positive integer, got ${issueNumber}`);
  }
  const words = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  let slug = '';
  for (const word of words) {
    const next = slug ? `${slug}-${word}` : word;
    if (next.length > MAX_SLUG_CHARS) {
      if (!slug) slug = word.slice(0, MAX_SLUG_CHARS);
      break;
    }
    slug = next;
  }
  return slug ? `codex/${issueNumber}-${slug}` : `codex/${issueNumber}`;
}

/** A co-author credited with a `Co-authored-by` trailer; `id` is the GitHub user id. */
export interface CoAuthor {
  login: string;
  id: number;
}

/**
 * The commit message for a change set: the runner's message with trailing whitespace and any
 * `Co-authored-by:` lines removed (attribution is the app's decision, not the runner's), then one
 * `Co-authored-by: login <id+login@users.noreply.github.com>` trailer per co-author (deduplicated by
 * id), after a blank line. Mentions and issue references in every form (`@bob`, `#12`, `o/r#12`,
 * `GH-12`, issue URLs; see neutralize.ts) are made inert: the message is the model's text, a mention
 * would notify and `Fixes #12` would close that issue on merge. An empty message becomes `Update files`.
 * Trailer format: https://docs.github.com/en/pull-requests/committing-changes-to-your-project/creating-and-editing-commits/creating-a-commit-with-multiple-authors
 * @throws TypeError on a login that is not a GitHub login or an id that is not a positive integer.
 */
export function commitMessage(message: string, coAuthors: CoAuthor[] = []): string {
  const body =
    message
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .filter((line) => !/^\s*co-authored-by:/i.test(line))
      .join('\n')
      .trimEnd() || 'Update files';
  const inert = neutralizeReferences(body);
  const seen = new Set<number>();
  const trailers: string[] = [];
  for (const { login, id } of coAuthors) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\[bot\])?$/.test(login)) throw new TypeError(`not a GitHub login: ${JSON.stringify(login)}`);
    if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`not a GitHub user id: ${id}`);
    if (seen.has(id)) continue;
    seen.add(id);
    trailers.push(`Co-authored-by: ${login} <${id}+${login}@users.noreply.github.com>`);
  }
  return trailers.length ? `${inert}\n\n${trailers.join('\n')}` : inert;
}

/** Arguments of {@link createCommit}. */
export interface CreateCommitOptions {
  owner: string;
  repo: string;
  /** The commit the changes are against (TaskResult.baseSha); it becomes the only parent. */
  baseSha: string;
  /** Validated changes (see validateChanges); must not be empty. */
  changes: FileChange[];
  /** Commit message (the runner's; trailers are added, see {@link commitMessage}). */
  message: string;
  /** Users credited with `Co-authored-by` trailers (usually the requester). */
  coAuthors?: CoAuthor[];
}

/**
 * Creates one commit holding `changes` on top of `baseSha`, through the Git Data API:
 * `GET /git/commits/{baseSha}` for its tree, `POST /git/blobs` per added or modified file (base64,
 * 4 at once), `POST /git/trees` on `base_tree` with deletions (`sha: null`) first, then
 * `POST /git/commits` with `parents: [baseSha]` and no author/committer, so GitHub signs it as the App.
 * No ref is moved (see {@link createBranch}, {@link updateBranch}).
 * @returns the commit and tree SHAs and whether GitHub reports the commit signature as verified.
 * @throws Error when `changes` is empty; Octokit RequestError on API errors (e.g. 404 unknown base,
 *   403 without `contents: write`, or `workflows` for workflow files).
 */
export async function createCommit(
  octokit: GitHubClient,
  opts: CreateCommitOptions,
): Promise<{ commitSha: string; treeSha: string; verified: boolean }> {
  const { owner, repo, baseSha, changes } = opts;
  if (!changes.length) throw new Error('createCommit: no changes to commit');
  const { data: base } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: baseSha });

  const queue = new PQueue({ concurrency: BLOB_CONCURRENCY });
  const writes = changes.filter((c) => c.action !== 'delete');
  const blobShas = await Promise.all(
    writes.map((change) =>
      queue.add(async () => {
        const { data } = await octokit.rest.git.createBlob({ owner, repo, content: change.contentBase64, encoding: 'base64' });
        return data.sha;
      }),
    ),
  );

  type TreeEntry = { path: string; mode: '100644' | '100755' | '120000'; type: 'blob'; sha: string | null };
  // Deletions first: a file replaced by a directory (or the reverse) must be removed before its successor is added.
  const tree: TreeEntry[] = [
    ...changes.filter((c) => c.action === 'delete').map((c): TreeEntry => ({ path: c.path, mode: '100644', type: 'blob', sha: null })),
    ...writes.map((c, i): TreeEntry => ({ path: c.path, mode: c.mode, type: 'blob', sha: blobShas[i]! })),
  ];
  const { data: newTree } = await octokit.rest.git.createTree({ owner, repo, base_tree: base.tree.sha, tree });
  const { data: commit } = await octokit.rest.git.createCommit({
    owner,
    repo,
    message: commitMessage(opts.message, opts.coAuthors),
    tree: newTree.sha,
    parents: [baseSha],
  });
  return { commitSha: commit.sha, treeSha: newTree.sha, verified: commit.verification?.verified === true };
}

/** Whether `refs/heads/<branch>` exists. @throws RequestError on errors other than 404. */
async function branchExists(octokit: GitHubClient, owner: string, repo: string, branch: string): Promise<boolean> {
  try {
    await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw err;
  }
}

/**
 * Creates `refs/heads/<branch>` at `sha` (`POST /git/refs`). When the name is taken, tries
 * `<branch>-2`, `<branch>-3`, … up to `maxAttempts` names in all (default 10).
 * @returns the branch name used (without `refs/heads/`).
 * @throws Error when every name is taken; RequestError on other API errors (e.g. 422 for an unknown
 *   SHA or an invalid name, which is told apart from "exists" by looking the ref up).
 */
export async function createBranch(
  octokit: GitHubClient,
  opts: { owner: string; repo: string; branch: string; sha: string; maxAttempts?: number },
): Promise<string> {
  const { owner, repo, branch, sha } = opts;
  const attempts = opts.maxAttempts ?? 10;
  for (let n = 1; n <= attempts; n++) {
    const name = n === 1 ? branch : `${branch}-${n}`;
    try {
      await octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${name}`, sha });
      return name;
    } catch (err) {
      if (statusOf(err) !== 422 || !(await branchExists(octokit, owner, repo, name))) throw err;
    }
  }
  throw new Error(`createBranch: ${branch} and ${branch}-2 … ${branch}-${attempts} all exist in ${owner}/${repo}`);
}

/** Thrown by {@link updateBranch} when the branch is not an ancestor of the new commit (someone pushed). */
export class BranchMovedError extends Error {
  override name = 'BranchMovedError';
  /** The branch name (without `refs/heads/`). */
  readonly branch: string;
  /** Where the branch points now. */
  readonly currentSha: string;
  constructor(branch: string, currentSha: string) {
    super(`branch ${branch} moved to ${currentSha}; the update is not a fast-forward`);
    this.branch = branch;
    this.currentSha = currentSha;
  }
}

/**
 * Moves existing branch `refs/heads/<branch>` to `sha` (`PATCH /git/refs/heads/<branch>`), as a
 * fast-forward unless `force` (for pushing fixes to a pull request's branch).
 * @throws BranchMovedError when not forced and the branch is not an ancestor of `sha`;
 *   RequestError otherwise (e.g. 422 when the branch does not exist or `sha` is unknown).
 */
export async function updateBranch(
  octokit: GitHubClient,
  opts: { owner: string; repo: string; branch: string; sha: string; force?: boolean },
): Promise<void> {
  const { owner, repo, branch, sha } = opts;
  const force = opts.force ?? false;
  try {
    await octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha, force });
  } catch (err) {
    if (statusOf(err) !== 422 || force) throw err;
    let current: string;
    try {
      current = (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
    } catch {
      throw err;
    }
    if (current === sha) return;
    // A missing `sha` also answers 422: only a known commit that does not descend from the branch is a move.
    const known = await octokit.rest.git.getCommit({ owner, repo, commit_sha: sha }).then(
      () => true,
      () => false,
    );
    if (!known) throw err;
    throw new BranchMovedError(branch, current);
  }
}

/** Arguments of {@link openPullRequest}. */
export interface OpenPullRequestOptions {
  owner: string;
  repo: string;
  /** Branch with the changes (same repository), without `refs/heads/`. */
  head: string;
  /** Branch to merge into (usually the default branch). */
  base: string;
  /**
   * Untrusted (the model's or the issue's): mentions and issue references are made inert (see
   * neutralize.ts); cut to 256 characters with an ellipsis.
   */
  title: string;
  /**
   * Markdown; see pullRequestBody (GitHub refuses bodies over 65,536 characters). Sent as given: it
   * holds the app's own `Closes #N`, so untrusted parts must be neutralised when it is built.
   */
  body: string;
  draft?: boolean;
}

/**
 * Opens a pull request from `head` into `base` (`POST /pulls`), or returns the open pull request that
 * already exists for `head` (looked up first with `GET /pulls?head=owner:head`, and again if creation
 * answers 422 because one was opened meanwhile). An existing pull request is returned as it is (its
 * title and body are not changed).
 * @returns its number, web URL, and whether this call created it.
 * @throws RequestError on API errors (e.g. 422 when head has no commits over base).
 */
export async function openPullRequest(
  octokit: GitHubClient,
  opts: OpenPullRequestOptions,
): Promise<{ number: number; url: string; created: boolean }> {
  const { owner, repo, head, base, body } = opts;
  const existing = async (): Promise<{ number: number; url: string; created: boolean } | undefined> => {
    const { data } = await octokit.rest.pulls.list({ owner, repo, head: `${owner}:${head}`, state: 'open', per_page: 10 });
    const pr = data[0];
    return pr ? { number: pr.number, url: pr.html_url, created: false } : undefined;
  };
  const found = await existing();
  if (found) return found;
  const chars = [...neutralizeReferences(opts.title)];
  const title = chars.length > MAX_TITLE_CHARS ? `${chars.slice(0, MAX_TITLE_CHARS - 1).join('')}…` : chars.join('');
  try {
    const { data } = await octokit.rest.pulls.create({ owner, repo, head, base, title, body, draft: opts.draft ?? false });
    return { number: data.number, url: data.html_url, created: true };
  } catch (err) {
    if (statusOf(err) === 422) {
      const raced = await existing();
      if (raced) return raced;
    }
    throw err;
  }
}
