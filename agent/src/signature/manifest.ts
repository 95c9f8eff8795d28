// The signed statement about one instance. `canonicalJson(manifest)` (keys sorted at every level,
// no whitespace) is the exact byte string the node key signs, so a manifest can be verified
// offline from its JSON alone.
//
// File digests are written 'sha256-1m:<hex>': the chunked SHA-256 of hashing/digest.ts (SHA-256
// over the SHA-256 of every 1 MiB chunk followed by the 8-byte big-endian size), not the plain
// SHA-256 of the file. The config digest is a plain 'sha256:<hex>' of the canonical domain XML.
import type { BootRole } from './artifacts.js';

export const FILE_DIGEST_PREFIX = 'sha256-1m:';

export interface BootEntry {
  role: BootRole;
  path: string;
  size: number;
  digest: string;
}

export interface SealedDisk {
  target: string;
  path: string;
  size: number;
  digest: string;
  sealedAt: string;
  /**
   * What `digest` covers. Absent: the image file's bytes (`size` = file size). 'guest': the disk as
   * the guest sees it, read through qemu-nbd (`size` = virtual size), same chunked SHA-256 —
   * qcow2 disks, whose guest content can be re-sealed from a dirty bitmap.
   */
  content?: 'guest';
  /** The image format the guest content was read with (with content 'guest'). */
  format?: string;
}

export interface InUseDisk {
  target: string;
  path: string;
  state: 'in-use';
}

export type DiskEntry = SealedDisk | InUseDisk;

export interface Manifest {
  version: 1;
  /** libvirt domain UUID. */
  serverId: string;
  instanceName: string;
  /** The compute host that signed. */
  node: string;
  createdAt: string;
  config: { digest: string };
  boot: BootEntry[];
  disks: DiskEntry[];
  unsupported?: string[];
}

export function isSealed(d: DiskEntry): d is SealedDisk {
  return !('state' in d);
}

export const fileDigest = (hex: string) => FILE_DIGEST_PREFIX + hex;

/** JSON with object keys sorted at every level and no insignificant whitespace. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === undefined ? null : sortKeys(x)));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}
