/**
 * Builds the ECS runner backend from the app's configuration (`CODEX_RUNNER_BACKEND=ecs`, see
 * src/config/env.ts): an `ECSClient` configured the SDK's usual way (`AWS_REGION`, credentials from
 * the task role, `AWS_ENDPOINT_URL_ECS` honoured natively by the SDK), claim tickets and posted
 * results in the task store's SQLite file, task tokens checked against the store.
 */
import { ECSClient } from '@aws-sdk/client-ecs';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/env.ts';
import { TaskTokens } from '../gateway/task-tokens.ts';
import type { TaskStore } from '../tasks/store.ts';
import { FINAL_STATES } from '../tasks/types.ts';
import { Claims, MemoryClaimStore } from './claims.ts';
import { EcsRunnerBackend, type EcsRunnerOptions } from './ecs.ts';

/**
 * Creates the ECS backend for `config.runner` (which must be the `ecs` variant) and logs, in the
 * background, the runner tasks ECS still runs for us: each with its task's state in `store`, and a
 * warning for orphans (tasks the store does not know or has finished; they are not stopped here).
 * Mount `backend.httpHandler` on the app's HTTP server (runners call it at `config.publicUrl`).
 * `CODEX_ECS_SETUP_SECURITY_GROUPS` become the setup task's groups; the environment planner (which
 * splits a task into a setup and an agent task) is given in `overrides.environments`.
 * @param overrides options to replace (tests: `client`, polling and retry timings; `environments`).
 * @throws Error when `config.runner.backend` is not `ecs`.
 */
export function createEcsBackend(
  config: Pick<AppConfig, 'runner' | 'publicUrl'>,
  store: TaskStore,
  log: Logger,
  overrides: Partial<EcsRunnerOptions> = {},
): EcsRunnerBackend {
  const runner = config.runner;
  if (runner.backend !== 'ecs') throw new Error(`createEcsBackend needs the ecs runner configuration, got ${runner.backend}`);
  if (!/^https:/i.test(config.publicUrl)) {
    log.warn(
      { publicUrl: config.publicUrl },
      'CODEX_PUBLIC_URL is not https: runners refuse to claim over plain http unless the app is on a loopback address or CODEX_ALLOW_INSECURE_APP_URL=1 is set in the runner',
    );
  }
  const backend = new EcsRunnerBackend({
    client: new ECSClient(runner.region ? { region: runner.region } : {}),
    cluster: runner.cluster,
    taskDefinition: runner.taskDefinition,
    containerName: runner.containerName,
    subnets: runner.subnets,
    securityGroups: runner.securityGroups,
    ...(runner.setupSecurityGroups ? { setupSecurityGroups: runner.setupSecurityGroups } : {}),
    assignPublicIp: runner.assignPublicIp,
    appUrl: config.publicUrl,
    claims: new Claims({ store: store.claims ?? new MemoryClaimStore() }),
    tokens: new TaskTokens({ persistence: store.tokens }),
    log,
    ...overrides,
  });
  if (runner.environmentBucket && !overrides.environments) {
    log.warn(
      { bucket: runner.environmentBucket },
      'CODEX_ENV_BUCKET is set but no environment planner was given: every task runs as one runner task with its own setup, in CODEX_ECS_SECURITY_GROUPS',
    );
  }
  void logRunnerTasks(backend, store, log);
  return backend;
}

/** Start-up reconciliation logging: one line per runner task ECS still runs for us. Never throws. */
export async function logRunnerTasks(backend: EcsRunnerBackend, store: TaskStore, log: Logger): Promise<void> {
  try {
    const tasks = await backend.listOurTasks();
    for (const t of tasks) {
      const task = t.taskId ? store.get(t.taskId) : undefined;
      const fields = { taskId: t.taskId, taskArn: t.taskArn, lastStatus: t.lastStatus, state: task?.state };
      if (!task || FINAL_STATES.has(task.state)) log.warn(fields, 'orphan runner task: its task is unknown or finished');
      else log.info(fields, 'runner task still running');
    }
    log.info({ count: tasks.length }, 'runner tasks on the cluster listed');
  } catch (error) {
    log.warn({ err: error instanceof Error ? error.message : String(error) }, 'could not list runner tasks (ecs:ListTasks)');
  }
}
