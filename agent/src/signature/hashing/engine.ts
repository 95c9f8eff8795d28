// HashEngine: chunked, parallel, sparse-aware file hashing with a fast identity re-check.
// Digest layout: see digest.ts. One engine owns a pool of worker threads reused across files; idle
// workers are unref'd (an idle engine never keeps the process alive); close() ends them.
// Block devices (LVM volumes, /dev/…) are hashed like files, but always densely (SEEK_DATA finds no
// holes in a device) and never re-checked from their identity (writes to a device do not touch the
// device node's mtime/ctime): every check reads them.
import { availableParallelism } from 'node:os';
import { close as fsClose, fstat, open as fsOpen, type BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  CHUNK_SIZE,
  DIGEST_BYTES,
  chunkCount,
  chunkDigestsHex,
  chunkLength,
  composeFileDigest,
  zeroChunkDigest,
  type DigestAlgorithm,
} from './digest.js';
import { blockDeviceSize } from './block-device.js';
import { holeChunkMask, holeExtents, zeroExtents } from './extents.js';
import { identityOf, isRacy, sameIdentity, type FileIdentity } from './identity.js';
import type { BatchReply, BatchRequest } from './protocol.js';
import { compactChunks, scatterList, zeroRanges, type MappedExtent } from './scatter.js';

const openP = promisify(fsOpen);
const closeP = promisify(fsClose);
const fstatP = promisify(fstat) as unknown as (fd: number, o: { bigint: true }) => Promise<BigIntStats>;

export interface HashEngineOptions {
  /** Worker threads (default: os.availableParallelism()). */
  workers?: number;
  /** Chunk size in bytes (default 1 MiB). */
  chunkSize?: number;
  /** Files at least this large are probed for holes (SEEK_DATA, else qemu-img; default 64 MiB). */
  sparseThreshold?: number;
  /** qemu-img binary (holes when the native module is absent), or false to never probe for holes. */
  qemuImg?: string | false;
  /** Largest number of chunks sent to a worker in one message (default 32). */
  batchChunks?: number;
  /** Digest used when a hashFile call names none (default 'sha256'). */
  algorithm?: DigestAlgorithm;
  /** Bytes per read syscall in the workers (default 256 KiB, see hash-worker.ts). */
  readBytes?: number;
  /**
   * The native module when it is built (default true): dense SHA-256 batches read through mmap,
   * holes found with SEEK_DATA. false: read() in JavaScript and `qemu-img map`. See native.ts.
   */
  native?: boolean;
}

export interface HashFileOptions {
  /** A previous result for this file: reused as is when the file's identity has not changed. */
  previous?: FileDigest | null;
  /** Hole probing: 'auto' (files ≥ sparseThreshold), 'always' or 'never'. */
  sparse?: 'auto' | 'always' | 'never';
  /** Digest algorithm (default: the engine's). `previous` is reused only if it used the same. */
  algorithm?: DigestAlgorithm;
}

export interface FileDigest {
  path: string;
  size: number;
  chunkSize: number;
  /** Absent in results stored before BLAKE3 existed: SHA-256. */
  algorithm?: DigestAlgorithm;
  /** Hex digest over the chunk digests and the size (see digest.ts). */
  digest: string;
  /** Hex digest of each chunk. */
  chunks: string[];
  identity: FileIdentity;
  /** True when this result was taken from `previous` without reading the file. */
  reused: boolean;
  /** False when the file was modified just before hashing: a later re-check then hashes again. */
  stable: boolean;
  stats: { bytesRead: number; holeChunks: number; zeroChunks: number; ms: number };
}

/** Indices of the chunks that differ between two digests of a file, including added/removed chunks. */
export function diffChunks(a: FileDigest, b: FileDigest): number[] {
  if (a.chunkSize !== b.chunkSize) throw new Error('diffChunks: different chunk sizes');
  if (algorithmOf(a) !== algorithmOf(b)) throw new Error('diffChunks: different digest algorithms');
  const out: number[] = [];
  const n = Math.max(a.chunks.length, b.chunks.length);
  for (let i = 0; i < n; i++) if (a.chunks[i] !== b.chunks[i]) out.push(i);
  return out;
}

export { sameIdentity };

