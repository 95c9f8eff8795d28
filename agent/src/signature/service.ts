// SignatureService: signs an instance (manifest over its canonical definition, boot artifacts and
// sealed writable disks, signed with the node key) and verifies it later against that baseline.
//
// Every file is hashed through the HashEngine with the cached previous digest of that path, so an
// unchanged instance is re-checked from file identities alone (no bytes read), also after a restart.
// Block devices are read at every check (a device node's identity does not follow its content).
//
// The baseline itself must carry this node key's signature (checked once per distinct baseline, see
// baseline-trust.ts): a manifest edited in agent.db is a "false" verdict naming the baseline. The
// check of an unchanged instance takes a shortcut through what this process saw last (known-state.ts):
// the definition's coverage by its config digest and each file's digest by its identity.
//
// A verdict is "true" only when everything the definition names was inspected: a part that was not
// (a network disk, a backing chain qemu-img could not read, …) is listed in the manifest's
// `unsupported` and the verdict's `uninspected`, and makes a verdict without differences "unknown".
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '../../../lib/platform/clock.js';
import type { DomainInfo, Hypervisor } from '../libvirt/hypervisor.js';
import { AgentStore, type StoredSignature, type VerdictValue } from '../store/agent-store.js';
import { domainArtifacts, type BootArtifact, type BootRole, type WritableDisk } from './artifacts.js';
import { DomainDefinition } from './domain-definition.js';
import {
  AlreadySignedError,
  ArtifactError,
  BaselineSignatureError,
  DomainStateError,
  NotFoundError,
  NotSignedError,
} from './errors.js';
import { HashEngine, algorithmOf, diffChunks, sameIdentity, type FileDigest } from './hashing/engine.js';
import type { DigestAlgorithm } from './hashing/digest.js';
import { settle } from './hashing/identity.js';
import type { GuestDigest } from './guest-disk/hasher.js';
import type { QemuTools } from './guest-disk/qemu.js';
import { GuestDisks, guestKey } from './guest-disk/seal-trust.js';
import {
  algorithmField,
  fileDigest,
  isSealed,
  manifestAlgorithm,
  type BootEntry,
  type DiskEntry,
  type Manifest,
  type SealedDisk,
} from './manifest.js';
import { NodeKey } from './node-key.js';
import { BaselineTrust } from './baseline-trust.js';
import { Identities, KnownState } from './known-state.js';

export type { StoredSignature } from '../store/agent-store.js';

export interface Difference {
  /** `baseline`: the stored baseline's signature does not verify with the node key. */
  component: 'config' | 'boot' | 'disk' | 'baseline';
  role?: BootRole;
  target?: string;
  path?: string;
  expected?: string;
  actual?: string;
  /** Indices of the differing 1 MiB chunks (when the file was hashed at both times). */
  chunks?: number[];
  reason?: string;
}

export interface Verdict {
  serverId: string;
  isValid: VerdictValue;
  checkedAt: string;
  differences: Difference[];
  /**
   * Parts of the definition no content hash covers (the baseline's `unsupported` and what could not
   * be inspected now): with no differences, the verdict is "unknown" instead of "true".
   */
  uninspected?: string[];
  /** Disks not compared, and why: in use by a running instance, or never sealed. Not a failure. */
  skipped?: Array<{ component: 'disk'; target: string; path: string; reason: 'in-use' | 'not-sealed' }>;
  /**
   * Work of this check: `bytesRead` is 0 when every file was re-checked from its identity; `quick`
   * when nothing changed since this process last looked (a stat per file, nothing read or spawned).
   */
  stats?: { files: number; reused: number; bytesRead: number; ms: number; quick?: boolean };
}

/**
 * The hypervisor as the service sees it. The start guard answers for a starting domain with the
 * definition the hook passed, already parsed: it is not parsed again.
 */
export type DefinitionSource = Hypervisor & {
  inactiveDefinition?(uuid: string): Promise<DomainDefinition>;
};

