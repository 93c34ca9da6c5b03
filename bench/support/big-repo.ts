/**
 * The benchmark's workload: a generated repository of about 5,000 files (a Node project with
 * nested packages, mostly small sources, some large ones, fixtures and docs, two test files and an
 * AGENTS.md) and the ten scripted model turns of a realistic task on it (find the bug with a
 * recursive search, read files with `sed -n`, reproduce with `node --test`, patch with apply_patch,
 * rerun the tests, look at the diff, answer).
 *
 * Everything is deterministic (a seeded PRNG), so runs and machines see the same bytes.
 */
import type { RepoFile } from '../../test/support/git-http.ts';
import { toolOutputs, type RecordedRequest, type ScriptedItem, type ScriptedTurn } from '../../test/support/scripted-model.ts';

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
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

// No word may make a path match `node --test`'s default patterns (`test`, `*.test.js`, `test-*`, …).
const PACKAGES = ['api', 'auth', 'billing', 'cli', 'db', 'events', 'jobs', 'mail', 'metrics', 'search', 'storage', 'ui', 'util', 'workers', 'reports', 'sync'];
const LAYERS = ['handlers', 'models', 'services', 'lib', 'internal', 'adapters'];
const SUBLAYERS = ['v1', 'v2', 'legacy', 'shared'];
const NOUNS = ['account', 'invoice', 'session', 'token', 'order', 'user', 'queue', 'record', 'metric', 'report', 'channel', 'ledger', 'profile', 'quota', 'region', 'schedule', 'snapshot', 'tenant', 'webhook', 'window'];
const VERBS = ['load', 'save', 'parse', 'render', 'sync', 'build', 'merge', 'check', 'resolve', 'encode', 'decode', 'publish', 'collect', 'index', 'prune'];

/** Relative path of `src/core/format.js` as imported from `fromDir` (a repo-relative directory). */
function importPath(fromDir: string, target: string): string {
  const up = fromDir.split('/').length;
  return `${'../'.repeat(up)}${target}`;
}

/** A generated JS module of about `bytes` bytes; `callsFormat` adds an import and calls of formatRecord. */
function jsModule(rand: () => number, dir: string, name: string, bytes: number, callsFormat: boolean): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const lines: string[] = [`// ${dir}/${name}: generated module for the runner benchmark.`];
  if (callsFormat) lines.push(`import { formatRecord } from '${importPath(dir, 'src/core/format.js')}';`);
  lines.push('');
  let size = lines.join('\n').length;
  let n = 0;
  while (size < bytes) {
    const fn = `${pick(VERBS)}${pick(NOUNS)[0]!.toUpperCase()}${pick(NOUNS).slice(1)}${n++}`;
    const noun = pick(NOUNS);
    const body = [
      `/**`,
      ` * ${fn}: ${pick(VERBS)}s the ${noun} and returns a ${pick(NOUNS)} summary.`,
      ` */`,
      `export function ${fn}(${noun}, options = {}) {`,
      `  const limit = options.limit ?? ${Math.floor(rand() * 1000)};`,
      `  const items = (${noun}.items ?? []).slice(0, limit);`,
      `  const total = items.reduce((sum, item) => sum + (item.value ?? 0), 0);`,
      callsFormat && rand() < 0.5
        ? `  const label = formatRecord({ name: '${noun}', value: total }, { unit: '${pick(['ms', 'items', 'bytes', 'req/s'])}' });`
        : `  const label = \`${noun}: \${total}\`;`,
      `  return { id: ${noun}.id, total, label, count: items.length };`,
      `}`,
      '',
    ].join('\n');
    lines.push(body);
    size += body.length + 1;
  }
  return `${lines.join('\n')}\n`;
}

function markdown(rand: () => number, title: string, bytes: number): string {
  const words = [...NOUNS, ...VERBS, 'the', 'a', 'with', 'when', 'for', 'and', 'is', 'returns', 'configured'];
  const out = [`# ${title}`, ''];
  let size = title.length + 3;
  while (size < bytes) {
    const sentence = Array.from({ length: 8 + Math.floor(rand() * 12) }, () => words[Math.floor(rand() * words.length)]).join(' ');
    out.push(`${sentence[0]!.toUpperCase()}${sentence.slice(1)}.`);
    size += sentence.length + 2;
  }
  return `${out.join('\n')}\n`;
}

