/**
 * Fuzz test of the webhook edge (issue 7, item 4): 2,000 mutated, correctly signed payloads built
 * from GitHub's real examples (@octokit/webhooks-examples: every event type, and the two the app
 * handles aimed at a repository of the GitHub stand-in with a mention from a read-only user), sent
 * to the real app process with bounded concurrency. Mutations delete fields, give them wrong types
 * or `null`, huge strings and deep nesting. Expected: no 5xx, no failed connection, the app alive,
 * no task started, no log line longer than 10 KB and nothing of the planted marker in the logs.
 * The PRNG has a fixed seed (`FUZZ_SEED` overrides it); a failure names the case to replay.
 */
import { createRequire } from 'node:module';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import type { WebhookDefinition } from '@octokit/webhooks-examples';
import { AppHarness } from '../support/app-harness.ts';
import { buggyNodeRepo } from '../support/fixtures.ts';
import { createDelivery, issueCommentCreated, issuesOpened, type Delivery, type Json } from '../support/webhooks.ts';

const REPO = 'acme/fuzz';
const CASES = 2_000;
const CONCURRENCY = 8;
const SEED = Number(process.env.FUZZ_SEED ?? 7);
/** Planted in every string the fuzzer makes up: it must never reach a log line. */
const MARKER = 'FUZZ-MARKER-91c2';

const require = createRequire(import.meta.url);
const DEFINITIONS = require('@octokit/webhooks-examples') as WebhookDefinition[];
const EXAMPLES = DEFINITIONS.flatMap((d) => (d.examples as unknown as Json[]).map((payload) => ({ event: d.name, payload })));

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Path = Array<string | number>;

/** Paths of all values under `root` (breadth first, at most 3,000). */
function pathsOf(root: unknown): Path[] {
  const paths: Path[] = [];
  const queue: Array<[unknown, Path]> = [[root, []]];
  while (queue.length > 0 && paths.length < 3_000) {
    const [value, path] = queue.shift()!;
    if (path.length > 0) paths.push(path);
    if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) queue.push([child, [...path, Array.isArray(value) ? Number(key) : key]]);
    }
  }
  return paths;
}

function parentOf(root: unknown, path: Path): Record<string | number, unknown> | undefined {
  let node = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node !== null && typeof node === 'object' ? (node as Record<string | number, unknown>) : undefined;
}

function fuzzer(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  // Deep nesting is written into the JSON text after stringifying (see `deepen`): JSON.stringify
  // itself would run out of stack on it.
  const deep = (depth: number): unknown => `${DEEP}${depth}${random() < 0.5 ? 'a' : 'o'}`;
  const replacements: Array<() => unknown> = [
    () => null,
    () => 0,
    () => -1,
    () => 1.5,
    () => 2 ** 60,
    () => true,
    () => '',
    () => `${MARKER}`,
    () => `${MARKER}${'@codex '.repeat(Math.floor(random() * 40_000))}`,
    () => `${MARKER}${'- '.repeat(10_000)}@codex`,
    () => [],
    () => ({}),
    () => [MARKER, null, 1],
    () => deep(50 + Math.floor(random() * 3_000)),
  ];
  /** Applies 1 to 4 mutations to `payload` (a fresh copy) and returns the result. */
  return (payload: Json): unknown => {
    let root: unknown = payload;
    const count = 1 + Math.floor(random() * 4);
    for (let i = 0; i < count; i++) {
      if (random() < 0.02) {
        root = pick(replacements)();
        continue;
      }
      const paths = pathsOf(root);
      if (paths.length === 0) continue;
      // Favour the fields near the top, where the handlers read.
      const path = random() < 0.6 ? pick(paths.filter((p) => p.length <= 2)) ?? pick(paths) : pick(paths);
      const parent = parentOf(root, path);
      if (!parent) continue;
      const key = path.at(-1)!;
      if (random() < 0.35) delete parent[key];
      else parent[key] = pick(replacements)();
    }
    return root;
  };
}

/** Placeholder of a deeply nested value in the payload, replaced in the JSON text. */
const DEEP = '\u0000deep:';