export interface SignatureServiceOptions {
  hypervisor: DefinitionSource;
  store: AgentStore;
  key: NodeKey;
  engine?: HashEngine;
  clock?: Clock;
  /** Node name written into manifests (default: the host name). */
  node?: string;
  /** qemu-img binary for backing chains, or false to skip them. */
  qemuImg?: string | false;
  /** Told about every file hashed (or re-checked): the agent's hashing metrics. */
  onHashed?: (d: FileDigest) => void;
  /** Digest of new signatures (default 'sha256'); the fleet's setting, see setDigestAlgorithm. */
  digestAlgorithm?: DigestAlgorithm;
  /**
   * qcow2 disks are sealed over their guest content with these tools (qemu-img, qemu-nbd,
   * nbdinfo), incrementally from a dirty bitmap; false: over their file bytes, like raw images.
   */
  guestDisks?: QemuTools | false;
  /** Told about every qcow2 disk sealed: full or incremental, chunks hashed. */
  onGuestSealed?: (path: string, d: GuestDigest) => void;
}

/** What a definition covers, with the files we can hash separated from those we cannot. */
interface Coverage {
  config: string;
  boot: BootArtifact[];
  disks: WritableDisk[];
  unsupported: string[];
}

type HashResult =
  { ok: true; file: FileDigest } | { ok: false; path: string; reason: string; missing: boolean };

function errorReason(e: unknown): { reason: string; missing: boolean } {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return { reason: 'missing', missing: true };
  return { reason: `unreadable: ${err?.message ?? String(e)}`, missing: false };
}

/** A writable disk's sealed entry from its hash result; collects the file, or the problem. */
function sealedDisk(
  d: { target: string; path: string },
  r: HashResult,
  sealedAt: string,
  files: FileDigest[],
  problems: Array<{ path: string; reason: string }>,
  guestFormat?: string,
): SealedDisk | undefined {
  if (!r.ok) {
    problems.push({ path: d.path, reason: r.reason });
    return undefined;
  }
  files.push(r.file);
  const entry: SealedDisk = {
    target: d.target,
    path: d.path,
    size: r.file.size,
    digest: fileDigest(r.file.digest, algorithmOf(r.file)),
    sealedAt,
  };
  if (guestFormat) Object.assign(entry, { content: 'guest', format: guestFormat });
  return entry;
}

async function attempt<T extends FileDigest>(
  path: string,
  fn: () => Promise<T>,
): Promise<{ ok: true; file: T } | { ok: false; path: string; reason: string; missing: boolean }> {
  try {
    return { ok: true, file: await fn() };
  } catch (e) {
    return { ok: false, path, ...errorReason(e) };
  }
}

export class SignatureService {
  private readonly hv: DefinitionSource;
  private readonly store: AgentStore;
  private readonly key: NodeKey;
  private readonly engine: HashEngine;
  private readonly clock: Clock;
  private readonly node: string;
  private readonly qemuImg: string | false;
  private readonly ownsEngine: boolean;
  private readonly onHashed?: (d: FileDigest) => void;
  private readonly onGuestSealed?: (path: string, d: GuestDigest) => void;
  /** Guest-content digests and incremental seals of qcow2 disks. */
  readonly guest: GuestDisks;
  private ownsStore = false;
  private readonly locks = new Map<string, Promise<unknown>>();
  private algorithm: DigestAlgorithm;
  private readonly trust: BaselineTrust;
  private readonly known = new KnownState<Coverage>();

