/**
 * The triggers' payload schemas accept every real example payload of their events
 * (@octokit/webhooks-examples) and turn what they do not understand into one log line without values.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { describe, expect, test } from '@jest/globals';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { pino } from 'pino';
import { IssueCommentPayload } from '../../src/triggers/issue-comment.ts';
import { IssuesOpenedPayload } from '../../src/triggers/issues-opened.ts';
import { guardTrigger, readPayload } from '../../src/triggers/payload.ts';
import { PullRequestOpenedPayload } from '../../src/triggers/pull-request-opened.ts';
import { PullRequestReviewPayload } from '../../src/triggers/pull-request-review.ts';
import { PullRequestReviewCommentPayload } from '../../src/triggers/pull-request-review-comment.ts';

const DEFINITIONS = createRequire(import.meta.url)('@octokit/webhooks-examples') as WebhookDefinition[];
const examples = (event: string) => (DEFINITIONS.find((d) => d.name === event)?.examples ?? []) as unknown as Array<Record<string, unknown>>;

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: pino(sink) };
}

const ref = { deliveryId: 'd-1', eventName: 'issue_comment.created' };

describe('payload schemas', () => {
  test.each([
    ['issue_comment', IssueCommentPayload],
    ['issues', IssuesOpenedPayload],
    ['pull_request', PullRequestOpenedPayload],
    ['pull_request_review', PullRequestReviewPayload],
    ['pull_request_review_comment', PullRequestReviewCommentPayload],
  ] as const)('accept every real %s example', (event, schema) => {
    const all = examples(event);
    expect(all.length).toBeGreaterThan(2);
    for (const example of all) expect(schema.safeParse(example).error).toBeUndefined();
  });

  test('a payload that does not match is one warning naming the paths, never the values', () => {
    const { lines, log } = capture();
    const payload = structuredClone(examples('issue_comment')[0]!) as { sender: unknown; comment: { body: unknown } };
    payload.sender = null;
    payload.comment.body = { secret: 'VALUE-MARKER' };
    expect(readPayload(IssueCommentPayload, payload, ref, log)).toBeUndefined();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('sender');
    expect(lines[0]).toContain('comment.body');
    expect(lines[0]).not.toContain('VALUE-MARKER');
  });

  test.each([['<script>'], ['a b'], ['x'.repeat(101)], ['@codex'], ['[x](y)']])('a login such as %j is refused', (login) => {
    const payload = structuredClone(examples('issues').find((e) => e.action === 'opened')!) as { sender: { login: string } };
    payload.sender.login = login;
    expect(IssuesOpenedPayload.safeParse(payload).success).toBe(false);
  });
});

describe('guardTrigger', () => {
  test('turns a throw into one error line with the message cut to 300 characters', async () => {
    const { lines, log } = capture();
    await guardTrigger(ref, log, async () => {
      throw new Error(`boom ${'x'.repeat(1_000)}`);
    });
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { err: string; deliveryId: string; msg: string };
    expect(line.err.length).toBe(300);
    expect(line.deliveryId).toBe('d-1');
    expect(line.msg).toBe('trigger failed; event dropped');
  });
});
