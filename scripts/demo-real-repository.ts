/**
 * Demo on a real repository (`npm run demo:real-repo [-- --package minimist@1.2.8]`): the real app
 * process (`codex-cloud serve`, local runner backend, bubblewrap sandbox) against the GitHub stand-in
 * and the scripted model, on the published source of a real npm library, whose setup phase runs the
 * real `npm install` against the real registry.
 *
 * 1. `npm pack <package>` downloads the library's published tarball into a temporary directory (the
 *    library's source is never kept in this repository); the default, minimist 1.2.8, ships its
 *    tape tests and declares nine dev dependencies (about 530 packages installed) and no lockfile.
 * 2. One regression is put into the source (hexadecimal arguments such as `0xdeadbeef` are no longer
 *    parsed as numbers; `test/num.js` covers it), the upstream repository's .gitignore is added
 *    (`npm pack` leaves it out; `--without-gitignore` does not add it) and the result becomes the
 *    stand-in repository.
 * 3. A maintainer mentions `@codex` on an issue describing the regression. The app runs the task: the
 *    setup phase runs `npm install` in the sandbox with the host's network and the host's CA and
 *    proxy variables (`NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`, `HTTPS_PROXY`, …, see
 *    src/agent/setup-env.ts), which this script passes to the app. The scripted agent then runs the
 *    tests (`npm run tests-only`: `nyc tape`, from the installed dev dependencies, in the agent
 *    phase's sandbox without network), checks that they fail, fixes the regression with apply_patch,
 *    reruns the tests and the linter (eslint with the installed config), and finishes with a title line.
 *    Each scripted step checks what the tool returned and stops the run (HTTP 500 to the runner) when
 *    it is not what a working sandbox gives.
 * 4. It prints the setup command (exit code, time, the npm output's last lines), the pull request's
 *    title and body, and the final reply comment, verbatim.
 *
 * Needs the registry to be reachable from this machine (directly or through the proxy the environment
 * names) and bubblewrap. Exits 1 when the task does not end in a pull request whose tests passed.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DatabaseSync } from 'node:sqlite';
import * as tar from 'tar';
import { parseSetupEnvNames, SETUP_CA_VARIABLES, SETUP_PROXY_VARIABLES } from '../src/agent/setup-env.ts';
import { AppHarness, waitFor } from '../test/support/app-harness.ts';
import type { RepoFile } from '../test/support/git-http.ts';
import { toolOutputs, type RecordedRequest, type ScriptedTurn } from '../test/support/scripted-model.ts';

const run = promisify(execFile);
const REPO = 'minimistjs/minimist';

const { values: args } = parseArgs({
  options: {
    package: { type: 'string', default: 'minimist@1.2.8' },
    'timeout-minutes': { type: 'string', default: '15' },
    /** Leave out the repository's .gitignore (shows what happens to a repository that does not ignore node_modules). */
    'without-gitignore': { type: 'boolean', default: false },
  },
});

/**
 * The upstream repository's .gitignore (github.com/minimistjs/minimist): `npm pack` never puts a
 * .gitignore in a tarball, but the repository has one, and without it `node_modules` (which the
 * setup phase installs) and nyc's `.nyc_output`/`coverage` would be changes of the task.
 */
const UPSTREAM_GITIGNORE = '# gitignore\n\nnode_modules\n\ncoverage/\n.nyc_output/\n\n# Only apps should have lockfiles\nnpm-shrinkwrap.json\npackage-lock.json\nyarn.lock\n\n.npmignore\n';

/** The line the regression changes in minimist's index.js, and what it becomes. */
const GOOD_LINE = "\tif ((/^0x[0-9a-f]+$/i).test(x)) { return true; }";
const BUGGY_LINE = "\tif ((/^0x[0-9]+$/i).test(x)) { return true; }";

/** The fix the scripted agent applies (apply_patch format). */
const FIX_PATCH = `*** Begin Patch
*** Update File: index.js
@@ function isNumber(x) {
 	if (typeof x === 'number') { return true; }
-${BUGGY_LINE}
+${GOOD_LINE}
 	return (/^[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(e[-+]?\\d+)?$/).test(x);
*** End Patch`;

