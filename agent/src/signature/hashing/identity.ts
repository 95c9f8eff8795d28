// File identity for the fast re-check: if (dev, ino, size, mtime, ctime) are unchanged since a file
// was hashed, its content is taken as unchanged and the previous digest is reused without reading.
// ctime cannot be set from user space (utimes itself bumps it), so a content change that restores
// the mtime is still seen.
import type { BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';

/** All fields are decimal strings (JSON-safe; inode numbers and nanosecond times exceed 2^53). */
export interface FileIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

export function identityOf(st: BigIntStats): FileIdentity {
  return {
    dev: st.dev.toString(),
    ino: st.ino.toString(),
    size: st.size.toString(),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
  };
}

export function sameIdentity(
  a: FileIdentity | { identity: FileIdentity },
  b: FileIdentity | { identity: FileIdentity },
): boolean {
  const x = 'identity' in a ? a.identity : a;
  const y = 'identity' in b ? b.identity : b;
  return (
    x.dev === y.dev &&
    x.ino === y.ino &&
    x.size === y.size &&
    x.mtimeNs === y.mtimeNs &&
    x.ctimeNs === y.ctimeNs
  );
}

/**
 * Timestamps are taken from a coarse kernel clock (one tick, a few ms), so a write landing in the
 * same tick as the last modification before hashing started leaves mtime/ctime unchanged. A file
 * modified less than this long before hashing began is "racy": its digest is correct for what was
 * read, but the identity is not trusted for a later fast re-check (same idea as git's racy-clean).
 */
export const RACY_WINDOW_NS = 50_000_000n;

export function isRacy(st: BigIntStats, hashStartNs: bigint): boolean {
  return lastChangeNs(st) + RACY_WINDOW_NS >= hashStartNs;
}

const lastChangeNs = (st: BigIntStats) => (st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs);

/**
 * Waits until none of `paths` is racy for a hash that starts then (at most RACY_WINDOW_NS and a tick):
 * a seal right after libvirt stopped an instance (and restored the disks' owners, which bumps ctime)
 * would otherwise take a digest whose identity is not trusted, and the next start would hash again.
 */
export async function settle(paths: string[]): Promise<void> {
  let last = 0n;
  for (const path of paths) {
    const st = await stat(path, { bigint: true }).catch(() => undefined);
    if (st && lastChangeNs(st) > last) last = lastChangeNs(st);
  }
  const waitNs = last + RACY_WINDOW_NS + TICK_NS - BigInt(Date.now()) * 1_000_000n;
  if (waitNs > 0n) await new Promise((r) => setTimeout(r, Math.ceil(Number(waitNs) / 1e6)));
}

/** More than one tick of the coarse clock file times come from. */
const TICK_NS = 10_000_000n;
