import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import type { GitHubAccess, Octokit } from '../../src/github/client.ts';
import { progressMarker } from '../../src/github/progress-comment.ts';
import { finalReplyMarker, retryDelayMs, ThreadReporter, withFinalMarker } from '../../src/github/thread-reporter.ts';
import { SqliteTaskStore } from '../../src/tasks/store.ts';
import type { TaskRequest } from '../../src/tasks/types.ts';
import { waitFor } from '../support/app-harness.ts';
import { GitHubStandIn, ProbotOctokitForTests } from '../support/github-stand-in.ts';

const REPO = 'acme/thread';
const log = pino({ level: 'silent' });
let gh: GitHubStandIn;
let github: GitHubAccess;
let store: SqliteTaskStore;
const reporters: ThreadReporter[] = [];
let seq = 0;

beforeAll(async () => {
  gh = await GitHubStandIn.start();
  await gh.addRepo(REPO, { 'README.md': 'x\n' }, { permissions: { maintainer: 'write' } });
  github = {
    forInstallation: async () => new ProbotOctokitForTests({ auth: { token: gh.createInstallationToken(1).token }, baseUrl: gh.apiUrl }) as unknown as Octokit,
    asApp: async () => new ProbotOctokitForTests({ auth: { token: gh.createAppJwt() }, baseUrl: gh.apiUrl }) as unknown as Octokit,
  };
  store = new SqliteTaskStore(':memory:');
});

afterEach(async () => {
  gh.clearFaults();
  for (const r of reporters.splice(0)) {
    r.close();
    await r.idle();
  }
});

afterAll(async () => {
  store?.close();
  await gh?.close();
});

function reporter(): ThreadReporter {
  const r = new ThreadReporter({ github, outbox: store.outbox, log, progressIntervalMs: 0, delivery: { baseMs: 20, maxMs: 100, editAttempts: 3, maxAttempts: 50 } });
  reporters.push(r);
  return r;
}

/** A task in the store on a new issue; `progress` posts its progress comment through the stand-in first. */
async function task(progress = true) {
  const issueNumber = gh.addIssue(REPO, { title: 't', body: 'b', user: 'maintainer' }).number as number;
  const id = `task_${++seq}`;
  const request = {
    triggerKey: `k:${id}`,
    deliveryId: 'd',
    kind: 'task',
    installationId: 1,
    owner: 'acme',
    repo: 'thread',
    target: { type: 'issue', number: issueNumber, title: 't' },
    requester: { login: 'maintainer', id: 1 },
    instruction: '',
    context: [],
    origin: { type: 'issue', id: 1 },
    settings: { model: 'm', autoInstall: true, timeoutMs: 1000, maxTokens: 10, allowWorkflowChanges: false, draftPullRequests: false },
  } satisfies TaskRequest;
  store.create(id, 'key', request);
  let commentId: number | undefined;
  if (progress) {
    commentId = await reporter().showProgress(id, { installationId: 1, owner: 'acme', repo: 'thread', issueNumber }, undefined, 'Queued');
    store.update(id, { progressCommentId: commentId });
  }
  const finish = (text: string) => store.update(id, { finalReply: { body: withFinalMarker(id, text) } }, 'succeeded');
  const mine = () => gh.comments(REPO, issueNumber).filter((c) => (c.user as { login: string }).login === gh.botLogin);
  return { id, issueNumber, commentId, finish, mine };
}

const delivered = (id: string) => waitFor(`the final reply of ${id}`, () => !store.outbox.pending().some((r) => r.taskId === id), 10_000);

