/**
 * Environment archives in S3 for the ECS backend (issue 12): the app mints, per task, a presigned GET
 * URL for the archive to restore and a presigned PUT URL for the one to save (one object each,
 * minutes of validity), so runner tasks need no IAM policy. Objects are `<prefix><key>.tar` in
 * `CODEX_ENV_BUCKET`; the SDK's own `AWS_ENDPOINT_URL_S3` is honoured (path-style addressing then,
 * as local stand-ins and most S3-compatible stores need). Presigned URLs:
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html
 */
import { GetObjectCommand, HeadObjectCommand, NotFound, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { EnvironmentSpec } from '../contract.ts';

/** Default validity of a presigned URL, seconds (15 minutes). */
export const DEFAULT_URL_VALIDITY_SECONDS = 15 * 60;

/** Options of {@link S3EnvironmentStore}. */
export interface S3EnvironmentStoreOptions {
  /** Bucket (`CODEX_ENV_BUCKET`). */
  bucket: string;
  /** Key prefix inside the bucket, e.g. `environments/` (the app's role may only presign below it). */
  prefix?: string;
  /** How long a presigned URL is valid, seconds (default {@link DEFAULT_URL_VALIDITY_SECONDS}). */
  urlValiditySeconds?: number;
  /** How long an environment stays fresh after it was saved, ms (`CODEX_ENV_CACHE_HOURS`). */
  maxAgeMs: number;
  /** Largest archive, bytes (`CODEX_ENV_MAX_MB`): a larger object is not restored. */
  maxArchiveBytes: number;
  /** S3 client configuration (region, credentials, endpoint); defaults to the SDK's environment. */
  client?: S3ClientConfig;
  /** Clock, epoch ms (tests). */
  now?: () => number;
}

/** A stored environment: when it was saved and its size, bytes. */
export interface StoredEnvironment {
  savedAt: Date;
  bytes: number;
}

/** Presigns environment archive URLs in one S3 bucket. */
export class S3EnvironmentStore {
  readonly #s3: S3Client;
  readonly #opts: S3EnvironmentStoreOptions;

  constructor(opts: S3EnvironmentStoreOptions, env: NodeJS.ProcessEnv = process.env) {
    this.#opts = opts;
    this.#s3 = new S3Client({
      // Path-style for a custom endpoint (`AWS_ENDPOINT_URL_S3` or `client.endpoint`).
      forcePathStyle: Boolean(env.AWS_ENDPOINT_URL_S3 || opts.client?.endpoint),
      ...(env.AWS_ENDPOINT_URL_S3 ? { endpoint: env.AWS_ENDPOINT_URL_S3 } : {}),
      // No flexible checksums in presigned URLs: a PUT URL must not carry the checksum of an empty body.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...opts.client,
    });
  }

  /** The object key of an environment: `<prefix><key>.tar`. */
  objectKey(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new TypeError('an environment key is 64 hex characters');
    return `${this.#opts.prefix ?? ''}${key}.tar`;
  }

  /**
   * The stored environment of `key` when it exists, is fresh and within the size cap (HeadObject).
   * @throws the SDK's error for anything but a missing object.
   */
  async lookup(key: string): Promise<StoredEnvironment | undefined> {
    try {
      const head = await this.#s3.send(new HeadObjectCommand({ Bucket: this.#opts.bucket, Key: this.objectKey(key) }));
      const savedAt = head.LastModified;
      const bytes = head.ContentLength ?? 0;
      if (!savedAt || (this.#opts.now ?? Date.now)() - savedAt.getTime() > this.#opts.maxAgeMs) return undefined;
      if (bytes > this.#opts.maxArchiveBytes) return undefined;
      return { savedAt, bytes };
    } catch (error) {
      if (error instanceof NotFound || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw error;
    }
  }

  /** A presigned GET URL of the archive of `key`. */
  restoreUrl(key: string): Promise<string> {
    return getSignedUrl(this.#s3, new GetObjectCommand({ Bucket: this.#opts.bucket, Key: this.objectKey(key) }), { expiresIn: this.#validity() });
  }

  /** A presigned PUT URL for the archive of `key`. */
  saveUrl(key: string): Promise<string> {
    return getSignedUrl(this.#s3, new PutObjectCommand({ Bucket: this.#opts.bucket, Key: this.objectKey(key) }), { expiresIn: this.#validity() });
  }

  #validity(): number {
    return this.#opts.urlValiditySeconds ?? DEFAULT_URL_VALIDITY_SECONDS;
  }

  /**
   * Fills `environment.restore` (a GET URL, when a fresh archive exists and `fresh` is not asked for)
   * and `.save` (a PUT URL) for one runner task. On ECS the setup task gets only `save`, the agent
   * task only `restore` (see issue 12); `want` picks.
   */
  async forRunner(environment: EnvironmentSpec, want: { restore: boolean; save: boolean } = { restore: true, save: true }): Promise<EnvironmentSpec> {
    const out: EnvironmentSpec = { ...environment, maxBytes: Math.min(environment.maxBytes, this.#opts.maxArchiveBytes) };
    delete out.restore;
    delete out.save;
    if (want.restore && !environment.fresh) {
      const stored = await this.lookup(environment.key);
      if (stored) out.restore = { from: { url: await this.restoreUrl(environment.key) }, savedAt: stored.savedAt.toISOString() };
    }
    if (want.save) out.save = { url: await this.saveUrl(environment.key) };
    return out;
  }
}
