import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandRecord, FileChange, Usage } from '../../src/contract.ts';
import {
  BranchMovedError,
  branchName,
  commitMessage,
  createBranch,
  createCommit,
  openPullRequest,
  updateBranch,
} from '../../src/github/publish.ts';
import { pullRequestBody } from '../../src/github/pull-request-body.ts';
import { validateChanges } from '../../src/github/validate-result.ts';
import { runGit } from '../support/git-http.ts';
import { GitHubStandIn, ProbotOctokitForTests, statusOf } from '../support/github-stand-in.ts';

const REPO = 'octo-org/hello';
const owner = 'octo-org';
const repo = 'hello';
const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');

function withToken(url: string, token: string): string {
  const u = new URL(url);
  u.username = 'x-access-token';
  u.password = token;
  return u.toString();
}

describe('branchName', () => {
  test('codex/<issue>-<slug>: lower-case ASCII words, at most 40 characters, safe for git', async () => {
    expect(branchName(12, 'Fix the "add()" bug!')).toBe('codex/12-fix-the-add-bug');
    expect(branchName(3, 'Ünïcödé résumé: naïve café')).toBe('codex/3-unicode-resume-naive-cafe');
    expect(branchName(7, '日本語のみ')).toBe('codex/7');
    expect(branchName(7, '   ')).toBe('codex/7');
    const long = branchName(99, 'Refactor the configuration loader so that environment variables override files everywhere');
    expect(long).toBe('codex/99-refactor-the-configuration-loader-so');
    expect(long.length - 'codex/99-'.length).toBeLessThanOrEqual(40);
    expect(branchName(1, 'a'.repeat(100))).toBe(`codex/1-${'a'.repeat(40)}`);
    for (const title of ['..lock/..', '@{-1}', 'a~b^c:d?e*f[g\\h', 'end.lock', 'x/.hidden', '-leading']) {
      const name = branchName(5, title);
      await expect(runGit(['check-ref-format', `refs/heads/${name}`])).resolves.toBeDefined();
    }
    expect(() => branchName(0, 'x')).toThrow(RangeError);
    expect(() => branchName(1.5, 'x')).toThrow(RangeError);
  });
});

describe('commitMessage', () => {
  test('adds Co-authored-by trailers, drops ones the runner wrote, deduplicates', () => {
    expect(commitMessage('Fix add()\n\nIt subtracted.\n\nCo-authored-by: mallory <1+mallory@users.noreply.github.com>\n', [
      { login: 'alice', id: 42 },
      { login: 'alice', id: 42 },
      { login: 'dependabot[bot]', id: 49699333 },
    ])).toBe(
      'Fix add()\n\nIt subtracted.\n\nCo-authored-by: alice <42+alice@users.noreply.github.com>\n' +
        'Co-authored-by: dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>',
    );
    expect(commitMessage('  \n')).toBe('Update files');
    expect(() => commitMessage('x', [{ login: 'eve>\nCo-authored-by: x', id: 1 }])).toThrow(TypeError);
    expect(() => commitMessage('x', [{ login: 'eve', id: -1 }])).toThrow(TypeError);
  });
});

