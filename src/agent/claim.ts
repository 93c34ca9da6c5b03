/**
 * Runner side of the one-time claim (ECS backend, DESIGN.md "Runner contract"): the task's
 * environment holds only `CODEX_TASK_ID`, `CODEX_APP_URL` and `CODEX_CLAIM_TICKET` (RunTask overrides
 * are visible to anyone who can describe the task); the runner exchanges the ticket once, over HTTPS,
 * for its TaskSpec: `POST {appUrl}/runner/v1/claim {taskId, ticket}` → 200 TaskSpec JSON, or 403
 * `{ error: { code, message } }` when the ticket is wrong, expired or already used.
 */
import pRetry, { AbortError } from 'p-retry';
import { CLAIM_ENV, describeZodError, TaskSpec } from '../contract.ts';
import { requireSecureUrl } from './reporter.ts';

/** The claim could not be made; `message` says why (never contains the ticket). */
export class ClaimError extends Error {
  override name = 'ClaimError';
}

/** Options of {@link claimTaskSpec}. */
export interface ClaimOptions {
  /** Base URL of the app (`CODEX_APP_URL`), https (http only for loopback or with `CODEX_ALLOW_INSECURE_APP_URL=1`). */
  appUrl: string;
  taskId: string;
  ticket: string;
  /** Retries on network errors and 5xx (the app may be restarting); default 6 (about a minute). */
  retries?: number;
  /** First retry delay, ms (default 1000, doubling up to 15 s). */
  minDelayMs?: number;
  /** Timeout of one request, ms (default 30 s). */
  requestTimeoutMs?: number;
  /** Environment for the insecure-URL opt-in (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Diagnostics (default: a line on stderr). */
  log?: (message: string) => void;
  fetch?: typeof fetch;
}

/**
 * Claims the TaskSpec of `taskId` with its one-time ticket.
 * @returns the validated TaskSpec; its `id` is `taskId` and its `report.url` passes the same URL check.
 * @throws ClaimError on a refusal (403: not retried), an invalid answer, an insecure URL, or when the
 *   app stays unreachable after the retries.
 */
export async function claimTaskSpec(opts: ClaimOptions): Promise<TaskSpec> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((message: string) => process.stderr.write(`codex-cloud runner: ${message}\n`));
  let base: URL;
  try {
    base = requireSecureUrl(opts.appUrl, env);
  } catch (error) {
    throw new ClaimError(`${CLAIM_ENV.appUrl}: ${(error as Error).message}`);
  }
  const url = `${base.href.replace(/\/+$/, '')}/runner/v1/claim`;
  const doFetch = opts.fetch ?? fetch;
  const raw = await pRetry(
    async () => {
      let response: Response;
      try {
        response = await doFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ taskId: opts.taskId, ticket: opts.ticket }),
          signal: AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000),
        });
      } catch (error) {
        const e = error as { message?: string; cause?: { message?: string; code?: string } };
        throw new Error(`the app is unreachable: ${e.cause?.message ?? e.cause?.code ?? e.message}`, { cause: error });
      }
      const text = await response.text();
      if (response.ok) {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new AbortError(new ClaimError('the claim answer is not valid JSON'));
        }
      }
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // keep the raw text
      }
      const failure = new ClaimError(`the app refused the claim (HTTP ${response.status}): ${message}`);
      if (response.status < 500 && response.status !== 408 && response.status !== 429) throw new AbortError(failure);
      throw failure;
    },
    {
      retries: opts.retries ?? 6,
      minTimeout: opts.minDelayMs ?? 1000,
      maxTimeout: 15_000,
      factor: 2,
      onFailedAttempt: ({ error, retryDelay }) => {
        if (retryDelay > 0) log(`claim failed (${error.message}); retrying in ${Math.round(retryDelay / 1000)} s`);
      },
    },
  ).catch((error: unknown) => {
    throw error instanceof ClaimError ? error : new ClaimError((error as Error).message);
  });
  const parsed = TaskSpec.safeParse(raw);
  if (!parsed.success) throw new ClaimError(`the claimed TaskSpec is invalid:\n${describeZodError(parsed.error)}`);
  const spec = parsed.data;
  if (spec.id !== opts.taskId) throw new ClaimError(`the claimed TaskSpec is for task ${JSON.stringify(spec.id)}, not ${JSON.stringify(opts.taskId)}`);
  if (spec.report) {
    try {
      requireSecureUrl(spec.report.url, env);
    } catch (error) {
      throw new ClaimError(`report.url: ${(error as Error).message}`);
    }
  }
  return spec;
}

/**
 * Claims the TaskSpec named by the environment (`CODEX_TASK_ID`, `CODEX_APP_URL`,
 * `CODEX_CLAIM_TICKET`) and removes the ticket variable from `env`, so that nothing the runner
 * starts inherits it.
 * @throws ClaimError when a variable is missing or the claim fails (see {@link claimTaskSpec}).
 */
export async function claimFromEnvironment(
  env: NodeJS.ProcessEnv = process.env,
  opts: Partial<Omit<ClaimOptions, 'appUrl' | 'taskId' | 'ticket' | 'env'>> = {},
): Promise<TaskSpec> {
  const taskId = env[CLAIM_ENV.taskId];
  const appUrl = env[CLAIM_ENV.appUrl];
  const ticket = env[CLAIM_ENV.ticket];
  delete env[CLAIM_ENV.ticket];
  const missing = [
    [CLAIM_ENV.taskId, taskId],
    [CLAIM_ENV.appUrl, appUrl],
    [CLAIM_ENV.ticket, ticket],
  ]
    .filter(([, value]) => !value)
    .map(([name]) => name);
  if (missing.length) throw new ClaimError(`runner --claim needs ${missing.join(', ')} in the environment`);
  return claimTaskSpec({ ...opts, appUrl: appUrl!, taskId: taskId!, ticket: ticket!, env });
}
