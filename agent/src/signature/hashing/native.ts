// The agent's one native module (agent/native/mapped-sha256.c, built by `npm run build`): dense
// SHA-256 through mmap, and a file's holes through SEEK_DATA/SEEK_HOLE. null when it is not built:
// the callers then read with read() and ask `qemu-img map` for holes.
import { createRequire } from 'node:module';

export interface NativeHashing {
  /** SHA-256 of [offset, offset + length) of fd as chunks; zeroFlags[i] = 1 for a chunk of zeros. */
  sha256Chunks(
    fd: number,
    offset: number,
    length: number,
    chunkSize: number,
    digests: Uint8Array,
    zeroFlags: Uint8Array,
  ): void;
  /** [start, length, …] of the holes of [0, size), or null when the file system cannot say. */
  holes(fd: number, size: number): Float64Array | null;
}

let loaded: NativeHashing | null | undefined;

export function nativeHashing(): NativeHashing | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('../../../native/mapped-sha256.node') as NativeHashing;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