  constructor(opts: SignatureServiceOptions) {
    this.hv = opts.hypervisor;
    this.store = opts.store;
    this.key = opts.key;
    this.ownsEngine = !opts.engine;
    this.engine = opts.engine ?? new HashEngine();
    this.clock = opts.clock ?? systemClock;
    this.node = opts.node ?? hostname();
    this.qemuImg = opts.qemuImg ?? 'qemu-img';
    this.onHashed = opts.onHashed;
    this.onGuestSealed = opts.onGuestSealed;
    this.guest = new GuestDisks(
      this.store,
      opts.guestDisks ?? {
        qemuImg: this.qemuImg || 'qemu-img',
        qemuNbd: 'qemu-nbd',
        nbdinfo: 'nbdinfo',
      },
      () => this.clock.now(),
      this.engine,
    );
    this.algorithm = opts.digestAlgorithm ?? 'sha256';
    this.trust = new BaselineTrust(this.key.publicKeyPem);
  }

  /** The digest new signatures take. */
  get digestAlgorithm(): DigestAlgorithm {
    return this.algorithm;
  }

  /**
   * The fleet switched digests: signatures made from now on use `algorithm`. Existing baselines keep
   * theirs (checks and seals use the one their manifest names) until they are signed again.
   */
  setDigestAlgorithm(algorithm: DigestAlgorithm): void {
    this.algorithm = algorithm;
  }

  /** A service over `<dataDir>/agent.db` and `<dataDir>/node-key.pem` (both created when absent). */
  static async open(
    opts: Omit<SignatureServiceOptions, 'store' | 'key'> & { dataDir: string },
  ): Promise<SignatureService> {
    const key = NodeKey.loadOrCreate(opts.dataDir);
    const store = await AgentStore.open(join(opts.dataDir, 'agent.db'));
    const svc = new SignatureService({ ...opts, store, key });
    svc.ownsStore = true;
    return svc;
  }

  get publicKeyPem(): string {
    return this.key.publicKeyPem;
  }

  /** Ed25519 verifications of stored baselines so far (each distinct baseline is verified once). */
  get baselineVerifications(): number {
    return this.trust.verifications;
  }

  /** Ends the hash workers and the store when this service created them (not the hypervisor). */
  async close(): Promise<void> {
    if (this.ownsEngine) await this.engine.close();
    if (this.ownsStore) await this.store.close();
  }

  // --- public API ---

  async get(uuid: string): Promise<StoredSignature | undefined> {
    return this.store.getSignature(uuid);
  }

  async list(): Promise<StoredSignature[]> {
    return this.store.listSignatures();
  }

  /** Signs an instance. Without `replace` an existing baseline is an AlreadySignedError. */
  sign(uuid: string, opts: { replace?: boolean; queue?: boolean } = {}): Promise<StoredSignature> {
    if (opts.queue === false) return this.signNow(uuid, opts.replace ?? false); // see verify()
    return this.locked(uuid, () => this.signNow(uuid, opts.replace ?? false));
  }

  /**
   * `full` re-reads every file even when its identity is unchanged (the nightly re-hash).
   * `queue: false` runs at once instead of after the operations pending on this instance (the start
   * check: another check of it may be stuck in a libvirt call until the start it holds up goes on).
   */
  verify(uuid: string, opts: { full?: boolean; queue?: boolean } = {}): Promise<Verdict> {
    if (opts.queue === false) return this.verifyNow(uuid, opts.full ?? false);
    return this.locked(uuid, () => this.verifyNow(uuid, opts.full ?? false));
  }

  /** Hashes the writable disks of a shut-off instance into its baseline (re-signed, updatedAt set). */
  sealDisks(uuid: string): Promise<StoredSignature> {
    return this.locked(uuid, () => this.sealNow(uuid));
  }

  /**
   * Signs every defined domain that has no baseline yet; returns how many were signed. A domain
   * that cannot be signed (e.g. a missing kernel) is reported to `onError` and skipped.
   */
  async signUnsigned(
    onProgress?: (done: number, total: number) => void,
    onError?: (uuid: string, err: unknown) => void,
  ): Promise<number> {
    const domains = await this.hv.listDomains();
    const todo: DomainInfo[] = [];
    for (const d of domains) if (!(await this.store.getSignature(d.uuid))) todo.push(d);
    let done = 0;
    let signed = 0;
    onProgress?.(0, todo.length);
    for (const d of todo) {
      try {
        await this.sign(d.uuid, { replace: false });
        signed++;
      } catch (e) {
        if (!(e instanceof AlreadySignedError)) onError?.(d.uuid, e);
      }
      onProgress?.(++done, todo.length);
    }
    return signed;
  }

