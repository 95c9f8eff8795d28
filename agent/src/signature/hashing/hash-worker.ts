// Hash worker: reads its own chunks of the shared file descriptor with positional reads into one
// reused buffer and returns their digests. Each piece read is hashed at once (incremental update),
// so the bytes the kernel just copied are still in this core's L2 cache when the hash reads them:
// reading a whole 1 MiB chunk before hashing it spills the buffer out of a 1.25 MiB L2 (the page
// cache source streams through it too) and costs a second trip through L3.
// All-zero pieces are recognised with a memcmp against a zero buffer, much cheaper than hashing;
// a chunk made only of zero pieces takes the cached digest of a zero chunk.
// Dense SHA-256 batches go to the native module when it is built (agent/native/mapped-sha256.c):
// it maps the file instead of copying it out of the page cache, with the same digests.
import { createHash, type Hash } from 'node:crypto';
import { fstatSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DIGEST_BYTES, blake3, zeroChunkDigest, type DigestAlgorithm } from './digest.js';
import { nativeHashing } from './native.js';
import type { BatchReply, BatchRequest } from './protocol.js';

interface Incremental {
  update(data: Uint8Array): unknown;
  digestBuffer(): Buffer;
}

function hasher(algorithm: DigestAlgorithm): Incremental {
  if (algorithm === 'blake3') return new (blake3().Blake3Hasher)();
  const h: Hash = createHash('sha256');
  return { update: (d) => h.update(d), digestBuffer: () => h.digest() };
}

let buffer = Buffer.alloc(0);
let zeros = Buffer.alloc(0);

function readFully(fd: number, into: Buffer, at: number, want: number, offset: number): void {
  let got = 0;
  while (got < want) {
    const n = readSync(fd, into, at + got, want - got, offset + got);
    if (n === 0) {
      const err = new Error(`file shrank while hashing: end of file at ${offset + got}`);
      (err as NodeJS.ErrnoException).code = 'EFILECHANGED';
      throw err;
    }
    got += n;
  }
}

/** Fills into[0, want) with the batch's next bytes. */
type Source = (into: Buffer, want: number) => void;

function fileSource(fd: number, start: number): Source {
  let pos = start;
  return (into, want) => {
    readFully(fd, into, 0, want, pos);
    pos += want;
  };
}

/** The bytes of a scatter list (see protocol.ts), in order. */
function scatterSource(fd: number, list: Float64Array): Source {
  let s = 0;
  let used = 0; // bytes of pair s already consumed
  return (into, want) => {
    for (let got = 0; got < want;) {
      if (2 * s >= list.length) throw new Error('scatter list shorter than its chunks');
      const host = list[2 * s]!;
      const n = Math.min(list[2 * s + 1]! - used, want - got);
      if (host < 0) into.fill(0, got, got + n);
      else readFully(fd, into, got, n, host + used);
      got += n;
      used += n;
      if (used === list[2 * s + 1]) {
        s++;
        used = 0;
      }
    }
  };
}

/** A dense SHA-256 batch through mmap; undefined when the native reader cannot take it. */
function hashMappedBatch(req: BatchRequest): BatchReply | undefined {
  const native = nativeHashing();
  if (!native) return undefined;
  const { fd, size, chunkSize, first, count } = req;
  const start = first * chunkSize;
  const length = Math.min(count * chunkSize, size - start);
  const digests = new Uint8Array(count * DIGEST_BYTES);
  const zero = new Uint8Array(count);
  try {
    native.sha256Chunks(fd, start, length, chunkSize, digests, zero);
  } catch (e) {
    // SIGBUS on a mapped page: the file shrank, or the page could not be read (then read() says why)
    const st = fstatSync(fd);
    const shrank =
      (e as NodeJS.ErrnoException).code === 'EFILECHANGED' && st.isFile() && st.size < start + length;
    if (shrank) throw e;
    return undefined; // a file that cannot be mapped (or an odd chunk size): read()
  }
  let zeroChunks = 0;
  for (let c = 0; c < count; c++) {
    if (!zero[c]) continue;
    digests.set(zeroChunkDigest(Math.min(chunkSize, size - (first + c) * chunkSize)), c * DIGEST_BYTES);
    zeroChunks++;
  }
  return { id: req.id, ok: true, digests, bytesRead: length, zeroChunks };
}

function hashBatch(req: BatchRequest): BatchReply {
  if (req.mapped && req.algorithm === 'sha256' && !req.scatter) {
    const reply = hashMappedBatch(req);
    if (reply) return reply;
  }
  const { fd, size, chunkSize, first, count, algorithm } = req;
  const piece = Math.max(4096, Math.min(req.readBytes, chunkSize));
  if (buffer.length < piece) buffer = Buffer.allocUnsafeSlow(piece);
  if (zeros.length < piece) zeros = Buffer.alloc(piece);
  const digests = new Uint8Array(count * DIGEST_BYTES);
  let bytesRead = 0;
  let zeroChunks = 0;
  const read = req.scatter ? scatterSource(fd, req.scatter) : fileSource(fd, first * chunkSize);
  for (let c = 0; c < count; c++) {
    const start = (first + c) * chunkSize;
    const len = Math.min(chunkSize, size - start);
    let h: Incremental | undefined;
    let zeroPrefix = 0; // leading zero bytes of this chunk not yet fed to a hasher
    for (let o = 0; o < len; o += piece) {
      const want = Math.min(piece, len - o);
      read(buffer, want);
      const data = buffer.subarray(0, want);
      if (!h && data[0] === 0 && data.equals(zeros.subarray(0, want))) {
        zeroPrefix += want;
        continue;
      }
      if (!h) {
        h = hasher(algorithm);
        for (let z = 0; z < zeroPrefix; z += zeros.length)
          h.update(zeros.subarray(0, Math.min(zeros.length, zeroPrefix - z)));
      }
      h.update(data);
    }
    bytesRead += len;
    if (h) digests.set(h.digestBuffer(), c * DIGEST_BYTES);
    else {
      digests.set(zeroChunkDigest(len, algorithm), c * DIGEST_BYTES);
      zeroChunks++;
    }
  }
  return { id: req.id, ok: true, digests, bytesRead, zeroChunks };
}

parentPort?.on('message', (req: BatchRequest) => {
  let reply: BatchReply;
  try {
    reply = hashBatch(req);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    reply = { id: req.id, ok: false, message: err.message, code: err.code };
  }
  parentPort!.postMessage(reply, reply.ok ? [reply.digests.buffer as ArrayBuffer] : []);
});