const FINAL_MESSAGE = `Parse hexadecimal arguments with letters as numbers again

## Summary
- \`index.js\`: \`isNumber\` only accepted hexadecimal digits 0-9 after \`0x\`, so \`--hex 0xdeadbeef\` stayed a string; the pattern accepts \`a-f\` again (case-insensitive, as before).

## Testing
- \`npm run tests-only\` (\`nyc tape 'test/**/*.js'\`): failed before the fix (\`test/num.js\`), passes after.
- \`npm run lint\`: no errors.`;

/** Every file of `dir`, relative paths with `/`, as stand-in repository files (executables keep their mode). */
async function readTree(dir: string, prefix = ''): Promise<Record<string, RepoFile>> {
  const out: Record<string, RepoFile> = {};
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(out, await readTree(full, rel));
    else if (entry.isFile()) {
      const executable = ((await stat(full)).mode & 0o111) !== 0;
      out[rel] = { content: await readFile(full), mode: executable ? '100755' : '100644' };
    }
  }
  return out;
}

function lastOutput(req: RecordedRequest): string {
  return toolOutputs(req).at(-1)?.output ?? '';
}

function exitedWith(out: string, code: number): boolean {
  return new RegExp(`exit code: ${code}\\b|"exit_code":\\s*${code}\\b`, 'i').test(out);
}

/** The scripted agent: plan, failing tests, patch, passing tests, lint, final message. */
function agentTurns(): ScriptedTurn[] {
  const tests = { type: 'function_call' as const, name: 'shell', arguments: { command: ['npm', 'run', 'tests-only'], timeout_ms: 180_000 } };
  return [
    [
      {
        type: 'function_call',
        name: 'update_plan',
        arguments: { plan: [{ step: 'Run the tests', status: 'in_progress' }, { step: 'Fix isNumber for hexadecimal', status: 'pending' }, { step: 'Rerun tests and lint', status: 'pending' }] },
      },
    ],
    [tests],
    (req) => {
      const out = lastOutput(req);
      if (!exitedWith(out, 1) || !/not ok/.test(out)) throw new Error(`expected failing tape tests, got:\n${out.slice(0, 3000)}`);
      return [{ type: 'function_call', name: 'apply_patch', arguments: { input: FIX_PATCH } }];
    },
    (req) => {
      const out = lastOutput(req);
      if (!/index\.js/.test(out)) throw new Error(`expected the patch to apply, got:\n${out.slice(0, 3000)}`);
      return [tests];
    },
    (req) => {
      const out = lastOutput(req);
      if (!exitedWith(out, 0) || /not ok/.test(out)) throw new Error(`expected passing tape tests, got:\n${out.slice(0, 3000)}`);
      return [{ type: 'function_call', name: 'shell', arguments: { command: ['npm', 'run', 'lint'], timeout_ms: 180_000 } }];
    },
    (req) => {
      const out = lastOutput(req);
      if (!exitedWith(out, 0)) throw new Error(`expected eslint to pass, got:\n${out.slice(0, 3000)}`);
      return [
        {
          type: 'function_call',
          name: 'update_plan',
          arguments: { plan: [{ step: 'Run the tests', status: 'completed' }, { step: 'Fix isNumber for hexadecimal', status: 'completed' }, { step: 'Rerun tests and lint', status: 'completed' }] },
        },
      ];
    },
    [{ type: 'message', text: FINAL_MESSAGE }],
  ];
}

/**
 * The host's CA and proxy variables, `CODEX_SETUP_ENV` and the variables it names, which the app
 * passes to the setup phase only.
 */
function networkEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  const named = parseSetupEnvNames(process.env.CODEX_SETUP_ENV).names;
  for (const name of [...SETUP_CA_VARIABLES, ...SETUP_PROXY_VARIABLES, 'CODEX_SETUP_ENV', ...named]) {
    const value = process.env[name];
    if (value) out[name] = value;
  }
  return out;
}

/** The `command_end` events of the task, from the app's store (read-only). */
function commandEvents(dataDir: string, taskId: string): Array<Record<string, unknown>> {
  const db = new DatabaseSync(path.join(dataDir, 'codex-cloud.db'), { readOnly: true });
  try {
    const rows = db.prepare('SELECT json FROM task_events WHERE task_id = ? ORDER BY seq').all(taskId) as Array<{ json: string }>;
    return rows.map((r) => JSON.parse(r.json) as Record<string, unknown>).filter((e) => e.type === 'command_end');
  } finally {
    db.close();
  }
}

