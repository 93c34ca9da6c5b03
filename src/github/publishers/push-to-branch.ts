/**
 * Publishes pull request work: the result's changes as ONE commit on the pull request's head branch
 * (same repository), or, for a fork the App cannot write to, as a new pull request from a branch of
 * the base repository on top of the fork's head.
 *
 * Everything goes through the Git Data API (https://docs.github.com/en/rest/git): blobs, a tree on
 * `base_tree`, a commit without author or committer (GitHub signs it as the App, so it shows as
 * verified), then a NON-forced ref update (`PATCH /git/refs/heads/{branch}` with `force: false`). The
 * parent is always the head SHA the app dispatched the task on (stored on the task), never a SHA the
 * runner reports. Nothing here ever force-pushes.
 *
 * When the branch moved while the task ran (someone pushed), the changes are re-applied onto the new
 * head if the files pushed meanwhile do not overlap ours (a tree "merge" through the API: a new tree on
 * the current head's tree with our entries, parent = the current head); otherwise the outcome is
 * `branch_moved` and the caller tells the requester how to retry.
 *
 * Validate the changes with `validateChanges` (validate-result.ts) first: nothing here re-checks paths.
 */
import PQueue from 'p-queue';
import type { FileChange } from '../../contract.ts';
import { branchName, commitMessage, createBranch, openPullRequest } from '../publish.ts';
import type { CoAuthor, GitHubClient } from '../publish.ts';

/** Blob uploads run at once. */
const BLOB_CONCURRENCY = 4;
/** Rebase attempts when the branch keeps moving under us. */
const MAX_REBASES = 3;
/**
 * Most files `GET /compare` lists (https://docs.github.com/en/rest/commits/commits#compare-two-commits);
 * a list this long may be cut, so the overlap is then unknown and treated as an overlap.
 */
export const COMPARE_MAX_FILES = 300;

/** One entry of `POST /git/trees` (https://docs.github.com/en/rest/git/trees#create-a-tree); `sha: null` deletes. */
export interface TreeEntry {
  path: string;
  mode: '100644' | '100755' | '120000';
  type: 'blob';
  sha: string | null;
}

/**
 * The tree entries for `changes`, given the blob SHA uploaded for each added or modified file (keyed
 * by path): deletions first (a file replaced by a directory, or the reverse, must be removed before its
 * successor is added), then the writes in the order of `changes`.
 * @throws Error when a written path has no blob SHA.
 */
export function buildTreeEntries(changes: FileChange[], blobShas: ReadonlyMap<string, string>): TreeEntry[] {
  const deletions = changes.filter((c) => c.action === 'delete').map((c): TreeEntry => ({ path: c.path, mode: '100644', type: 'blob', sha: null }));
  const writes = changes.flatMap((c): TreeEntry[] => {
    if (c.action === 'delete') return [];
    const sha = blobShas.get(c.path);
    if (!sha) throw new Error(`buildTreeEntries: no blob for ${c.path}`);
    return [{ path: c.path, mode: c.mode, type: 'blob', sha }];
  });
  return [...deletions, ...writes];
}

/**
 * The paths of `ours` that collide with `theirs`: equal paths, or one a directory of the other (we
 * write `a/b/c` and they replaced directory `a/b` by a file, or the reverse). Case-sensitive, as git is.
 * @returns the colliding paths of `ours`, sorted and unique; empty when the changes are independent.
 */
export function overlappingPaths(ours: Iterable<string>, theirs: Iterable<string>): string[] {
  const theirSet = new Set(theirs);
  // Every directory prefix of their paths, to catch "we write under a path they made a file" and the reverse.
  const theirDirs = new Set<string>();
  for (const p of theirSet) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) theirDirs.add(parts.slice(0, i).join('/'));
  }
  const out = new Set<string>();
  for (const p of ours) {
    if (theirSet.has(p) || theirDirs.has(p)) {
      out.add(p);
      continue;
    }
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      if (theirSet.has(parts.slice(0, i).join('/'))) {
        out.add(p);
        break;
      }
    }
  }
  return [...out].sort();
}

/**
 * What a move of the branch means for our change, from `GET /compare/{dispatched}...{current}`:
 * `rebase` when the current head descends from the dispatched one and none of the files changed since
 * overlap ours; `conflict` otherwise (`overlapping` lists our colliding paths; `rewritten` when the
 * branch no longer contains the dispatched head, i.e. it was force-pushed; `unknown` when the file list
 * may be cut at {@link COMPARE_MAX_FILES}).
 */
