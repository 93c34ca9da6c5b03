/**
 * The runner API: the app's HTTP routes that ECS runners call (over HTTPS through the ALB in
 * production). Routes, all `POST` with JSON bodies, answers JSON:
 * - `/runner/v1/claim` `{ taskId, ticket }` → 200 the TaskSpec (once per ticket, see claims.ts);
 *   403 `{ error: { code: 'claim_refused', message } }` for an unknown task, a wrong, expired,
 *   revoked or already used ticket.
 * - `/runner/v1/tasks/:id/events` `{ events: ProgressEvent[] }` → 200 `{ accepted }`.
 * - `/runner/v1/tasks/:id/result` a TaskResult → 200 `{ ok: true }` (idempotent: a repeated POST
 *   replaces the stored result and is delivered again only if nobody got it yet).
 * The task routes need `Authorization: Bearer <task token>` of that very task (401 without a live
 * token, 403 with another task's token). Bodies are size-limited (413) and validated with the
 * contract's zod schemas (400 naming the fields). Other methods get 405; other `/runner/v1/` paths 404.
 * Errors are `{ error: { code, message } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { describeZodError, ProgressEvent, TaskResult } from '../contract.ts';
import { verifyBearer, type TaskTokens } from '../gateway/task-tokens.ts';
import type { Claims } from './claims.ts';

/**
 * A Node HTTP handler as Probot 14's `addHandler` takes it: resolves `false` without touching the
 * response when the path is not under `/runner/v1/`, `true` once it has answered.
 */
export type RunnerApiHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** The subset of a pino logger the runner API uses. */
export interface RunnerApiLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Options of {@link createRunnerApi}. */
export interface RunnerApiOptions {
  claims: Claims;
  tokens: TaskTokens;
  /** Validated events of a task, in arrival order (the `result` event type is dropped). */
  onEvents(taskId: string, events: ProgressEvent[]): void;
  /** A validated result whose `id` is the task's; called after it was saved with `claims.saveResult`. */
  onResult(taskId: string, result: TaskResult): void;
  log?: RunnerApiLogger;
  /** Largest events body, bytes (default 1 MiB). */
  maxEventsBytes?: number;
  /** Largest result body, bytes (default 96 MiB: 50 MiB of changes in base64 plus the rest). */
  maxResultBytes?: number;
}

/** Path prefix of the runner API. */
export const RUNNER_API_PREFIX = '/runner/v1';

const ClaimRequest = z.object({ taskId: z.string().min(1).max(128), ticket: z.string().min(1).max(256) });
const EventsRequest = z.object({ events: z.array(ProgressEvent).max(1000) });

class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a JSON body of at most `limit` bytes. @throws HttpError 413 or 400. */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new HttpError(413, 'body_too_large', `the body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'body_too_large', `the body exceeds ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

function validate<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError(400, 'invalid_body', describeZodError(parsed.error));
  return parsed.data;
}

/** Creates the runner API handler. See the module comment for routes and answers. */
export function createRunnerApi(opts: RunnerApiOptions): RunnerApiHandler {
  const maxEvents = opts.maxEventsBytes ?? 1024 * 1024;
  const maxResult = opts.maxResultBytes ?? 96 * 1024 * 1024;
  const log = opts.log;

  const claim = async (req: IncomingMessage, res: ServerResponse) => {
    const body = validate(ClaimRequest, await readJson(req, 16 * 1024));
    const outcome = opts.claims.claim(body.taskId, body.ticket);
    if (!outcome.ok) {
      log?.warn({ taskId: body.taskId, reason: outcome.reason, remote: req.socket.remoteAddress }, 'runner claim refused');
      throw new HttpError(403, 'claim_refused', `claim refused: ${outcome.reason}`);
    }
    log?.info({ taskId: body.taskId, remote: req.socket.remoteAddress }, 'runner claimed its task');
    send(res, 200, outcome.spec);
  };

  const authorize = (req: IncomingMessage, taskId: string) => {
    const record = verifyBearer(req.headers.authorization, opts.tokens);
    if (!record) throw new HttpError(401, 'invalid_token', 'a live task token is required (Authorization: Bearer <task token>)');
    if (record.taskId !== taskId) {
      log?.warn({ taskId, tokenTask: record.taskId }, 'runner report with another task\'s token refused');
      throw new HttpError(403, 'wrong_task', 'the token belongs to another task');
    }
  };

  const events = async (req: IncomingMessage, res: ServerResponse, taskId: string) => {
    authorize(req, taskId);
    const body = validate(EventsRequest, await readJson(req, maxEvents));
    const accepted = body.events.filter((e) => e.type !== 'result');
    if (accepted.length) opts.onEvents(taskId, accepted);
    send(res, 200, { accepted: accepted.length });
  };

  const result = async (req: IncomingMessage, res: ServerResponse, taskId: string) => {
    authorize(req, taskId);
    const value = validate(TaskResult, await readJson(req, maxResult));
    if (value.id !== taskId) throw new HttpError(400, 'invalid_body', `id: the result is for task ${JSON.stringify(value.id)}, not this one`);
    opts.claims.saveResult(value);
    log?.info({ taskId, status: value.status }, 'runner result received');
    opts.onResult(taskId, value);
    send(res, 200, { ok: true });
  };

  return async (req, res) => {
    const pathname = (req.url ?? '').split('?')[0] ?? '';
    if (pathname !== RUNNER_API_PREFIX && !pathname.startsWith(`${RUNNER_API_PREFIX}/`)) return false;
    try {
      const rest = pathname.slice(RUNNER_API_PREFIX.length);
      const task = /^\/tasks\/([^/]{1,128})\/(events|result)$/.exec(rest);
      if (rest !== '/claim' && !task) throw new HttpError(404, 'not_found', 'no such runner API route');
      if (req.method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST');
      if (rest === '/claim') await claim(req, res);
      else {
        let taskId: string;
        try {
          taskId = decodeURIComponent(task![1]!);
        } catch {
          throw new HttpError(404, 'not_found', 'no such task');
        }
        if (task![2] === 'events') await events(req, res, taskId);
        else await result(req, res, taskId);
      }
    } catch (error) {
      const e = error instanceof HttpError ? error : new HttpError(500, 'internal_error', 'internal error');
      if (!(error instanceof HttpError)) log?.warn({ err: error instanceof Error ? error.message : String(error), path: pathname }, 'runner API error');
      if (!res.headersSent) {
        // After an early answer (401, 413), do not read the rest of a large body: close the connection.
        send(res, e.status, { error: { code: e.code, message: e.message } }, req.readableEnded ? {} : { connection: 'close' });
      } else res.destroy();
    }
    return true;
  };
}
