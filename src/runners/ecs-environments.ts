/**
 * The ECS backend's environment planner backed by S3 (issue 12, DESIGN.md "Environments"): for a
 * task whose environment is fresh in the bucket, one agent task that restores it from a presigned
 * GET URL; otherwise a setup task that saves it to a presigned PUT URL, then (once the archive is in
 * the bucket, checked with HeadObject) the agent task with a GET URL minted at that moment.
 */
import type { TaskSpec } from '../contract.ts';
import type { EcsEnvironmentPlan, EcsEnvironmentPlanner } from './ecs.ts';
import { S3EnvironmentStore } from './environment-s3.ts';

/** Thrown by {@link S3EcsEnvironments.afterSetup} when the setup task exited 0 but saved no archive. */
export class EnvironmentNotSavedError extends Error {
  override readonly name = 'EnvironmentNotSavedError';
}

/** An {@link EcsEnvironmentPlanner} over an {@link S3EnvironmentStore}. */
export class S3EcsEnvironments implements EcsEnvironmentPlanner {
  readonly #store: S3EnvironmentStore;

  constructor(store: S3EnvironmentStore) {
    this.#store = store;
  }

  /**
   * The planner of the app's configuration: archives as `environments/<key>.tar` in `bucket`, fresh
   * for `maxAgeMs`, at most `maxArchiveBytes` each; the S3 client from the SDK's environment
   * (`AWS_ENDPOINT_URL_S3` honoured), in `region` when given.
   */
  static fromConfig(bucket: string, opts: { maxAgeMs: number; maxArchiveBytes: number; region?: string }): S3EcsEnvironments {
    return new S3EcsEnvironments(
      new S3EnvironmentStore({
        bucket,
        prefix: 'environments/',
        maxAgeMs: opts.maxAgeMs,
        maxArchiveBytes: opts.maxArchiveBytes,
        ...(opts.region ? { client: { region: opts.region } } : {}),
      }),
    );
  }

  /**
   * A spec without `environment` runs as one task (its own setup). With one: a fresh archive (and no
   * `fresh` request) → the agent task only, restoring it; otherwise a setup task that saves it.
   * @throws the S3 SDK's error when the bucket cannot be read (the task fails to start).
   */
  async plan(spec: TaskSpec): Promise<EcsEnvironmentPlan> {
    const environment = spec.environment;
    if (!environment) return { agent: spec };
    const restoring = await this.#store.forRunner(environment, { restore: true, save: false });
    if (restoring.restore) return { agent: { ...spec, environment: restoring } };
    const saving = await this.#store.forRunner(environment, { restore: false, save: true });
    const agent = { ...spec, environment: { ...environment } };
    delete agent.environment.restore;
    delete agent.environment.save;
    return { setup: { ...spec, environment: saving }, agent };
  }

  /**
   * After the setup task: the agent spec restoring the archive setup saved, with a GET URL minted now.
   * @throws EnvironmentNotSavedError when the archive is not in the bucket (or too large / stale).
   */
  async afterSetup(plan: EcsEnvironmentPlan): Promise<TaskSpec> {
    const environment = plan.agent.environment;
    if (!environment) return plan.agent;
    const stored = await this.#store.lookup(environment.key);
    if (!stored) throw new EnvironmentNotSavedError('the setup task did not save the environment (it may be larger than CODEX_ENV_MAX_MB, or setup failed)');
    return {
      ...plan.agent,
      environment: { ...environment, fresh: false, restore: { from: { url: await this.#store.restoreUrl(environment.key) }, savedAt: stored.savedAt.toISOString() } },
    };
  }
}
