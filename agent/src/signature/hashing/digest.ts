// Digest composition for the agent's file hashing.
//
// A file is cut into fixed chunks of CHUNK_SIZE bytes (1 MiB; the last chunk may be shorter, an
// empty file has zero chunks). With algorithm H (SHA-256 or BLAKE3, both 32-byte digests), each
// chunk digest is H of the chunk's bytes, and the file digest is
//
//   H( chunkDigest[0] || chunkDigest[1] || … || chunkDigest[n-1] || uint64_be(fileSize) )
//
// i.e. the raw 32-byte chunk digests concatenated in order, followed by the file size as an 8-byte
// big-endian integer. The size suffix tells apart files whose chunk lists could otherwise collide
// (e.g. the empty file). The per-chunk digests let two versions of a file be compared chunk by chunk.
// BLAKE3 is plain (unkeyed) BLAKE3 with its default 32-byte output, i.e. what `b3sum` prints.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

export const CHUNK_SIZE = 1024 * 1024;
export const DIGEST_BYTES = 32;

export const DIGEST_ALGORITHMS = ['sha256', 'blake3'] as const;
export type DigestAlgorithm = (typeof DIGEST_ALGORITHMS)[number];

export function isDigestAlgorithm(v: unknown): v is DigestAlgorithm {
  return v === 'sha256' || v === 'blake3';
}

/** The part of @napi-rs/blake-hash used here (prebuilt BLAKE3 from the official Rust crate). */
interface Blake3Module {
  blake3(input: Uint8Array): Buffer;
  /** Incremental BLAKE3 (the hash workers feed it piece by piece). */
  Blake3Hasher: new () => { update(data: Uint8Array): unknown; digestBuffer(): Buffer };
}

let blake3Module: Blake3Module | undefined;

/**
 * Loaded on first use, so a SHA-256 fleet never needs the native module. createRequire (not a
 * static import): the package is CommonJS with a per-platform binary sub-package.
 */
export function blake3(): Blake3Module {
  if (!blake3Module) {
    try {
      blake3Module = createRequire(import.meta.url)('@napi-rs/blake-hash') as Blake3Module;
    } catch (e) {
      throw new Error(`BLAKE3 is not available (@napi-rs/blake-hash): ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  return blake3Module;
}

/** One-shot digest of `data` (32 bytes). */
export function digestOf(algorithm: DigestAlgorithm, data: Uint8Array): Buffer {
  if (algorithm === 'blake3') return blake3().blake3(data);
  return createHash('sha256').update(data).digest();
}

const zeroDigests = new Map<string, Buffer>();

/** Digest of `length` zero bytes (cached): the digest of a chunk lying entirely in a hole. */
export function zeroChunkDigest(length: number, algorithm: DigestAlgorithm = 'sha256'): Buffer {
  const key = `${algorithm}:${length}`;
  let d = zeroDigests.get(key);
  if (!d) {
    d = digestOf(algorithm, Buffer.alloc(length));
    if (zeroDigests.size > 64) zeroDigests.clear();
    zeroDigests.set(key, d);
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

/** Concatenated raw 32-byte chunk digests as one hex string per chunk (FileDigest.chunks). */
export function chunkDigestsHex(concatenated: Uint8Array): string[] {
  const hex = Buffer.from(concatenated.buffer, concatenated.byteOffset, concatenated.byteLength).toString(
    'hex',
  );
  const out = new Array<string>(hex.length / 64);
  for (let i = 0; i < out.length; i++) out[i] = hex.slice(i * 64, i * 64 + 64);
  return out;
}

/** File digest from the concatenated raw chunk digests (n × 32 bytes) and the file size. */
export function composeFileDigest(
  concatenatedChunkDigests: Uint8Array,
  size: number,
  algorithm: DigestAlgorithm = 'sha256',
): Buffer {
  const input = Buffer.allocUnsafe(concatenatedChunkDigests.length + 8);
  input.set(concatenatedChunkDigests, 0);
  input.writeBigUInt64BE(BigInt(size), concatenatedChunkDigests.length);
  return digestOf(algorithm, input);
}
