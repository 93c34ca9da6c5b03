/**
 * Fixture repositories and the scripted agent runs that solve them, shared by the runner, exec and
 * app tests.
 */
import type { RepoFile } from './git-http.ts';
import { toolOutputs, type RecordedRequest, type ScriptedTurn } from './scripted-model.ts';

/** A tiny Node project whose test fails: `add` subtracts. `node --test` runs it (no dependencies). */
export function buggyNodeRepo(): Record<string, RepoFile> {
  return {
    'package.json': JSON.stringify({ name: 'calc', version: '1.0.0', type: 'module', scripts: { test: 'node --test' } }, null, 2) + '\n',
    'src/math.js': 'export function add(a, b) {\n  return a - b;\n}\n\nexport function mul(a, b) {\n  return a * b;\n}\n',
    'test/math.test.js':
      "import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { add, mul } from '../src/math.js';\n\ntest('add', () => assert.equal(add(2, 3), 5));\ntest('mul', () => assert.equal(mul(2, 3), 6));\n",
    'AGENTS.md': '# Agents\nRun the tests with `node --test`.\n',
    'scripts/run.sh': { content: '#!/bin/sh\nnode --test\n', mode: '100755' },
    '.gitignore': 'node_modules/\n*.log\n',
  };
}

/** The fix the scripted agent applies to {@link buggyNodeRepo}. */
export const FIX_PATCH = `*** Begin Patch
*** Update File: src/math.js
@@ export function add(a, b) {
-  return a - b;
+  return a + b;
 }
*** End Patch`;

/** The fixed content of src/math.js. */
export const FIXED_MATH = 'export function add(a, b) {\n  return a + b;\n}\n\nexport function mul(a, b) {\n  return a * b;\n}\n';

/** The final message of the scripted agent. */
export const FINAL_MESSAGE = `# Fix add() to return the sum

## Summary
- \`src/math.js\`: \`add\` subtracted its arguments; it now adds them.

## Testing
- \`node --test\` (failed before the fix, passes after)`;

function lastOutput(req: RecordedRequest): string {
  return toolOutputs(req).at(-1)?.output ?? '';
}

/**
 * The scripted model turns that fix {@link buggyNodeRepo} the way an agent would: plan, run the
 * tests, read the failure, patch, rerun, finish. Each step checks what the previous tool returned
 * and fails loudly (a thrown error answers HTTP 500) if the runner misbehaved.
 */
export function fixTurns(): ScriptedTurn[] {
  return [
    [
      { type: 'function_call', name: 'update_plan', arguments: { plan: [{ step: 'Run the tests', status: 'in_progress' }, { step: 'Fix add()', status: 'pending' }] } },
    ],
    [{ type: 'function_call', name: 'shell', arguments: { command: ['node', '--test'], timeout_ms: 60_000 } }],
    (req) => {
      const out = lastOutput(req);
      if (!/fail/i.test(out) || !/exit code: 1|"exit_code":\s*1|exit(ed)? (code )?1/i.test(out)) {
        throw new Error(`expected a failing test run, got: ${out.slice(0, 500)}`);
      }
      return [{ type: 'function_call', name: 'apply_patch', arguments: { input: FIX_PATCH } }];
    },
    (req) => {
      const out = lastOutput(req);
      if (!/src\/math\.js/.test(out)) throw new Error(`expected the patch to apply, got: ${out.slice(0, 500)}`);
      return [{ type: 'function_call', name: 'shell', arguments: { command: ['node', '--test'] } }];
    },
    (req) => {
      const out = lastOutput(req);
      if (/fail [1-9]/i.test(out)) throw new Error(`expected passing tests, got: ${out.slice(0, 500)}`);
      return [{ type: 'message', text: FINAL_MESSAGE }];
    },
  ];
}
