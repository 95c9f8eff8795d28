// The signed statement about one instance. `canonicalJson(manifest)` (keys sorted at every level,
// no whitespace) is the exact byte string the node key signs, so a manifest can be verified
// offline from its JSON alone.
//
// File digests are written '<algorithm>-1m:<hex>': the chunked digest of hashing/digest.ts (the
// algorithm over the digests of every 1 MiB chunk followed by the 8-byte big-endian size), not the
// plain digest of the file; the algorithm is SHA-256 ('sha256-1m:') or BLAKE3 ('blake3-1m:'). A
// BLAKE3 manifest says so in `digestAlgorithm`; a manifest without it is SHA-256 (every manifest
// signed before BLAKE3 existed), and SHA-256 manifests still omit it so they stay byte-identical.
// The config digest is a plain 'sha256:<hex>' of the canonical domain XML whatever the algorithm.
import type { BootRole } from './artifacts.js';
import { isDigestAlgorithm, type DigestAlgorithm } from './hashing/digest.js';

export const FILE_DIGEST_PREFIX = 'sha256-1m:';
export const FILE_DIGEST_PREFIXES: Record<DigestAlgorithm, string> = {
  sha256: FILE_DIGEST_PREFIX,
  blake3: 'blake3-1m:',
};

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
  /** Digest of the files: absent = 'sha256'; only 'blake3' is ever written. */
  digestAlgorithm?: 'blake3';
}

export function isSealed(d: DiskEntry): d is SealedDisk {
  return !('state' in d);
}

export const fileDigest = (hex: string, algorithm: DigestAlgorithm = 'sha256') =>
  FILE_DIGEST_PREFIXES[algorithm] + hex;

/** The algorithm of a manifest's file digests. */
export function manifestAlgorithm(m: Pick<Manifest, 'digestAlgorithm'>): DigestAlgorithm {
  const a: unknown = m.digestAlgorithm ?? 'sha256';
  if (!isDigestAlgorithm(a)) throw new Error(`unknown digest algorithm in manifest: ${String(a)}`);
  return a;
}

/** The `digestAlgorithm` field a manifest of this algorithm carries (none for SHA-256). */
export const algorithmField = (a: DigestAlgorithm): Pick<Manifest, 'digestAlgorithm'> =>
  a === 'sha256' ? {} : { digestAlgorithm: a };

/** Algorithm and hex of a file digest string, or undefined when it is not one. */
export function parseFileDigest(s: string): { algorithm: DigestAlgorithm; hex: string } | undefined {
  for (const [algorithm, prefix] of Object.entries(FILE_DIGEST_PREFIXES) as [DigestAlgorithm, string][]) {
    if (s.startsWith(prefix) && /^[0-9a-f]{64}$/.test(s.slice(prefix.length)))
      return { algorithm, hex: s.slice(prefix.length) };
  }
  return undefined;
}

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
