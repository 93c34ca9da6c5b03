import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Probot, createNodeMiddleware } from 'probot';
import type { Context } from 'probot';
import { GitHubStandIn, ProbotOctokitForTests } from './github-stand-in.ts';
import { deliver, examplePayload, issueCommentCreated, issuesOpened, pullRequestOpened, signDelivery } from './webhooks.ts';

const SECRET = 'webhook-secret-for-tests';
const REPO = 'acme/widgets';

describe('webhook deliveries against a real Probot app', () => {
  let gh: GitHubStandIn;
  let server: Server;
  let webhookUrl: string;
  const seen: Array<{ name: string; id: string; payload: Record<string, unknown>; config?: unknown }> = [];

  beforeAll(async () => {
    gh = await GitHubStandIn.start({ appId: 99, appSlug: 'codex-hooks' });
    await gh.addRepo(REPO, { '.github/codex.yml': 'review:\n  auto: false\n' }, { installationId: 5, permissions: { alice: 'write' }, ownerType: 'Organization' });
    gh.addIssue(REPO, { number: 3, title: 'Crash on start', body: 'It crashes.', user: 'alice' });

    const probot = new Probot({
      appId: gh.appId,
      privateKey: gh.privateKeyPem,
      secret: SECRET,
      baseUrl: gh.apiUrl,
      logLevel: 'fatal',
      Octokit: ProbotOctokitForTests,
    });
    const middleware = await createNodeMiddleware(
      (app: Probot) => {
        app.on('issue_comment.created', async (context: Context<'issue_comment.created'>) => {
          await context.octokit.rest.reactions.createForIssueComment(
            context.repo({ comment_id: context.payload.comment.id, content: 'eyes' as const }),
          );
          const config = await context.config('codex.yml');
          seen.push({ name: context.name, id: context.id, payload: context.payload as unknown as Record<string, unknown>, config });
        });
        app.on('issues.opened', async (context: Context<'issues.opened'>) => {
          seen.push({ name: context.name, id: context.id, payload: context.payload as unknown as Record<string, unknown> });
        });
        app.on('pull_request.opened', async (context: Context<'pull_request.opened'>) => {
          const { data } = await context.octokit.rest.pulls.get(context.pullRequest());
          seen.push({ name: context.name, id: context.id, payload: context.payload as unknown as Record<string, unknown>, config: data.head.sha });
        });
      },
      { probot },
    );
    server = createServer((req, res) => {
      void middleware(req, res, () => res.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gh.close();
  });

  test('examples come from @octokit/webhooks-examples', () => {
    const example = examplePayload('issue_comment', 'created');
    expect((example.repository as { full_name: string }).full_name).toBe('Codertocat/Hello-World');
    expect(example.installation).toBeDefined();
    expect(() => examplePayload('issue_comment', 'no-such-action')).toThrow(/no @octokit\/webhooks-examples payload/);
  });

  test('issue_comment.created is signed, accepted, and points the app at the stand-in', async () => {
    const comment = gh.addComment(REPO, 3, { body: '@codex fix the crash', user: 'alice' });
    const delivery = issueCommentCreated({
      repo: gh.repository(REPO),
      issueNumber: 3,
      issue: gh.issue(REPO, 3),
      commentId: comment.id,
      body: comment.body,
      user: { login: 'alice', type: 'User' },
      installationId: 5,
      appId: gh.appId,
    });
    expect(delivery.headers).toMatchObject({
      'x-github-event': 'issue_comment',
      'x-github-delivery': delivery.id,
      'x-github-hook-installation-target-id': '99',
      'content-type': 'application/json',
    });
    const signed = await signDelivery(delivery, SECRET);
    expect(signed.headers['x-hub-signature-256']).toMatch(/^sha256=[0-9a-f]{64}$/);

    expect(await deliver(webhookUrl, delivery, { secret: SECRET })).toBe(200);
    const got = seen.at(-1)!;
    expect(got.name).toBe('issue_comment');
    expect(got.id).toBe(delivery.id);
    expect(got.config).toEqual({ review: { auto: false } });
    expect(got.payload).toMatchObject({
      action: 'created',
      installation: { id: 5 },
      repository: { full_name: REPO, clone_url: `${gh.url}/${REPO}.git`, owner: { login: 'acme', type: 'Organization' } },
      organization: { login: 'acme' },
      issue: { number: 3, title: 'Crash on start' },
      comment: { id: comment.id, body: '@codex fix the crash', user: { login: 'alice' } },
      sender: { login: 'alice', type: 'User' },
    });
    expect(JSON.stringify(got.payload)).not.toMatch(/api\.github\.com|Codertocat|Hello-World/);
    expect(gh.reactions(REPO, { commentId: comment.id }).map((r) => r.content)).toEqual(['eyes']);
    // The reaction was made with the installation token Probot obtained from the stand-in.
    expect(gh.requestsTo(`POST /repos/${REPO}/issues/comments/{id}/reactions`).at(-1)).toMatchObject({ auth: 'token', status: 201 });

    // Redelivery reuses the delivery id.
    const before = seen.length;
    expect(await deliver(webhookUrl, delivery, { secret: SECRET })).toBe(200);
    expect(seen.length).toBe(before + 1);
    expect(seen.at(-1)!.id).toBe(delivery.id);
  });

  test('a wrong secret or a forged signature is rejected before any handler runs', async () => {
    const delivery = issueCommentCreated({
      repo: REPO,
      baseUrl: gh.url,
      issueNumber: 3,
      commentId: 1,
      body: '@codex pwn',
      user: 'mallory',
      installationId: 5,
    });
    const before = seen.length;
    expect(await deliver(webhookUrl, delivery, { secret: 'wrong' })).toBe(400);
    expect(await deliver(webhookUrl, delivery, { secret: SECRET, signature: 'sha256=' + '0'.repeat(64) })).toBe(400);
    expect(seen.length).toBe(before);
  });

  test('issues.opened and pull_request.opened', async () => {
    const opened = issuesOpened({
      repo: gh.repository(REPO),
      issueNumber: 4,
      title: '@codex add a CLI flag',
      body: 'Please add --verbose.',
      user: 'alice',
      installationId: 5,
    });
    expect(await deliver(webhookUrl, opened, { secret: SECRET })).toBe(200);
    expect(seen.at(-1)).toMatchObject({
      name: 'issues',
      payload: { action: 'opened', issue: { number: 4, title: '@codex add a CLI flag', body: 'Please add --verbose.', user: { login: 'alice' } } },
    });

    await gh.commitFiles(REPO, 'feature', { 'a.txt': 'a\n' });
    const pr = await gh.addPull(REPO, { head: 'feature', title: 'Add a', user: 'alice' });
    const delivery = pullRequestOpened({ repo: gh.repository(REPO), pull: pr, installationId: 5 });
    expect(await deliver(webhookUrl, delivery, { secret: SECRET })).toBe(200);
    const got = seen.at(-1)!;
    expect(got.payload).toMatchObject({ action: 'opened', number: pr.number, pull_request: { head: { ref: 'feature' } }, sender: { login: 'alice' } });
    expect(got.config).toBe((pr.head as { sha: string }).sha);
  });
});
