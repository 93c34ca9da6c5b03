/**
 * The bounded body reader and the lingering close after an early answer, over a real socket: a
 * client still sending after a 413 keeps writing without a reset for a moment, gets the answer, and
 * the connection ends once it stops or the linger runs out.
 */
import { afterEach, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import net from 'node:net';
import { BodyTooLargeError, lingerAfterEarlyAnswer, readBodyLimited } from '../../src/gateway/request-body.ts';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/** A server that reads at most `limit` bytes and answers 413 over it; `linger` uses the lingering close. */
async function start(limit: number, linger: boolean): Promise<number> {
  server = http.createServer(async (req, res) => {
    try {
      await readBodyLimited(req, limit);
      res.end('ok');
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      if (linger) lingerAfterEarlyAnswer(req, { lingerMs: 1_000 });
      res.writeHead(413, { connection: 'close', 'content-length': '8' }).end('too big\n');
    }
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server!.address() as net.AddressInfo).port;
}

/**
 * A raw HTTP client that declares a large chunked body and sends 16 KiB every 5 ms; it records
 * whether a write failed after the answer arrived and when the connection closed.
 */
function slowUpload(port: number, stopAfterMs = 200): Promise<{ answer: string; writeErrorAfterAnswer?: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    // Half-open allowed: like an HTTP client busy with its request, it keeps writing after the server's FIN.
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    let answeredAt = 0;
    let writeErrorAfterAnswer: string | undefined;
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    socket.write('POST /x HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n');
    const timer = setInterval(() => {
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      socket.write('\r\n');
    }, 5);
    socket.on('data', (d) => {
      answer += d.toString('utf8');
      if (answeredAt) return;
      answeredAt = Date.now();
      // Keep sending a moment after the answer, as a client busy writing does, then finish.
      setTimeout(() => {
        clearInterval(timer);
        socket.end();
      }, stopAfterMs);
    });
    socket.on('error', (error) => {
      if (answeredAt) writeErrorAfterAnswer = (error as NodeJS.ErrnoException).code;
    });
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, writeErrorAfterAnswer, closedAfterMs: Date.now() - answeredAt });
    });
  });
}

describe('lingerAfterEarlyAnswer', () => {
  test('a client still sending gets the 413 and no reset; the server closes once it stops sending', async () => {
    const port = await start(64 * 1024, true);
    const run = await slowUpload(port);
    expect(run.answer).toMatch(/^HTTP\/1\.1 413/);
    expect(run.writeErrorAfterAnswer).toBeUndefined();
    // Closed after the client stopped (200 ms) and well before the next request could be served.
    expect(run.closedAfterMs).toBeGreaterThanOrEqual(150);
    expect(run.closedAfterMs).toBeLessThan(5_000);
  });

  test('a client that never stops is cut off when the linger runs out', async () => {
    const port = await start(64 * 1024, true);
    const run = await slowUpload(port, 60_000);
    expect(run.answer).toMatch(/^HTTP\/1\.1 413/);
    expect(run.closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(run.closedAfterMs).toBeLessThan(5_000);
  });

  test('without it, the same client gets a reset while it still sends (what the lingering close avoids)', async () => {
    const port = await start(64 * 1024, false);
    const run = await slowUpload(port);
    expect(run.answer).toMatch(/^HTTP\/1\.1 413/);
    expect(['EPIPE', 'ECONNRESET']).toContain(run.writeErrorAfterAnswer);
  });
});
