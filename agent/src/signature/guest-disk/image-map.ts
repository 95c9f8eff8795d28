// Where a qcow2 image keeps its guest content, from `qemu-img map --output=json`: each guest extent
// is either at a known offset of the image file or reads as zeros. A full guest-content pass then
// reads the image file itself with the engine's workers, as fast as a raw file, instead of going
// through qemu-nbd. Anything not that plain (a backing chain, an external data file, encryption,
// compressed clusters — these have no offset) gives a reason, and the caller reads through qemu-nbd.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MappedExtent } from '../hashing/scatter.js';
import { imageInfo, toolError, type ImageInfo, type QemuTools } from './qemu.js';

const execFileP = promisify(execFile);

interface MapEntry {
  start: number;
  length: number;
  depth: number;
  zero: boolean;
  data: boolean;
  offset?: number;
}

export type ImageMap = { size: number; extents: MappedExtent[] } | { fallback: string };

/**
 * The guest extents of a qcow2 image whose file is `fileSize` bytes. Throws only for a failure the
 * NBD path would meet as well (the image locked by a running QEMU, an unreadable image).
 */
export async function qcow2Map(
  path: string,
  fileSize: number,
  tools: QemuTools,
  imageInfoRead: Promise<ImageInfo> = imageInfo(path, 'qcow2', tools),
): Promise<ImageMap> {
  // Not -U: the image's lock keeps a QEMU from opening it for writing while the map is taken.
  const map = execFileP(tools.qemuImg, ['map', '--output=json', '-f', 'qcow2', path], {
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024, // ~500,000 extents; a more fragmented image is read through qemu-nbd
  });
  map.catch(() => undefined); // awaited below unless the info already rules the map out
  const info = await imageInfoRead;
  if (info.backingFile) return { fallback: 'backing file' };
  if (info.dataFile) return { fallback: 'external data file' };
  if (info.encrypted) return { fallback: 'encrypted' };
  let stdout: string;
  try {
    ({ stdout } = await map);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
      return { fallback: 'map too large' };
    throw toolError(`qemu-img map ${path}`, e);
  }
  return parseQcow2Map(JSON.parse(stdout) as unknown, info.virtualSize, fileSize);
}

export function parseQcow2Map(entries: unknown, size: number, fileSize: number): ImageMap {
  if (!Array.isArray(entries)) return { fallback: 'unexpected map output' };
  const extents: MappedExtent[] = [];
  let pos = 0;
  for (const e of entries as MapEntry[]) {
    if (typeof e?.start !== 'number' || typeof e.length !== 'number' || e.start !== pos)
      return { fallback: 'map does not cover the disk in order' };
    if (e.depth !== 0) return { fallback: 'backing file' };
    pos += e.length;
    if (e.zero === true) extents.push({ start: e.start, length: e.length, host: null });
    else if (e.data !== true) return { fallback: 'unallocated extent that is not zero' };
    else if (typeof e.offset !== 'number') return { fallback: 'extent without offset (compressed)' };
    else if (e.offset + e.length > fileSize) return { fallback: 'extent past the end of the file' };
    else extents.push({ start: e.start, length: e.length, host: e.offset });
  }
  if (pos !== size) return { fallback: 'map does not cover the disk' };
  return { size, extents };
}