/** Replaces the placeholders of {@link DEEP} with arrays (`a`) or objects (`o`) nested `depth` deep. */
function deepen(json: string): string {
  return json.replace(/"\\u0000deep:(\d+)([ao])"/g, (_all, depth: string, kind: string) => {
    const n = Number(depth);
    return kind === 'a' ? `${'['.repeat(n)}"${MARKER}"${']'.repeat(n)}` : `${`{"${MARKER}":`.repeat(n)}null${'}'.repeat(n)}`;
  });
}

let h: AppHarness;

beforeAll(async () => {
  h = await AppHarness.start();
  await h.github.addRepo(REPO, buggyNodeRepo(), { installationId: 1, permissions: { maintainer: 'write', reader: 'read' } });
});

afterAll(async () => {
  if (process.env.DEBUG_APP_LOGS) console.log(h?.logs.slice(-8000));
  await h?.close();
});

test(`${CASES} mutated signed payloads: no 5xx, no crash, no task, nothing of them logged`, async () => {
  const random = prng(SEED);
  const mutate = fuzzer(random);
  const issueNumber = h.github.addIssue(REPO, { title: 'fuzz', body: 'fuzz', user: 'reader' }).number as number;
  const repo = h.github.repository(REPO);
  const issue = h.github.issue(REPO, issueNumber);

  /** The unmutated payload of case `i`: one of the app's own events on the stand-in, or any example. */
  const original = (i: number): { event: string; payload: Json } => {
    const roll = random();
    if (roll < 0.3) {
      const body = `@codex fix ${MARKER}`;
      return { event: 'issue_comment', payload: issueCommentCreated({ repo, issue, issueNumber, commentId: 5_000_000 + i, body, user: 'reader', installationId: 1 }).payload };
    }
    if (roll < 0.45) {
      return { event: 'issues', payload: issuesOpened({ repo, issue, issueNumber, title: 'fuzz', body: `@codex ${MARKER}`, user: 'reader', installationId: 1 }).payload };
    }
    const example = EXAMPLES[Math.floor(random() * EXAMPLES.length)]!;
    return { event: example.event, payload: structuredClone(example.payload) };
  };

  const cases: Delivery[] = [];
  for (let i = 0; i < CASES; i++) {
    const { event, payload } = original(i);
    const name = random() < 0.05 ? EXAMPLES[Math.floor(random() * EXAMPLES.length)]!.event : event;
    cases.push({ ...createDelivery(name, {}, { deliveryId: `fuzz-${SEED}-${i}` }), body: deepen(JSON.stringify(mutate(payload)) ?? 'null') });
  }

  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      try {
        const status = await h.deliver(cases[i]!);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 300 || status < 200) failures.push(`case ${i} (${cases[i]!.event}, seed ${SEED}): HTTP ${status}`);
      } catch (error) {
        failures.push(`case ${i} (${cases[i]!.event}, seed ${SEED}): ${(error as Error).message} ${String((error as { cause?: unknown }).cause ?? "")}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const reasons = (f: string) => h.logLines().filter((l) => l.deliveryId === `fuzz-${SEED}-${/case (\d+)/.exec(f)![1]}`).map((l) => `${String(l.msg)}: ${String(l.reason ?? l.paths ?? l.err ?? '')}`);
  expect(failures.map((f) => [f, ...reasons(f)])).toEqual([]);
  expect([...statuses].filter(([s]) => s >= 300)).toEqual([]);
  expect((await fetch(`${h.url}/healthz`)).status).toBe(200);

  // Nothing started: no task row, no 👀, no model request.
  const db = new DatabaseSync(`${h.dataDir}/codex-cloud.db`, { readOnly: true });
  try {
    expect((db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n).toBe(0);
  } finally {
    db.close();
  }
  expect(h.model.requests).toHaveLength(0);
  // The read-only user's mentions reached the permission check: some refusals were posted.
  expect(h.botComments(REPO, issueNumber).some((c) => /write access/.test(c.body))).toBe(true);

  await new Promise((r) => setTimeout(r, 300)); // the app's last lines are still in the pipe
  const long = h.logs.split('\n').filter((line) => line.length > 10_000);
  expect(long.map((line) => line.slice(0, 300))).toEqual([]);
  expect(h.logs).not.toContain(MARKER);
  expect(h.logs).not.toMatch(/"level":50[^\n]*"msg":"(?!webhook handler failed|trigger failed)/);
}, 120_000);