export function decideOnMove(
  ourPaths: string[],
  compare: { status: string; files: Array<{ filename: string; previous_filename?: string | undefined }> },
): { kind: 'rebase' } | { kind: 'conflict'; overlapping: string[]; rewritten: boolean; unknown: boolean } {
  const rewritten = compare.status !== 'ahead' && compare.status !== 'identical';
  const unknown = compare.files.length >= COMPARE_MAX_FILES;
  const theirs = compare.files.flatMap((f) => (f.previous_filename ? [f.filename, f.previous_filename] : [f.filename]));
  const overlapping = overlappingPaths(ourPaths, theirs);
  if (rewritten || unknown || overlapping.length) return { kind: 'conflict', overlapping, rewritten, unknown };
  return { kind: 'rebase' };
}

/** Arguments of {@link pushToBranch}. */
export interface PushToBranchOptions {
  owner: string;
  repo: string;
  /** The pull request's head branch in `owner/repo`, without `refs/heads/`. */
  branch: string;
  /** The head SHA the task was dispatched on (stored on the task, never the runner's word): the parent. */
  dispatchedHeadSha: string;
  /** Validated changes against `dispatchedHeadSha`; must not be empty. */
  changes: FileChange[];
  /** Commit message (the runner's; trailers are added, see `commitMessage` in publish.ts). */
  message: string;
  /** Users credited with `Co-authored-by` trailers (usually the requester). */
  coAuthors?: CoAuthor[];
}

/** Result of {@link pushToBranch}. */
export type PushOutcome =
  | {
      kind: 'pushed';
      /** The new commit (40 hex), now the branch's head. */
      commitSha: string;
      /** Its parent: `dispatchedHeadSha`, or the head the change was re-applied onto. */
      parentSha: string;
      /** True when the branch had moved and the change was re-applied onto its new head. */
      rebased: boolean;
      /** Whether GitHub reports the commit's signature as verified. */
      verified: boolean;
    }
  | {
      /** The branch moved and the change could not be re-applied; nothing was pushed. */
      kind: 'branch_moved';
      branch: string;
      dispatchedHeadSha: string;
      /** Where the branch points now. */
      currentHeadSha: string;
      /** Our paths that were also changed on the branch meanwhile (may be empty, see the flags). */
      overlapping: string[];
      /** The branch no longer contains the dispatched head (force-pushed or reset). */
      rewritten: boolean;
      /** Too many files changed meanwhile to tell whether they overlap. */
      unknown: boolean;
    }
  | {
      /** The branch does not exist any more (deleted, e.g. after a merge); nothing was pushed. */
      kind: 'branch_missing';
      branch: string;
    };

/** HTTP status of an Octokit error, if it has one. */
function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Uploads the blobs of `changes` (`POST /git/blobs`, base64, 4 at once).
 * @returns blob SHA by path, for {@link buildTreeEntries}.
 */
async function uploadBlobs(octokit: GitHubClient, owner: string, repo: string, changes: FileChange[]): Promise<Map<string, string>> {
  const queue = new PQueue({ concurrency: BLOB_CONCURRENCY });
  const out = new Map<string, string>();
  await Promise.all(
    changes.map((change) =>
      change.action === 'delete'
        ? undefined
        : queue.add(async () => {
            const { data } = await octokit.rest.git.createBlob({ owner, repo, content: change.contentBase64, encoding: 'base64' });
            out.set(change.path, data.sha);
          }),
    ),
  );
  return out;
}

/**
 * Creates a commit of `entries` on top of `parentSha`: `GET /git/commits/{parent}` for its tree,
 * `POST /git/trees` with that `base_tree`, `POST /git/commits` without author/committer.
 */
async function commitOnto(
  octokit: GitHubClient,
  opts: { owner: string; repo: string; parentSha: string; entries: TreeEntry[]; message: string },
): Promise<{ commitSha: string; treeSha: string; verified: boolean }> {
  const { owner, repo, parentSha } = opts;
  const { data: parent } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: parentSha });
  const { data: tree } = await octokit.rest.git.createTree({ owner, repo, base_tree: parent.tree.sha, tree: opts.entries });
  const { data: commit } = await octokit.rest.git.createCommit({ owner, repo, message: opts.message, tree: tree.sha, parents: [parentSha] });
  return { commitSha: commit.sha, treeSha: tree.sha, verified: commit.verification?.verified === true };
}

