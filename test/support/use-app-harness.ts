/** Jest hooks around the app harness for end-to-end test files (jest only: the benchmarks use app-harness.ts alone). */
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import { AppHarness } from './app-harness.ts';
import type { RepoFile } from './git-http.ts';

/**
 * The jest hooks an end-to-end file needs around one repository: before all tests, the app starts
 * against the stand-ins (model retries 10 ms apart, `opts.env` added) with `files` in `repo`
 * (installation 1, the `maintainer` a writer); after each test, the scripted model must have no turn
 * left; after all, the app stops (its logs printed with DEBUG_APP_LOGS=1).
 * @returns a live view of the harness for the tests (it throws when used before `beforeAll` ran).
 */
export function useAppHarness(repo: string, files: Record<string, RepoFile>, opts: { env?: Record<string, string> } = {}): AppHarness {
  let current: AppHarness | undefined;
  beforeAll(async () => {
    current = await AppHarness.start({ env: { CODEX_MODEL_RETRY_BASE_MS: '10', ...opts.env } });
    await current.github.addRepo(repo, files, { installationId: 1, permissions: { maintainer: 'write' } });
  });
  afterEach(() => {
    expect(current?.model.pendingTurns).toBe(0);
  });
  afterAll(async () => {
    if (process.env.DEBUG_APP_LOGS) console.log(current?.logs.slice(-8000));
    await current?.close();
  });
  return new Proxy({} as AppHarness, {
    get: (_target, property) => {
      if (!current) throw new Error('the app harness is used before beforeAll started it');
      const value: unknown = Reflect.get(current, property, current);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
}
