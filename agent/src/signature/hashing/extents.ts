// Hole detection: SEEK_DATA/SEEK_HOLE through the native module (native.ts; Node has no lseek), else
// `qemu-img map -f raw --output=json FILE` (the same underneath, one program start): entries with
// "data": false are holes; "zero": true also reads as zeros. Any failure (qemu-img missing, odd
// output) yields null and the caller treats the file as dense.
import { execFile } from 'node:child_process';
import { nativeHashing } from './native.js';

export interface Extent {
  start: number;
  length: number;
}

interface MapEntry {
  start: number;
  length: number;
  data?: boolean;
  zero?: boolean;
}

/** The holes of the open file `fd` of `size` bytes (sorted, merged), or null (see native.ts). */
export function holeExtents(fd: number, size: number): Extent[] | null {
  let list: Float64Array | null | undefined;
  try {
    list = nativeHashing()?.holes(fd, size);
  } catch {
    return null;
  }
  if (!list) return null;
  const out: Extent[] = [];
  for (let i = 0; i < list.length; i += 2) out.push({ start: list[i]!, length: list[i + 1]! });
  return out;
}

/** Byte ranges that read as zeros, merged and sorted, or null when they cannot be determined. */
export function zeroExtents(
  path: string,
  qemuImg = 'qemu-img',
  timeoutMs = 30_000,
): Promise<Extent[] | null> {
  return new Promise((resolve) => {
    execFile(
      qemuImg,
      ['map', '-f', 'raw', '--output=json', path],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout) => {
        if (err) return resolve(null);
        try {
          resolve(parseZeroExtents(JSON.parse(stdout) as unknown));
        } catch {
          resolve(null);
        }
      },
    );
  });
}

export function parseZeroExtents(entries: unknown): Extent[] | null {
  if (!Array.isArray(entries)) return null;
  const out: Extent[] = [];
  for (const e of entries as MapEntry[]) {
    if (typeof e?.start !== 'number' || typeof e.length !== 'number') return null;
    if (!(e.data === false || e.zero === true)) continue;
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length });
  }
  return out;
}

/** Marks (1) the chunks lying entirely inside zero extents. Extents must be sorted and merged. */
export function holeChunkMask(extents: Extent[], size: number, chunkSize: number): Uint8Array {
  const n = Math.ceil(size / chunkSize);
  const mask = new Uint8Array(n);
  for (const { start, length } of extents) {
    const end = Math.min(start + length, size);
    for (let i = Math.ceil(start / chunkSize); i < n; i++) {
      const chunkEnd = Math.min((i + 1) * chunkSize, size);
      if (chunkEnd > end) break;
      mask[i] = 1;
    }
  }
  return mask;
}
