/**
 * The runner API: the app's HTTP routes that ECS runners call (over HTTPS through the ALB in
 * production). Routes, all `POST` with JSON bodies, answers JSON:
 * - `/runner/v1/claim` `{ taskId, ticket }` → 200 the TaskSpec (once per ticket, see claims.ts);
 *   403 `{ error: { code: 'claim_refused', message } }` for an unknown task, a wrong, expired,
 *   revoked or already used ticket.
 * - `/runner/v1/tasks/:id/events` `{ events: ProgressEvent[] }` → 200 `{ accepted }`; 413
 *   `event_cap_exceeded` once the task has sent its cap of events (count or bytes): the events that
 *   still fitted are kept, the rest dropped, one `log` warning event is handed on, and every later
 *   batch is refused without reading it (the runner's reporter gives a batch up on 413).
 * - `/runner/v1/tasks/:id/result` a TaskResult → 200 `{ ok: true }` (idempotent: a repeated POST
 *   replaces the stored result and is delivered again only if nobody got it yet).
 * The task routes need `Authorization: Bearer <task token>` of that very task (401 without a live
 * token, 403 with another task's token), checked before the body is read. Bodies are size-checked
 * while they are read (413 `body_too_large` as soon as one passes its route's limit, answered with
 * `connection: close` so the rest is not read; never more than the limit is buffered) and validated
 * with the contract's zod schemas (400 naming the fields). Other methods get 405; other `/runner/v1/`
 * paths 404. Errors are `{ error: { code, message } }`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { describeZodError, ProgressEvent, TaskResult } from '../contract.ts';
import { BodyAbortedError, BodyTooLargeError, lingerAfterEarlyAnswer, readBodyLimited } from '../gateway/request-body.ts';
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
  /** Largest claim body, bytes (default {@link DEFAULT_MAX_CLAIM_BYTES}). */
  maxClaimBytes?: number;
  /** Largest events body, bytes (default {@link DEFAULT_MAX_EVENTS_BYTES}). */
  maxEventsBytes?: number;
  /** Largest result body, bytes (default {@link DEFAULT_MAX_RESULT_BYTES}). */
  maxResultBytes?: number;
  /** Events one task may send, in all (default {@link DEFAULT_MAX_EVENTS_PER_TASK}). */
  maxEventsPerTask?: number;
  /** Bytes of events (their JSON, UTF-8) one task may send, in all (default {@link DEFAULT_MAX_EVENT_BYTES_PER_TASK}). */
  maxEventBytesPerTask?: number;
}

/** Path prefix of the runner API. */
export const RUNNER_API_PREFIX = '/runner/v1';

/** Default largest claim body, bytes (16 KiB: a task id and a ticket). */
export const DEFAULT_MAX_CLAIM_BYTES = 16 * 1024;
/** Default largest events body, bytes (1 MiB). */
export const DEFAULT_MAX_EVENTS_BYTES = 1024 * 1024;
/** Default largest result body, bytes (96 MiB: 50 MiB of changes in base64 plus the rest). */
export const DEFAULT_MAX_RESULT_BYTES = 96 * 1024 * 1024;
/** Default cap of events per task (count). */
export const DEFAULT_MAX_EVENTS_PER_TASK = 20_000;
/** Default cap of event bytes per task (their JSON, UTF-8), bytes (8 MiB). */
export const DEFAULT_MAX_EVENT_BYTES_PER_TASK = 8 * 1024 * 1024;

/** What a task's runner has sent so far, for the per-task event caps. */
interface EventTally {
  count: number;
  bytes: number;
  /** The cap was reached: every later event is dropped. */
  capped: boolean;
}

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

/**
 * Reads a JSON body of at most `limit` bytes, checking the size while it arrives (see
 * {@link readBodyLimited}): a body over the limit is neither buffered beyond it nor parsed.
 * @throws HttpError 413 over the limit, 400 for invalid JSON; BodyAbortedError when the client left.
 */
