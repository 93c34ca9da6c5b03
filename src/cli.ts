/**
 * The `codex-cloud` command: `exec` (the agent on a local checkout), `runner` (one task from a
 * TaskSpec, as every backend starts it) and `serve` (the GitHub App).
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runnerCommand, UsageError } from './agent/cli-runner.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** The package's version (package.json sits one level above both `src/` and `dist/`). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Builds the command tree; `run` wraps each action so that its return value becomes the exit code. */
export function buildProgram(): Command {
  const program = new Command('codex-cloud')
    .description('Self-hostable Codex Cloud: a coding agent in a sandbox, driven from GitHub or your terminal.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('exec')
    .description('Run the agent on a local directory, in place, in the sandbox; print the summary.')
    .argument('<prompt...>', 'what the agent should do')
    .option('-C, --cd <dir>', 'directory to work in (default: the current directory)')
    .option('-m, --model <model>', 'model name (default: $CODEX_MODEL or gpt-5.1-codex)')
    .addOption(new Option('--effort <effort>', 'reasoning effort').choices(['minimal', 'low', 'medium', 'high', 'xhigh']))
    .option('--max-turns <n>', 'turn limit', positiveInt)
    .option('--timeout <minutes>', 'wall-clock limit in minutes', positiveInt)
    .addOption(new Option('--sandbox <mode>', 'command isolation').choices(['bubblewrap', 'container']).default('bubblewrap'))
    .option('--json', 'print progress events as JSON lines instead of text')
    .action(async (prompt: string[], o) => {
      // Loaded on use: the terminal renderer is not needed by `runner` or `serve`.
      const { execCommand } = await import('./exec/exec-command.ts');
      process.exitCode = await execCommand({
        prompt: prompt.join(' '),
        cd: o.cd,
        model: o.model,
        effort: o.effort,
        json: o.json,
        maxTurns: o.maxTurns,
        timeoutMs: o.timeout ? o.timeout * 60_000 : undefined,
        sandbox: o.sandbox,
      });
    });

  program
    .command('runner')
    .description('Run one task from a TaskSpec (JSON); progress and the TaskResult as JSON lines on stdout.')
    .option('--spec <file>', 'TaskSpec file, or - for stdin', '-')
    .option('--workdir <dir>', 'scratch directory (default: a new temporary directory)')
    .option('--output <file>', 'also write the TaskResult JSON to this file')
    .option('--claim', 'claim the TaskSpec from the app with CODEX_TASK_ID, CODEX_APP_URL and CODEX_CLAIM_TICKET (ECS)')
    .option('--preload', 'load every module before reading the TaskSpec (a standby runner started ahead of its task)')
    .addOption(
      new Option('--phase <phase>', 'setup: checkout and setup only, report events, exit 0 when setup succeeded (the ECS setup task)')
        .choices(['setup', 'all'])
        .default('all'),
    )
    .action(async (o) => {
      process.exitCode = await runnerCommand({
        spec: o.spec,
        workdir: o.workdir,
        output: o.output,
        claim: o.claim === true,
        preload: o.preload === true,
        ...(o.phase === 'setup' ? { phase: 'setup' as const } : {}),
      });
    });

  program
    .command('serve')
    .description('Start the GitHub App (webhooks, model gateway, task log pages). Configuration comes from the environment.')
    .action(async () => {
      const { serveCommand } = await import('./server/serve.ts');
      const code = await serveCommand();
      if (code !== 0) process.exitCode = code;
    });

  return program;
}

/** Parses argv and runs; prints usage errors and exits 2. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const e = error as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
      process.exitCode = 0;
    } else if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = 2;
    } else if (error instanceof UsageError) {
      process.stderr.write(`codex-cloud: ${error.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`codex-cloud: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  }
}

await main(process.argv);