function fixture(rand: () => number, bytes: number): string {
  const rows: object[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const row = { id: i, name: NOUNS[i % NOUNS.length], value: Math.floor(rand() * 10_000), tags: [VERBS[i % VERBS.length]] };
    rows.push(row);
    size += JSON.stringify(row).length + 4;
  }
  return `${JSON.stringify(rows, null, 2)}\n`;
}

/** The bug the task fixes: a falsy check that turns a value of 0 into "-". */
const FORMAT_HEAD = `// src/core/format.js: formatting of records for logs, reports and the CLI.

/**
 * Formats a record as "name: value unit".
 * @param {{ name: string, value?: number | null }} record
 * @param {{ unit?: string, precision?: number }} [options]
 * @returns {string} e.g. "latency: 12.5 ms", or "latency: -" when the value is missing.
 */
export function formatRecord(record, options = {}) {
  const unit = options.unit ? \` \${options.unit}\` : '';
  if (!record.value) {
    return \`\${record.name}: -\`;
  }
  const precision = options.precision ?? 1;
  const value = Number.isInteger(record.value) ? String(record.value) : record.value.toFixed(precision);
  return \`\${record.name}: \${value}\${unit}\`;
}

/**
 * Formats a list of records, one per line.
 * @param {Array<{ name: string, value?: number | null }>} records
 * @param {{ unit?: string }} [options]
 */
export function formatRecords(records, options = {}) {
  return records.map((record) => formatRecord(record, options)).join('\\n');
}
`;

/** The patch the scripted agent applies to src/core/format.js. */
export const FORMAT_PATCH = `*** Begin Patch
*** Update File: src/core/format.js
@@ export function formatRecord(record, options = {}) {
   const unit = options.unit ? \` \${options.unit}\` : '';
-  if (!record.value) {
+  if (record.value === undefined || record.value === null) {
     return \`\${record.name}: -\`;
   }
*** End Patch`;

const FORMAT_TEST = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRecord, formatRecords } from '../src/core/format.js';

test('formats a value with its unit', () => {
  assert.equal(formatRecord({ name: 'latency', value: 12.5 }, { unit: 'ms' }), 'latency: 12.5 ms');
});

test('a missing value is shown as a dash', () => {
  assert.equal(formatRecord({ name: 'latency' }, { unit: 'ms' }), 'latency: -');
  assert.equal(formatRecord({ name: 'latency', value: null }), 'latency: -');
});

test('zero is a value, not a missing one', () => {
  assert.equal(formatRecord({ name: 'errors', value: 0 }, { unit: 'req/s' }), 'errors: 0 req/s');
});

test('formats lists one per line', () => {
  assert.equal(formatRecords([{ name: 'a', value: 1 }, { name: 'b', value: 2 }]), 'a: 1\\nb: 2');
});
`;

const STRINGS = `// src/core/strings.js: small string helpers.

/** Lower-case, dash-separated form of a text ("Hello World" -> "hello-world"). */
export function slugify(text) {
  return text.toLowerCase().trim().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** Cuts a text to \`max\` characters, ending with an ellipsis when cut. */
export function truncate(text, max) {
  return text.length <= max ? text : \`\${text.slice(0, max - 1)}…\`;
}
`;

const STRINGS_TEST = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slugify, truncate } from '../src/core/strings.js';

test('slugify', () => {
  assert.equal(slugify('  Hello, World!  '), 'hello-world');
});

test('truncate', () => {
  assert.equal(truncate('abcdef', 4), 'abc…');
  assert.equal(truncate('abc', 4), 'abc');
});
`;

const AGENTS_MD = `# Working on this repository

