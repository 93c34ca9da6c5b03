/**
 * Runner benchmark (`npm run bench:runner [-- --runs N]`): the real `codex-cloud runner` process, as
 * the local backend starts it (`node src/cli.ts runner --workdir DIR`, TaskSpec on stdin, progress
 * events and the TaskResult as JSON lines on stdout), doing a scripted ten-turn task on a generated
 * repository of about 5,000 files served over git smart HTTP with a token, against the scripted
 * Responses API server.
 *
 * It prints, as median and min over the runs: the process wall time (spawn to exit, Node start-up
 * included), each phase (`usage.phaseMs`), model and command time, the harness overhead (the
 * runner's own work: totalMs − checkout − setup − agent commands − model) with its breakdown, the
 * input tokens sent, and how much of each request repeats the previous request's prompt prefix (what
 * prompt caching can serve). Targets: overhead < 300 ms per task, prefix share ≥ 90%. A missed
 * target is reported, not fatal (exit 0); a task that does not succeed exits 1.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProgressEvent, TaskResult, type TaskSpecInput } from '../src/contract.ts';
import { onPath } from '../src/agent/setup.ts';
import { runCli, type CliRun } from '../test/support/cli.ts';
import { createBareRepo, GitHttpServer } from '../test/support/git-http.ts';
import { promptText, ScriptedModel } from '../test/support/scripted-model.ts';
import { FINAL_MESSAGE, generateRepo, taskTurns } from './support/big-repo.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = 'acme/platform';
const CLONE_TOKEN = 'ghs_bench_readonly_clone_token_0123';
const TASK_TOKEN = 'cct_bench_task_token';
const TARGET_OVERHEAD_MS = 300;
const TARGET_PREFIX_SHARE = 0.9;

/** Figures of one run. Times in ms, tokens as the scripted server counted them (chars / 4). */
interface RunFigures {
  processMs: number;
  /** Process wall minus the runner's own totalMs: Node start-up, module loading, spec parsing, exit. */
  outsideTaskMs: number;
  totalMs: number;
  checkoutMs: number;
  setupMs: number;
  agentMs: number;
  resultMs: number;
  modelMs: number;
  commandMs: number;
  overheadMs: number;
  /**
   * Overhead parts (with resultMs, they add up to overheadMs): time outside all phases (the sandbox
   * probe, assembling the result), …
   */
  outsidePhasesMs: number;
  /** … and time in the agent phase outside model requests and commands (prompt, tools, apply_patch, events). */
  agentLoopMs: number;
  turns: number;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  /** Per request i>0: common prefix with request i−1's prompt text / request i's prompt length. */
  prefixShares: number[];
  /** Per request i>0: common prefix / (request i−1's length − 1): how much of the previous prompt was kept. */
  keptShares: number[];
  /** Σ common prefixes / Σ prompt lengths over requests i>0. */
  prefixShareWeighted: number;
  /** The best an append-only history can do: Σ (previous length − 1) / Σ prompt lengths over requests i>0. */
  prefixShareCeiling: number;
  promptChars: number[];
  commands: Array<{ label: string; ms: number }>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let n = 0;
  while (n < max && a.charCodeAt(n) === b.charCodeAt(n)) n++;
  return n;
}

/** Runs the runner with `spec` on stdin; resolves with its stdout, stderr, exit code and wall time (ms). */
async function spawnRunner(workdir: string, spec: TaskSpecInput): Promise<CliRun & { wallMs: number }> {
  const started = performance.now();
  const run = await runCli(['runner', '--workdir', workdir], { stdin: JSON.stringify(spec), cwd: ROOT });
  return { ...run, wallMs: performance.now() - started };
}

