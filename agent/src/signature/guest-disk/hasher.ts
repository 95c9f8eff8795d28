// The guest-content digest of a disk image: the chunked digest (SHA-256 or BLAKE3) of hashing/digest.ts taken over the
// disk as the guest sees it (its virtual size, read through `qemu-nbd -r`), not over the image file.
// A qcow2 file's bytes move with every allocation, but its guest content changes only where the guest
// wrote, which a persistent dirty bitmap records: given the previous chunk digests and a trusted
// bitmap, only the chunks the bitmap marks are read again; the digest is composed exactly as a full
// pass would compose it, so an incremental result equals a full re-hash of the same content.
// A plain qcow2 (no backing file, no compression, no encryption, no external data file) is not read
// through qemu-nbd: `qemu-img map` says where each guest extent lies in the image file, and the
// engine's workers read and hash those ranges in parallel (image-map.ts). An incremental pass of a
// plain image starts no program at all: the bitmap and the clusters it marks are read from the file
// (qcow2-dirty.ts), and a seal's bitmap reset runs while the marked chunks are hashed.
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
import { HashEngine, fileChangedError, type FileDigest } from '../hashing/engine.js';
import { holeChunkMask } from '../hashing/extents.js';
import { identityOf, isRacy, sameIdentity, type FileIdentity } from '../hashing/identity.js';
import { qcow2Map, type ImageMap } from './image-map.js';
import { readQcow2Dirty, type Qcow2Dirty } from './qcow2-dirty.js';
import { NbdClient } from './nbd.js';
import {
  NbdExport,
  bitmapState,
  defaultQemuTools,
  imageInfo,
  type BitmapState,
  type QemuTools,
} from './qemu.js';

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
  /** Workers for passes read from the image map (default: a pool for this call). */
  engine?: HashEngine;
  /** 'nbd': every pass through qemu-nbd, never from the image map (tests compare both). */
  reader?: 'auto' | 'nbd';
  /**
   * A seal's bitmap reset (resolves false when it failed). Run while the dirty chunks are hashed when
   * the bitmap was read from the image file itself (no QEMU program holds the image then); otherwise
   * not run, and the caller resets after the pass. See GuestDigest.bitmapReset.
   */
  resetBitmap?: () => Promise<boolean>;
}

