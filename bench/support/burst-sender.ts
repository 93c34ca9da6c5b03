/**
 * The webhook burst of `bench:app`, sent from a process of its own (started by the benchmark with
 * `child_process.fork`). GitHub delivers webhooks from other machines: the process that plays GitHub's
 * API (the stand-in, in the benchmark's process) must not be the one that waits for the webhook
 * responses, or a response is seen late whenever that process is busy serving API requests.
 *
 * Protocol (IPC messages): the parent sends one {@link BurstJob} (deliveries already signed); the
 * sender warms its HTTP client up (`GET` on the webhook path), then posts every delivery at once, each on a
 * connection of its own (`node:http`, no keep-alive; undici's `fetch` costs a cold process more than
 * 100 ms for 100 requests, which a measurement must not count), and answers with one
 * {@link BurstReport}, then exits.
 *
 * Times are wall-clock ms since the epoch (`performance.timeOrigin + performance.now()`), comparable
 * with the stand-in's `Date.now()` stamps in the parent process.
 */
import { request } from 'node:http';

/** What the parent sends. */
export interface BurstJob {
  /** `http://127.0.0.1:PORT`: the app. */
  baseUrl: string;
  /** Webhook path, e.g. `/api/github/webhooks`. */
  path: string;
  /** Signed deliveries: the exact headers and body to post. */
  deliveries: Array<{ headers: Record<string, string>; body: string }>;
}

/** What the sender answers: one entry per delivery, in the job's order. */
export interface BurstReport {
  results: Array<{
    /** When `fetch` was called, ms since the epoch. */
    sentAt: number;
    /** When the whole response body had arrived, ms since the epoch; NaN when the request failed. */
    answeredAt: number;
    /** HTTP status; 0 when the request failed. */
    status: number;
    error?: string;
  }>;
}

const wallNow = (): number => performance.timeOrigin + performance.now();

/** One POST on a connection of its own (as each GitHub delivery comes), timed from call to body end. */
function post(url: URL, headers: Record<string, string>, body: string): Promise<BurstReport['results'][number]> {
  return new Promise((resolve) => {
    const sentAt = wallNow();
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve({ sentAt, answeredAt: wallNow(), status: res.statusCode ?? 0 }));
      res.once('error', (error) => resolve({ sentAt, answeredAt: Number.NaN, status: 0, error: error.message }));
    });
    req.once('error', (error) => resolve({ sentAt, answeredAt: Number.NaN, status: 0, error: error.message }));
    req.end(body);
  });
}

async function runBurst(job: BurstJob): Promise<BurstReport> {
  // Warm up the client code (and its JIT) before the burst, a cold client alone adds tens of
  // milliseconds to a burst's responses: GETs on the webhook path, which the server refuses at once.
  const url = new URL(job.path, job.baseUrl);
  for (let i = 0; i < 50; i++) {
    await new Promise<void>((resolve, reject) => {
      request(url, { agent: false }, (res) => res.resume().once('end', resolve)).once('error', reject).end();
    });
  }
  const results = await Promise.all(job.deliveries.map(({ headers, body }) => post(url, headers, body)));
  return { results };
}

if (!process.send) throw new Error('burst-sender.ts is started by bench/app.bench.ts with child_process.fork');
process.once('message', (job: BurstJob) => {
  runBurst(job).then(
    (report) => process.send!(report, () => process.exit(0)),
    (error: unknown) => {
      process.stderr.write(`burst sender failed: ${String((error as Error)?.stack ?? error)}\n`);
      process.exit(1);
    },
  );
});
