// What the last checks of this process saw, in memory, so that the check of an unchanged instance
// (the start check above all) is a stat per file and a compare: no SQLite read of chunk digests, no
// qemu-img, no hashing. Everything here is trusted only while the files' identities (dev, ino, size,
// mtime, ctime) are those seen then, the same rule the digest cache in agent.db follows.
//   files:     path → identity and digest of its last stable hash (not block devices: never reused;
//              a qcow2 disk's guest-content digest under guestKey(path))
//   coverages: config digest → what that definition covers (boot artifacts incl. backing chains,
//              disks, unsupported parts) with the identities of the files it was derived from
import { stat } from 'node:fs/promises';
import { algorithmOf, type FileDigest } from './hashing/engine.js';
import type { DigestAlgorithm } from './hashing/digest.js';
import { identityOf, isRacy, sameIdentity, type FileIdentity } from './hashing/identity.js';

export interface KnownFile {
  identity: FileIdentity;
  /** Hex chunked digest (FileDigest.digest) and its algorithm. */
  digest: string;
  algorithm: DigestAlgorithm;
}

interface KnownCoverage<C> {
  coverage: C;
  identities: Map<string, FileIdentity>;
}

const MAX_ENTRIES = 10_000;

export class KnownState<C> {
  private readonly files = new Map<string, KnownFile>();
  private readonly coverages = new Map<string, KnownCoverage<C>>();

  rememberFile(d: FileDigest): void {
    if (!d.stable) return void this.files.delete(d.path);
    if (this.files.size >= MAX_ENTRIES) this.files.clear();
    this.files.set(d.path, { identity: d.identity, digest: d.digest, algorithm: algorithmOf(d) });
  }

  forgetFile(path: string): void {
    this.files.delete(path);
  }

  file(path: string): KnownFile | undefined {
    return this.files.get(path);
  }

  /**
   * Remembers what a definition covers, computed from `paths` since `sinceNs` (wall clock): kept only
   * when every path is a regular file not modified since shortly before then.
   */
  async rememberCoverage(config: string, coverage: C, paths: string[], sinceNs: bigint): Promise<void> {
    const identities = new Map<string, FileIdentity>();
    for (const path of new Set(paths)) {
      const st = await stat(path, { bigint: true }).catch(() => undefined);
      if (!st?.isFile() || isRacy(st, sinceNs)) return void this.coverages.delete(config);
      identities.set(path, identityOf(st));
    }
    if (this.coverages.size >= MAX_ENTRIES) this.coverages.clear();
    this.coverages.set(config, { coverage, identities });
  }

  /** The coverage of a definition, when none of the files it was derived from changed since. */
  async coverage(config: string, now: Identities): Promise<C | undefined> {
    const known = this.coverages.get(config);
    if (!known) return undefined;
    for (const [path, id] of known.identities) {
      const cur = await now.of(path);
      if (!cur || !sameIdentity(cur, id)) return undefined;
    }
    return known.coverage;
  }
}

/** Current identities of regular files, each path stat'ed once per check. */
export class Identities {
  private readonly seen = new Map<string, Promise<FileIdentity | undefined>>();

  of(path: string): Promise<FileIdentity | undefined> {
    let p = this.seen.get(path);
    if (!p) {
      p = stat(path, { bigint: true }).then(
        (st) => (st.isFile() ? identityOf(st) : undefined),
        () => undefined,
      );
      this.seen.set(path, p);
    }
    return p;
  }
}
