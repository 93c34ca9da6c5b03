/**
 * The environment part of the setup phase (DESIGN.md, "Environments"): with a fresh cached
 * environment for the task's key, restore it (and run the repository's `maintenance` script) instead
 * of setup; otherwise run setup and save what it produced for the next task. The runner re-checks the
 * key the app computed against its own checkout (manifests by blob SHA through trusted git) and
 * neither restores nor saves on a mismatch.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { EnvironmentOutcome, ProgressEventInput, TaskSpec } from '../../contract.ts';
import { gitIn, type TrustedRepository } from '../git.ts';
import { EnvironmentArchiveError, extractEnvironment, packEnvironment, placeUnpacked } from './archive.ts';
import { environmentKey, manifestsAtCommit, runnerImageVersion } from './key.ts';
import { relocateVirtualenvs } from './relocate.ts';
import { openArchive, uploadArchive } from './transfer.ts';

/** Name of the setup script in the sandbox home (runner.ts writes it; never archived). */
export const SETUP_SCRIPT_NAME = '.codex-setup.sh';
/** Name of the maintenance script in the sandbox home. */
export const MAINTENANCE_SCRIPT_NAME = '.codex-maintenance.sh';

/** Default cap of what an archive unpacks to, bytes (the sandbox's default disk limit, 10 GiB). */
const DEFAULT_MAX_UNPACKED_BYTES = 10 * 1024 ** 3;

/** Inputs of {@link prepareEnvironment}. */
export interface PrepareEnvironmentOptions {
  spec: TaskSpec;
  /** The task's work directory (`repo`, `home` inside it). */
  workDir: string;
  /** The checkout, through the private git directory. */
  repo: TrustedRepository;
  emit: (event: ProgressEventInput) => void;
  signal?: AbortSignal;
  /** Runs the setup (script or detected installs); resolves true when every step succeeded. */
  setup: () => Promise<boolean>;
  /** Runs the maintenance script after a restore (with network). */
  maintenance: (script: string) => Promise<void>;
}

/**
 * Restores the task's environment or runs setup (and saves the result). Without
 * `spec.environment`, only runs setup.
 * @returns what happened, for TaskResult `environment` (undefined without `spec.environment`).
 * @throws whatever `setup` or `maintenance` throw (a required setup step failed).
 */
export async function prepareEnvironment(opts: PrepareEnvironmentOptions): Promise<EnvironmentOutcome | undefined> {
  const { spec, emit } = opts;
  const env = spec.environment;
  if (!env) {
    await opts.setup();
    return undefined;
  }
  const key = environmentKey({
    repositoryId: env.repositoryId,
    scope: env.scope,
    setupScript: spec.setup.script,
    autoInstall: spec.setup.autoInstall,
    manifests: await manifestsAtCommit(opts.repo, 'HEAD'),
    imageVersion: runnerImageVersion(),
  });
  if (key !== env.key) {
    emit({ type: 'log', level: 'warn', message: 'the environment key the app gave does not match the checkout (manifests or runner version differ): setup runs and nothing is cached' });
    await opts.setup();
    return { key: env.key, status: 'none', saveFailure: `key mismatch: the checkout has ${key}` };
  }

  let restoreFailure: string | undefined;
  if (env.restore && !env.fresh) {
    const started = performance.now();
    try {
      const { from } = env.restore;
      const stats =
        'unpacked' in from
          ? { skipped: await placeUnpacked(from.unpacked, opts.workDir), bytes: undefined }
          : await extractEnvironment({
              source: await openArchive(from, opts.signal),
              workDir: opts.workDir,
              maxBytes: env.maxBytes,
              maxUnpackedBytes: spec.limits.diskBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
            });
      for (const skipped of stats.skipped) emit({ type: 'log', level: 'warn', message: `environment: ${skipped} not restored (the checkout has it)` });
      await relocateVirtualenvs(opts.workDir);
      const savedAt = Date.parse(env.restore.savedAt);
      emit({
        type: 'environment',
        status: 'restored',
        restoredFrom: 'unpacked' in from ? 'unpacked' : 'archive',
        durationMs: performance.now() - started,
        ...(Number.isFinite(savedAt) ? { ageMs: Math.max(0, Date.now() - savedAt) } : {}),
        ...(stats.bytes !== undefined ? { bytes: stats.bytes } : {}),
      });
      if (spec.setup.maintenance) await opts.maintenance(spec.setup.maintenance);
      return { key, status: 'restored' };
    } catch (error) {
      if (!(error instanceof EnvironmentArchiveError)) throw error;
      restoreFailure = error.message;
      emit({ type: 'environment', status: 'restore_failed', reason: error.message, durationMs: performance.now() - started });
    }
  }

  const started = performance.now();
  const complete = await opts.setup();
  const setupMs = performance.now() - started;
  const failed = (saveFailure: string): EnvironmentOutcome => {
    emit({ type: 'environment', status: 'built', durationMs: setupMs, saved: false, reason: saveFailure });
    return { key, status: 'built', saveFailure, ...(restoreFailure ? { restoreFailure } : {}) };
  };
  if (!env.save) return failed('no place to save it');
  if (!complete) return failed('a setup step failed, so the environment is not cached');
  try {
    const bytes = await saveEnvironment(opts.workDir, opts.repo, env.save, env.maxBytes, opts.signal);
    emit({ type: 'environment', status: 'built', durationMs: setupMs, saved: true, bytes });
    return { key, status: 'built', savedBytes: bytes, ...(restoreFailure ? { restoreFailure } : {}) };
  } catch (error) {
    if (!(error instanceof EnvironmentArchiveError)) throw error;
    return failed(error.message);
  }
}

/**
 * The checkout's paths setup created that git ignores (`git ls-files --others --ignored
 * --exclude-standard --directory`, through the private git directory), relative to the checkout.
 */
export async function ignoredPaths(repo: TrustedRepository): Promise<string[]> {
  const { stdout } = await gitIn(repo, ['ls-files', '--others', '--ignored', '--exclude-standard', '--directory', '-z']);
  return stdout.toString('utf8').split('\0').filter(Boolean);
}

/**
 * Packs the environment and stores it at `save` (a file the backend collects, or a presigned PUT URL).
 * @returns the archive's size, bytes.
 * @throws EnvironmentArchiveError when it is too large, refused or the upload fails.
 */
async function saveEnvironment(
  workDir: string,
  repo: TrustedRepository,
  save: NonNullable<NonNullable<TaskSpec['environment']>['save']>,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const repoPaths = await ignoredPaths(repo);
  const file = 'path' in save ? save.path : path.join(workDir, 'environment-upload.tar');
  try {
    const { bytes } = await packEnvironment({
      workDir,
      repoPaths,
      homeExclude: [SETUP_SCRIPT_NAME, MAINTENANCE_SCRIPT_NAME],
      file,
      maxBytes,
    });
    if ('url' in save) await uploadArchive(file, save.url, signal);
    return bytes;
  } finally {
    if ('url' in save) await rm(file, { force: true });
  }
}
