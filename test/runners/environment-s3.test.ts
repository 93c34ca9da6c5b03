/**
 * Environment archives through presigned S3 URLs: the app's presigner (S3EnvironmentStore, the real
 * AWS SDK) against the S3 stand-in (a real HTTP server that checks SigV4 signatures, expiry and
 * method), with the runner's own streaming upload and download (transfer.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { EnvironmentArchiveError } from '../../src/agent/environment/archive.ts';
import { openArchive, uploadArchive } from '../../src/agent/environment/transfer.ts';
import { S3EnvironmentStore } from '../../src/runners/environment-s3.ts';
import { S3StandIn } from '../support/s3-stand-in.ts';

const CREDENTIALS = { accessKeyId: 'AKIDENVTEST', secretAccessKey: 'env-secret-key' };
const KEY = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

let dir: string;
let s3: S3StandIn;
let clock = Date.now();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'env-s3-'));
  s3 = await S3StandIn.start({ ...CREDENTIALS, region: 'eu-west-1', now: () => clock });
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

function store(extra: { now?: () => number; maxArchiveBytes?: number } = {}): S3EnvironmentStore {
  // The endpoint as the SDK reads it from the environment (AWS_ENDPOINT_URL_S3).
  return new S3EnvironmentStore(
    { bucket: 'codex-envs', prefix: 'environments/', urlValiditySeconds: 300, maxAgeMs: 12 * 3_600_000, maxArchiveBytes: extra.maxArchiveBytes ?? 1024 ** 3, now: extra.now, client: { region: 'eu-west-1', credentials: CREDENTIALS } },
    { AWS_ENDPOINT_URL_S3: s3.endpoint },
  );
}

describe('environment archives through presigned URLs', () => {
  test('upload with a PUT URL, download with a GET URL; the app sees it with HeadObject', async () => {
    clock = Date.now();
    const envs = store();
    const archive = path.join(dir, 'env.tar');
    const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
    await writeFile(archive, payload);
    expect(await envs.lookup(KEY)).toBeUndefined();

    const put = await envs.saveUrl(KEY);
    expect(new URL(put).pathname).toBe(`/codex-envs/environments/${KEY}.tar`);
    await uploadArchive(archive, put);
    expect(s3.objects.get(`codex-envs/environments/${KEY}.tar`)?.equals(payload)).toBe(true);

    const stored = await envs.lookup(KEY);
    expect(stored?.bytes).toBe(payload.length);
    const spec = await envs.forRunner({ key: KEY, repositoryId: '1', scope: 'default', fresh: false, maxBytes: 10 * 1024 ** 3 });
    expect(spec.maxBytes).toBe(1024 ** 3);
    expect(spec.save && 'url' in spec.save).toBe(true);
    expect(spec.restore && 'url' in spec.restore.from).toBe(true);
    const from = spec.restore!.from;
    if (!('url' in from)) throw new Error('expected a URL');
    const body = await openArchive(from);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);

    // fresh: no restore; a missing object: no restore.
    expect((await envs.forRunner({ key: KEY, repositoryId: '1', scope: 'default', fresh: true, maxBytes: 1 })).restore).toBeUndefined();
    expect((await envs.forRunner({ key: OTHER, repositoryId: '1', scope: 'default', fresh: false, maxBytes: 1 })).restore).toBeUndefined();
    // Stale (older than maxAgeMs) or too large: not restored.
    expect(await store({ now: () => Date.now() + 13 * 3_600_000 }).lookup(KEY)).toBeUndefined();
    expect(await store({ maxArchiveBytes: 1000 }).lookup(KEY)).toBeUndefined();
  });

  test('an expired URL gets 403', async () => {
    clock = Date.now();
    const envs = store();
    const get = await envs.restoreUrl(KEY);
    const put = await envs.saveUrl(OTHER);
    clock = Date.now() + 301_000;
    try {
      const response = await fetch(get);
      expect(response.status).toBe(403);
      expect(await response.text()).toContain('<Code>AccessDenied</Code><Message>Request has expired</Message>');
      await expect(openArchive({ url: get })).rejects.toThrow(new EnvironmentArchiveError('the environment archive cannot be downloaded: HTTP 403'));
      const archive = path.join(dir, 'late.tar');
      await writeFile(archive, 'late');
      await expect(uploadArchive(archive, put)).rejects.toThrow(/HTTP 403/);
      expect(s3.objects.has(`codex-envs/environments/${OTHER}.tar`)).toBe(false);
    } finally {
      clock = Date.now();
    }
  });

  test('a URL used with another method gets 403: a GET URL cannot PUT, a PUT URL cannot GET', async () => {
    clock = Date.now();
    const envs = store();
    const get = await envs.restoreUrl(OTHER);
    const archive = path.join(dir, 'sneaky.tar');
    await writeFile(archive, 'overwrite');
    await expect(uploadArchive(archive, get)).rejects.toThrow(/HTTP 403/);
    expect(s3.requests.at(-1)).toMatchObject({ method: 'PUT', status: 403, code: 'SignatureDoesNotMatch' });
    expect(s3.objects.has(`codex-envs/environments/${OTHER}.tar`)).toBe(false);

    const put = await envs.saveUrl(KEY);
    const response = await fetch(put);
    expect(response.status).toBe(403);
    expect(s3.requests.at(-1)).toMatchObject({ method: 'GET', status: 403, code: 'SignatureDoesNotMatch' });
    // A URL for one object cannot reach another (the key is signed).
    const tampered = put.replace(KEY, OTHER);
    expect((await fetch(tampered, { method: 'PUT', body: 'x' })).status).toBe(403);
    // An unsigned request is refused.
    expect((await fetch(`${s3.endpoint}/codex-envs/environments/${KEY}.tar`)).status).toBe(403);
  });

  test('the stand-in checks a signed CRC32 as S3 does (why presigned PUT URLs carry no checksum)', async () => {
    clock = Date.now();
    const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    // The SDK's default adds the CRC32 of an empty body to a presigned PUT: S3 then refuses the upload.
    const client = new S3Client({ region: 'eu-west-1', credentials: CREDENTIALS, endpoint: s3.endpoint, forcePathStyle: true });
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: 'codex-envs', Key: 'environments/crc.tar' }), { expiresIn: 60 });
    expect(url).toContain('x-amz-checksum-crc32=');
    const response = await fetch(url, { method: 'PUT', body: 'data' });
    expect(response.status).toBe(400);
    expect(await text(response.body as never)).toContain('BadDigest');
    expect(await readFile(path.join(dir, 'env.tar')).then((b) => b.length)).toBe(200_000);
  });
});