- Plain ES modules, Node 24, no dependencies. Sources are in \`src/<package>/\`; shared helpers in \`src/core/\`.
- Run the tests with \`npm test\` (which runs \`node --test\`). Add a test for every bug fix in \`test/\`.
- Keep changes minimal; do not reformat unrelated code.
- Formatting of numbers for humans goes through \`formatRecord\` in \`src/core/format.js\`.
`;

/**
 * Generates the repository: `count` files in total (default 5,000), nested three to four levels
 * under `src/<package>/<layer>/[<sublayer>/]`, plus `docs/` and `fixtures/`. About 90% of the files
 * are 0.3–3 KB, 8% are 3–15 KB and 2% are 20–80 KB; about 30% of the modules call `formatRecord`.
 * @returns a map from repo-relative path to content, for `createBareRepo`.
 */
export function generateRepo(count = 5000): Record<string, RepoFile> {
  const rand = prng(0xc0de);
  const files: Record<string, RepoFile> = {
    'package.json': `${JSON.stringify({ name: 'acme-platform', version: '3.2.0', private: true, type: 'module', scripts: { test: 'node --test' } }, null, 2)}\n`,
    'AGENTS.md': AGENTS_MD,
    'README.md': markdown(rand, 'Acme platform', 4000),
    '.gitignore': 'node_modules/\n*.log\ncoverage/\n',
    'src/core/format.js': FORMAT_HEAD + jsModule(rand, 'src/core', 'format.js', 30_000, false).split('\n').slice(2).join('\n'),
    'src/core/strings.js': STRINGS,
    'test/format.test.js': FORMAT_TEST,
    'test/strings.test.js': STRINGS_TEST,
    'scripts/release.sh': { content: '#!/bin/sh\nset -e\nnpm test\ngit tag "v$(node -p "require(\'./package.json\').version")"\n', mode: '100755' },
  };
  const size = (): number => {
    const r = rand();
    if (r < 0.9) return 300 + Math.floor(rand() * 2700);
    if (r < 0.98) return 3000 + Math.floor(rand() * 12_000);
    return 20_000 + Math.floor(rand() * 60_000);
  };
  let i = 0;
  while (Object.keys(files).length < count) {
    const kind = rand();
    const n = i++;
    if (kind < 0.04) {
      files[`docs/${PACKAGES[n % PACKAGES.length]}/${NOUNS[n % NOUNS.length]}-${n}.md`] = markdown(rand, `${NOUNS[n % NOUNS.length]} ${n}`, size());
    } else if (kind < 0.1) {
      files[`fixtures/${PACKAGES[n % PACKAGES.length]}/${NOUNS[n % NOUNS.length]}-${n}.json`] = fixture(rand, size());
    } else {
      const pkg = PACKAGES[Math.floor(rand() * PACKAGES.length)]!;
      const layer = LAYERS[Math.floor(rand() * LAYERS.length)]!;
      const dir = rand() < 0.5 ? `src/${pkg}/${layer}` : `src/${pkg}/${layer}/${SUBLAYERS[Math.floor(rand() * SUBLAYERS.length)]!}`;
      const name = `${VERBS[Math.floor(rand() * VERBS.length)]!}-${NOUNS[Math.floor(rand() * NOUNS.length)]!}-${n}.js`;
      files[`${dir}/${name}`] = jsModule(rand, dir, name, size(), rand() < 0.3);
    }
  }
  return files;
}

/** What the bench needs to know about the machine to script the search command. */
export interface TurnOptions {
  /** Use `rg` (as on the runner image) instead of `grep -rn` for the recursive search. */
  ripgrep: boolean;
}

/** Text of the last tool output in a request (what the previous call returned). */
function lastOutput(req: RecordedRequest): string {
  return toolOutputs(req).at(-1)?.output ?? '';
}

function expectOutput(req: RecordedRequest, test: RegExp, what: string): void {
  const out = lastOutput(req);
  if (!test.test(out)) throw new Error(`expected ${what}, got: ${out.slice(0, 600)}`);
}

/** A reasoning item with a one-line summary, as a codex model sends before acting. */
function think(summary: string, tokens = 180): ScriptedItem {
  return { type: 'reasoning', summary: `**${summary}**`, tokens };
}