/** Where `refs/heads/<branch>` points, or undefined when it does not exist. @throws RequestError on other errors. */
async function headOf(octokit: GitHubClient, owner: string, repo: string, branch: string): Promise<string | undefined> {
  try {
    return (await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` })).data.object.sha;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * Moves `branch` to `sha` without force. @returns `updated`, or `moved` when GitHub refuses the update
 * as not a fast-forward (422) and the branch no longer points where we expected.
 * @throws RequestError on other errors.
 */
async function fastForward(
  octokit: GitHubClient,
  opts: { owner: string; repo: string; branch: string; sha: string; expected: string },
): Promise<'updated' | 'moved' | 'missing'> {
  const { owner, repo, branch, sha } = opts;
  try {
    await octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha, force: false });
    return 'updated';
  } catch (err) {
    if (statusOf(err) !== 422) throw err;
    const current = await headOf(octokit, owner, repo, branch);
    if (current === undefined) return 'missing';
    if (current === sha) return 'updated';
    if (current !== opts.expected) return 'moved';
    throw err;
  }
}

/**
 * Publishes `changes` as one commit on `branch` of a same-repository pull request:
 * 1. blobs, and a commit on `dispatchedHeadSha`'s tree with parent `dispatchedHeadSha`;
 * 2. when the branch still points at `dispatchedHeadSha`: `PATCH /git/refs/heads/{branch}` with
 *    `force: false`;
 * 3. when it moved (before the update, or the update answers 422 "not a fast forward"):
 *    `GET /compare/{dispatched}...{current}`; if the current head descends from the dispatched one
 *    and no file changed meanwhile overlaps ours (see {@link decideOnMove}), a new commit with the
 *    same tree entries on the current head's tree, parent = the current head, then the non-forced
 *    update again (up to 3 times if the branch keeps moving).
 * Never force-pushes. The first commit is left dangling when the branch moved (GitHub collects it).
 * @returns `pushed` with the new head, `branch_moved` (nothing pushed) or `branch_missing`.
 * @throws Error when `changes` is empty; Octokit RequestError on API errors (e.g. 404 unknown
 *   dispatched SHA, 403 without `contents: write` or `workflows` for workflow files).
 */
export async function pushToBranch(octokit: GitHubClient, opts: PushToBranchOptions): Promise<PushOutcome> {
  const { owner, repo, branch, dispatchedHeadSha, changes } = opts;
  if (!changes.length) throw new Error('pushToBranch: no changes to commit');
  const message = commitMessage(opts.message, opts.coAuthors);
  const entries = buildTreeEntries(changes, await uploadBlobs(octokit, owner, repo, changes));
  const ourPaths = changes.map((c) => c.path);

  let parentSha = dispatchedHeadSha;
  for (let attempt = 0; attempt <= MAX_REBASES; attempt++) {
    const current = await headOf(octokit, owner, repo, branch);
    if (current === undefined) return { kind: 'branch_missing', branch };
    if (current !== parentSha) {
      // The branch moved: re-apply onto the new head only when the files pushed since the dispatched head
      // do not touch ours (compared from the dispatched head, so every commit since it counts).
      const { data: compare } = await octokit.rest.repos.compareCommitsWithBasehead({
        owner,
        repo,
        basehead: `${dispatchedHeadSha}...${current}`,
        per_page: 1,
      });
      const decision = decideOnMove(ourPaths, { status: compare.status, files: compare.files ?? [] });
      if (decision.kind === 'conflict') {
        const { overlapping, rewritten, unknown } = decision;
        return { kind: 'branch_moved', branch, dispatchedHeadSha, currentHeadSha: current, overlapping, rewritten, unknown };
      }
      parentSha = current;
    }
    const { commitSha, verified } = await commitOnto(octokit, { owner, repo, parentSha, entries, message });
    const updated = await fastForward(octokit, { owner, repo, branch, sha: commitSha, expected: parentSha });
    if (updated === 'missing') return { kind: 'branch_missing', branch };
    if (updated === 'updated') return { kind: 'pushed', commitSha, parentSha, rebased: parentSha !== dispatchedHeadSha, verified };
  }
  // The branch kept moving between our reads and updates: give up rather than race a busy branch.
  const current = await headOf(octokit, owner, repo, branch);
  if (current === undefined) return { kind: 'branch_missing', branch };
  return { kind: 'branch_moved', branch, dispatchedHeadSha, currentHeadSha: current, overlapping: [], rewritten: false, unknown: false };
}

/**
 * Finds a commit {@link pushToBranch} already made for `changes` (a retry after a crash between the
 * ref update and recording it): the branch's head when it has one parent and its tree is exactly that
 * parent's tree with `changes` applied (blobs and the tree are content-addressed, so recreating them
 * is idempotent and reveals the same tree SHA).
 * @returns the head commit and its parent, or undefined when the head is not such a commit.
 * @throws Error when `changes` is empty; RequestError on API errors other than a missing branch.
 */
export async function findPushedCommit(
  octokit: GitHubClient,
  opts: Pick<PushToBranchOptions, 'owner' | 'repo' | 'branch' | 'dispatchedHeadSha' | 'changes'>,
): Promise<{ commitSha: string; parentSha: string; verified: boolean } | undefined> {
  const { owner, repo, branch, changes } = opts;
  if (!changes.length) throw new Error('findPushedCommit: no changes');
  const head = await headOf(octokit, owner, repo, branch);
  if (head === undefined || head === opts.dispatchedHeadSha) return undefined;
  const { data: commit } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: head });
  const parentSha = commit.parents.length === 1 ? commit.parents[0]!.sha : undefined;
  if (!parentSha) return undefined;
  const entries = buildTreeEntries(changes, await uploadBlobs(octokit, owner, repo, changes));
  const { data: parent } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: parentSha });
  const { data: tree } = await octokit.rest.git.createTree({ owner, repo, base_tree: parent.tree.sha, tree: entries });
  if (tree.sha !== commit.tree.sha) return undefined;
  return { commitSha: head, parentSha, verified: commit.verification?.verified === true };
}

/**
 * The branch for work on a fork pull request, in the base repository: `codex/pr-<number>-<slug>`, the
 * slug as in `branchName` of publish.ts (e.g. #7 "Fix the parser" → `codex/pr-7-fix-the-parser`).
 * @throws RangeError when `pullNumber` is not a positive integer.
 */
export function forkBranchName(pullNumber: number, title: string): string {
  return branchName(pullNumber, title).replace(/^codex\//, 'codex/pr-');
}

/** Arguments of {@link openFromForkHead}. */
export interface OpenFromForkHeadOptions {
  /** The BASE repository (where the fork pull request is open and the App is installed). */
  owner: string;
  repo: string;
  /** The fork pull request's number and title (for the branch name). */
  pullNumber: number;
  pullTitle: string;
  /** The fork pull request's base branch: the new pull request targets it. */
  baseRef: string;
  /**
   * The fork's head SHA the task was dispatched on; reachable in the base repository as
   * `refs/pull/<n>/head`, so the Git Data API of the base repository can use it as a parent.
   */
  dispatchedHeadSha: string;
  /** Validated changes against `dispatchedHeadSha`; must not be empty. */
  changes: FileChange[];
  message: string;
  coAuthors?: CoAuthor[];
  /** Title and body (markdown) of the new pull request. */
  title: string;
  body: string;
  draft?: boolean;
}

/**
 * For a fork pull request (the App cannot write to the fork): one commit with `changes` on top of the
 * fork's head `dispatchedHeadSha`, a new branch `codex/pr-<n>-<slug>` in the base repository at that
 * commit (`-2`, `-3`, … when taken), and a pull request from it into `baseRef`. Idempotent: when the
 * branch already holds this very change (same tree on the same parent, e.g. a retry after a crash),
 * it is reused with its commit and its open pull request.
 * @returns the branch, the commit, and the pull request's number and web URL (`created` false when an
 *   open one already existed for the branch).
 * @throws Error when `changes` is empty; RequestError on API errors (e.g. 404/422 when the fork's head
 *   commit is not reachable in the base repository).
 */
export async function openFromForkHead(
  octokit: GitHubClient,
  opts: OpenFromForkHeadOptions,
): Promise<{ branch: string; commitSha: string; verified: boolean; number: number; url: string; created: boolean }> {
  const { owner, repo, changes } = opts;
  if (!changes.length) throw new Error('openFromForkHead: no changes to commit');
  const entries = buildTreeEntries(changes, await uploadBlobs(octokit, owner, repo, changes));
  const made = await commitOnto(octokit, {
    owner,
    repo,
    parentSha: opts.dispatchedHeadSha,
    entries,
    message: commitMessage(opts.message, opts.coAuthors),
  });
  let { commitSha, verified } = made;
  const wanted = forkBranchName(opts.pullNumber, opts.pullTitle);
  const existing = await headOf(octokit, owner, repo, wanted);
  let branch: string;
  const earlier = existing ? (await octokit.rest.git.getCommit({ owner, repo, commit_sha: existing })).data : undefined;
  if (earlier && earlier.tree.sha === made.treeSha && earlier.parents.length === 1 && earlier.parents[0]?.sha === opts.dispatchedHeadSha) {
    // A retry (e.g. after a crash) finds its own earlier commit on the branch: same tree, same parent.
    branch = wanted;
    commitSha = earlier.sha;
    verified = earlier.verification?.verified === true;
  } else {
    branch = await createBranch(octokit, { owner, repo, branch: wanted, sha: commitSha });
  }
  const pr = await openPullRequest(octokit, {
    owner,
    repo,
    head: branch,
    base: opts.baseRef,
    title: opts.title,
    body: opts.body,
    ...(opts.draft === undefined ? {} : { draft: opts.draft }),
  });
  return { branch, commitSha, verified, ...pr };
}
