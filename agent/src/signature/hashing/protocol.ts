// Messages between the HashEngine (main thread) and its hash workers. The file descriptor is opened
// by the engine and shared: worker threads live in the same process, so they read the same open file
// with positional reads. Only the chunk digests travel back (transferred, not copied).
import type { DigestAlgorithm } from './digest.js';

/** Hash chunks [first, first + count) of the open file `fd` of `size` bytes (or of a virtual disk, see scatter). */
export interface BatchRequest {
  id: number;
  fd: number;
  size: number;
  chunkSize: number;
  first: number;
  count: number;
  algorithm: DigestAlgorithm;
  /** Bytes per read syscall; each piece is hashed right after its read, while still in L2. */
  readBytes: number;
  /** Dense SHA-256 through the native mmap reader when it is built (no copy out of the page cache). */
  mapped: boolean;
  /**
   * When the chunks are not the file's own bytes at their offsets (a qcow2 image's guest content):
   * (file offset, length) pairs making up chunks [first, first + count) in order; offset -1 = zeros.
   */
  scatter?: Float64Array;
}

export type BatchReply =
  | { id: number; ok: true; digests: Uint8Array; bytesRead: number; zeroChunks: number }
  | { id: number; ok: false; message: string; code?: string };