export const algorithmOf = (d: Pick<FileDigest, 'algorithm'>): DigestAlgorithm => d.algorithm ?? 'sha256';

interface Job {
  fd: number;
  size: number;
  chunkSize: number;
  algorithm: DigestAlgorithm;
  digests: Uint8Array;
  pending: number;
  bytesRead: number;
  zeroChunks: number;
  /** Set when the content is a virtual disk mapped onto the file (see scatter.ts). */
  extents?: MappedExtent[];
  error?: Error;
  settle: () => void;
}

interface Batch {
  job: Job;
  first: number;
  count: number;
}

interface Slot {
  worker: Worker;
  inflight: Map<number, Batch>;
}

/** Batches kept in flight per worker, so a worker never waits for the main thread between batches. */
const DEPTH = 2;

/** The file changed under a hash (its identity moved): the caller hashes it again (EFILECHANGED). */
export function fileChangedError(path: string): NodeJS.ErrnoException {
  const err = new Error(`cannot hash ${path}: file changed while hashing`) as NodeJS.ErrnoException;
  err.code = 'EFILECHANGED';
  return err;
}

function fileError(path: string, e: unknown): Error {
  const cause = e as NodeJS.ErrnoException;
  const err = new Error(`cannot hash ${path}: ${cause.message}`, { cause }) as NodeJS.ErrnoException;
  if (cause.code) err.code = cause.code;
  return err;
}