async function runOnce(
  n: number,
  scratch: string,
  git: GitHttpServer,
  baseSha: string,
  ripgrep: boolean,
): Promise<RunFigures> {
  const model = await ScriptedModel.start({ turns: taskTurns({ ripgrep }), requireAuth: TASK_TOKEN });
  const workdir = path.join(scratch, `work-${n}`);
  try {
    const spec: TaskSpecInput = {
      id: `bench-${n}-${Date.now().toString(36)}`,
      kind: 'task',
      repository: { cloneUrl: git.cloneUrl(REPO), fullName: REPO, token: CLONE_TOKEN, baseRef: 'main', baseSha },
      instruction: 'The ops report shows "errors: -" when there were no errors. It should say 0. Fix it and add a test if needed.',
      context: [{ kind: 'issue', author: 'octocat', title: 'Zero shows as a dash in reports', body: 'Since 3.2 the daily report prints `errors: -` instead of `errors: 0 req/s`.' }],
      requester: 'octocat',
      model: { baseUrl: model.baseUrl, apiKey: TASK_TOKEN, name: 'gpt-bench', reasoningEffort: 'medium', maxRetries: 0 },
      limits: { maxTurns: 20, wallTimeMs: 5 * 60_000 },
    };
    const run = await spawnRunner(workdir, spec);
    const events = run.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => ProgressEvent.parse(JSON.parse(l)));
    const last = events.at(-1);
    if (last?.type !== 'result') {
      throw new Error(`run ${n}: no result (exit ${run.code}).\nstderr:\n${run.stderr.slice(-2000)}\nstdout:\n${run.stdout.slice(-2000)}`);
    }
    const result = TaskResult.parse(last.result);
    if (result.status !== 'succeeded' || result.changes.length !== 1 || result.pullRequest.body !== FINAL_MESSAGE.split('\n').slice(2).join('\n')) {
      throw new Error(`run ${n}: the task did not succeed as scripted: status ${result.status}, ${result.failure ? `failed at ${result.failure.phase}: ${result.failure.reason}` : `${result.changes.length} change(s)`}\nstderr:\n${run.stderr.slice(-2000)}`);
    }
    if (model.pendingTurns !== 0) throw new Error(`run ${n}: ${model.pendingTurns} scripted turn(s) were not used`);

    const u = result.usage;
    const phase = (p: 'checkout' | 'setup' | 'agent' | 'result') => u.phaseMs[p] ?? 0;
    const agentCommands = result.commands.filter((c) => c.phase === 'agent');
    const agentCommandMs = agentCommands.reduce((s, c) => s + c.durationMs, 0);
    const overheadMs = u.totalMs - phase('checkout') - phase('setup') - agentCommandMs - u.modelMs;
    const outsidePhasesMs = u.totalMs - phase('checkout') - phase('setup') - phase('agent') - phase('result');
    const agentLoopMs = phase('agent') - agentCommandMs - u.modelMs;

    const prompts = model.requests.map((r) => promptText(r.body));
    const prefixShares: number[] = [];
    const keptShares: number[] = [];
    let prefixSum = 0;
    let lengthSum = 0;
    let ceilingSum = 0;
    for (let i = 1; i < prompts.length; i++) {
      const lcp = commonPrefix(prompts[i - 1]!, prompts[i]!);
      prefixShares.push(lcp / prompts[i]!.length);
      // The previous text ends with the `]` closing `input`; an append-only history keeps the rest.
      keptShares.push(lcp / (prompts[i - 1]!.length - 1));
      prefixSum += lcp;
      lengthSum += prompts[i]!.length;
      ceilingSum += Math.min(prompts[i - 1]!.length - 1, prompts[i]!.length);
    }
    return {
      processMs: run.wallMs,
      outsideTaskMs: run.wallMs - u.totalMs,
      totalMs: u.totalMs,
      checkoutMs: phase('checkout'),
      setupMs: phase('setup'),
      agentMs: phase('agent'),
      resultMs: phase('result'),
      modelMs: u.modelMs,
      commandMs: agentCommandMs,
      overheadMs,
      outsidePhasesMs,
      agentLoopMs,
      turns: u.turns,
      inputTokens: u.inputTokens,
      cachedTokens: u.cachedInputTokens,
      outputTokens: u.outputTokens,
      prefixShares,
      keptShares,
      prefixShareWeighted: prefixSum / lengthSum,
      prefixShareCeiling: ceilingSum / lengthSum,
      promptChars: prompts.map((p) => p.length),
      commands: agentCommands.map((c) => ({ label: c.command.join(' ').slice(0, 48), ms: c.durationMs })),
    };
  } finally {
    // The checkout is removed with the scratch directory at the end: deleting 5,000 files here would
    // leave disk work (journal, discards) that lands in the next run's checkout.
    await model.close();
  }
}