async function main(): Promise<number> {
  const work = await mkdtemp(path.join(tmpdir(), 'codex-demo-'));
  let h: AppHarness | undefined;
  try {
    const packStart = Date.now();
    const { stdout } = await run('npm', ['pack', args.package, '--silent', '--pack-destination', work], { cwd: work });
    const tarball = path.join(work, stdout.trim().split('\n').at(-1)!);
    const src = path.join(work, 'src');
    await mkdir(src);
    await tar.x({ file: tarball, cwd: src, strip: 1 });
    const files = await readTree(src);
    const index = files['index.js'];
    const indexText = typeof index === 'object' ? index.content.toString() : index;
    if (!indexText?.includes(GOOD_LINE)) throw new Error(`${args.package}: index.js does not have the line this demo changes (expected minimist 1.2.x)`);
    files['index.js'] = { content: indexText.replace(GOOD_LINE, BUGGY_LINE) };
    if (!args['without-gitignore'] && !('.gitignore' in files)) files['.gitignore'] = UPSTREAM_GITIGNORE;
    const manifest = JSON.parse(String(typeof files['package.json'] === 'object' ? files['package.json'].content : files['package.json'])) as { devDependencies?: Record<string, string> };
    console.log(`# ${args.package}: ${Object.keys(files).length} files from ${path.basename(tarball)} (${Date.now() - packStart} ms), ${Object.keys(manifest.devDependencies ?? {}).length} dev dependencies, no lockfile: ${!('package-lock.json' in files)}`);
    const passed = networkEnv();
    console.log(`# network variables passed to the app: ${Object.keys(passed).join(', ') || '(none)'}`);

    h = await AppHarness.start({ env: { ...passed, CODEX_TASK_TIMEOUT_MINUTES: args['timeout-minutes'] } });
    await h.github.addRepo(REPO, files, { installationId: 1, permissions: { maintainer: 'write' } });
    const issue = h.github.addIssue(REPO, {
      title: 'Hexadecimal arguments are no longer parsed as numbers',
      body: '`minimist(["--hex", "0xdeadbeef"])` gives `{ hex: "0xdeadbeef" }` instead of the number `3735928559`. `0x10` still works.',
      user: 'maintainer',
    });
    const issueNumber = issue.number as number;
    h.model.push(...agentTurns());
    const started = Date.now();
    const status = await h.deliver(h.mention(REPO, issueNumber, '@codex please fix this and add tests'));
    if (status !== 200) throw new Error(`webhook answered ${status}`);

    const final = await waitFor(
      'the final reply',
      () => h!.botComments(REPO, issueNumber).find((c) => /✅ \*\*Done\*\*|❌ \*\*Failed\*\*|⏹️ \*\*Cancelled\*\*/.test(c.body)),
      Number(args['timeout-minutes']) * 60_000 + 60_000,
    );
    console.log(`# task finished in ${Math.round((Date.now() - started) / 1000)} s`);

    const task = h.task(issueNumber);
    if (task) {
      for (const e of commandEvents(h.dataDir, task.id)) {
        const output = e.output as { head: string; tail: string; bytes: number } | undefined;
        console.log(`\n## ${String(e.phase)}: ${(e.command as string[]).join(' ')} → exit ${String(e.exitCode)} in ${(Number(e.durationMs) / 1000).toFixed(1)} s`);
        if (e.phase === 'setup' && output) {
          const text = `${output.head}${output.tail ? `\n…\n${output.tail}` : ''}`;
          console.log(text.split('\n').slice(-12).join('\n'));
        }
      }
    }

    const pulls = (await h.github.pulls(REPO)) as Array<{ number: number; title: string; body: string; head: { ref: string } }>;
    for (const pr of pulls) {
      console.log(`\n## Pull request #${pr.number} (${pr.head.ref})\n### Title\n${pr.title}\n### Body\n${pr.body}`);
      console.log(`### Diff\n${await h.github.git(REPO, 'diff', 'main', pr.head.ref)}`);
    }
    console.log(`\n## Final reply (comment ${final.id})\n${final.body}`);
    const ok = /✅ \*\*Done\*\*/.test(final.body) && pulls.length === 1 && h.model.pendingTurns === 0;
    if (!ok) console.log(`\n# FAILED: the task did not end in one pull request with every scripted turn used.\n## App logs (tail)\n${h.logs.slice(-6000)}`);
    return ok ? 0 : 1;
  } catch (error) {
    console.error(error);
    if (h) console.error(`## App logs (tail)\n${h.logs.slice(-6000)}`);
    return 1;
  } finally {
    await h?.close();
    await rm(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
