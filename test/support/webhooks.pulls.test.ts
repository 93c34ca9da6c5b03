/** Pull request webhook deliveries (built from the real examples) received by a real Probot app. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Probot, createNodeMiddleware } from 'probot';
import { GitHubStandIn, ProbotOctokitForTests } from './github-stand-in.ts';
import type { Json } from './github-stand-in.ts';
import { deliver, issueCommentCreated, pullRequestOpened, pullRequestReviewCommentCreated, pullRequestReviewSubmitted } from './webhooks.ts';

const SECRET = 'webhook-secret-for-pull-tests';
const REPO = 'acme/pulls';

describe('pull request webhook deliveries against a real Probot app', () => {
  let gh: GitHubStandIn;
  let server: Server;
  let url: string;
  let pull: Json;
  const seen: Array<{ name: string; payload: Json; api?: unknown }> = [];

  beforeAll(async () => {
    gh = await GitHubStandIn.start({ appId: 77, appSlug: 'codex-pulls' });
    await gh.addRepo(REPO, { 'src/x.ts': 'a\nb\nc\n' }, { installationId: 3, permissions: { alice: 'write' } });
    await gh.commitFiles(REPO, 'feature', { 'src/x.ts': 'a\nB\nc\n' });
    pull = await gh.addPull(REPO, { head: 'feature', title: 'Capital B', body: '@codex review', user: 'alice' });
    const probot = new Probot({ appId: gh.appId, privateKey: gh.privateKeyPem, secret: SECRET, baseUrl: gh.apiUrl, logLevel: 'fatal', Octokit: ProbotOctokitForTests });
    const middleware = await createNodeMiddleware(
      (app: Probot) => {
        app.on('issue_comment.created', async (context) => {
          const { data } = await context.octokit.rest.pulls.get(context.pullRequest());
          seen.push({ name: context.name, payload: context.payload as unknown as Json, api: data.head.sha });
        });
        app.on('pull_request_review_comment.created', async (context) => {
          await context.octokit.rest.reactions.createForPullRequestReviewComment(context.repo({ comment_id: context.payload.comment.id, content: 'eyes' as const }));
          seen.push({ name: context.name, payload: context.payload as unknown as Json });
        });
        app.on('pull_request_review.submitted', async (context) => {
          const { data } = await context.octokit.rest.pulls.getReview(context.pullRequest({ review_id: context.payload.review.id }));
          seen.push({ name: context.name, payload: context.payload as unknown as Json, api: data.body });
        });
        app.on('pull_request.opened', async (context) => {
          seen.push({ name: context.name, payload: context.payload as unknown as Json });
        });
      },
      { probot },
    );
    server = createServer((req, res) => void middleware(req, res, () => res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gh.close();
  });

  test('issue_comment.created on a pull request: the issue carries pull_request, the app reaches the PR', async () => {
    const number = Number(pull.number);
    const comment = gh.addComment(REPO, number, { user: 'alice', body: '@codex rename b' });
    const delivery = issueCommentCreated({
      repo: gh.repository(REPO), issueNumber: number, issue: gh.issue(REPO, number), commentId: comment.id, body: comment.body, user: 'alice', installationId: 3, appId: gh.appId,
    });
    expect(await deliver(url, delivery, { secret: SECRET })).toBe(200);
    const got = seen.at(-1)!;
    expect(got.payload).toMatchObject({ issue: { number, pull_request: { url: `${gh.apiUrl}/repos/${REPO}/pulls/${number}` } }, comment: { id: comment.id } });
    expect(got.api).toBe((pull.head as Json).sha);
  });

  test('pull_request_review_comment.created: the comment with path, lines, side and diff hunk; 👀 lands on it', async () => {
    const comment = await gh.addReviewComment(REPO, Number(pull.number), { user: 'alice', body: '@codex use a constant here', path: 'src/x.ts', line: 2 });
    const delivery = pullRequestReviewCommentCreated({ repo: gh.repository(REPO), pull, comment, installationId: 3, appId: gh.appId });
    expect(delivery.event).toBe('pull_request_review_comment');
    expect(await deliver(url, delivery, { secret: SECRET })).toBe(200);
    const got = seen.at(-1)!;
    expect(got.name).toBe('pull_request_review_comment');
    expect(got.payload).toMatchObject({
      action: 'created',
      installation: { id: 3 },
      repository: { full_name: REPO },
      sender: { login: 'alice' },
      pull_request: { number: pull.number, head: { ref: 'feature' } },
      comment: { id: comment.id, path: 'src/x.ts', line: 2, side: 'RIGHT', body: '@codex use a constant here', diff_hunk: comment.diff_hunk },
    });
    expect(JSON.stringify(got.payload)).not.toContain('Codertocat/Hello-World');
    expect(gh.reviewComments(REPO, Number(pull.number)).find((c) => c.id === comment.id)).toMatchObject({ reactions: { eyes: 1 } });
  });

  test('pull_request_review.submitted: the review body and state as webhooks carry them', async () => {
    const review = await gh.addReview(REPO, Number(pull.number), { user: 'alice', body: '@codex address these comments', state: 'CHANGES_REQUESTED' });
    const delivery = pullRequestReviewSubmitted({ repo: gh.repository(REPO), pull, review, installationId: 3, appId: gh.appId });
    expect(await deliver(url, delivery, { secret: SECRET })).toBe(200);
    const got = seen.at(-1)!;
    expect(got.payload).toMatchObject({ action: 'submitted', review: { id: review.id, state: 'changes_requested', body: '@codex address these comments' }, sender: { login: 'alice' } });
    expect(got.api).toBe('@codex address these comments');
  });

  test('pull_request.opened with the stand-in pull request', async () => {
    expect(await deliver(url, pullRequestOpened({ repo: gh.repository(REPO), pull, installationId: 3, appId: gh.appId }), { secret: SECRET })).toBe(200);
    expect(seen.at(-1)).toMatchObject({ name: 'pull_request', payload: { action: 'opened', number: pull.number, pull_request: { body: '@codex review' } } });
  });
});
