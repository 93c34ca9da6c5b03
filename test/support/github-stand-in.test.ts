import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Probot } from 'probot';
import { GitHubStandIn, ProbotOctokitForTests, statusOf } from './github-stand-in.ts';
import { GitCommandError, runGit } from './git-http.ts';

const REPO = 'octo-org/hello';
const CODEX_YML = 'model: gpt-5-codex\nreview:\n  auto: true\n';

function withToken(url: string, token: string): string {
  const u = new URL(url);
  u.username = 'x-access-token';
  u.password = token;
  return u.toString();
}

describe('GitHubStandIn', () => {
  let gh: GitHubStandIn;
  let work: string;
  let headSha: string;
  let token: string;
  let octokit: InstanceType<typeof ProbotOctokitForTests>;

  beforeAll(async () => {
    gh = await GitHubStandIn.start({ appId: 4242, appSlug: 'codex-test' });
    work = await mkdtemp(join(tmpdir(), 'stand-in-test-'));
    ({ headSha } = await gh.addRepo(
      REPO,
      {
        'README.md': '# hello\n',
        'old.txt': 'to be deleted\n',
        'docs/guide.md': 'guide\n',
        '.github/codex.yml': CODEX_YML,
      },
      { installationId: 7, permissions: { alice: 'admin', bob: 'write', carol: 'read' }, ownerType: 'Organization' },
    ));
    await gh.addRepo('octo-org/other', { 'x.txt': 'x\n' }, { installationId: 7 });
    gh.addUser('mallory');
    token = gh.createInstallationToken(7).token;
    octokit = new ProbotOctokitForTests({ auth: { token }, baseUrl: gh.apiUrl });
  });

  afterAll(async () => {
    await gh.close();
    await rm(work, { recursive: true, force: true });
  });

  test('App JWT: accepted when signed with the App key by the App id, rejected otherwise', async () => {
    expect(gh.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(gh.apiUrl).toBe(`http://${gh.host}/api/v3`);
    const probot = new Probot({ appId: gh.appId, privateKey: gh.privateKeyPem, baseUrl: gh.apiUrl, logLevel: 'fatal', Octokit: ProbotOctokitForTests });
    const appOctokit = await probot.auth();
    const { data: app } = await appOctokit.rest.apps.getAuthenticated();
    expect(app).toMatchObject({ id: 4242, slug: 'codex-test' });
    const { data: inst } = await appOctokit.rest.apps.getRepoInstallation({ owner: 'octo-org', repo: 'hello' });
    expect(inst).toMatchObject({ id: 7, app_id: 4242, account: { login: 'octo-org', type: 'Organization' } });

    // Probot's own installation auth exchanges the JWT for a token, then uses it.
    const instOctokit = await probot.auth(7);
    const { data: repo } = await instOctokit.rest.repos.get({ owner: 'octo-org', repo: 'hello' });
    expect(repo).toMatchObject({ full_name: REPO, default_branch: 'main', clone_url: `${gh.url}/octo-org/hello.git` });
    const exchange = gh.requestsTo('POST /app/installations/{id}/access_tokens').at(-1);
    expect(exchange).toMatchObject({ auth: 'jwt', status: 201 });
    const used = gh.requestsTo(`GET /repos/${REPO}`).at(-1);
    expect(used?.auth).toBe('token');
    expect(used?.token).toMatch(/^ghs_/);
    expect(gh.tokenInfo(used!.token!)).toMatchObject({ installationId: 7, repos: '*' });

    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const impostor = new Probot({ appId: gh.appId, privateKey: otherKey, baseUrl: gh.apiUrl, logLevel: 'fatal', Octokit: ProbotOctokitForTests });
    expect(await statusOf((await impostor.auth()).rest.apps.getAuthenticated())).toBe(401);
    const wrongIss = await fetch(`${gh.apiUrl}/app`, { headers: { authorization: `Bearer ${gh.createAppJwt({ iss: 1 })}` } });
    expect(wrongIss.status).toBe(401);
    expect(await wrongIss.json()).toMatchObject({ message: 'A JSON web token could not be decoded' });
    const tooLong = await fetch(`${gh.apiUrl}/app`, { headers: { authorization: `Bearer ${gh.createAppJwt({ expiresInS: 3600 })}` } });
    expect(tooLong.status).toBe(401);
    const ok = await fetch(`${gh.apiUrl}/app`, { headers: { authorization: `Bearer ${gh.createAppJwt()}` } });
    expect(ok.status).toBe(200);
  });

  test('scoped access tokens: repositories and permissions are honoured by the API and git', async () => {
    const probot = new Probot({ appId: gh.appId, privateKey: gh.privateKeyPem, baseUrl: gh.apiUrl, logLevel: 'fatal', Octokit: ProbotOctokitForTests });
    const appOctokit = await probot.auth();
    const { data } = await appOctokit.rest.apps.createInstallationAccessToken({
      installation_id: 7,
      repositories: ['hello'],
      permissions: { contents: 'read' },
    });
    expect(data).toMatchObject({ permissions: { contents: 'read' }, repository_selection: 'selected' });
    expect(gh.tokens.at(-1)).toMatchObject({ token: data.token, repos: [REPO], permissions: { contents: 'read' }, installationId: 7 });
    expect(data.repositories?.map((r) => r.full_name)).toEqual([REPO]);
    expect(Date.parse(data.expires_at)).toBeGreaterThan(Date.now());
    expect(
      await statusOf(appOctokit.rest.apps.createInstallationAccessToken({ installation_id: 7, permissions: { administration: 'write' } })),
    ).toBe(422);

    const readOnly = new ProbotOctokitForTests({ auth: { token: data.token }, baseUrl: gh.apiUrl });
    expect(await statusOf(readOnly.rest.git.createBlob({ owner: 'octo-org', repo: 'hello', content: 'x' }))).toBe(403);
    expect(await statusOf(readOnly.rest.repos.get({ owner: 'octo-org', repo: 'other' }))).toBe(404);
    expect(await statusOf(readOnly.rest.repos.getContent({ owner: 'octo-org', repo: 'hello', path: 'README.md' }))).toBe(200);

    // git: clone works, push is refused; then revocation shuts both doors.
    const dest = join(work, 'ro-clone');
    await runGit(['clone', '--quiet', withToken(gh.gitServer.cloneUrl(REPO), data.token), dest]);
    expect(await readFile(join(dest, 'README.md'), 'utf8')).toBe('# hello\n');
    await writeFile(join(dest, 'README.md'), 'changed\n');
    await runGit(['commit', '--quiet', '-am', 'change'], { cwd: dest });
    await expect(runGit(['push', 'origin', 'HEAD:refs/heads/evil'], { cwd: dest })).rejects.toThrow(/403/);
    await expect(
      runGit(['clone', '--quiet', withToken(gh.gitServer.cloneUrl('octo-org/other'), data.token), join(work, 'ro-other')]),
    ).rejects.toBeInstanceOf(GitCommandError);

    await readOnly.request('DELETE /installation/token');
    expect(gh.tokenInfo(data.token)?.revoked).toBe(true);
    expect(await statusOf(readOnly.rest.repos.get({ owner: 'octo-org', repo: 'hello' }))).toBe(401);
    await expect(runGit(['fetch', 'origin'], { cwd: dest })).rejects.toThrow(/Authentication failed/);
  });

  test('unknown or missing tokens get 401 and are recorded', async () => {
    const bogus = new ProbotOctokitForTests({ auth: { token: 'ghs_not_a_real_token' }, baseUrl: gh.apiUrl });
    expect(await statusOf(bogus.rest.repos.get({ owner: 'octo-org', repo: 'hello' }))).toBe(401);
    expect(gh.requests.at(-1)).toMatchObject({ method: 'GET', path: `/repos/${REPO}`, token: 'ghs_not_a_real_token', status: 401 });
    const anon = await fetch(`${gh.apiUrl}/repos/${REPO}`);
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ message: 'Requires authentication', status: '401' });
  });

  test('Git Data API writes real git objects: blob, nested tree with modes and deletion, verified commit, refs', async () => {
    const owner = 'octo-org';
    const repo = 'hello';
    const { data: ref } = await octokit.rest.git.getRef({ owner, repo, ref: 'heads/main' });
    expect(ref).toMatchObject({ ref: 'refs/heads/main', object: { sha: headSha, type: 'commit' } });
    const { data: base } = await octokit.rest.git.getCommit({ owner, repo, commit_sha: headSha });
    expect(base.message).toBe('Initial commit');

    const script = await octokit.rest.git.createBlob({
      owner,
      repo,
      content: Buffer.from('#!/bin/sh\necho built\n').toString('base64'),
      encoding: 'base64',
    });
    expect(script.status).toBe(201);
    expect(script.data.sha).toMatch(/^[0-9a-f]{40}$/);
    const { data: tree } = await octokit.rest.git.createTree({
      owner,
      repo,
      base_tree: base.tree.sha,
      tree: [
        { path: 'src/lib/deep/new.ts', mode: '100644', type: 'blob', content: 'export const x = 1;\n' },
        { path: 'scripts/build.sh', mode: '100755', type: 'blob', sha: script.data.sha },
        { path: 'link', mode: '120000', type: 'blob', content: 'README.md' },
        { path: 'old.txt', mode: '100644', type: 'blob', sha: null },
        { path: 'docs', mode: '040000', type: 'tree', sha: null },
      ],
    });
    expect(tree.tree.map((e) => e.path).sort()).toEqual(['.github', 'README.md', 'link', 'scripts', 'src']);
    expect(
      await statusOf(
        octokit.rest.git.createTree({ owner, repo, tree: [{ path: '../escape', mode: '100644', type: 'blob', content: 'x' }] }),
      ),
    ).toBe(422);

    const { data: commit } = await octokit.rest.git.createCommit({ owner, repo, message: 'Add things\n\nBody.', tree: tree.sha, parents: [headSha] });
    expect(commit).toMatchObject({
      message: 'Add things\n\nBody.',
      parents: [{ sha: headSha }],
      tree: { sha: tree.sha },
      author: { name: 'codex-test[bot]' },
      committer: { name: 'GitHub', email: 'noreply@github.com' },
      verification: { verified: true, reason: 'valid' },
    });
    const custom = await octokit.rest.git.createCommit({
      owner,
      repo,
      message: 'custom',
      tree: tree.sha,
      parents: [headSha],
      author: { name: 'Ann', email: 'ann@example.com', date: '2024-01-02T03:04:05Z' },
      committer: { name: 'Ann', email: 'ann@example.com' },
    });
    expect(custom.data.author).toEqual({ name: 'Ann', email: 'ann@example.com', date: '2024-01-02T03:04:05Z' });
    expect(custom.data.verification).toMatchObject({ verified: false });

    const created = await octokit.rest.git.createRef({ owner, repo, ref: 'refs/heads/codex/task-1', sha: commit.sha });
    expect(created.status).toBe(201);
    expect(created.data.object.sha).toBe(commit.sha);
    expect(await statusOf(octokit.rest.git.createRef({ owner, repo, ref: 'refs/heads/codex/task-1', sha: commit.sha }))).toBe(422);
    // Moving a branch backwards needs force.
    expect(await statusOf(octokit.rest.git.updateRef({ owner, repo, ref: 'heads/codex/task-1', sha: headSha }))).toBe(422);
    await octokit.rest.git.updateRef({ owner, repo, ref: 'heads/codex/task-1', sha: headSha, force: true });
    const { data: moved } = await octokit.rest.git.updateRef({ owner, repo, ref: 'heads/codex/task-1', sha: commit.sha });
    expect(moved.object.sha).toBe(commit.sha);
    expect((await gh.git(REPO, 'rev-parse', 'refs/heads/codex/task-1')).trim()).toBe(commit.sha);

    const dest = join(work, 'gitdata-clone');
    await runGit(['clone', '--quiet', '--branch', 'codex/task-1', withToken(gh.gitServer.cloneUrl(REPO), token), dest]);
    expect(await readFile(join(dest, 'src/lib/deep/new.ts'), 'utf8')).toBe('export const x = 1;\n');
    expect(await readFile(join(dest, 'scripts/build.sh'), 'utf8')).toBe('#!/bin/sh\necho built\n');
    expect((await stat(join(dest, 'scripts/build.sh'))).mode & 0o111).not.toBe(0);
    expect(await readlink(join(dest, 'link'))).toBe('README.md');
    expect(existsSync(join(dest, 'old.txt'))).toBe(false);
    expect(existsSync(join(dest, 'docs'))).toBe(false);
    expect(await readFile(join(dest, 'README.md'), 'utf8')).toBe('# hello\n');
    expect(gh.gitRequests.some((r) => r.token === token && r.status === 200)).toBe(true);
  });

  test('pull requests: create, get, list by head, numbers shared with issues, duplicates refused', async () => {
    gh.addIssue(REPO, { number: 1, title: 'Spelling', body: '@codex fix the typo', user: 'alice' });
    await gh.commitFiles(REPO, 'codex/pr-branch', { 'fix.txt': 'fixed\n', 'README.md': null }, { message: 'Fix' });
    const { data: pr } = await octokit.rest.pulls.create({
      owner: 'octo-org',
      repo: 'hello',
      title: 'Fix the typo',
      body: 'Closes #1',
      head: 'codex/pr-branch',
      base: 'main',
      draft: true,
    });
    expect(pr.number).toBe(2);
    expect(pr).toMatchObject({
      state: 'open',
      draft: true,
      html_url: `${gh.url}/${REPO}/pull/2`,
      head: { ref: 'codex/pr-branch', repo: { full_name: REPO } },
      base: { ref: 'main', sha: headSha },
      user: { login: 'codex-test[bot]', type: 'Bot' },
      changed_files: 2,
    });
    expect(pr.head.sha).toBe((await gh.git(REPO, 'rev-parse', 'codex/pr-branch')).trim());
    expect(
      await statusOf(octokit.rest.pulls.create({ owner: 'octo-org', repo: 'hello', title: 't', head: 'codex/pr-branch', base: 'main' })),
    ).toBe(422);
    expect(await statusOf(octokit.rest.pulls.create({ owner: 'octo-org', repo: 'hello', title: 't', head: 'nope', base: 'main' }))).toBe(422);

    const { data: listed } = await octokit.rest.pulls.list({ owner: 'octo-org', repo: 'hello', head: 'octo-org:codex/pr-branch', state: 'open' });
    expect(listed.map((p) => p.number)).toEqual([2]);
    const { data: none } = await octokit.rest.pulls.list({ owner: 'octo-org', repo: 'hello', head: 'octo-org:other', state: 'open' });
    expect(none).toEqual([]);
    const { data: got } = await octokit.rest.pulls.get({ owner: 'octo-org', repo: 'hello', pull_number: 2 });
    expect(got.title).toBe('Fix the typo');
    const { data: asIssue } = await octokit.rest.issues.get({ owner: 'octo-org', repo: 'hello', issue_number: 2 });
    expect(asIssue.pull_request?.html_url).toBe(pr.html_url);
    expect((await gh.pulls(REPO)).map((p) => p.number)).toEqual([2]);
  });

  test('comments keep their edit history; listing paginates with Link headers; reactions', async () => {
    gh.addIssue(REPO, { number: 10, title: 'Progress', body: null, user: 'bob' });
    const request = gh.addComment(REPO, 10, { body: '@codex add tests', user: 'bob' });
    const { data: progress } = await octokit.rest.issues.createComment({ owner: 'octo-org', repo: 'hello', issue_number: 10, body: 'Queued' });
    expect(progress.user?.login).toBe('codex-test[bot]');
    expect(progress.html_url).toBe(`${gh.url}/${REPO}/issues/10#issuecomment-${progress.id}`);
    for (const phase of ['Checking out', 'Running the agent', 'Done']) {
      await octokit.rest.issues.updateComment({ owner: 'octo-org', repo: 'hello', comment_id: progress.id, body: phase });
    }
    const { data: fetched } = await octokit.rest.issues.getComment({ owner: 'octo-org', repo: 'hello', comment_id: progress.id });
    expect(fetched.body).toBe('Done');
    expect(gh.comment(progress.id).history).toEqual(['Queued', 'Checking out', 'Running the agent', 'Done']);
    expect(gh.comments(REPO, 10).map((c) => c.body)).toEqual(['@codex add tests', 'Done']);

    for (let i = 0; i < 3; i++) await octokit.rest.issues.createComment({ owner: 'octo-org', repo: 'hello', issue_number: 10, body: `extra ${i}` });
    const firstPage = await octokit.rest.issues.listComments({ owner: 'octo-org', repo: 'hello', issue_number: 10, per_page: 2 });
    expect(firstPage.data).toHaveLength(2);
    expect(firstPage.headers.link).toMatch(/rel="next"/);
    const all = await octokit.paginate(octokit.rest.issues.listComments, { owner: 'octo-org', repo: 'hello', issue_number: 10, per_page: 2 });
    expect(all.map((c) => c.body)).toEqual(['@codex add tests', 'Done', 'extra 0', 'extra 1', 'extra 2']);

    const eyes = await octokit.rest.reactions.createForIssueComment({ owner: 'octo-org', repo: 'hello', comment_id: request.id, content: 'eyes' });
    expect(eyes.status).toBe(201);
    const again = await octokit.rest.reactions.createForIssueComment({ owner: 'octo-org', repo: 'hello', comment_id: request.id, content: 'eyes' });
    expect(again.status).toBe(200);
    await octokit.rest.reactions.createForIssue({ owner: 'octo-org', repo: 'hello', issue_number: 10, content: '+1' });
    expect(gh.reactions(REPO, { commentId: request.id })).toEqual([expect.objectContaining({ content: 'eyes', user: 'codex-test[bot]' })]);
    expect(gh.reactions(REPO, { issueNumber: 10 }).map((r) => r.content)).toEqual(['+1']);
    expect(await statusOf(octokit.rest.reactions.createForIssue({ owner: 'octo-org', repo: 'hello', issue_number: 10, content: 'party' as 'eyes' }))).toBe(422);
    expect(await statusOf(octokit.rest.issues.createComment({ owner: 'octo-org', repo: 'hello', issue_number: 999, body: 'x' }))).toBe(404);
  });

  test('contents: .github/codex.yml through the config plugin (raw) and as JSON; directories; 404', async () => {
    const { config } = await octokit.config.get({ owner: 'octo-org', repo: 'hello', path: '.github/codex.yml' });
    expect(config).toEqual({ model: 'gpt-5-codex', review: { auto: true } });
    const rawRequest = gh.requestsTo(`GET /repos/${REPO}/contents/{path}`).at(-1);
    expect(rawRequest?.accept).toMatch(/raw/);

    const { data: file } = await octokit.rest.repos.getContent({ owner: 'octo-org', repo: 'hello', path: '.github/codex.yml' });
    if (Array.isArray(file) || file.type !== 'file') throw new Error('expected a file');
    expect(Buffer.from(file.content, 'base64').toString('utf8')).toBe(CODEX_YML);
    expect(file).toMatchObject({ encoding: 'base64', name: 'codex.yml', path: '.github/codex.yml', size: CODEX_YML.length });
    const { data: atRef } = await octokit.rest.repos.getContent({ owner: 'octo-org', repo: 'hello', path: 'docs', ref: headSha });
    expect(Array.isArray(atRef) && atRef.map((e) => [e.name, e.type])).toEqual([['guide.md', 'file']]);

    expect(await statusOf(octokit.rest.repos.getContent({ owner: 'octo-org', repo: 'hello', path: 'missing.yml' }))).toBe(404);
    const { config: absent } = await octokit.config.get({ owner: 'octo-org', repo: 'other', path: '.github/codex.yml' });
    expect(absent).toEqual({});
  });

  test('collaborator permission: roles, none for known non-collaborators, 404 for unknown users', async () => {
    const perm = async (username: string) =>
      (await octokit.rest.repos.getCollaboratorPermissionLevel({ owner: 'octo-org', repo: 'hello', username })).data;
    expect(await perm('alice')).toMatchObject({ permission: 'admin', role_name: 'admin', user: { login: 'alice' } });
    expect(await perm('bob')).toMatchObject({ permission: 'write', user: { permissions: { push: true, admin: false } } });
    expect((await perm('carol')).permission).toBe('read');
    expect((await perm('mallory')).permission).toBe('none');
    expect(await statusOf(perm('nobody-at-all'))).toBe(404);
  });

  test('delayNext holds the next matching requests (recorded on arrival), not the others', async () => {
    gh.delayNext(`GET /repos/${REPO}`, 1_500);
    const headers = { authorization: `token ${token}` };
    const started = performance.now();
    const slow = fetch(`${gh.apiUrl}/repos/${REPO}`, { headers });
    expect((await fetch(`${gh.apiUrl}/repos/${REPO}/collaborators/alice/permission`, { headers })).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1_500);
    expect(gh.requestsTo(`GET /repos/${REPO}`).at(-1)!.status).toBe(0);
    expect((await slow).status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_500);
    // Only once.
    const again = performance.now();
    expect((await fetch(`${gh.apiUrl}/repos/${REPO}`, { headers })).status).toBe(200);
    expect(performance.now() - again).toBeLessThan(1_500);
  });

  test('faults, unknown routes and request matching', async () => {
    gh.failNext(`GET /repos/${REPO}`, { status: 502, times: 2 });
    const headers = { authorization: `token ${token}` };
    expect((await fetch(`${gh.apiUrl}/repos/${REPO}`, { headers })).status).toBe(502);
    expect((await fetch(`${gh.apiUrl}/repos/${REPO}`, { headers })).status).toBe(502);
    expect((await fetch(`${gh.apiUrl}/repos/${REPO}`, { headers })).status).toBe(200);
    expect(gh.requestsTo(`GET /repos/${REPO}`).slice(-3).map((r) => r.status)).toEqual([502, 502, 200]);

    gh.failNext({ path: /\/info\/refs$/ }, { status: 503 });
    await expect(runGit(['clone', '--quiet', withToken(gh.gitServer.cloneUrl(REPO), token), join(work, 'outage')])).rejects.toThrow(/503/);

    const res = await fetch(`${gh.apiUrl}/repos/${REPO}/check-runs`, { method: 'POST', headers, body: '{"name":"x"}' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' });
    expect(gh.requestsTo({ method: 'POST', path: `/repos/${REPO}/check-runs` })).toEqual([
      expect.objectContaining({ status: 404, body: { name: 'x' }, token }),
    ]);
  });
});