/** Runs `sync(1)` so that dirty pages of earlier steps are written back before a measured run. */
function syncDisks(): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn('sync', [], { stdio: 'ignore' });
    child.on('error', () => resolve());
    child.on('close', () => resolve());
  });
}

const ms = (x: number) => `${x.toFixed(0).padStart(7)} ms`;
const pct = (x: number) => `${(x * 100).toFixed(1).padStart(6)} %`;
const int = (x: number) => `${Math.round(x).toLocaleString('en-US').padStart(10)}`;

function row(label: string, values: number[], fmt: (x: number) => string, note = ''): string {
  return `  ${label.padEnd(34)} ${fmt(median(values))}   ${fmt(Math.min(...values))}${note ? `   ${note}` : ''}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, files: { type: 'string', default: '5000' } } });
  const runs = Number(values.runs);
  const fileCount = Number(values.files);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  if (!Number.isInteger(fileCount) || fileCount < 100) throw new Error(`--files must be an integer >= 100, got ${values.files}`);

  const cpus = os.cpus();
  console.log(
    `machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
      `load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, node ${process.version}, ${os.platform()} ${os.release()}`,
  );
  console.log('note: this machine is shared with other work, so timings are noisy; compare medians across several runs.');

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'runner-bench-'));
  let git: GitHttpServer | undefined;
  try {
    const t0 = performance.now();
    const files = generateRepo(fileCount);
    const bytes = Object.values(files).reduce((s, f) => s + Buffer.byteLength(typeof f === 'string' ? f : f.content), 0);
    const repo = await createBareRepo(path.join(scratch, 'repos'), REPO, files);
    git = await GitHttpServer.start({
      root: path.join(scratch, 'repos'),
      tokens: new Map([[CLONE_TOKEN, { repos: [REPO], write: false }]]),
    });
    const ripgrep = await onPath('rg', process.env.PATH ?? '');
    console.log(
      `repository: ${Object.keys(files).length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB, built in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
        `search command: ${ripgrep ? 'rg -n' : 'grep -rn (rg is not installed here)'}; ${runs} run(s)\n`,
    );

    const all: RunFigures[] = [];
    for (let n = 1; n <= runs; n++) {
      await syncDisks();
      const f = await runOnce(n, scratch, git, repo.headSha, ripgrep);
      all.push(f);
      console.log(`run ${n}: process ${f.processMs.toFixed(0)} ms, task ${f.totalMs.toFixed(0)} ms, overhead ${f.overheadMs.toFixed(0)} ms`);
    }

    const col = (k: keyof RunFigures) => all.map((f) => f[k] as number);
    console.log(`\n  ${'figure'.padEnd(34)} ${'median'.padStart(10)}   ${'min'.padStart(10)}`);
    console.log('  wall time');
    console.log(row('process (spawn to exit)', col('processMs'), ms, 'includes Node start-up and exit'));
    console.log(row('  outside the task', col('outsideTaskMs'), ms, 'Node start-up, module loading, spec parsing, exit'));
    console.log(row('task (usage.totalMs)', col('totalMs'), ms));
    console.log(row('  checkout (clone)', col('checkoutMs'), ms));
    console.log(row('  setup', col('setupMs'), ms, 'no dependencies: nothing to install'));
    console.log(row('  agent', col('agentMs'), ms));
    console.log(row('    model (usage.modelMs)', col('modelMs'), ms, 'scripted model answers instantly: HTTP + SSE + SDK only'));
    console.log(row('      per turn', all.map((f) => f.modelMs / f.turns), ms));
    console.log(row('    commands (sandboxed)', col('commandMs'), ms, 'bubblewrap start-up included'));
    console.log(row('  result (collect changes)', col('resultMs'), ms));
    console.log('  harness overhead = total − checkout − setup − commands − model');
    console.log(row('  overhead', col('overheadMs'), ms, `target < ${TARGET_OVERHEAD_MS} ms`));
    console.log(row('    outside phases', col('outsidePhasesMs'), ms, 'sandbox probe, result assembly'));
    console.log(row('    agent loop', col('agentLoopMs'), ms, 'prompt building, tools, apply_patch, events'));
    console.log(row('    result phase', col('resultMs'), ms, 'git add -A on a temporary index, diff, blobs'));
    console.log('  commands the agent ran');
    const labels = all[0]!.commands.map((c) => c.label);
    labels.forEach((label, i) => console.log(row(`    ${label}`.slice(0, 34), all.map((f) => f.commands[i]?.ms ?? 0), ms)));
    console.log('  tokens (scripted server: chars / 4)');
    console.log(row('  turns', col('turns'), int));
    console.log(row('  input tokens, all requests', col('inputTokens'), int));
    console.log(row('  cached input tokens (server)', col('cachedTokens'), int));
    console.log(row('  output tokens', col('outputTokens'), int));
    const cachedShare = all.map((f) => f.cachedTokens / f.inputTokens);
    console.log(row('  cached / input (all requests)', cachedShare, pct));
    console.log('  prompt prefix reuse (requests 2..n vs the previous request; prompt = tools + instructions + input)');
    const minShare = all.map((f) => Math.min(...f.prefixShares));
    const meanShare = all.map((f) => f.prefixShares.reduce((a, b) => a + b, 0) / f.prefixShares.length);
    console.log(row('  share of request, min', minShare, pct, 'low where a large tool output is appended'));
    console.log(row('  share of request, mean', meanShare, pct));
    console.log(row('  share of request, token-weighted', col('prefixShareWeighted'), pct, `target ≥ ${TARGET_PREFIX_SHARE * 100} %`));
    console.log(row('  ceiling for this workload', col('prefixShareCeiling'), pct, 'append-only history: only new items are uncached'));
    console.log(row('  previous prompt kept, min', all.map((f) => Math.min(...f.keptShares)), pct, '100 % = history is append-only'));
    const first = all[0]!;
    console.log(
      `  per request (run 1): ${first.promptChars.map((c, i) => (i === 0 ? `${(c / 1024).toFixed(1)}K` : `${(c / 1024).toFixed(1)}K@${(first.prefixShares[i - 1]! * 100).toFixed(0)}%`)).join(' ')}`,
    );

    const overhead = median(col('overheadMs'));
    const share = median(col('prefixShareWeighted'));
    console.log('');
    console.log(`${overhead < TARGET_OVERHEAD_MS ? 'PASS' : 'FAIL'}  harness overhead ${overhead.toFixed(0)} ms (median) < ${TARGET_OVERHEAD_MS} ms`);
    const ceiling = median(col('prefixShareCeiling'));
    const kept = Math.min(...all.flatMap((f) => f.keptShares));
    console.log(
      `${share >= TARGET_PREFIX_SHARE ? 'PASS' : 'FAIL'}  prefix share ${(share * 100).toFixed(1)} % (median, token-weighted over requests 2..n) ≥ ${TARGET_PREFIX_SHARE * 100} %` +
        ` (this workload's ceiling with an append-only history: ${(ceiling * 100).toFixed(1)} %)`,
    );
    console.log(`${kept >= 1 ? 'PASS' : 'FAIL'}  every request repeats the whole previous prompt (min kept ${(kept * 100).toFixed(1)} %): the history is append-only`);
    return 0;
  } finally {
    await git?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
