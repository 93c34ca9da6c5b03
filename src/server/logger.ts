/**
 * The app's logger (pino, JSON lines): secrets redacted by path, the query string of every logged URL
 * redacted (the task page's `?key=` and any `key=`/`token=` value), and one `name` per line.
 *
 * - Probot's access log (pino-http, https://github.com/pinojs/pino-http) writes `req.url` both in the
 *   message (`GET /tasks/… 200 - 3ms`) and in the serialized request, from a child logger Probot
 *   makes; neither can be given a serializer from outside, so URLs are redacted in the finished
 *   line (pino's `hooks.streamWrite`), which covers every line of every child.
 * - pino appends a child's bindings to its parent's, so `child({ name: 'http' })` of a logger named
 *   `codex-cloud` printed `"name":"codex-cloud","name":"http"`; a child's `name` now replaces its
 *   parent's (pino's `onChild`).
 */
import { pino, symbols, type DestinationStream, type Logger } from 'pino';

/** Paths of secrets and of webhook payloads the logger never prints (pino redaction). */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'privateKey',
  '*.privateKey',
  'secret',
  '*.secret',
  'req.headers.authorization',
  'req.headers["x-hub-signature-256"]',
  'headers.authorization',
  'err.config.headers.authorization',
  'err.request.headers.authorization',
  // Webhook payloads (Probot logs the event on a handler error and at debug level on receipt).
  'event',
  'payload',
  'err.event',
  'err.payload',
  'err.aggregateErrors[*].event',
];

/** What replaces a redacted value. */
const CENSOR = '[redacted]';

/**
 * A path followed by a query string, inside a JSON string of a log line: `/x/y?a=b` (the query runs
 * to the next space, quote or fragment; JSON escapes are taken whole, so the string never ends early).
 */
const URL_QUERY = /(\/[^\s"?#\\]*)\?(?:[^\s"#\\]|\\.)+/g;
/** A `key=` or `token=` value anywhere (e.g. `access_token=…`), to the next space, quote or `&`. */
const SECRET_PARAMETER = /(key=|token=)(?:[^\s"&#\\]|\\.)+/gi;

/**
 * Redacts the query string of every URL and every `key=`/`token=` value in a log line.
 * @param line one JSON log line as pino wrote it. @returns the line, still valid JSON.
 */
export function redactUrls(line: string): string {
  if (!line.includes('?') && !/key=|token=/i.test(line)) return line;
  return line.replace(URL_QUERY, `$1?${CENSOR}`).replace(SECRET_PARAMETER, `$1${CENSOR}`);
}

const NAME_KEY = '"name":';

/** Keeps one `name` binding on a child logger: the child's own (the last one bound). */
function oneName(child: Logger): void {
  const bound = child as unknown as Record<symbol, string>;
  const chindings = bound[symbols.chindingsSym];
  if (typeof chindings !== 'string' || chindings.indexOf(NAME_KEY) === chindings.lastIndexOf(NAME_KEY)) return;
  let fields: Record<string, unknown>;
  try {
    // Bindings are a JSON object's members, each after a comma; a repeated key keeps its first
    // place and takes its last value.
    fields = JSON.parse(`{${chindings.slice(1)}}`) as Record<string, unknown>;
  } catch {
    return;
  }
  bound[symbols.chindingsSym] = `,${JSON.stringify(fields).slice(1, -1)}`;
}

/**
 * The app's logger: JSON lines (on stdout unless `destination` is given), named `codex-cloud`,
 * secrets redacted ({@link REDACT_PATHS}, URL query strings), one `name` per line.
 * @param level a pino level (`info`, `debug`, …).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { name: 'codex-cloud' },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    hooks: { streamWrite: redactUrls },
    onChild: oneName,
  };
  return destination ? pino(options, destination) : pino(options);
}
