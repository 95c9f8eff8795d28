// Incremental seals of qcow2 disks and when their dirty bitmap may be trusted.
//
// After each seal the disk carries a fresh, enabled persistent bitmap (SEAL_BITMAP) and the agent
// records the image's identity (dev, inode, size, mtime, ctime) in seal_trust as 'sealed'. The
// bitmap is trusted at the next seal only when this agent run saw the whole window:
//   sealed ─(start check verified it, identity still the one recorded at the seal)→ starting
//          ─(libvirt reported the domain Started, within START_WINDOW_MS)→ running ─(Stopped)→ seal
// Anything else (a start the agent did not verify, an image touched while off, a gap in the
// lifecycle stream, an agent restart, a bitmap missing/disabled/in-use) means a full re-hash.
// The record goes before a seal resets the bitmap (the reset may run during the pass): a seal that
// ends before its commit leaves the next one a full pass.
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { AgentStore } from '../../store/agent-store.js';
import { SealTrustStore } from '../../store/seal-trust-store.js';
import { algorithmOf, type FileDigest, type HashEngine } from '../hashing/engine.js';
import type { DigestAlgorithm } from '../hashing/digest.js';
import { identityOf, sameIdentity, type FileIdentity } from '../hashing/identity.js';
import type { SealedDisk } from '../manifest.js';
import { fileDigest } from '../manifest.js';
import { hashGuestDisk, isLockError, type GuestDigest } from './hasher.js';
import { defaultQemuTools, resetBitmap, type QemuTools } from './qemu.js';

export const SEAL_BITMAP = 'vmwarden-seal';

/** Key of a disk's guest-content digest in the digest cache and baseline files (not its file bytes). */
export const guestKey = (path: string) => `guest:${path}`;

/** How long after a verified start check libvirt's Started event may come. */
const START_WINDOW_MS = 5 * 60_000;

export class GuestDisks {
  private epoch = randomUUID();
  private readonly trust: SealTrustStore;
  private readonly tools: QemuTools;

  constructor(
    private readonly store: AgentStore,
    tools: QemuTools | false,
    private readonly now: () => Date,
    /** Workers for full passes read from the image map. */
    private readonly engine?: HashEngine,
  ) {
    this.trust = new SealTrustStore(store.db);
    this.enabled = tools !== false;
    this.tools = tools || defaultQemuTools;
  }

  readonly enabled: boolean;

  /** Disks sealed over their guest content: qcow2 images. */
  handles(format: string | undefined): boolean {
    return this.enabled && format === 'qcow2';
  }

  /** Records from earlier agent runs or before a gap in lifecycle events are no longer trusted. */
  newEpoch(): void {
    this.epoch = randomUUID();
  }

  /**
   * The guest-content digest for a check: the cached one when the image's identity is unchanged,
   * else a full read (a check never touches the bitmap).
   */
  async check(path: string, format: string, full: boolean, algorithm: DigestAlgorithm): Promise<FileDigest> {
    const key = guestKey(path);
    if (!full) {
      const prev = await this.store.cachedDigest(key);
      if (prev?.stable && algorithmOf(prev) === algorithm) {
        const st = await stat(path, { bigint: true });
        if (st.isFile() && sameIdentity(prev.identity, identityOf(st))) {
          return { ...prev, reused: true, stats: { bytesRead: 0, holeChunks: 0, zeroChunks: 0, ms: 0 } };
        }
      }
    }
    const g = await hashGuestDisk(path, { format, algorithm, tools: this.tools, engine: this.engine });
    const file = { ...g, path: key };
    await this.store.cacheDigests([file], this.now().toISOString());
    return file;
  }

