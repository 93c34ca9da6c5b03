/**
 * A local S3 stand-in for environment archives: a real HTTP server (path-style URLs,
 * `http://127.0.0.1:PORT/<bucket>/<key>`) that accepts only presigned requests
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html): it re-computes the
 * SigV4 query signature with @smithy/signature-v4 for the request's own method (so a GET URL cannot
 * PUT), refuses an expired one (X-Amz-Date + X-Amz-Expires) with 403, checks a signed CRC32 checksum
 * as S3 does, and keeps objects in memory. Reached by the SDK through `AWS_ENDPOINT_URL_S3` or its
 * `endpoint` option.
 */
import { createHash, createHmac, timingSafeEqual, type BinaryLike } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

function toBinary(data: string | ArrayBuffer | ArrayBufferView): BinaryLike {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** sha256 / HMAC-sha256 in the shape SignatureV4 wants (`new Sha256(secret?)`). */
class Sha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBinary(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBinary(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#hash.digest());
  }
}

/** One request the stand-in answered. */
export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  status: number;
  /** The error code answered (`AccessDenied`, `SignatureDoesNotMatch`, …), if any. */
  code?: string;
}

/** Options of {@link S3StandIn.start}. */
export interface S3StandInOptions {
  /** Credentials the presigned URLs must be signed with. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Region of the signatures (default `us-east-1`). */
  region?: string;
  /** Clock, epoch ms (default Date.now): move it to expire URLs. */
  now?: () => number;
}

const PRESIGN_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'];

/** The S3 stand-in. Always {@link S3StandIn.close}. */
export class S3StandIn {
  readonly objects = new Map<string, Buffer>();
  /** When each object was last written, epoch ms (answered as `Last-Modified`). */
  readonly #modified = new Map<string, number>();
  readonly requests: S3Request[] = [];
  readonly #server: Server;
  readonly #opts: S3StandInOptions;
  #port = 0;

