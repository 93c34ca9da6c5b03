/**
 * Reading an HTTP request body under a size limit, for the app's own routes that take bodies from
 * runners (the model gateway, the runner API): the size is checked while the body arrives, so a body
 * over the limit is refused as soon as it passes it, and never more than the limit is kept in memory.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** The body is larger than the limit (declared in `content-length` or counted while reading). */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  /** The limit that was passed, bytes. */
  readonly limitBytes: number;
  constructor(limitBytes: number) {
    super(`the body exceeds ${limitBytes} bytes`);
    this.limitBytes = limitBytes;
  }
}

/** The client went away (or the connection failed) before the body was complete. */
export class BodyAbortedError extends Error {
  override name = 'BodyAbortedError';
}

/**
 * Reads the whole body of `req`, at most `limitBytes` bytes.
 *
 * A `content-length` over the limit is refused before a byte is read; a body that grows past the limit
 * (chunked, or longer than declared) is refused at the chunk that passes it. On refusal the request is
 * paused, not destroyed, so that the caller can still answer (413, with `connection: close` so that
 * Node closes the socket after the answer instead of reading the rest of the body).
 * @param limitBytes largest body accepted, bytes.
 * @returns the body bytes.
 * @throws BodyTooLargeError over the limit; BodyAbortedError when the request ends before its body.
 */
export function readBodyLimited(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limitBytes) {
      reject(new BodyTooLargeError(limitBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | undefined): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error) {
        req.pause();
        chunks.length = 0;
        reject(error);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) settle(new BodyTooLargeError(limitBytes));
      else chunks.push(chunk);
    };
    const onEnd = (): void => settle(undefined);
    const onError = (error: Error): void => settle(new BodyAbortedError(`the request failed while its body was read: ${error.message}`));
    const onClose = (): void => settle(new BodyAbortedError('the client closed the connection before the body was complete'));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/** Options of {@link lingerAfterEarlyAnswer}. */
export interface LingerOptions {
  /** Longest time the rest of the body is read after the answer, ms (default 2,000). */
  lingerMs?: number;
  /** Most bytes read and discarded after the answer (default 16 MiB). */
  maxBytes?: number;
}

/**
 * Call before an early answer with `connection: close` to a request whose body was not read to its
 * end (401, 413): the connection is then closed the way RFC 9112 §9.6 asks
 * (https://www.rfc-editor.org/rfc/rfc9112#section-9.6): the answer, a half-close, and the rest of
 * the body read and discarded (never buffered) for at most `lingerMs` or `maxBytes` before the
 * socket is destroyed. A socket closed at once while the client still sends makes the kernel reset
 * the connection, and the client then often sees EPIPE or ECONNRESET instead of the answer.
 *
 * Node's HTTP server closes a `connection: close` response's socket with `socket.destroySoon()` once
 * the answer is written; this replaces that method on this one socket.
 */
export function lingerAfterEarlyAnswer(req: IncomingMessage, opts: LingerOptions = {}): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  const lingerMs = opts.lingerMs ?? 2_000;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  let discarded = 0;
  // The rest of the body flows into nothing (the reader's listeners are gone after a refusal).
  req.removeAllListeners('data');
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > maxBytes) socket.destroy();
  });
  req.resume();
  socket.destroySoon = () => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', () => socket.destroy());
  };
}