async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  let raw: Buffer;
  try {
    raw = await readBodyLimited(req, limit);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw new HttpError(413, 'body_too_large', error.message);
    throw error;
  }
  try {
    return JSON.parse(raw.toString('utf8'));
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
  const maxClaim = opts.maxClaimBytes ?? DEFAULT_MAX_CLAIM_BYTES;
  const maxEvents = opts.maxEventsBytes ?? DEFAULT_MAX_EVENTS_BYTES;
  const maxResult = opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  const maxTaskEvents = opts.maxEventsPerTask ?? DEFAULT_MAX_EVENTS_PER_TASK;
  const maxTaskEventBytes = opts.maxEventBytesPerTask ?? DEFAULT_MAX_EVENT_BYTES_PER_TASK;
  const log = opts.log;
  /** Per-task event tallies, until the task's result arrives. */
  const tallies = new Map<string, EventTally>();
  const capMessage = `the task has sent its cap of events (${maxTaskEvents} events or ${maxTaskEventBytes} bytes); further events are dropped`;

  const claim = async (req: IncomingMessage, res: ServerResponse) => {
    const body = validate(ClaimRequest, await readJson(req, maxClaim));
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
    const tally = tallies.get(taskId) ?? { count: 0, bytes: 0, capped: false };
    if (tally.capped) throw new HttpError(413, 'event_cap_exceeded', capMessage); // refused unread
    const body = validate(EventsRequest, await readJson(req, maxEvents));
    const accepted: ProgressEvent[] = [];
    let dropped = 0;
    for (const event of body.events) {
      if (event.type === 'result') continue;
      const bytes = Buffer.byteLength(JSON.stringify(event), 'utf8');
      if (tally.capped || tally.count + 1 > maxTaskEvents || tally.bytes + bytes > maxTaskEventBytes) {
        tally.capped = true;
        dropped++;
        continue;
      }
      tally.count++;
      tally.bytes += bytes;
      accepted.push(event);
    }
    tallies.set(taskId, tally);
    if (dropped > 0) {
      log?.warn({ taskId, events: tally.count, bytes: tally.bytes, dropped }, 'runner events over the task\'s cap dropped');
      accepted.push({
        type: 'log',
        at: new Date().toISOString(),
        level: 'warn',
        message: `The runner sent more events than a task may keep (${maxTaskEvents} events or ${maxTaskEventBytes} bytes); later events of this task are dropped.`,
      });
    }
    if (accepted.length) opts.onEvents(taskId, accepted);
    if (dropped > 0) throw new HttpError(413, 'event_cap_exceeded', `${capMessage} (${dropped} of this batch dropped)`);
    send(res, 200, { accepted: accepted.length });
  };

  const result = async (req: IncomingMessage, res: ServerResponse, taskId: string) => {
    authorize(req, taskId);
    const value = validate(TaskResult, await readJson(req, maxResult));
    if (value.id !== taskId) throw new HttpError(400, 'invalid_body', `id: the result is for task ${JSON.stringify(value.id)}, not this one`);
    opts.claims.saveResult(value);
    tallies.delete(taskId);
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
      if (error instanceof BodyAbortedError) {
        res.destroy(); // the runner left before its body was complete: nobody to answer
        return true;
      }
      const e = error instanceof HttpError ? error : new HttpError(500, 'internal_error', 'internal error');
      if (!(error instanceof HttpError)) log?.warn({ err: error instanceof Error ? error.message : String(error), path: pathname }, 'runner API error');
      if (!res.headersSent) {
        // After an early answer (401, 413), do not read the rest of a large body: close the connection.
        if (!req.readableEnded) lingerAfterEarlyAnswer(req);
        send(res, e.status, { error: { code: e.code, message: e.message } }, req.readableEnded ? {} : { connection: 'close' });
      } else res.destroy();
    }
    return true;
  };
}