  private constructor(opts: S3StandInOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
      });
    });
  }

  /** Starts the stand-in on 127.0.0.1 (a free port). */
  static async start(opts: S3StandInOptions): Promise<S3StandIn> {
    const s3 = new S3StandIn(opts);
    await new Promise<void>((resolve) => s3.#server.listen(0, '127.0.0.1', resolve));
    s3.#port = (s3.#server.address() as AddressInfo).port;
    return s3;
  }

  /** `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL_S3`. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.endpoint);
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const record: S3Request = { method: req.method ?? '', bucket, key, status: 200 };
    this.requests.push(record);
    const fail = (status: number, code: string, message: string): void => {
      record.status = status;
      record.code = code;
      req.resume();
      res.writeHead(status, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`);
    };
    const denied = await this.#checkPresigned(req, url);
    if (denied) return fail(403, denied.code, denied.message);
    const id = `${bucket}/${key}`;
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const crc = url.searchParams.get('x-amz-checksum-crc32');
      if (crc !== null) {
        const actual = Buffer.alloc(4);
        actual.writeUInt32BE(zlib.crc32(body));
        if (actual.toString('base64') !== crc) return fail(400, 'BadDigest', 'The CRC32 you specified did not match the calculated checksum.');
      }
      this.objects.set(id, body);
      this.#modified.set(id, (this.#opts.now ?? Date.now)());
      res.writeHead(200, { etag: `"${createHash('md5').update(body).digest('hex')}"` }).end();
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const body = this.objects.get(id);
      if (!body) return fail(404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, {
        'content-length': body.length,
        'content-type': 'application/octet-stream',
        'last-modified': new Date(this.#modified.get(id) ?? 0).toUTCString(),
      });
      res.end(req.method === 'GET' ? body : undefined);
      return;
    }
    return fail(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }

  #signer(accessKeyId: string, region: string, service: string): SignatureV4 {
    return new SignatureV4({
      credentials: { accessKeyId, secretAccessKey: this.#opts.secretAccessKey },
      region,
      service,
      sha256: Sha256,
      uriEscapePath: false,
    });
  }

  /**
   * Checks an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` request
   * (the app's own SDK calls, e.g. HeadObject) by signing the same request again.
   */
  async #checkAuthorizationHeader(req: IncomingMessage, url: URL, authorization: string): Promise<{ code: string; message: string } | undefined> {
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(authorization);
    if (!m) return { code: 'AccessDenied', message: 'Unsupported Authorization header.' };
    const [, accessKeyId, , region, service, signedHeaders, signature] = m;
    if (accessKeyId !== this.#opts.accessKeyId) return { code: 'InvalidAccessKeyId', message: 'Unknown access key.' };
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const d = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (!d) return { code: 'AccessDenied', message: 'Missing x-amz-date.' };
    const signedAt = Date.UTC(+d[1]!, +d[2]! - 1, +d[3]!, +d[4]!, +d[5]!, +d[6]!);
    if (Math.abs((this.#opts.now ?? Date.now)() - signedAt) > 15 * 60_000) return { code: 'RequestTimeTooSkewed', message: 'The difference between the request time and the current time is too large.' };
    const headers: Record<string, string> = {};
    for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '');
    const query: Record<string, string> = {};
    for (const [name, value] of url.searchParams) query[name] = value;
    const signed = await this.#signer(accessKeyId!, region!, service!).sign(
      new HttpRequest({ method: req.method ?? 'GET', protocol: 'http:', hostname: '127.0.0.1', port: this.#port, path: url.pathname, query, headers }),
      { signingDate: new Date(signedAt), signingRegion: region },
    );
    const want = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization ?? ''))?.[1] ?? '';
    if (want.length !== signature!.length || !timingSafeEqual(Buffer.from(want), Buffer.from(signature!))) {
      return { code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
    }
    return undefined;
  }

  /** Why a request is not a valid, unexpired presigned (or header-signed) request for its method, or undefined. */
  async #checkPresigned(req: IncomingMessage, url: URL): Promise<{ code: string; message: string } | undefined> {
    const q = url.searchParams;
    const authorization = req.headers.authorization;
    if (authorization && !q.has('X-Amz-Signature')) return this.#checkAuthorizationHeader(req, url, authorization);
    if (PRESIGN_PARAMS.some((p) => !q.has(p))) return { code: 'AccessDenied', message: 'Only presigned requests are accepted.' };
    if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return { code: 'AuthorizationQueryParametersError', message: 'Unsupported algorithm.' };
    const [accessKeyId, scopeDate, region, service] = (q.get('X-Amz-Credential') ?? '').split('/');
    if (accessKeyId !== this.#opts.accessKeyId) return { code: 'InvalidAccessKeyId', message: 'Unknown access key.' };
    const amzDate = q.get('X-Amz-Date') ?? '';
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    const expires = Number(q.get('X-Amz-Expires'));
    if (!m || !Number.isInteger(expires) || expires < 1 || expires > 604_800) return { code: 'AuthorizationQueryParametersError', message: 'Bad X-Amz-Date or X-Amz-Expires.' };
    const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    if ((this.#opts.now ?? Date.now)() > signedAt + expires * 1000) return { code: 'AccessDenied', message: 'Request has expired' };
    const query: Record<string, string | string[]> = {};
    for (const [name, value] of q) if (!PRESIGN_PARAMS.includes(name) && name !== 'X-Amz-Content-Sha256') query[name] = value;
    const signedHeaders = (q.get('X-Amz-SignedHeaders') ?? '').split(';');
    const headers: Record<string, string> = {};
    for (const name of signedHeaders) headers[name] = String(req.headers[name] ?? '');
    // Hoisted back into the query under its own name, as the S3 presigner does.
    if (q.get('X-Amz-Content-Sha256')) headers['X-Amz-Content-Sha256'] = q.get('X-Amz-Content-Sha256')!;
    const expected = await this.#signer(accessKeyId, region ?? '', service ?? 's3').presign(
      new HttpRequest({ method: req.method ?? 'GET', protocol: 'http:', hostname: '127.0.0.1', port: this.#port, path: url.pathname, query, headers }),
      { signingDate: new Date(signedAt), expiresIn: expires, signingRegion: region },
    );
    const want = Buffer.from(String(expected.query?.['X-Amz-Signature'] ?? ''));
    const got = Buffer.from(q.get('X-Amz-Signature') ?? '');
    if (scopeDate !== amzDate.slice(0, 8) || want.length !== got.length || !timingSafeEqual(want, got)) {
      return { code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided.' };
    }
    return undefined;
  }
}