  async setValidation(active: boolean): Promise<{ active: boolean; since: string | null }> {
    await this.store.setValidation(active, this.now());
    return this.store.validation();
  }

  validation(): Promise<{ active: boolean; since: string | null }> {
    return this.store.validation();
  }

  // --- internals ---

  private now(): string {
    return this.clock.now().toISOString();
  }

  /** Runs operations on one instance one after another. */
  private async locked<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uuid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(uuid, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(uuid) === tail) this.locks.delete(uuid);
    }
  }

  private async domain(uuid: string): Promise<DomainInfo> {
    const d = await this.hv.getDomain(uuid);
    if (!d) throw new NotFoundError(uuid);
    return d;
  }

  private async definition(uuid: string): Promise<DomainDefinition> {
    return this.hv.inactiveDefinition
      ? this.hv.inactiveDefinition(uuid)
      : new DomainDefinition(await this.hv.inactiveXml(uuid));
  }

  /** Digest of the definition plus the files it points at; what cannot be hashed goes to unsupported. */
  private async coverage(domain: DomainDefinition): Promise<Coverage> {
    const sinceNs = BigInt(Date.now()) * 1_000_000n;
    const found = await domainArtifacts(domain, { qemuImg: this.qemuImg });
    const unsupported = [...found.unsupported];
    const hashable = async (path: string, what: string) => {
      try {
        const st = await stat(path);
        if (st.isFile() || st.isBlockDevice()) return true;
        unsupported.push(`${what} ${path}: not a regular file or block device, not inspected`);
        return false;
      } catch {
        return true; // missing/unreadable: reported when hashing
      }
    };
    const boot: BootArtifact[] = [];
    for (const a of found.boot) if (await hashable(a.path, a.role)) boot.push(a);
    const disks: WritableDisk[] = [];
    for (const d of found.disks) if (await hashable(d.path, `disk ${d.target}`)) disks.push(d);
    const cov = { config: domain.configDigest(), boot, disks, unsupported };
    const sources = [...found.boot.map((b) => b.path), ...found.disks.map((d) => d.path)];
    await this.known.rememberCoverage(cov.config, cov, sources, sinceNs);
    return cov;
  }

  /** Hashes files with their cached previous digests and refreshes the cache. */
  private async hashAll(
    paths: string[],
    full: boolean,
    algorithm: DigestAlgorithm,
  ): Promise<Map<string, HashResult>> {
    const unique = [...new Set(paths)];
    const results = await Promise.all(
      unique.map(async (path): Promise<HashResult> => {
        try {
          const previous = full ? undefined : await this.store.cachedDigest(path);
          const file = await this.engine.hashFile(path, { previous, algorithm });
          this.onHashed?.(file);
          return { ok: true, file };
        } catch (e) {
          return { ok: false, path, ...errorReason(e) };
        }
      }),
    );
    const files = results.filter((r): r is { ok: true; file: FileDigest } => r.ok).map((r) => r.file);
    for (const r of results) {
      if (r.ok) this.known.rememberFile(r.file);
      else this.known.forgetFile(r.path);
    }
    await this.store.cacheDigests(files, this.now());
    for (const r of results) if (!r.ok && r.missing) await this.store.forgetDigest(r.path);
    return new Map(unique.map((p, i) => [p, results[i]!]));
  }

  /** Seal, first step: the guest content of qcow2 disks (incremental where the bitmap is trusted). */
  private async readGuest(
    uuid: string,
    disks: Array<{ path: string; format: string }>,
    algorithm: DigestAlgorithm,
    entries: DiskEntry[] = [],
  ): Promise<Map<string, { ok: true; file: GuestDigest } | Extract<HashResult, { ok: false }>>> {
    const sealed = new Map(entries.filter(isSealed).map((d) => [d.path, d]));
    const reads = await Promise.all(
      disks.map((d) =>
        attempt(d.path, () => this.guest.read(uuid, d.path, d.format, algorithm, sealed.get(d.path))),
      ),
    );
    return new Map(disks.map((d, i) => [d.path, reads[i]!]));
  }

  /** Seal, second step (instance still off): fresh bitmaps; the digests stored under guestKey. */
  private async commitGuest(
    uuid: string,
    disks: Array<{ path: string; format: string }>,
    reads: Awaited<ReturnType<SignatureService['readGuest']>>,
  ): Promise<Map<string, HashResult>> {
    const out = new Map<string, HashResult>();
    await Promise.all(
      disks.map(async (d) => {
        const r = reads.get(d.path)!;
        if (!r.ok) return void out.set(d.path, r);
        const c = await attempt(d.path, () => this.guest.commit(uuid, r.file, d.format));
        if (c.ok) {
          this.onHashed?.(c.file);
          this.onGuestSealed?.(d.path, r.file);
          // with the identity after the bitmap's reset: the next start check is a stat and a compare
          this.known.rememberFile(c.file);
        }
        out.set(d.path, c);
      }),
    );
    return out;
  }

  /** qcow2 disks (format from the definition) are sealed over their guest content. */
  private guestFormat(format: string | undefined): string | undefined {
    return this.guest.handles(format) ? format : undefined;
  }

  private async signNow(uuid: string, replace: boolean): Promise<StoredSignature> {
    const dom = await this.domain(uuid);
    const existing = await this.store.getSignature(uuid);
    if (existing && !replace) throw new AlreadySignedError(uuid);

    const cov = await this.coverage(await this.definition(uuid));
    const seal = dom.state === 'shut off';
    const algorithm = this.algorithm;
    const guestDisks = seal
      ? cov.disks.flatMap((d) => {
          const format = this.guestFormat(d.format);
          return format ? [{ path: d.path, format }] : [];
        })
      : [];
    const [hashed, guestReads] = await Promise.all([
      this.hashAll(
        [
          ...cov.boot.map((b) => b.path),
          ...(seal ? cov.disks.filter((d) => !this.guestFormat(d.format)).map((d) => d.path) : []),
        ],
        false,
        algorithm,
      ),
      this.readGuest(uuid, guestDisks, algorithm, existing?.manifest.disks),
    ]);
    const problems: Array<{ path: string; reason: string }> = [];
    const files: FileDigest[] = [];
    const boot: BootEntry[] = [];
    for (const a of cov.boot) {
      const r = hashed.get(a.path)!;
      if (!r.ok) problems.push({ path: a.path, reason: r.reason });
      else {
        files.push(r.file);
        const digest = fileDigest(r.file.digest, algorithm);
        boot.push({ role: a.role, path: a.path, size: r.file.size, digest });
      }
    }
    // The instance may have started while its disks were being read: then they are in use.
    const stillOff = seal && (await this.hv.getDomain(uuid))?.state === 'shut off';
    const guestHashed = stillOff ? await this.commitGuest(uuid, guestDisks, guestReads) : new Map();
    const now = this.now();
    const disks: DiskEntry[] = [];
    for (const d of cov.disks) {
      if (!stillOff) {
        disks.push({ target: d.target, path: d.path, state: 'in-use' });
        continue;
      }
      const format = this.guestFormat(d.format);
      const r = format ? guestHashed.get(d.path)! : hashed.get(d.path)!;
      const sealed = sealedDisk(d, r, now, files, problems, format);
      if (sealed) disks.push(sealed);
    }
    if (problems.length) throw new ArtifactError(uuid, problems);

    const manifest: Manifest = {
      version: 1,
      serverId: dom.uuid,
      instanceName: dom.name,
      node: this.node,
      createdAt: now,
      config: { digest: cov.config },
      boot,
      disks,
      ...algorithmField(algorithm),
    };
    if (cov.unsupported.length) manifest.unsupported = cov.unsupported;
    const stored: StoredSignature = {
      serverId: dom.uuid,
      instanceName: dom.name,
      manifest,
      signature: this.key.sign(manifest),
      createdAt: existing?.createdAt ?? now,
      updatedAt: existing ? now : null,
      lastVerdict: cov.unsupported.length ? 'unknown' : 'true',
      lastVerifiedAt: now,
    };
    if (!(await this.store.putSignature(stored, files, { replace }))) throw new AlreadySignedError(uuid);
    return stored;
  }

  private async verifyNow(uuid: string, full: boolean): Promise<Verdict> {
    const t0 = performance.now();
    const dom = await this.domain(uuid);
    const baseline = await this.store.getSignature(uuid);
    if (!baseline) return { serverId: uuid, isValid: 'unknown', checkedAt: this.now(), differences: [] };
    const m = baseline.manifest;
    if (!this.trust.verifies(m, baseline.signature)) {
      return this.record({
        serverId: uuid,
        isValid: 'false',
        checkedAt: this.now(),
        differences: [
          { component: 'baseline', reason: "its signature does not verify with this node's key" },
        ],
      });
    }
    const domain = await this.definition(uuid);
    if (!full) {
      const quick = await this.quickVerdict(uuid, dom, baseline, domain, t0);
      if (quick) return this.record(quick);
    }
    const algorithm = manifestAlgorithm(m);
    const differences: Difference[] = [];
    const skipped: NonNullable<Verdict['skipped']> = [];

    const cov = await this.coverage(domain);
    if (cov.config !== m.config.digest) {
      differences.push({ component: 'config', expected: m.config.digest, actual: cov.config });
    }

    const known = new Set(m.boot.map((b) => b.path));
    const extra = cov.boot.filter((b) => !known.has(b.path));
    const sealedNow = dom.state === 'shut off';
    const sealed = m.disks.filter(isSealed);
    for (const d of m.disks) {
      if (!sealedNow) skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'in-use' });
      else if (!isSealed(d))
        skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'not-sealed' });
    }
    const diskPaths = sealedNow ? sealed.filter((d) => d.content !== 'guest').map((d) => d.path) : [];
    const guestEntries = sealedNow ? sealed.filter((d) => d.content === 'guest') : [];
    const [hashed, guestList] = await Promise.all([
      this.hashAll(
        [...m.boot.map((b) => b.path), ...extra.map((b) => b.path), ...diskPaths],
        full,
        algorithm,
      ),
      Promise.all(
        guestEntries.map((d) =>
          attempt(d.path, () => this.guest.check(d.path, d.format ?? 'qcow2', full, algorithm)).then((r) => {
            if (r.ok) {
              this.onHashed?.(r.file);
              this.known.rememberFile(r.file);
            } else this.known.forgetFile(guestKey(d.path));
            return r;
          }),
        ),
      ),
    ]);
    const guestHashed = new Map<string, HashResult>(guestEntries.map((d, i) => [d.path, guestList[i]!]));

    for (const b of m.boot) {
      const diff = await this.compare(uuid, b.path, b.digest, hashed.get(b.path)!);
      if (diff) differences.push({ component: 'boot', role: b.role, ...diff });
    }
    for (const b of extra) {
      const r = hashed.get(b.path)!;
      differences.push({
        component: 'boot',
        role: b.role,
        path: b.path,
        ...(r.ok ? { actual: fileDigest(r.file.digest, algorithm) } : {}),
        reason: 'not in baseline',
      });
    }
    if (sealedNow) {
      // Started while we were reading? Then its disks are in use, not tampered.
      const stillOff = (await this.hv.getDomain(uuid))?.state === 'shut off';
      for (const d of sealed) {
        if (!stillOff) {
          skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'in-use' });
          continue;
        }
        const guest = d.content === 'guest';
        const r = guest ? guestHashed.get(d.path)! : hashed.get(d.path)!;
        const diff = await this.compare(uuid, d.path, d.digest, r, guest ? guestKey(d.path) : d.path);
        if (diff) differences.push({ component: 'disk', target: d.target, ...diff });
      }
    }

    const uninspected = [...new Set([...(m.unsupported ?? []), ...cov.unsupported])];
    const results = [...hashed.values(), ...guestHashed.values()].filter(
      (r): r is { ok: true; file: FileDigest } => r.ok,
    );
    const verdict: Verdict = {
      serverId: uuid,
      isValid: differences.length ? 'false' : uninspected.length ? 'unknown' : 'true',
      checkedAt: this.now(),
      differences,
      stats: {
        files: results.length,
        reused: results.filter((r) => r.file.reused).length,
        bytesRead: results.reduce((n, r) => n + r.file.stats.bytesRead, 0),
        ms: Math.round((performance.now() - t0) * 1000) / 1000,
      },
    };
    if (uninspected.length) verdict.uninspected = uninspected;
    if (skipped.length) verdict.skipped = skipped;
    return this.record(verdict);
  }

  private async record(v: Verdict): Promise<Verdict> {
    await this.store.recordVerdict(v.serverId, v.isValid, v.checkedAt);
    return v;
  }

  /**
   * The verdict of an instance in which nothing changed since this process last looked: the same
   * definition (config digest) whose coverage was derived from files still as they were, and every
   * file to compare still at the identity it had when hashed to the baseline's digest. Undefined
   * (the full check runs) at the first doubt, and whenever something differs: the full check names it.
   */
  private async quickVerdict(
    uuid: string,
    dom: DomainInfo,
    baseline: StoredSignature,
    domain: DomainDefinition,
    t0: number,
  ): Promise<Verdict | undefined> {
    const m = baseline.manifest;
    const now = new Identities();
    const cov = await this.known.coverage(domain.configDigest(), now);
    if (!cov || cov.config !== m.config.digest) return undefined;
    const known = new Set(m.boot.map((b) => b.path));
    if (cov.boot.some((b) => !known.has(b.path))) return undefined;
    const sealedNow = dom.state === 'shut off';
    const expected: Array<[path: string, digest: string, key?: string]> = m.boot.map((b) => [
      b.path,
      b.digest,
    ]);
    const skipped: NonNullable<Verdict['skipped']> = [];
    for (const d of m.disks) {
      if (!sealedNow) skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'in-use' });
      else if (!isSealed(d))
        skipped.push({ component: 'disk', target: d.target, path: d.path, reason: 'not-sealed' });
      else expected.push([d.path, d.digest, d.content === 'guest' ? guestKey(d.path) : d.path]);
    }
    for (const [path, digest, key = path] of expected) {
      const f = this.known.file(key);
      const cur = await now.of(path);
      if (!f || !cur || !sameIdentity(f.identity, cur) || fileDigest(f.digest, f.algorithm) !== digest)
        return undefined;
    }
    const uninspected = [...new Set([...(m.unsupported ?? []), ...cov.unsupported])];
    const verdict: Verdict = {
      serverId: uuid,
      isValid: uninspected.length ? 'unknown' : 'true',
      checkedAt: this.now(),
      differences: [],
      stats: {
        files: expected.length,
        reused: expected.length,
        bytesRead: 0,
        ms: Math.round((performance.now() - t0) * 1000) / 1000,
        quick: true,
      },
    };
    if (uninspected.length) verdict.uninspected = uninspected;
    if (skipped.length) verdict.skipped = skipped;
    return verdict;
  }

  /** undefined when the file still has the expected digest. */
  private async compare(
    uuid: string,
    path: string,
    expected: string,
    r: HashResult,
    key = path,
  ): Promise<Omit<Difference, 'component'> | undefined> {
    if (!r.ok) return { path, expected, reason: r.reason };
    const algorithm = algorithmOf(r.file);
    const actual = fileDigest(r.file.digest, algorithm);
    if (actual === expected) return undefined;
    const diff: Omit<Difference, 'component'> = { path, expected, actual };
    const base = await this.store.baselineFile(uuid, key);
    if (
      base &&
      base.algorithm === algorithm &&
      fileDigest(base.digest, algorithm) === expected &&
      base.chunkSize === r.file.chunkSize
    ) {
      diff.chunks = diffChunks({ ...r.file, chunks: base.chunks }, r.file);
    }
    if (base && base.size !== r.file.size) diff.reason = `size changed from ${base.size} to ${r.file.size}`;
    return diff;
  }

  private async sealNow(uuid: string): Promise<StoredSignature> {
    const dom = await this.domain(uuid);
    const baseline = await this.store.getSignature(uuid);
    if (!baseline) throw new NotSignedError(uuid);
    if (dom.state !== 'shut off') throw new DomainStateError(uuid, dom.state);
    const m = baseline.manifest;
    // a seal re-signs the manifest: one edited in agent.db must not come out signed
    if (!this.trust.verifies(m, baseline.signature)) throw new BaselineSignatureError(uuid);
    // A seal keeps the baseline's algorithm: one manifest, one digest (see setDigestAlgorithm).
    const algorithm = manifestAlgorithm(m);
    // Libvirt has just restored the disks' owners (ctime): waited out, the coverage and the digests
    // taken now are trusted with these identities, and the start after this seal is a stat and a
    // compare (see identity.ts, isRacy).
    await settle(m.disks.map((d) => d.path));
    const definition = await this.definition(uuid);
    // The definition says which disks are qcow2 (the manifest of an older seal may not).
    const formats = new Map((await this.coverage(definition)).disks.map((d) => [d.path, d.format]));
    const formatOf = (path: string) => this.guestFormat(formats.get(path));
    const guestDisks = m.disks.flatMap((d) => {
      const format = formatOf(d.path);
      return format ? [{ path: d.path, format }] : [];
    });
    const fileDisks = m.disks.filter((d) => !formatOf(d.path)).map((d) => d.path);
    const [hashed, guestReads] = await Promise.all([
      this.hashAll(fileDisks, false, algorithm),
      this.readGuest(uuid, guestDisks, algorithm, m.disks),
    ]);
    if ((await this.hv.getDomain(uuid))?.state !== 'shut off') throw new DomainStateError(uuid, 'running');
    const guestHashed = await this.commitGuest(uuid, guestDisks, guestReads);
    if (guestDisks.length) {
      // the bitmaps' reset changed those files: the coverage again, once that is not racy
      await settle(guestDisks.map((d) => d.path));
      await this.coverage(definition);
    }
    const now = this.now();
    const problems: Array<{ path: string; reason: string }> = [];
    const files: FileDigest[] = [];
    const disks: SealedDisk[] = [];
    for (const d of m.disks) {
      const format = formatOf(d.path);
      const r = format ? guestHashed.get(d.path)! : hashed.get(d.path)!;
      const sealed = sealedDisk(d, r, now, files, problems, format);
      if (sealed) disks.push(sealed);
    }
    if (problems.length) throw new ArtifactError(uuid, problems);
    const manifest: Manifest = { ...m, disks };
    const signature = this.key.sign(manifest);
    await this.store.updateManifest(uuid, manifest, signature, now, files);
    return { ...baseline, manifest, signature, updatedAt: now };
  }
}
