// The guest-content digest of a disk image: the chunked digest (SHA-256 or BLAKE3) of hashing/digest.ts taken over the
// disk as the guest sees it (its virtual size, read through `qemu-nbd -r`), not over the image file.
// A qcow2 file's bytes move with every allocation, but its guest content changes only where the guest
// wrote, which a persistent dirty bitmap records: given the previous chunk digests and a trusted
// bitmap, only the chunks the bitmap marks are read again; the digest is composed exactly as a full
// pass would compose it, so an incremental result equals a full re-hash of the same content.
// A full pass of a plain qcow2 (no backing file, no compression, no encryption, no external data
// file) does not go through qemu-nbd: `qemu-img map` says where each guest extent lies in the image
// file, and the engine's workers read and hash those ranges in parallel (image-map.ts).
import { open, stat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import {
  CHUNK_SIZE,
  DIGEST_BYTES,
  chunkCount,
  chunkDigestsHex,
  chunkLength,
  composeFileDigest,
  digestOf,
  zeroChunkDigest,
  type DigestAlgorithm,
} from '../hashing/digest.js';
import { HashEngine, type FileDigest } from '../hashing/engine.js';
import { holeChunkMask } from '../hashing/extents.js';
import { identityOf, isRacy, sameIdentity } from '../hashing/identity.js';
import { qcow2Map } from './image-map.js';
import { NbdClient } from './nbd.js';
import { NbdExport, bitmapState, defaultQemuTools, imageInfo, type QemuTools } from './qemu.js';

/** Reads in flight on the NBD connection. */
const WINDOW = 8;

export interface GuestHashOptions {
  format: string;
  /** Default sha256; `previous` must have been taken with the same one. */
  algorithm?: DigestAlgorithm;
  /** The previous digest of this disk's guest content (its chunk digests are reused). */
  previous?: Pick<FileDigest, 'size' | 'chunkSize' | 'chunks' | 'algorithm'>;
  /** The dirty bitmap that covers every write since `previous` was taken. */
  bitmap?: string;
  tools?: QemuTools;
  /** Workers for a full pass read from the image map (default: a pool for this call). */
  engine?: HashEngine;
  /** 'nbd': every pass through qemu-nbd, never from the image map (tests compare both). */
  reader?: 'auto' | 'nbd';
}

export interface GuestDigest extends FileDigest {
  /** How this digest was computed: from dirty chunks (`incremental`) or every chunk (`full`). */
  pass: {
    mode: 'incremental' | 'full';
    chunksHashed: number;
    why?: string;
    /** Read from the image file through its map, or through qemu-nbd (then mapFallback says why). */
    reader: 'image-map' | 'nbd';
    mapFallback?: string;
  };
}

function changedError(path: string): NodeJS.ErrnoException {
  const err = new Error(`cannot hash ${path}: file changed while hashing`) as NodeJS.ErrnoException;
  err.code = 'EFILECHANGED';
  return err;
}

/** Indices of the chunks an extent list marks (`pick(type)` true), for a disk of `size` bytes. */
export function chunksOf(
  extents: { offset: number; length: number; type: number }[],
  pick: (t: number) => boolean,
  size: number,
  chunkSize = CHUNK_SIZE,
): number[] {
  const n = chunkCount(size, chunkSize);
  const mark = new Uint8Array(n);
  for (const e of extents) {
    if (!pick(e.type) || e.length <= 0) continue;
    const last = Math.min(n - 1, Math.floor((e.offset + e.length - 1) / chunkSize));
    for (let i = Math.floor(e.offset / chunkSize); i <= last; i++) mark[i] = 1;
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (mark[i]) out.push(i);
  return out;
}

/** Hashes the guest content of `path`; incremental when `previous` and a usable `bitmap` are given. */
export async function hashGuestDisk(path: string, opts: GuestHashOptions): Promise<GuestDigest> {
  for (let attempt = 1, locked = 0; ; attempt++) {
    try {
      return await hashOnce(path, opts);
    } catch (e) {
      // QEMU may still hold the image's lock for a moment after libvirt reported it stopped.
      if (isLockError(e) && ++locked <= 25) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if ((e as NodeJS.ErrnoException).code !== 'EFILECHANGED' || attempt >= 3) throw e;
    }
  }
}

export const isLockError = (e: unknown) =>
  /Failed to get .* lock|another process using the image/.test((e as Error)?.message ?? '');

async function hashOnce(path: string, opts: GuestHashOptions): Promise<GuestDigest> {
  const t0 = performance.now();
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const tools = opts.tools ?? defaultQemuTools;
  const before: BigIntStats = await stat(path, { bigint: true });
  const cs = CHUNK_SIZE;
  let why: string | undefined;
  let bitmap: string | undefined;
  const algorithm = opts.algorithm ?? 'sha256';
  const prev =
    opts.previous && (opts.previous.algorithm ?? 'sha256') === algorithm ? opts.previous : undefined;
  if (prev && opts.bitmap) {
    const info = await imageInfo(path, opts.format, tools);
    const state = bitmapState(info, opts.bitmap);
    if (state !== 'ok') why = `bitmap ${state}`;
    else if (prev.chunkSize !== cs || prev.size !== info.virtualSize) why = 'disk size changed';
    else bitmap = opts.bitmap;
  } else why = prev ? 'no trusted bitmap' : 'no previous digest';

  let mapFallback: string | undefined;
  if (!bitmap && opts.format === 'qcow2' && opts.reader !== 'nbd') {
    const mapped = await hashMapped(path, algorithm, opts, tools, t0, startNs);
    if (!('fallback' in mapped)) return { ...mapped, pass: { ...mapped.pass, ...(why ? { why } : {}) } };
    mapFallback = mapped.fallback;
  }
  const server = await NbdExport.start(path, opts.format, { bitmap, tools });
  let client: NbdClient | undefined;
  try {
    client = await NbdClient.connect(server.socket).catch(async (e: unknown) => {
      throw await server.explain(e, path);
    });
    const size = client.size;
    const n = chunkCount(size, cs);
    const digests = new Uint8Array(n * DIGEST_BYTES);
    let todo: number[];
    if (bitmap) {
      for (let i = 0; i < n; i++) digests.set(Buffer.from(prev!.chunks[i]!, 'hex'), i * DIGEST_BYTES);
      todo = chunksOf(await server.map(`qemu:dirty-bitmap:${bitmap}`), (t) => (t & 1) === 1, size, cs);
    } else {
      // Chunks that read as zeros (unallocated or zero clusters) need no read.
      const zero = (await server.map('base:allocation'))
        .filter((e) => (e.type & 2) === 2)
        .map((e) => ({ start: e.offset, length: e.length }));
      const holes = holeChunkMask(zero, size, cs);
      todo = [];
      for (let i = 0; i < n; i++) {
        if (holes[i]) digests.set(zeroChunkDigest(chunkLength(i, size, cs), algorithm), i * DIGEST_BYTES);
        else todo.push(i);
      }
    }
    let bytesRead = 0;
    let zeroChunks = 0;
    const zeros = Buffer.alloc(cs);
    const c = client;
    let next = 0;
    const lane = async () => {
      while (next < todo.length) {
        const i = todo[next++]!;
        const len = chunkLength(i, size, cs);
        const buf = await c.read(i * cs, len);
        bytesRead += len;
        let d: Buffer;
        if (buf[0] === 0 && buf.equals(zeros.subarray(0, len))) {
          d = zeroChunkDigest(len, algorithm);
          zeroChunks++;
        } else d = digestOf(algorithm, buf);
        digests.set(d, i * DIGEST_BYTES);
      }
    };
    await Promise.all(Array.from({ length: Math.min(WINDOW, todo.length) }, lane));
    await client.close();
    client = undefined;
    await server.stop();
    const after = await stat(path, { bigint: true });
    if (!sameIdentity(identityOf(before), identityOf(after))) throw changedError(path);
    const chunks = chunkDigestsHex(digests);
    return {
      path,
      size,
      chunkSize: cs,
      digest: composeFileDigest(digests, size, algorithm).toString('hex'),
      algorithm,
      chunks,
      identity: identityOf(before),
      reused: false,
      stable: !isRacy(before, startNs),
      stats: { bytesRead, holeChunks: bitmap ? 0 : n - todo.length, zeroChunks, ms: performance.now() - t0 },
      pass: {
        mode: bitmap ? 'incremental' : 'full',
        chunksHashed: todo.length,
        ...(why ? { why } : {}),
        reader: 'nbd',
        ...(mapFallback ? { mapFallback } : {}),
      },
    };
  } finally {
    await client?.close().catch(() => undefined);
    await server.stop();
  }
}

/** A full pass read from the image file through its qcow2 map, or why it cannot be. */
async function hashMapped(
  path: string,
  algorithm: DigestAlgorithm,
  opts: GuestHashOptions,
  tools: QemuTools,
  t0: number,
  startNs: bigint,
): Promise<GuestDigest | { fallback: string }> {
  const fh = await open(path, 'r');
  try {
    const before = await fh.stat({ bigint: true });
    if (!before.isFile()) return { fallback: 'not a regular file' };
    const map = await qcow2Map(path, Number(before.size), tools);
    if ('fallback' in map) return map;
    const own = opts.engine?.chunkSize === CHUNK_SIZE ? undefined : new HashEngine({ qemuImg: false });
    const engine = own ?? opts.engine!;
    let r: Awaited<ReturnType<HashEngine['hashExtents']>>;
    try {
      r = await engine.hashExtents(fh.fd, map.size, map.extents, algorithm);
    } finally {
      await own?.close();
    }
    // The same file (not one renamed over it) and unchanged, from before the map to the last read.
    const identity = identityOf(before);
    const after = [await fh.stat({ bigint: true }), await stat(path, { bigint: true })];
    if (!after.every((st) => sameIdentity(identity, identityOf(st)))) throw changedError(path);
    const n = chunkCount(map.size, CHUNK_SIZE);
    return {
      path,
      size: map.size,
      chunkSize: CHUNK_SIZE,
      digest: composeFileDigest(r.digests, map.size, algorithm).toString('hex'),
      algorithm,
      chunks: chunkDigestsHex(r.digests),
      identity,
      reused: false,
      stable: !isRacy(before, startNs),
      stats: {
        bytesRead: r.bytesRead,
        holeChunks: r.holeChunks,
        zeroChunks: r.zeroChunks,
        ms: performance.now() - t0,
      },
      pass: { mode: 'full', chunksHashed: n - r.holeChunks, reader: 'image-map' },
    };
  } finally {
    await fh.close();
  }
}
