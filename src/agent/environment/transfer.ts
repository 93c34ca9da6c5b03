/**
 * Moving environment archives between the runner and the backend's store: a local file (local
 * backend) or a presigned S3 URL (ECS: GET to restore, PUT to save; https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html),
 * always streamed with fetch, never held whole in memory.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { EnvironmentLocation } from '../../contract.ts';
import { requireSecureUrl } from '../reporter.ts';
import { EnvironmentArchiveError } from './archive.ts';

/** Longest a transfer of an archive may stall before it fails, ms. */
const TRANSFER_TIMEOUT_MS = 10 * 60_000;

/**
 * Opens the archive at `from` for reading: the file, or the body of a GET on the presigned URL.
 * @throws EnvironmentArchiveError when it cannot be opened (missing file, HTTP status other than 200).
 */
export async function openArchive(from: EnvironmentLocation, signal?: AbortSignal): Promise<Readable> {
  if ('path' in from) {
    const stream = createReadStream(from.path);
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (error) => reject(new EnvironmentArchiveError(`the environment archive cannot be read: ${error.message}`)));
    });
    return stream;
  }
  const url = requireSecureUrl(from.url);
  const response = await fetch(url, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TRANSFER_TIMEOUT_MS)]) : AbortSignal.timeout(TRANSFER_TIMEOUT_MS) })
    .catch((error: unknown) => { throw new EnvironmentArchiveError(`the environment archive cannot be downloaded: ${(error as Error).message}`); });
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel();
    throw new EnvironmentArchiveError(`the environment archive cannot be downloaded: HTTP ${response.status}`);
  }
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
}

/**
 * Uploads the archive file to a presigned PUT URL, streaming, with its `Content-Length` (S3 needs it
 * for a presigned PUT).
 * @throws EnvironmentArchiveError when the upload fails or the store answers other than 2xx.
 */
export async function uploadArchive(file: string, url: string, signal?: AbortSignal): Promise<void> {
  const target = requireSecureUrl(url);
  const { size } = await stat(file);
  const body = Readable.toWeb(createReadStream(file)) as unknown as ReadableStream<Uint8Array>;
  const response = await fetch(target, {
    method: 'PUT',
    body,
    duplex: 'half',
    headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' },
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TRANSFER_TIMEOUT_MS)]) : AbortSignal.timeout(TRANSFER_TIMEOUT_MS),
  } as RequestInit).catch((error: unknown) => { throw new EnvironmentArchiveError(`the environment archive cannot be uploaded: ${(error as Error).message}`); });
  await response.body?.cancel();
  if (response.status < 200 || response.status > 299) throw new EnvironmentArchiveError(`the environment archive cannot be uploaded: HTTP ${response.status}`);
}
