/** Hand-made tar archives for restore tests: exactly the entries given, paths unchecked (as an attacker writes them). */
import zlib from 'node:zlib';
import { Header } from 'tar';

/** One raw tar entry. */
export interface RawEntry {
  path: string;
  type: string;
  linkpath?: string;
  body?: string;
  mode?: number;
}

/** A gzip-compressed tar archive (POSIX ustar headers from node-tar's `Header`) of exactly these entries. */
export function craftArchive(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new Header({
      path: e.path, type: e.type as never, linkpath: e.linkpath, size: e.type === 'File' ? body.length : 0,
      mode: e.mode ?? (e.type === 'Directory' ? 0o755 : 0o644), mtime: new Date(0), uid: 0, gid: 0,
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (e.type === 'File' && body.length) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(blocks));
}

/** The classic escape: `repo/node_modules` a symbolic link to `victim`, then a file written through it. */
export function symlinkEscapeArchive(victim: string): Buffer {
  return craftArchive([
    { path: 'repo/node_modules', type: 'SymbolicLink', linkpath: victim },
    { path: 'repo/node_modules/pwned.js', type: 'File', body: 'pwned' },
  ]);
}