  /**
   * Seal, first step (instance shut off): reads the guest content, only the dirty chunks when the
   * bitmap is trusted and the previous seal's chunk digests are at hand.
   */
  async read(
    uuid: string,
    path: string,
    format: string,
    algorithm: DigestAlgorithm,
    entry?: SealedDisk,
  ): Promise<GuestDigest> {
    const t = await this.trust.get(path);
    let previous: FileDigest | undefined;
    let why = 'no trusted bitmap';
    // no record: never sealed with a bitmap, or it was dropped (a start not verified, the image
    // touched between seal and start)
    if (!t || t.serverId !== uuid) why = 'bitmap not trusted since the last seal';
    else if (t.epoch !== this.epoch) why = 'run not watched by this agent';
    else if (t.state !== 'running') why = `no verified run since the last seal (${t.state})`;
    else if (entry?.content !== 'guest') why = 'previous seal not over guest content';
    else {
      const base = await this.store.baselineFile(uuid, guestKey(path));
      if (base && base.algorithm === algorithm && fileDigest(base.digest, algorithm) === entry.digest) {
        previous = { ...base, identity: t.sealedIdentity, reused: false, stable: true, stats: zeroStats() };
      } else why = 'previous chunk digests not at hand';
    }
    // the record goes before the reset, which may run during the pass (see the top of this file)
    const resetBitmap = async () => {
      await this.trust.forget(path);
      return freshSealBitmap(path, format, this.tools);
    };
    const g = await hashGuestDisk(path, {
      format,
      algorithm,
      tools: this.tools,
      engine: this.engine,
      ...(previous ? { previous, bitmap: SEAL_BITMAP, resetBitmap } : {}),
    });
    if (!previous) g.pass.why = why;
    return g;
  }

  /**
   * Seal, second step (still shut off): a fresh bitmap (unless the first step's pass made it), and
   * the identity the image has with it recorded as 'sealed'. Returns the digest to store (under
   * guestKey, with that identity). Without a bitmap (an image format without them) the next seal is
   * simply a full one.
   */
  async commit(uuid: string, g: GuestDigest, format: string): Promise<FileDigest> {
    const path = g.path;
    let trusted: boolean;
    let identity: FileIdentity;
    if (g.bitmapReset !== undefined) {
      // reset during the pass: g.identity is the image's after it, unless it changed since
      identity = g.identity;
      const st = await stat(path, { bigint: true });
      trusted = g.bitmapReset && sameIdentity(identity, identityOf(st));
    } else {
      trusted = await freshSealBitmap(path, format, this.tools);
      identity = identityOf(await stat(path, { bigint: true }));
    }
    const at = this.now().toISOString();
    if (trusted)
      await this.trust.put({
        path,
        serverId: uuid,
        sealedIdentity: identity,
        state: 'sealed',
        epoch: this.epoch,
        changedAt: at,
      });
    else await this.trust.forget(path);
    // The identity changed by our own bitmap reset only: the digest is of the content just read.
    const file: FileDigest = { ...g, path: guestKey(path), identity, stable: true };
    await this.store.cacheDigests([file], at);
    return file;
  }

  /** The start check allowed this instance: its disks, untouched since their seal, may be trusted. */
  async verifiedStart(uuid: string): Promise<void> {
    const at = this.now().toISOString();
    for (const t of await this.trust.ofInstance(uuid)) {
      const st = await stat(t.path, { bigint: true }).catch(() => undefined);
      if (st && sameIdentity(t.sealedIdentity, identityOf(st)))
        await this.trust.setState(t.path, 'starting', this.epoch, at);
      else await this.trust.forget(t.path);
    }
  }

  /** libvirt says the instance started: trusted only when this agent verified that very start. */
  async started(uuid: string): Promise<void> {
    const now = this.now();
    for (const t of await this.trust.ofInstance(uuid)) {
      const fresh = now.getTime() - Date.parse(t.changedAt) <= START_WINDOW_MS;
      if (t.state === 'starting' && t.epoch === this.epoch && fresh)
        await this.trust.setState(t.path, 'running', this.epoch, now.toISOString());
      else await this.trust.forget(t.path);
    }
  }

  async trustOf(path: string) {
    return this.trust.get(path);
  }
}

/**
 * Leaves the seal bitmap present, enabled and empty (retried while QEMU still holds the image's lock
 * just after a stop); false when it could not.
 */
export async function freshSealBitmap(
  path: string,
  format: string,
  tools: QemuTools = defaultQemuTools,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await resetBitmap(path, format, SEAL_BITMAP, tools);
      return true;
    } catch (e) {
      if (!isLockError(e) || attempt >= 10) return false;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const zeroStats = () => ({ bytesRead: 0, holeChunks: 0, zeroChunks: 0, ms: 0 });
