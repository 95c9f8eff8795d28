// Content laid out elsewhere than at the file's own offsets: a virtual disk (a qcow2 image's guest
// content) described as extents, each either at some offset of the image file or reading as zeros.
// The engine sends each batch of chunks a scatter list: the (file offset, length) pairs that make up
// those chunks in order, offset -1 for zeros.

export interface MappedExtent {
  /** Offset in the virtual disk. */
  start: number;
  length: number;
  /** Offset of these bytes in the file, or null when they read as zeros. */
  host: number | null;
}

/** Index of the extent holding `offset` (extents sorted, contiguous). */
function extentAt(extents: MappedExtent[], offset: number): number {
  let lo = 0;
  let hi = extents.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (extents[mid]!.start <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The scatter list of the virtual range [from, to), adjacent pieces merged. */
export function scatterList(extents: MappedExtent[], from: number, to: number): Float64Array {
  const out: number[] = [];
  for (let i = extentAt(extents, from), pos = from; pos < to; i++) {
    const e = extents[i];
    if (!e || e.start > pos) throw new Error(`no mapping for offset ${pos}`);
    const skip = pos - e.start;
    const len = Math.min(e.start + e.length, to) - pos;
    if (len <= 0) continue;
    const host = e.host === null ? -1 : e.host + skip;
    const n = out.length;
    const prevHost = n ? out[n - 2]! : NaN;
    if (n && ((host < 0 && prevHost < 0) || (host >= 0 && prevHost >= 0 && prevHost + out[n - 1]! === host)))
      out[n - 1] += len;
    else out.push(host, len);
    pos += len;
  }
  return Float64Array.from(out);
}

/** Adds [start, start + length) at `host` to sorted extents, merged with the last when it continues it. */
export function appendExtent(out: MappedExtent[], start: number, length: number, host: number | null): void {
  const last = out[out.length - 1];
  const continues =
    last &&
    last.start + last.length === start &&
    (last.host === null ? host === null : host !== null && last.host + last.length === host);
  if (continues) last.length += length;
  else out.push({ start, length, host });
}

/** Zero extents as the hole list holeChunkMask takes (sorted, merged). */
export function zeroRanges(extents: MappedExtent[]): { start: number; length: number }[] {
  const out: { start: number; length: number }[] = [];
  for (const e of extents) {
    if (e.host !== null) continue;
    const last = out[out.length - 1];
    if (last && last.start + last.length === e.start) last.length += e.length;
    else out.push({ start: e.start, length: e.length });
  }
  return out;
}

/**
 * The listed chunks (sorted, of `chunkSize` bytes, of a disk of `size` bytes) laid end to end as one
 * smaller disk: hashing them is then one job of contiguous chunks (batches of many chunks) instead of
 * one batch per scattered chunk. Chunk k of the result is chunk `chunks[k]`, with the same length
 * (only the disk's last chunk can be short, and it comes last).
 */
export function compactChunks(
  extents: MappedExtent[],
  chunks: number[],
  size: number,
  chunkSize: number,
): { size: number; extents: MappedExtent[] } {
  const out: MappedExtent[] = [];
  let pos = 0;
  for (const c of chunks) {
    const from = c * chunkSize;
    const to = Math.min(size, from + chunkSize);
    for (let i = extentAt(extents, from), at = from; at < to; i++) {
      const e = extents[i];
      if (!e || e.start > at) throw new Error(`no mapping for offset ${at}`);
      const len = Math.min(e.start + e.length, to) - at;
      if (len <= 0) continue;
      appendExtent(out, pos, len, e.host === null ? null : e.host + (at - e.start));
      pos += len;
      at += len;
    }
  }
  return { size: pos, extents: out };
}
