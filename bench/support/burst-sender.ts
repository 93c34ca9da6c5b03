/**
 * The webhook burst of `bench:app`, sent from a process of its own (started by the benchmark with
 * `child_process.fork`). GitHub delivers webhooks from other machines: the process that plays GitHub's
 * API (the stand-in, in the benchmark's process) must not be the one that waits for the webhook
 * responses, or a response is seen late whenever that process is busy serving API requests.
 *
 * Protocol (IPC messages): the parent sends one {@link BurstJob} (deliveries already signed); the
 * sender opens its HTTP client (one `GET /healthz`, so that loading `fetch` is not part of the burst),
 * then posts every delivery at once and answers with one {@link BurstReport}, then exits.
 *
 * Times are wall-clock ms since the epoch (`performance.timeOrigin + performance.now()`), comparable
 * with the stand-in's `Date.now()` stamps in the parent process.
 */

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

async function runBurst(job: BurstJob): Promise<BurstReport> {
  // Warm up the HTTP client (undici loads on the first fetch) before the burst.
  await (await fetch(`${job.baseUrl}/healthz`)).arrayBuffer();
  const url = `${job.baseUrl}${job.path}`;
  const results = await Promise.all(
    job.deliveries.map(async ({ headers, body }) => {
      const sentAt = wallNow();
      try {
        const res = await fetch(url, { method: 'POST', headers, body });
        await res.arrayBuffer();
        return { sentAt, answeredAt: wallNow(), status: res.status };
      } catch (error) {
        return { sentAt, answeredAt: Number.NaN, status: 0, error: String((error as Error)?.message ?? error) };
      }
    }),
  );
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
