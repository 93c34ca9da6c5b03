/**
 * Realistic GitHub Actions job steps for tests of CI-failure handling: a Node project whose `npm test`
 * step prints 3,000 lines (ANSI-coloured, like jest in CI with `FORCE_COLOR`), with ONE failing test
 * whose assertion error sits deep inside the output, followed by more passing suites and the summary.
 * Feed them to the stand-in's `addWorkflowRun` (or `actionsJobLog`) to get a log in GitHub's format.
 */
import type { StepSpec } from './github-stand-in.ts';

/** Text that appears only in the failing test's report (what a cut log must keep). */
export const ASSERTION_MESSAGE = 'AssertionError [ERR_ASSERTION]: parseAmount("1,5") should be 1.5';
/** The failing step's name (as the job API lists it). */
export const FAILING_STEP_NAME = 'Run tests';
/** Lines printed by the failing step. */
export const TEST_STEP_LINES = 3000;
/** Line (0-based, within the step's output) where the failing suite's report starts. */
export const FAILURE_AT = 2210;

const GREEN = '\u001b[32m';
const RED = '\u001b[31m';
const BOLD = '\u001b[1m';
const RESET = '\u001b[0m';

/** The output of the test step: 3,000 lines, one failing suite deep inside. */
export function testStepOutput(): string[] {
  const out: string[] = ['', '> app@1.0.0 test', '> jest --ci', ''];
  let suite = 0;
  while (out.length < FAILURE_AT) {
    suite++;
    out.push(`${GREEN}${BOLD} PASS ${RESET} test/unit/module-${String(suite).padStart(3, '0')}.test.js`);
    for (let t = 0; t < 6 && out.length < FAILURE_AT; t++) out.push(`  ${GREEN}✓${RESET} handles case ${suite}.${t} (${(suite * 7 + t) % 40} ms)`);
  }
  out.push(
    `${RED}${BOLD} FAIL ${RESET} test/unit/parse-amount.test.js`,
    '  ● parseAmount › accepts a decimal comma',
    '',
    `    ${ASSERTION_MESSAGE}`,
    '',
    '      expect(received).toBe(expected) // Object.is equality',
    '',
    `      Expected: ${GREEN}1.5${RESET}`,
    `      Received: ${RED}15${RESET}`,
    '',
    '        12 |   test("accepts a decimal comma", () => {',
    '      > 13 |     assert.strictEqual(parseAmount("1,5"), 1.5, \'parseAmount("1,5") should be 1.5\');',
    '           |            ^',
    '        14 |   });',
    '',
    '      at Object.<anonymous> (test/unit/parse-amount.test.js:13:12)',
    '',
  );
  while (out.length < TEST_STEP_LINES - 8) {
    suite++;
    out.push(`${GREEN}${BOLD} PASS ${RESET} test/unit/module-${String(suite).padStart(3, '0')}.test.js`);
    for (let t = 0; t < 6 && out.length < TEST_STEP_LINES - 8; t++) out.push(`  ${GREEN}✓${RESET} handles case ${suite}.${t} (${(suite * 7 + t) % 40} ms)`);
  }
  out.push(
    '',
    `Test Suites: ${RED}1 failed${RESET}, ${GREEN}${suite - 1} passed${RESET}, ${suite} total`,
    `Tests:       ${RED}1 failed${RESET}, ${GREEN}${suite * 6} passed${RESET}, ${suite * 6 + 1} total`,
    'Snapshots:   0 total',
    'Time:        41.873 s',
    'Ran all test suites.',
    '',
    'npm error Lifecycle script `test` failed with error:',
  );
  return out;
}

/** The steps of the failing `test` job: set up, checkout, setup-node, npm ci (200 lines), the failing tests, post steps. */
export function failingTestJobSteps(): StepSpec[] {
  return [
    { name: 'Set up job' },
    { name: 'Run actions/checkout@v4', lines: ['Syncing repository: octo/app', 'Getting Git version info', '[command]/usr/bin/git version', 'git version 2.47.1'] },
    { name: 'Run actions/setup-node@v4', lines: ['Found in cache @ /opt/hostedtoolcache/node/24.11.0/x64', 'Environment details', '  node: v24.11.0', '  npm: 11.6.1'] },
    {
      name: 'Install dependencies',
      command: 'npm ci',
      lines: [...Array.from({ length: 198 }, (_, i) => `npm warn deprecated package-${i}@1.0.0: no longer supported (error handling moved)`), 'added 812 packages in 9s'],
    },
    { name: FAILING_STEP_NAME, command: 'npm test', conclusion: 'failure', lines: testStepOutput(), durationMs: 42_000 },
    { name: 'Post Run actions/checkout@v4', lines: ['Post job cleanup.', '[command]/usr/bin/git version', 'git version 2.47.1'] },
    { name: 'Complete job' },
  ];
}

/** A workflow file that runs the job above. */
export const CI_WORKFLOW = `name: CI
on: [pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-node@v4
        with:
          node-version: 24
      - name: Install dependencies
        run: npm ci
      - name: Run tests
        run: npm test
`;