export class HashEngine {
  readonly chunkSize: number;
  readonly workers: number;
  private readonly sparseThreshold: number;
  private readonly qemuImg: string | false;
  private readonly batchChunks: number;
  readonly algorithm: DigestAlgorithm;
  private readonly readBytes: number;
  private readonly native: boolean;
  private slots: Slot[] = [];
  private queue: Batch[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: HashEngineOptions = {}) {
    this.chunkSize = opts.chunkSize ?? CHUNK_SIZE;
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.sparseThreshold = opts.sparseThreshold ?? 64 * 1024 * 1024;
    this.qemuImg = opts.qemuImg ?? 'qemu-img';
    this.batchChunks = Math.max(1, opts.batchChunks ?? 32);
    this.algorithm = opts.algorithm ?? 'sha256';
    this.readBytes = opts.readBytes ?? 256 * 1024;
    this.native = opts.native ?? true;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 4096)
      throw new Error('chunkSize must be ≥ 4096');
  }

  async hashFile(path: string, opts: HashFileOptions = {}): Promise<FileDigest> {
    const t0 = performance.now();
    if (this.closed) throw new Error('hash engine is closed');
    const prev = opts.previous;
    const algorithm = opts.algorithm ?? this.algorithm;
    if (prev && prev.stable && prev.chunkSize === this.chunkSize && algorithmOf(prev) === algorithm) {
      let st: BigIntStats;
      try {
        st = await stat(path, { bigint: true });
      } catch (e) {
        throw fileError(path, e);
      }
      if (st.isFile() && sameIdentity(prev.identity, identityOf(st))) {
        const stats = { bytesRead: 0, holeChunks: 0, zeroChunks: 0, ms: performance.now() - t0 };
        return { ...prev, path, reused: true, stats };
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.hashOnce(path, algorithm, opts, t0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EFILECHANGED' || attempt >= 3) throw e;
      }
    }
  }

  private async hashOnce(
    path: string,
    algorithm: DigestAlgorithm,
    opts: HashFileOptions,
    t0: number,
  ): Promise<FileDigest> {
    const startNs = BigInt(Date.now()) * 1_000_000n;
    let fd: number;
    try {
      fd = await openP(path, 'r');
    } catch (e) {
      throw fileError(path, e);
    }
    try {
      const before = await fstatP(fd, { bigint: true });
      const block = before.isBlockDevice();
      if (!before.isFile() && !block) {
        throw fileError(path, new Error('not a regular file or block device'));
      }
      const size = block
        ? await blockDeviceSize(path, before).catch((e: unknown) => {
            throw fileError(path, e);
          })
        : Number(before.size);
      const cs = this.chunkSize;
      const n = chunkCount(size, cs);
      const sparse = opts.sparse ?? 'auto';
      let holes: Uint8Array | null = null;
      if (
        !block &&
        this.qemuImg &&
        n > 0 &&
        (sparse === 'always' || (sparse === 'auto' && size >= this.sparseThreshold))
      ) {
        const extents =
          (this.native ? holeExtents(fd, size) : null) ?? (await zeroExtents(path, this.qemuImg));
        if (extents) holes = holeChunkMask(extents, size, cs);
      }
      const digests = new Uint8Array(n * DIGEST_BYTES);
      let holeChunks = 0;
      if (holes) {
        for (let i = 0; i < n; i++) {
          if (holes[i]) {
            digests.set(zeroChunkDigest(chunkLength(i, size, cs), algorithm), i * DIGEST_BYTES);
            holeChunks++;
          }
        }
      }
      const job = await this.run(fd, size, algorithm, digests, holes).catch((e: unknown) => {
        throw fileError(path, e);
      });
      const after = await fstatP(fd, { bigint: true });
      const identity = identityOf(before);
      if (!sameIdentity(identity, identityOf(after))) throw fileChangedError(path);
      const chunks = chunkDigestsHex(digests);
      return {
        path,
        size,
        chunkSize: cs,
        algorithm,
        digest: composeFileDigest(digests, size, algorithm).toString('hex'),
        chunks,
        identity,
        reused: false,
        stable: !block && !isRacy(before, startNs),
        stats: {
          bytesRead: job.bytesRead,
          holeChunks,
          zeroChunks: job.zeroChunks,
          ms: performance.now() - t0,
        },
      };
    } finally {
      await closeP(fd).catch(() => undefined);
    }
  }

  /**
   * Chunk digests of a virtual disk of `size` bytes whose content lies in the open file `fd` as
   * `extents` (sorted, contiguous, covering [0, size), or at least the chunks in `only`): a qcow2
   * image's guest content read without QEMU. Only the chunks listed in `only` when given (the others'
   * digests stay zero bytes), hashed as one compact job (scatter.ts, compactChunks); chunks lying
   * wholly in zero extents are not read. The caller checks the file's identity.
   */
  async hashExtents(
    fd: number,
    size: number,
    extents: MappedExtent[],
    algorithm: DigestAlgorithm = this.algorithm,
    only?: number[],
  ): Promise<{ digests: Uint8Array; bytesRead: number; zeroChunks: number; holeChunks: number }> {
    if (this.closed) throw new Error('hash engine is closed');
    const cs = this.chunkSize;
    const n = chunkCount(size, cs);
    if (only) {
      const chunks = [...new Set(only)].filter((i) => i >= 0 && i < n).sort((a, b) => a - b);
      const compact = compactChunks(extents, chunks, size, cs);
      const r = await this.hashExtents(fd, compact.size, compact.extents, algorithm);
      const digests = new Uint8Array(n * DIGEST_BYTES);
      chunks.forEach((c, k) =>
        digests.set(r.digests.subarray(k * DIGEST_BYTES, (k + 1) * DIGEST_BYTES), c * DIGEST_BYTES),
      );
      return { ...r, digests };
    }
    const zero = holeChunkMask(zeroRanges(extents), size, cs);
    const skip = new Uint8Array(n);
    const digests = new Uint8Array(n * DIGEST_BYTES);
    let holeChunks = 0;
    for (let i = 0; i < n; i++) {
      skip[i] = zero[i] ? 1 : 0;
      if (!zero[i]) continue;
      digests.set(zeroChunkDigest(chunkLength(i, size, cs), algorithm), i * DIGEST_BYTES);
      holeChunks++;
    }
    const job = await this.run(fd, size, algorithm, digests, skip, extents);
    return { digests, bytesRead: job.bytesRead, zeroChunks: job.zeroChunks, holeChunks };
  }

  /** Queues the non-hole chunks of a file as batches; resolves once every batch has come back. */
  private run(
    fd: number,
    size: number,
    algorithm: DigestAlgorithm,
    digests: Uint8Array,
    holes: Uint8Array | null,
    extents?: MappedExtent[],
  ): Promise<Job> {
    const n = digests.length / DIGEST_BYTES;
    return new Promise<Job>((resolve, reject) => {
      const job: Job = {
        fd,
        size,
        chunkSize: this.chunkSize,
        algorithm,
        digests,
        pending: 0,
        bytesRead: 0,
        zeroChunks: 0,
        ...(extents ? { extents } : {}),
        settle: () => (job.error ? reject(job.error) : resolve(job)),
      };
      let todo = 0;
      for (let i = 0; i < n; i++) if (!holes || !holes[i]) todo++;
      // Guided self-scheduling: big batches first, smaller towards the end so workers finish together.
      let i = 0;
      while (i < n) {
        if (holes && holes[i]) {
          i++;
          continue;
        }
        const want = Math.min(this.batchChunks, Math.max(1, Math.ceil(todo / (2 * this.workers))));
        let count = 0;
        while (i + count < n && count < want && !(holes && holes[i + count])) count++;
        this.queue.push({ job, first: i, count });
        job.pending++;
        todo -= count;
        i += count;
      }
      if (job.pending === 0) return resolve(job);
      this.dispatch();
    });
  }

  private spawn(): Slot {
    // Workers inherit the process's execArgv; --input-type (node -e scripts) is refused for a file.
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), { execArgv });
    const slot: Slot = { worker, inflight: new Map() };
    worker.on('message', (reply: BatchReply) => this.onReply(slot, reply));
    worker.on('error', (e) => this.onDeath(slot, e));
    worker.on('exit', (code) => this.onDeath(slot, new Error(`hash worker exited (code ${code})`)));
    return slot;
  }

  private dispatch(): void {
    if (this.closed) return;
    while (this.slots.length < this.workers && this.queue.length > 0) this.slots.push(this.spawn());
    for (let d = 0; d < DEPTH && this.queue.length > 0; d++) {
      for (const slot of this.slots) {
        if (this.queue.length === 0) break;
        if (slot.inflight.size > d) continue;
        const batch = this.queue.shift()!;
        const id = this.nextId++;
        slot.inflight.set(id, batch);
        const { fd, size, chunkSize, algorithm } = batch.job;
        const req: BatchRequest = {
          id,
          fd,
          size,
          chunkSize,
          first: batch.first,
          count: batch.count,
          algorithm,
          readBytes: this.readBytes,
          mapped: this.native,
        };
        if (batch.job.extents) {
          const from = batch.first * chunkSize;
          req.scatter = scatterList(batch.job.extents, from, Math.min(size, from + batch.count * chunkSize));
        }
        slot.worker.postMessage(req);
      }
    }
    for (const slot of this.slots) {
      if (slot.inflight.size > 0) slot.worker.ref();
      else slot.worker.unref();
    }
  }

  private onReply(slot: Slot, reply: BatchReply): void {
    const batch = slot.inflight.get(reply.id);
    if (!batch) return;
    slot.inflight.delete(reply.id);
    const job = batch.job;
    if (reply.ok) {
      job.digests.set(reply.digests, batch.first * DIGEST_BYTES);
      job.bytesRead += reply.bytesRead;
      job.zeroChunks += reply.zeroChunks;
    } else {
      const err = new Error(reply.message) as NodeJS.ErrnoException;
      if (reply.code) err.code = reply.code;
      this.fail(job, err);
    }
    this.done(job);
    this.dispatch();
  }

  private onDeath(slot: Slot, err: Error): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    this.slots.splice(idx, 1);
    const cause = this.closed
      ? new Error('hash engine closed')
      : new Error(`hash worker failed: ${err.message}`);
    for (const batch of slot.inflight.values()) {
      this.fail(batch.job, cause);
      this.done(batch.job);
    }
    slot.inflight.clear();
    this.dispatch();
  }

  /** Marks a job failed and drops its queued batches; it settles once its in-flight batches return. */
  private fail(job: Job, err: Error): void {
    job.error ??= err;
    const before = this.queue.length;
    this.queue = this.queue.filter((b) => b.job !== job);
    job.pending -= before - this.queue.length;
  }

  private done(job: Job): void {
    if (--job.pending === 0) job.settle();
  }

  /** Ends the workers; hashFile calls still running reject. The engine cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const batch of this.queue.splice(0)) {
      batch.job.error ??= new Error('hash engine closed');
      this.done(batch.job);
    }
    await Promise.all(
      this.slots.map((s) => {
        s.worker.ref(); // an unref'd worker's terminate() would not keep the process alive until it ends
        return s.worker.terminate();
      }),
    );
  }
}
