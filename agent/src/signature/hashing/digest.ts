// Digest composition for the agent's file hashing.
//
// A file is cut into fixed chunks of CHUNK_SIZE bytes (1 MiB; the last chunk may be shorter, an
// empty file has zero chunks). Each chunk digest is SHA-256 of the chunk's bytes. The file digest is
//
//   SHA-256( chunkDigest[0] || chunkDigest[1] || … || chunkDigest[n-1] || uint64_be(fileSize) )
//
// i.e. the raw 32-byte chunk digests concatenated in order, followed by the file size as an 8-byte
// big-endian integer. The size suffix tells apart files whose chunk lists could otherwise collide
// (e.g. the empty file). The per-chunk digests let two versions of a file be compared chunk by chunk.
import { createHash } from 'node:crypto';

export const CHUNK_SIZE = 1024 * 1024;
export const DIGEST_BYTES = 32;

const zeroDigests = new Map<number, Buffer>();

/** SHA-256 of `length` zero bytes (cached): the digest of a chunk lying entirely in a hole. */
export function zeroChunkDigest(length: number): Buffer {
  let d = zeroDigests.get(length);
  if (!d) {
    d = createHash('sha256').update(Buffer.alloc(length)).digest();
    if (zeroDigests.size > 64) zeroDigests.clear();
    zeroDigests.set(length, d);
  }
  return d;
}

/** Number of chunks of a file of `size` bytes. */
export function chunkCount(size: number, chunkSize = CHUNK_SIZE): number {
  return Math.ceil(size / chunkSize);
}

/** Length of chunk `index` of a file of `size` bytes. */
export function chunkLength(index: number, size: number, chunkSize = CHUNK_SIZE): number {
  return Math.min(chunkSize, size - index * chunkSize);
}

/** File digest from the concatenated raw chunk digests (n × 32 bytes) and the file size. */
export function composeFileDigest(concatenatedChunkDigests: Uint8Array, size: number): Buffer {
  const suffix = Buffer.alloc(8);
  suffix.writeBigUInt64BE(BigInt(size));
  return createHash('sha256').update(concatenatedChunkDigests).update(suffix).digest();
}