describe('pure parts', () => {
  test('retryDelayMs doubles from baseMs up to maxMs', () => {
    const p = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 60].map((n) => retryDelayMs(n, p))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  test('the final marker ends the body on its own line; ids cannot close the HTML comment', () => {
    expect(withFinalMarker('task_1', 'Done\n\n')).toBe('Done\n<!-- codex-cloud:final=task_1 -->\n');
    expect(finalReplyMarker('a -->b')).toBe('<!-- codex-cloud:final=a%20--%3Eb -->');
  });
});

describe('final replies', () => {
  test('edit the progress comment in place: one comment, the final body', async () => {
    const t = await task();
    t.finish('✅ Done');
    reporter().deliverPending();
    await delivered(t.id);
    expect(t.mine()).toHaveLength(1);
    expect(t.mine()[0]!.body).toBe(withFinalMarker(t.id, '✅ Done'));
  });

  test('502 on every edit: after 3 edits, exactly one new comment holds the final reply', async () => {
    const t = await task();
    gh.failNext({ method: 'PATCH', path: `/repos/acme/thread/issues/comments/${t.commentId}` }, { status: 502, times: 1000 });
    t.finish('✅ Done');
    reporter().deliverPending();
    await delivered(t.id);
    const mine = t.mine();
    expect(mine).toHaveLength(2);
    expect(mine[0]!.body).toBe('Queued');
    expect(mine[1]!.body).toContain(finalReplyMarker(t.id));
    expect(gh.requestsTo({ method: 'PATCH', path: `/repos/acme/thread/issues/comments/${t.commentId}` })).toHaveLength(3);
  });

  test('a deleted progress comment (404): a new comment at once', async () => {
    const t = await task();
    await (await github.forInstallation(1)).rest.issues.deleteComment({ owner: 'acme', repo: 'thread', comment_id: t.commentId! });
    t.finish('✅ Done');
    reporter().deliverPending();
    await delivered(t.id);
    expect(t.mine()).toHaveLength(1);
    expect(t.mine()[0]!.body).toContain(finalReplyMarker(t.id));
  });

  test('no progress comment: the reply is posted; failures are retried until GitHub accepts, also by the next process', async () => {
    const t = await task(false);
    gh.failNext({ method: 'POST', path: `/repos/acme/thread/issues/${t.issueNumber}/comments` }, { status: 503, times: 1000 });
    t.finish('❌ Failed');
    const first = reporter();
    first.deliverPending();
    await waitFor('two failed attempts', () => (store.outbox.pending().find((r) => r.taskId === t.id)?.attempts ?? 0) >= 2);
    first.close();
    await first.idle();
    expect(t.mine()).toHaveLength(0);
    gh.clearFaults();
    reporter().deliverPending(); // a restarted app
    await delivered(t.id);
    expect(t.mine()).toHaveLength(1);
  });

  test('a post whose outcome was lost is not repeated: the app’s own comment with the marker counts, another user’s does not', async () => {
    const t = await task(false);
    // Someone else quotes the marker: that is not our reply.
    gh.addComment(REPO, t.issueNumber, { body: `fake ${finalReplyMarker(t.id)}`, user: 'maintainer' });
    t.finish('✅ Done');
    store.outbox.markPosting(t.id, Date.now());
    reporter().deliverPending();
    await delivered(t.id);
    expect(t.mine()).toHaveLength(1);

    // Our reply was posted, but the process died before recording it.
    const u = await task(false);
    u.finish('✅ Done');
    const octokit = await github.forInstallation(1);
    await octokit.rest.issues.createComment({ owner: 'acme', repo: 'thread', issue_number: u.issueNumber, body: withFinalMarker(u.id, '✅ Done') });
    store.outbox.markPosting(u.id, Date.now());
    reporter().deliverPending();
    await delivered(u.id);
    expect(u.mine()).toHaveLength(1);
  });
});

describe('progress comments', () => {
  test('a recovering task reuses the progress comment a previous process posted but did not record; another user’s copy does not count', async () => {
    const t = await task(false);
    const thread = { installationId: 1, owner: 'acme', repo: 'thread', issueNumber: t.issueNumber };
    // Someone quotes the marker first; then the app's own post lands and the process dies before the store write.
    gh.addComment(REPO, t.issueNumber, { body: `${progressMarker(t.id)}\nfake`, user: 'maintainer' });
    const octokit = await github.forInstallation(1);
    const posted = (await octokit.rest.issues.createComment({ owner: 'acme', repo: 'thread', issue_number: t.issueNumber, body: `${progressMarker(t.id)}\nQueued` })).data.id;
    const id = await reporter().showProgress(t.id, thread, undefined, `${progressMarker(t.id)}\nQueued again`, { recovering: true });
    expect(id).toBe(posted);
    expect(t.mine()).toHaveLength(1);
    expect(t.mine()[0]!.body).toBe(`${progressMarker(t.id)}\nQueued again`);
  });

  test('a recovering task with no comment in the thread posts one; a new task never lists the thread', async () => {
    const t = await task(false);
    const thread = { installationId: 1, owner: 'acme', repo: 'thread', issueNumber: t.issueNumber };
    const list = { method: 'GET', path: `/repos/acme/thread/issues/${t.issueNumber}/comments` };
    expect(await reporter().showProgress(t.id, thread, undefined, `${progressMarker(t.id)}\nQueued`, { recovering: true })).toBeDefined();
    expect(gh.requestsTo(list)).toHaveLength(1);
    const u = await task(false);
    await reporter().showProgress(u.id, { ...thread, issueNumber: u.issueNumber }, undefined, `${progressMarker(u.id)}\nQueued`);
    expect(gh.requestsTo({ ...list, path: `/repos/acme/thread/issues/${u.issueNumber}/comments` })).toHaveLength(0);
    expect(t.mine()).toHaveLength(1);
    expect(u.mine()).toHaveLength(1);
  });
});