function shell(command: string[], extra: object = {}): ScriptedItem {
  return { type: 'function_call', name: 'shell', arguments: { command, ...extra } };
}

/** The final message of the task (PR title and body). */
export const FINAL_MESSAGE = `# Treat a value of 0 as a value in formatRecord

## Summary
- \`src/core/format.js\`: \`formatRecord\` checked \`!record.value\`, so a value of \`0\` was shown as \`-\` (e.g. "errors: -" instead of "errors: 0 req/s"). It now shows \`-\` only for a missing (\`undefined\`/\`null\`) value.
- About 400 call sites across \`src/\` go through \`formatRecord\`; none relied on the old behaviour for 0.

## Testing
- \`node --test\`: \`zero is a value, not a missing one\` failed before the fix; all tests pass after it.`;

/**
 * The ten scripted turns. Each turn after the first checks what the previous tool returned and
 * throws (the scripted server then answers HTTP 500 and the task fails loudly) if the runner
 * misbehaved, so the benchmark cannot silently measure a broken run.
 */
export function taskTurns(opts: TurnOptions): ScriptedTurn[] {
  const search = opts.ripgrep
    ? ['rg', '-n', 'formatRecord', '--glob', '*.js']
    : ['grep', '-rn', '--include=*.js', 'formatRecord', '.'];
  return [
    [
      think('Planning the fix for zero values'),
      {
        type: 'function_call',
        name: 'update_plan',
        arguments: {
          explanation: 'The report shows "errors: -" for zero; find where values are formatted.',
          plan: [
            { step: 'Find where records are formatted', status: 'in_progress' },
            { step: 'Reproduce with the tests', status: 'pending' },
            { step: 'Fix formatRecord and rerun the tests', status: 'pending' },
          ],
        },
      },
    ],
    (req) => {
      expectOutput(req, /Plan updated/, 'the plan to be accepted');
      return [think('Searching for formatRecord usage'), shell(search)];
    },
    (req) => {
      // Hundreds of matches: the output must come back shortened with the omission marker.
      expectOutput(req, /Exit code: 0[\s\S]*bytes omitted/, 'a long, truncated search result');
      return [think('Listing the core package', 120), shell(['ls', '-la', 'src/core'])];
    },
    (req) => {
      expectOutput(req, /format\.js/, 'a listing with format.js');
      return [
        { type: 'message', text: 'formatRecord lives in src/core/format.js; reading it.', phase: 'commentary' },
        shell(['sed', '-n', '1,200p', 'src/core/format.js']),
      ];
    },
    (req) => {
      expectOutput(req, /if \(!record\.value\)/, 'the source of formatRecord');
      return [think('Spotting the falsy check on value', 420), shell(['sed', '-n', '1,80p', 'test/format.test.js'])];
    },
    (req) => {
      expectOutput(req, /zero is a value/, 'the test file');
      return [think('Running the tests to reproduce', 90), shell(['node', '--test'], { timeout_ms: 120_000 })];
    },
    (req) => {
      expectOutput(req, /Exit code: 1[\s\S]*zero is a value/, 'a failing test run');
      return [
        think('Replacing the falsy check with a null check', 260),
        { type: 'function_call', name: 'apply_patch', arguments: { input: FORMAT_PATCH } },
      ];
    },
    (req) => {
      expectOutput(req, /src\/core\/format\.js/, 'the patch to apply');
      return [think('Rerunning the tests', 60), shell(['node', '--test'], { timeout_ms: 120_000 })];
    },
    (req) => {
      expectOutput(req, /Exit code: 0[\s\S]*fail 0/, 'a passing test run');
      return [think('Reviewing the diff', 60), shell(['git', 'diff'])];
    },
    (req) => {
      expectOutput(req, /\+\s+if \(record\.value === undefined \|\| record\.value === null\)/, 'the diff of the fix');
      return [think('Writing the summary', 150), { type: 'message', text: FINAL_MESSAGE, phase: 'final_answer' }];
    },
  ];
}
