/**
 * Every trigger normalises its real example payloads (@octokit/webhooks-examples) into the one shape
 * `{target, origin, sender, body}` with a trigger key of its own.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- example payloads are edited field by field */
import { createRequire } from 'node:module';
import { describe, expect, test } from '@jest/globals';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { TRIGGERS } from '../../src/triggers/index.ts';
import { pullRequestTarget } from '../../src/triggers/normalize.ts';

const DEFINITIONS = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];
const example = (event: string, action: string) =>
  structuredClone((DEFINITIONS.find((d) => d.name === event)?.examples ?? []).find((e) => (e as { action?: string }).action === action)) as unknown as Record<string, any>;
const withInstallation = <T extends Record<string, any>>(payload: T): T => ({ ...payload, installation: { id: 7 } });

const normalize = (event: keyof typeof TRIGGERS, payload: unknown) => {
  const trigger = TRIGGERS[event];
  return trigger.normalize(trigger.schema.parse(payload));
};

describe('trigger normalisers', () => {
  test('issue_comment on a pull request: a pull request target to read after the gate, the comment as origin', () => {
    const p = withInstallation(example('issue_comment', 'created'));
    p.issue.pull_request = { url: 'x' };
    p.comment.body = '@codex rename it';
    const m = normalize('issue_comment.created', p)!;
    expect(m).toMatchObject({
      triggerKey: `issue_comment:${p.comment.id}`,
      installationId: 7,
      target: { type: 'pull_request', number: p.issue.number, title: p.issue.title },
      origin: { type: 'comment', id: p.comment.id },
      sender: { login: p.comment.user.login },
      body: '@codex rename it',
    });
    expect(m.target).not.toHaveProperty('pull');
  });

  test('issue_comment on an issue: an issue target with what its context needs', () => {
    const p = withInstallation(example('issue_comment', 'created'));
    delete p.issue.pull_request;
    expect(normalize('issue_comment.created', p)).toMatchObject({ target: { type: 'issue', number: p.issue.number, body: p.issue.body ?? null } });
  });

  test('pull_request_review_comment: the review comment as origin, its path, lines and hunk for the context', () => {
    const p = withInstallation(example('pull_request_review_comment', 'created'));
    const m = normalize('pull_request_review_comment.created', p)!;
    expect(m).toMatchObject({
      triggerKey: `pull_request_review_comment:${p.comment.id}`,
      target: { type: 'pull_request', number: p.pull_request.number },
      origin: { type: 'review_comment', id: p.comment.id },
      reviewComment: { kind: 'review_comment', id: p.comment.id, path: p.comment.path, diffHunk: p.comment.diff_hunk },
    });
  });

  test('pull_request_review: the review as origin; a review without a body is no request', () => {
    const p = withInstallation(example('pull_request_review', 'submitted'));
    p.review.body = '@codex address these';
    expect(normalize('pull_request_review.submitted', p)).toMatchObject({ triggerKey: `pull_request_review:${p.review.id}`, origin: { type: 'review', id: p.review.id }, body: '@codex address these' });
    p.review.body = null;
    expect(normalize('pull_request_review.submitted', p)).toBeUndefined();
  });

  test('pull_request.opened: the pull request as target and origin, its body as the text; no installation, no request', () => {
    const p = withInstallation(example('pull_request', 'opened'));
    expect(normalize('pull_request.opened', p)).toMatchObject({ triggerKey: `pull_request:${p.pull_request.id}`, origin: { type: 'pull_request', id: p.pull_request.id } });
    delete (p as { installation?: unknown }).installation;
    expect(normalize('pull_request.opened', p)).toBeUndefined();
  });
});

describe('pullRequestTarget', () => {
  const pull = { id: 1, number: 5, title: 't', state: 'open', base: { ref: 'main', sha: 'a'.repeat(40) }, head: { ref: 'f', sha: 'b'.repeat(40), repo: { full_name: 'Acme/Calc' } }, commits: 3 };
  test('a head in the same repository (case-insensitive) is not a fork', () => {
    expect(pullRequestTarget('acme', 'calc', pull)).toEqual({
      type: 'pull_request', number: 5, title: 't', baseRef: 'main', baseSha: 'a'.repeat(40), headRef: 'f', headSha: 'b'.repeat(40), headRepo: 'Acme/Calc', fork: false, maintainerCanModify: false, commits: 3,
    });
  });
  test('another repository, or a deleted fork, is a fork', () => {
    expect(pullRequestTarget('acme', 'calc', { ...pull, head: { ...pull.head, repo: { full_name: 'eve/calc' } } }).fork).toBe(true);
    expect(pullRequestTarget('acme', 'calc', { ...pull, head: { ...pull.head, repo: null } }).fork).toBe(true);
  });
});