describe('publishing through the Git Data API (GitHub stand-in)', () => {
  let gh: GitHubStandIn;
  let work: string;
  let baseSha: string;
  let token: string;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;
  let alice: { login: string; id: number };

  beforeAll(async () => {
    gh = await GitHubStandIn.start({ appSlug: 'codex-test' });
    work = await mkdtemp(join(tmpdir(), 'publish-test-'));
    ({ headSha: baseSha } = await gh.addRepo(
      REPO,
      {
        'README.md': '# hello\n',
        'src/old.js': 'old\n',
        'src/keep.js': 'keep\n',
        'bin/run.sh': '#!/bin/sh\necho run\n',
        notes: 'notes were a file\n',
        'lib/a.js': 'a\n',
        'lib/b.js': 'b\n',
      },
      { permissions: { alice: 'write' } },
    ));
    const user = gh.addUser('alice');
    alice = { login: 'alice', id: user.id as number };
    gh.addIssue(REPO, { number: 1, title: 'Make things better', body: '@codex make things better', user: 'alice' });
    token = gh.createInstallationToken(1).token;
    octokit = new ProbotOctokitForTests({ auth: { token }, baseUrl: gh.apiUrl });
  });

  afterAll(async () => {
    await gh?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `mode type sha\tpath` lines of a commit's full tree, as a map path → [mode, content]. */
  async function treeOf(sha: string): Promise<Map<string, [string, Buffer]>> {
    const out = new Map<string, [string, Buffer]>();
    const listing = (await gh.git(REPO, 'ls-tree', '-r', '-z', sha)).split('\0').filter(Boolean);
    for (const line of listing) {
      const [meta, path] = line.split('\t') as [string, string];
      const [mode, , blob] = meta.split(' ') as [string, string, string];
      out.set(path, [mode, await runGit(['--git-dir', join(gh.root, 'octo-org', 'hello.git'), 'cat-file', 'blob', blob])]);
    }
    return out;
  }

  test('createCommit writes adds, modifications, deletions, modes, symlinks and type changes on top of the base', async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const changes: FileChange[] = [
      { action: 'add', path: 'src/new.ts', mode: '100644', contentBase64: b64('export const x = 1;\n') },
      { action: 'modify', path: 'README.md', mode: '100644', contentBase64: b64('# hello, world\n') },
      { action: 'delete', path: 'src/old.js' },
      { action: 'modify', path: 'bin/run.sh', mode: '100755', contentBase64: b64('#!/bin/sh\necho run\n') },
      { action: 'add', path: 'latest', mode: '120000', contentBase64: b64('src/new.ts') },
      { action: 'add', path: 'assets/all-bytes.bin', mode: '100644', contentBase64: b64(binary) },
      // The file `notes` becomes a directory, the directory `lib` becomes a file (additions listed first
      // on purpose: createCommit must order the deletions before them).
      { action: 'add', path: 'notes/today.md', mode: '100644', contentBase64: b64('today\n') },
      { action: 'add', path: 'lib', mode: '100644', contentBase64: b64('lib is a file now\n') },
      { action: 'delete', path: 'notes' },
      { action: 'delete', path: 'lib/a.js' },
      { action: 'delete', path: 'lib/b.js' },
    ];
    expect(validateChanges(changes, { allowWorkflowChanges: false })).toEqual({ ok: true });
    const blobsBefore = gh.requestsTo(`POST /repos/${REPO}/git/blobs`).length;

    const result = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes,
      message: 'Make things better\n\nCo-authored-by: mallory <9+mallory@users.noreply.github.com>',
      coAuthors: [alice],
    });
    expect(result.verified).toBe(true);
    expect(result.commitSha).toMatch(/^[0-9a-f]{40}$/);
    expect(gh.requestsTo(`POST /repos/${REPO}/git/blobs`).length - blobsBefore).toBe(7);

    // Parent, tree and message as git sees them.
    expect((await gh.git(REPO, 'rev-parse', `${result.commitSha}^@`)).trim()).toBe(baseSha);
    expect((await gh.git(REPO, 'rev-parse', `${result.commitSha}^{tree}`)).trim()).toBe(result.treeSha);
    expect((await gh.git(REPO, 'log', '-1', '--format=%B', result.commitSha)).trim()).toBe(
      `Make things better\n\nCo-authored-by: alice <${alice.id}+alice@users.noreply.github.com>`,
    );
    expect(
      (await gh.git(REPO, 'log', '-1', '--format=%(trailers:key=Co-authored-by,valueonly)', result.commitSha)).trim(),
    ).toBe(`alice <${alice.id}+alice@users.noreply.github.com>`);
    // GitHub signs only commits it commits itself: no author or committer was sent.
    const sent = gh.requestsTo(`POST /repos/${REPO}/git/commits`).at(-1)?.body as Record<string, unknown>;
    expect(sent).toEqual({ message: expect.any(String), tree: result.treeSha, parents: [baseSha] });
    const { data: commit } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: result.commitSha });
    expect(commit.verification).toMatchObject({ verified: true });
    expect(commit.committer.name).toBe('GitHub');

    const tree = await treeOf(result.commitSha);
    const view = Object.fromEntries([...tree].map(([path, [mode, content]]) => [path, [mode, mode === '100644' && path.endsWith('.bin') ? 'binary' : content.toString('utf8')]]));
    expect(view).toEqual({
      'README.md': ['100644', '# hello, world\n'],
      'src/keep.js': ['100644', 'keep\n'],
      'src/new.ts': ['100644', 'export const x = 1;\n'],
      'bin/run.sh': ['100755', '#!/bin/sh\necho run\n'],
      latest: ['120000', 'src/new.ts'],
      'assets/all-bytes.bin': ['100644', 'binary'],
      'notes/today.md': ['100644', 'today\n'],
      lib: ['100644', 'lib is a file now\n'],
    });
    expect(tree.get('assets/all-bytes.bin')![1].equals(binary)).toBe(true);

    // A clone of a branch at the commit has the executable bit and the symlink on disk.
    const branch = await createBranch(octokit, { owner, repo, branch: 'codex/clone-check', sha: result.commitSha });
    const dest = join(work, 'clone');
    await runGit(['clone', '--quiet', '--branch', branch, withToken(gh.gitServer.cloneUrl(REPO), token), dest]);
    expect((await stat(join(dest, 'bin/run.sh'))).mode & 0o111).not.toBe(0);
    expect(await readlink(join(dest, 'latest'))).toBe('src/new.ts');
    expect(await readFile(join(dest, 'latest'), 'utf8')).toBe('export const x = 1;\n');
    expect(existsSync(join(dest, 'src/old.js'))).toBe(false);
  });

  test('createCommit refuses an empty change set and surfaces API errors', async () => {
    await expect(createCommit(octokit, { owner, repo, baseSha, changes: [], message: 'x' })).rejects.toThrow(/no changes/);
    const change: FileChange = { action: 'add', path: 'x', mode: '100644', contentBase64: b64('x') };
    expect(await statusOf(createCommit(octokit, { owner, repo, baseSha: 'f'.repeat(40), changes: [change], message: 'x' }))).toBe(404);
    const readOnly = new ProbotOctokitForTests({
      auth: { token: gh.createInstallationToken(1, { permissions: { contents: 'read' } }).token },
      baseUrl: gh.apiUrl,
    });
    expect(await statusOf(createCommit(readOnly, { owner, repo, baseSha, changes: [change], message: 'x' }))).toBe(403);
  });

  test('createBranch takes the next free name on a collision; other 422s are not mistaken for one', async () => {
    const { commitSha } = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes: [{ action: 'add', path: 'branch.txt', mode: '100644', contentBase64: b64('b\n') }],
      message: 'Branch test',
    });
    const wanted = branchName(1, 'Make things better');
    expect(await createBranch(octokit, { owner, repo, branch: wanted, sha: commitSha })).toBe(wanted);
    expect(await createBranch(octokit, { owner, repo, branch: wanted, sha: commitSha })).toBe(`${wanted}-2`);
    expect(await createBranch(octokit, { owner, repo, branch: wanted, sha: commitSha })).toBe(`${wanted}-3`);
    for (const name of [wanted, `${wanted}-2`, `${wanted}-3`]) {
      expect((await gh.git(REPO, 'rev-parse', `refs/heads/${name}`)).trim()).toBe(commitSha);
    }
    await expect(createBranch(octokit, { owner, repo, branch: wanted, sha: commitSha, maxAttempts: 3 })).rejects.toThrow(/all exist/);

    const before = gh.requestsTo(`POST /repos/${REPO}/git/refs`).length;
    expect(await statusOf(createBranch(octokit, { owner, repo, branch: 'codex/unknown-sha', sha: 'e'.repeat(40) }))).toBe(422);
    expect(gh.requestsTo(`POST /repos/${REPO}/git/refs`).length - before).toBe(1);
  });

  test('updateBranch fast-forwards, refuses to move a branch backwards unless forced', async () => {
    const first = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes: [{ action: 'add', path: 'fix.txt', mode: '100644', contentBase64: b64('1\n') }],
      message: 'First',
    });
    const branch = await createBranch(octokit, { owner, repo, branch: 'codex/fix-work', sha: first.commitSha });
    const second = await createCommit(octokit, {
      owner,
      repo,
      baseSha: first.commitSha,
      changes: [{ action: 'modify', path: 'fix.txt', mode: '100644', contentBase64: b64('2\n') }],
      message: 'Second',
    });
    await updateBranch(octokit, { owner, repo, branch, sha: second.commitSha });
    expect((await gh.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(second.commitSha);

    const moved = await updateBranch(octokit, { owner, repo, branch, sha: first.commitSha }).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(BranchMovedError);
    expect(moved).toMatchObject({ branch, currentSha: second.commitSha });
    await updateBranch(octokit, { owner, repo, branch, sha: first.commitSha, force: true });
    expect((await gh.git(REPO, 'rev-parse', `refs/heads/${branch}`)).trim()).toBe(first.commitSha);
    // Not a move: a missing branch or an unknown commit stay API errors.
    expect(await statusOf(updateBranch(octokit, { owner, repo, branch: 'codex/none', sha: first.commitSha }))).toBe(422);
    const unknown = await updateBranch(octokit, { owner, repo, branch, sha: 'd'.repeat(40) }).catch((e: unknown) => e);
    expect(unknown).not.toBeInstanceOf(BranchMovedError);
    expect((unknown as { status?: number }).status).toBe(422);
  });

  test('openPullRequest opens a pull request with the rendered body, then reuses it for the same head', async () => {
    const { commitSha } = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes: [{ action: 'modify', path: 'README.md', mode: '100644', contentBase64: b64('# better\n') }],
      message: 'Make things better',
      coAuthors: [alice],
    });
    const head = await createBranch(octokit, { owner, repo, branch: 'codex/1-pr-test', sha: commitSha });
    const commands: CommandRecord[] = [{ phase: 'agent', command: ['npm', 'test'], workdir: '.', exitCode: 0, durationMs: 1200, timedOut: false }];
    const usage: Usage = { inputTokens: 1000, cachedInputTokens: 800, outputTokens: 50, reasoningTokens: 0, turns: 2, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 65_000 };
    const body = pullRequestBody({ summary: '## Summary\n- Better README\n\n## Testing\n- `npm test`', issueNumber: 1, commands, model: 'gpt-5-codex', usage, requester: 'alice' });

    const pr = await openPullRequest(octokit, { owner, repo, head, base: 'main', title: 'Make things better', body });
    expect(pr).toEqual({ number: 2, url: `${gh.url}/${REPO}/pull/2`, created: true });
    const [stored] = await gh.pulls(REPO);
    expect(stored).toMatchObject({
      number: 2,
      title: 'Make things better',
      body,
      draft: false,
      head: { ref: head, sha: commitSha },
      base: { ref: 'main', sha: baseSha },
    });
    expect(String(stored!.body)).toContain('Closes #1');

    const again = await openPullRequest(octokit, { owner, repo, head, base: 'main', title: 'Other title', body: 'other' });
    expect(again).toEqual({ number: 2, url: pr.url, created: false });
    expect(await gh.pulls(REPO)).toHaveLength(1);
    expect((await gh.pulls(REPO))[0]!.title).toBe('Make things better');

    // A pull request opened between the lookup and the creation (the lookup answers an empty list).
    gh.failNext(`GET /repos/${REPO}/pulls`, { status: 200, body: [] });
    const raced = await openPullRequest(octokit, { owner, repo, head, base: 'main', title: 't', body: 'b' });
    expect(raced).toEqual({ number: 2, url: pr.url, created: false });
    expect(gh.requestsTo(`POST /repos/${REPO}/pulls`).at(-1)?.status).toBe(422);
  });

  test('what GitHub receives: title, commit message and body carry no live mention or reference but the app\'s Closes #N', async () => {
    const hostile = 'Fix @alice GH-3 acme/calc#4 #5 https://github.com/o/r/issues/6';
    const { commitSha } = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes: [{ action: 'add', path: 'hostile.txt', mode: '100644', contentBase64: b64('h\n') }],
      message: `${hostile}\n\nCloses #9, fixes: https://github.com/${REPO}/issues/10, cc @octo-org/team`,
    });
    const head = await createBranch(octokit, { owner, repo, branch: 'codex/hostile', sha: commitSha });
    const usage: Usage = { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0, turns: 1, phaseMs: {}, modelMs: 0, commandMs: 0, totalMs: 1 };
    const body = pullRequestBody({
      summary: `## Summary\n${hostile}\n\nFixes &#35;11 and [this](https://github.com/o/r/pull/12)`,
      issueNumber: 1,
      commands: [],
      model: 'gpt-5-codex',
      usage,
    });
    const pr = await openPullRequest(octokit, { owner, repo, head, base: 'main', title: `[partial] ${hostile}`, body });
    const stored = (await gh.pulls(REPO)).find((p) => p.number === pr.number)!;
    expect(liveReferences(String(stored.title))).toEqual([]);
    expect(String(stored.title).replaceAll('\u200d', '')).toBe(`[partial] ${hostile}`);
    expect(liveReferences(String(stored.body))).toEqual(['#1']);
    expect(String(stored.body)).toContain('\nCloses #1\n');
    const message = await gh.git(REPO, 'log', '-1', '--format=%B', commitSha);
    expect(liveReferences(message)).toEqual([]);
  });

  test('openPullRequest: drafts, long titles cut, API errors surface', async () => {
    const { commitSha } = await createCommit(octokit, {
      owner,
      repo,
      baseSha,
      changes: [{ action: 'add', path: 'draft.txt', mode: '100644', contentBase64: b64('d\n') }],
      message: 'Draft',
    });
    const head = await createBranch(octokit, { owner, repo, branch: 'codex/draft', sha: commitSha });
    const pr = await openPullRequest(octokit, { owner, repo, head, base: 'main', title: `[partial] ${'word '.repeat(100)}`, body: 'b', draft: true });
    const stored = (await gh.pulls(REPO)).find((p) => p.number === pr.number)!;
    expect(stored.draft).toBe(true);
    expect([...String(stored.title)]).toHaveLength(256);
    expect(String(stored.title).endsWith('…')).toBe(true);

    // No commits between head and base.
    await createBranch(octokit, { owner, repo, branch: 'codex/empty', sha: baseSha });
    expect(await statusOf(openPullRequest(octokit, { owner, repo, head: 'codex/empty', base: 'main', title: 't', body: 'b' }))).toBe(422);
  });
});

describe('commitMessage', () => {
  test('mentions and references from the model are made inert in every form; the text reads the same', () => {
    const text = 'Fix add @alice\n\nFixes #12 and closes acme/calc#3; see #4, GH-5,\nResolves https://github.com/acme/calc/issues/6';
    const message = commitMessage(text, [{ login: 'alice', id: 7 }]);
    expect(liveReferences(message.replace(/\n\nCo-authored-by: .*$/, ''))).toEqual([]);
    expect(message).toContain('Fixes #\u200d12');
    expect(message.replaceAll('\u200d', '')).toBe(`${text}\n\nCo-authored-by: alice <7+alice@users.noreply.github.com>`);
  });
});

/** Mentions and references GitHub would make live (an approximation of its matchers, see neutralize.test.ts). */
function liveReferences(text: string): string[] {
  const patterns = [/(?<![\w`])@[A-Za-z0-9][\w-]*/g, /(?:[\w.-]+\/[\w.-]+)?#\d+/g, /\bGH-\d+/gi, /https?:\/\/[\w.-]+\/[^\s]*?\/(?:issues|pulls?)\/\d+/gi];
  return patterns.flatMap((p) => Array.from(text.matchAll(p), (m) => m[0]));
}
