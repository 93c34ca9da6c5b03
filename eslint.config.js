import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/**
 * Import boundaries (DESIGN.md, "Layout"): nothing imports upward.
 * - `src/agent/` (the runner program, untrusted once the agent starts) imports only `src/contract.ts`
 *   from the rest of the app: a file `depth` folders below `src/agent/` may import `../`×depth`contract.ts`
 *   and files inside `src/agent/`, nothing else of `src/`.
 * - `src/github/` (GitHub I/O) does not import `src/tasks/` (the task service uses it, not the reverse).
 */
function zone(files, regex, message) {
  return { files, rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] } };
}
const up = (depth) => '\\.\\./'.repeat(depth);
const AGENT_ONLY_CONTRACT = 'src/agent/ is the runner program: it may import only src/contract.ts from the rest of the app.';
const GITHUB_NOT_TASKS = 'src/github/ must not import src/tasks/ (the task service uses GitHub modules, not the reverse).';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'infra/cdk.out/**', 'infra/node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  zone(['src/agent/*.ts'], `^${up(1)}(?!contract\\.ts$)`, AGENT_ONLY_CONTRACT),
  zone(['src/agent/*/*.ts'], `^${up(2)}(?!contract\\.ts$)`, AGENT_ONLY_CONTRACT),
  zone(['src/agent/*/*/*.ts'], `^${up(3)}(?!contract\\.ts$)`, AGENT_ONLY_CONTRACT),
  zone(['src/github/*.ts'], `^${up(1)}tasks/`, GITHUB_NOT_TASKS),
  zone(['src/github/*/*.ts'], `^${up(2)}tasks/`, GITHUB_NOT_TASKS),
);
