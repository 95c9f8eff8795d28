// Hash worker: reads its own chunks of the shared file descriptor with positional reads into one
// reused buffer (several chunks per read syscall) and returns their SHA-256 digests. All-zero chunks
// are recognised with a memcmp against a zero buffer, much cheaper than hashing them.
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { DIGEST_BYTES, zeroChunkDigest } from './digest.js';
import type { BatchReply, BatchRequest } from './protocol.js';

/**
 * Bytes read per syscall (rounded down to whole chunks, at least one chunk). 1 MiB keeps the buffer
 * in the core's L2 cache between the kernel's copy and SHA-256; larger reads measured no faster.
 */
const READ_BYTES = 1024 * 1024;

let buffer = Buffer.alloc(0);
let zeros = Buffer.alloc(0);

function hashBatch(req: BatchRequest): BatchReply {
  const { fd, size, chunkSize, first, count } = req;
  const perRead = Math.max(1, Math.floor(READ_BYTES / chunkSize));
  if (buffer.length < perRead * chunkSize) buffer = Buffer.allocUnsafeSlow(perRead * chunkSize);
  if (zeros.length < chunkSize) zeros = Buffer.alloc(chunkSize);
  const digests = new Uint8Array(count * DIGEST_BYTES);
  let bytesRead = 0;
  let zeroChunks = 0;
  for (let i = 0; i < count; i += perRead) {
    const offset = (first + i) * chunkSize;
    const want = Math.min(Math.min(perRead, count - i) * chunkSize, size - offset);
    let got = 0;
    while (got < want) {
      const n = readSync(fd, buffer, got, want - got, offset + got);
      if (n === 0) {
        const err = new Error(
          `file shrank while hashing: end of file at ${offset + got}, expected ${size} bytes`,
        );
        (err as NodeJS.ErrnoException).code = 'EFILECHANGED';
        throw err;
      }
      got += n;
    }
    bytesRead += got;
    for (let c = 0; c * chunkSize < got; c++) {
      const len = Math.min(chunkSize, got - c * chunkSize);
      const chunk = buffer.subarray(c * chunkSize, c * chunkSize + len);
      let digest: Buffer;
      if (chunk[0] === 0 && chunk.equals(zeros.subarray(0, len))) {
        digest = zeroChunkDigest(len);
        zeroChunks++;
      } else {
        digest = createHash('sha256').update(chunk).digest();
      }
      digests.set(digest, (i + c) * DIGEST_BYTES);
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