export interface GuestDigest extends FileDigest {
  /** How this digest was computed: from dirty chunks (`incremental`) or every chunk (`full`). */
  pass: {
    mode: 'incremental' | 'full';
    chunksHashed: number;
    why?: string;
    /**
     * Read from the image file through its map (`qemu-img map`), or through the qcow2 metadata read
     * by the agent itself (incremental passes of plain images), or through qemu-nbd (then mapFallback
     * says why).
     */
    reader: 'image-map' | 'qcow2-metadata' | 'nbd';
    mapFallback?: string;
  };
  /**
   * Set when opts.resetBitmap ran during the call (true: it succeeded); `identity` is then the
   * image's identity after the reset, checked unchanged at the end of the hashing.
   */
  bitmapReset?: boolean;
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
  const reset: ResetState = {};
  for (let attempt = 1, locked = 0; ; attempt++) {
    try {
      const g = await hashOnce(path, opts, reset);
      if (reset.ok !== undefined) g.bitmapReset = reset.ok;
      return g;
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

/** Whether opts.resetBitmap has run in this call (ok set): later attempts then read every chunk. */
interface ResetState {
  ok?: boolean;
}

export const isLockError = (e: unknown) =>
  /Failed to get .* lock|another process using the image/.test((e as Error)?.message ?? '');

/** One pass: what every reader needs. */
interface Pass {
  path: string;
  format: string;
  algorithm: DigestAlgorithm;
  tools: QemuTools;
  engine?: HashEngine;
  /** The image file before anything was read (the bitmap included). */
  before: BigIntStats;
  t0: number;
  startNs: bigint;
  /** Incremental: the previous chunk digests (n × 32 bytes) and the chunks the bitmap marks. */
  previous?: { digests: Uint8Array; dirty: Promise<number[]> };
  why?: string;
}

async function hashOnce(path: string, opts: GuestHashOptions, reset: ResetState): Promise<GuestDigest> {
  const t0 = performance.now();
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const tools = opts.tools ?? defaultQemuTools;
  const before: BigIntStats = await stat(path, { bigint: true });
  const cs = CHUNK_SIZE;
  let why: string | undefined;
  let previous: Pass['previous'];
  const algorithm = opts.algorithm ?? 'sha256';
  // once the bitmap is reset, it no longer covers the writes since `previous`
  const prev =
    opts.previous && (opts.previous.algorithm ?? 'sha256') === algorithm && reset.ok === undefined
      ? opts.previous
      : undefined;
  const pass = (): Pass => ({
    path,
    format: opts.format,
    algorithm,
    tools,
    before,
    t0,
    startNs,
    ...(opts.engine ? { engine: opts.engine } : {}),
  });
  /** Why the bitmap in `state` cannot stand for every write since `prev` (undefined: it can). */
  const unusable = (state: BitmapState, size?: number) =>
    state !== 'ok'
      ? `bitmap ${state}`
      : prev!.chunkSize !== cs || prev!.size !== size
        ? 'disk size changed'
        : undefined;
  const withDirty = (dirty: Promise<number[]>) => ({
    digests: Buffer.from(prev!.chunks.join(''), 'hex'),
    dirty,
  });
  const mapped = opts.format === 'qcow2' && opts.reader !== 'nbd';
  let bitmapWanted = !!(prev && opts.bitmap);
  if (prev && opts.bitmap && mapped) {
    // A plain image: the bitmap and the clusters it marks read from the file, no program started.
    const native = await readDirty(path, opts.bitmap, prev.size);
    if ('state' in native) {
      bitmapWanted = false;
      why = unusable(native.state, 'size' in native ? native.size : undefined);
      if (!why && 'dirty' in native) {
        const p = { ...pass(), previous: withDirty(Promise.resolve(native.dirty)) };
        const map = Promise.resolve({ size: native.size, extents: native.extents });
        // the bitmap is read: the seal's reset may run while the dirty chunks are hashed
        const run = opts.resetBitmap;
        const during = run ? () => resetDuring(path, run, reset) : undefined;
        const result = await hashMapped(p, map, 'qcow2-metadata', during);
        if (!('fallback' in result)) return result;
      }
    }
  }
  // The image's metadata, its map and the dirty bitmap's extents are read at the same time: three
  // programs that each open the image read-only (the bitmap's extents are dropped unless it is usable).
  const info = bitmapWanted || mapped ? imageInfo(path, opts.format, tools) : undefined;
  info?.catch(() => undefined);
  const map = mapped ? qcow2Map(path, Number(before.size), tools, info) : undefined;
  map?.catch(() => undefined);
  if (bitmapWanted && prev && opts.bitmap) {
    const dirty = dirtyChunks(path, opts.format, opts.bitmap, prev.size, tools);
    dirty.catch(() => undefined); // awaited by the reader when the bitmap is usable
    const i = await info!;
    why = unusable(bitmapState(i, opts.bitmap), i.virtualSize);
    if (!why) previous = withDirty(dirty);
  } else why ??= prev ? 'no trusted bitmap' : 'no previous digest';

  const p = pass();
  if (why) p.why = why;
  if (previous) p.previous = previous;
  let mapFallback: string | undefined;
  if (map) {
    const result = await hashMapped(p, map);
    if (!('fallback' in result)) return result;
    mapFallback = result.fallback;
  }
  return hashNbd(p, mapFallback);
}

/** Runs the seal's bitmap reset (recorded in `state` from its start); the file's identity after it. */
async function resetDuring(
  path: string,
  run: () => Promise<boolean>,
  state: ResetState,
): Promise<FileIdentity> {
  state.ok = false; // from here on the bitmap may be gone, whatever happens
  state.ok = await run().catch(() => false);
  return identityOf(await stat(path, { bigint: true }));
}

/** The dirty bitmap's state and, when usable, what it marks: read from the qcow2 file itself. */
async function readDirty(path: string, bitmap: string, size: number): Promise<Qcow2Dirty> {
  const fh = await open(path, 'r');
  try {
    return await readQcow2Dirty(fh, bitmap, CHUNK_SIZE, size);
  } finally {
    await fh.close();
  }
}

/** The chunks a dirty bitmap marks (read through qemu-nbd and nbdinfo). */
async function dirtyChunks(path: string, format: string, bitmap: string, size: number, tools: QemuTools) {
  const server = await NbdExport.start(path, format, { bitmap, tools });
  try {
    const extents = await server.map(`qemu:dirty-bitmap:${bitmap}`).catch(async (e: unknown) => {
      throw await server.explain(e, path);
    });
    return chunksOf(extents, (t) => (t & 1) === 1, size, CHUNK_SIZE);
  } finally {
    await server.stop();
  }
}

function result(
  p: Pass,
  size: number,
  digests: Uint8Array,
  stats: Omit<GuestDigest['stats'], 'ms'>,
  pass: Pick<GuestDigest['pass'], 'chunksHashed' | 'reader' | 'mapFallback'>,
): GuestDigest {
  return {
    path: p.path,
    size,
    chunkSize: CHUNK_SIZE,
    digest: composeFileDigest(digests, size, p.algorithm).toString('hex'),
    algorithm: p.algorithm,
    chunks: chunkDigestsHex(digests),
    identity: identityOf(p.before),
    reused: false,
    stable: !isRacy(p.before, p.startNs),
    stats: { ...stats, ms: performance.now() - p.t0 },
    pass: {
      mode: p.previous ? 'incremental' : 'full',
      ...pass,
      ...(p.why ? { why: p.why } : {}),
    },
  };
}

/** The guest content read through qemu-nbd, hashed on this thread. */
async function hashNbd(p: Pass, mapFallback?: string): Promise<GuestDigest> {
  const cs = CHUNK_SIZE;
  const { path, algorithm } = p;
  const server = await NbdExport.start(path, p.format, { tools: p.tools });
  let client: NbdClient | undefined;
  try {
    client = await NbdClient.connect(server.socket).catch(async (e: unknown) => {
      throw await server.explain(e, path);
    });
    const size = client.size;
    const n = chunkCount(size, cs);
    const digests = new Uint8Array(n * DIGEST_BYTES);
    let todo: number[];
    if (p.previous) {
      if (p.previous.digests.length !== digests.length) throw fileChangedError(path);
      digests.set(p.previous.digests);
      todo = await p.previous.dirty;
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
    if (!sameIdentity(identityOf(p.before), identityOf(after))) throw fileChangedError(path);
    const holeChunks = p.previous ? 0 : n - todo.length;
    return result(
      p,
      size,
      digests,
      { bytesRead, holeChunks, zeroChunks },
      { chunksHashed: todo.length, reader: 'nbd', ...(mapFallback ? { mapFallback } : {}) },
    );
  } finally {
    await client?.close().catch(() => undefined);
    await server.stop();
  }
}

/** The guest content read from the image file through its qcow2 map, or why it cannot be. */
async function hashMapped(
  p: Pass,
  mapping: Promise<ImageMap>,
  reader: 'image-map' | 'qcow2-metadata' = 'image-map',
  /**
   * A bitmap reset, started once the file is known to be the one the bitmap was read from and run
   * while the chunks are hashed: the file's identity after it.
   */
  reset?: () => Promise<FileIdentity>,
): Promise<GuestDigest | { fallback: string }> {
  const { path } = p;
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat({ bigint: true });
    if (!st.isFile()) return { fallback: 'not a regular file' };
    // The file the pass started with (and read the bitmap of), unchanged since.
    const identity = identityOf(p.before);
    if (!sameIdentity(identity, identityOf(st))) throw fileChangedError(path);
    const map = await mapping;
    if ('fallback' in map) return map;
    const n = chunkCount(map.size, CHUNK_SIZE);
    if (p.previous && p.previous.digests.length !== n * DIGEST_BYTES) throw fileChangedError(path);
    const dirty = await p.previous?.dirty;
    const own = p.engine?.chunkSize === CHUNK_SIZE ? undefined : new HashEngine({ qemuImg: false });
    const engine = own ?? p.engine!;
    const resetting = reset?.();
    let r: Awaited<ReturnType<HashEngine['hashExtents']>>;
    try {
      r = await engine.hashExtents(fh.fd, map.size, map.extents, p.algorithm, dirty);
    } finally {
      await own?.close();
      await resetting?.catch(() => undefined); // a retry must not meet qemu-img at work
    }
    // unchanged since the pass began, or since the reset (its own change) when one ran meanwhile
    const expected = resetting ? await resetting : identity;
    const after = [await fh.stat({ bigint: true }), await stat(path, { bigint: true })];
    if (!after.every((a) => sameIdentity(expected, identityOf(a)))) throw fileChangedError(path);
    let digests = r.digests;
    if (p.previous && dirty) {
      digests = Uint8Array.from(p.previous.digests);
      for (const i of dirty)
        digests.set(r.digests.subarray(i * DIGEST_BYTES, (i + 1) * DIGEST_BYTES), i * DIGEST_BYTES);
    }
    const done = result(
      p,
      map.size,
      digests,
      {
        bytesRead: r.bytesRead,
        holeChunks: p.previous ? 0 : r.holeChunks,
        zeroChunks: r.zeroChunks + (p.previous ? r.holeChunks : 0),
      },
      { chunksHashed: dirty ? dirty.length : n - r.holeChunks, reader },
    );
    return { ...done, identity: expected };
  } finally {
    await fh.close();
  }
}
