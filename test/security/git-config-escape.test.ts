/**
 * Issue 7, end to end through the real app (`codex-cloud serve`, local runner backend) and the
 * GitHub stand-in: a prompt-injected agent rewrites the workspace's `.git` (filter driver with
 * `.gitattributes`, fsmonitor, a hook, includeIf, diff.external) so that host-side git would run its
 * script, which reads the app's secrets from the environment and from `/proc/<pid>/environ`. The
 * published pull request holds the fix and the agent's files as written, and none of the secrets;
 * the script never ran (its marker outside the workspace does not exist).
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppHarness, UPSTREAM_KEY, waitFor, WEBHOOK_SECRET } from '../support/app-harness.ts';
import { gitEscapeTurns } from '../support/attacks.ts';
import { buggyNodeRepo, FIXED_MATH } from '../support/fixtures.ts';

const REPO = 'acme/calc';
let h: AppHarness;
let outside: string;

beforeAll(async () => {
  outside = await mkdtemp(path.join(tmpdir(), 'git-escape-outside-'));
  h = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10' } });
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write' } });
});

afterAll(async () => {
  await h?.close();
  await rm(outside, { recursive: true, force: true });
});

test('the published pull request carries no secret and the agent-written git config ran nothing on the host', async () => {
  const marker = path.join(outside, 'marker');
  h.model.push(...gitEscapeTurns(marker));
  const { number: issue, delivery } = h.mentionOnNewIssue(REPO, '@codex please fix the failing add test');
  expect(await h.deliver(delivery)).toBe(200);
  const done = await waitFor('the final reply', () => h.botComments(REPO, issue).find((c) => /✅ \*\*Done\*\*/.test(c.body)), 60_000);
  expect(h.model.pendingTurns).toBe(0);

  expect(existsSync(marker)).toBe(false);
  const pulls = (await h.github.pulls(REPO)) as Array<{ head: { ref: string }; title: string; body: string }>;
  expect(pulls).toHaveLength(1);
  const head = pulls[0]!.head.ref;
  const files = (await h.github.git(REPO, 'diff', '--name-only', 'main', head)).trim().split('\n').sort();
  expect(files).toEqual(['.attack.sh', '.evil.cfg', '.gitattributes', 'src/math.js']);
  expect(await h.github.git(REPO, 'show', `${head}:src/math.js`)).toBe(FIXED_MATH);
  // Everything published: the commit's files, its message, the PR, the reply.
  const published = [
    await h.github.git(REPO, 'diff', 'main', head),
    await h.github.git(REPO, 'log', '-1', '--format=%B', head),
    JSON.stringify(pulls),
    done.body,
  ].join('\n');
  const privateKeyLine = h.env.PRIVATE_KEY!.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;
  for (const secret of [privateKeyLine, WEBHOOK_SECRET, UPSTREAM_KEY]) expect(published).not.toContain(secret);
  expect(published).not.toMatch(/BEGIN (RSA )?PRIVATE KEY/);
});
