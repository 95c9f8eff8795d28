import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../../lib/platform/clock.js';
import { conflict, notFound } from '../platform/errors.js';
import { generateCaKey, loadCaKey, saveCaKey, type CaKey, type CaKeyType } from './sshca/keys.js';
import type { SshCaRecord } from './model.js';
import type { AccessStore } from './store.js';

/**
 * The fleet's SSH user CA (cf. Teleport lib/sshca): one active key signs, older keys stay trusted
 * (published to guests) until retired, so a rotation never locks anyone out.
 */
export class SshAuthority {
  private keys = new Map<number, CaKey>();
  private records: SshCaRecord[] = [];

  private constructor(
    private readonly dir: string,
    private readonly store: AccessStore,
    private readonly clock: Clock,
    private readonly keyType: CaKeyType,
  ) {}

  /** Loads every non-retired CA key (refusing key files others can read); creates the first one. */
  static async open(
    dir: string,
    store: AccessStore,
    clock: Clock,
    keyType: CaKeyType,
  ): Promise<SshAuthority> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const authority = new SshAuthority(dir, store, clock, keyType);
    await authority.reload();
    if (!authority.records.some((r) => r.status === 'active')) await authority.rotate();
    return authority;
  }

  /** Re-reads the CA records (another controller may have rotated or retired): new keys load, retired ones go. */
  async reload(): Promise<void> {
    this.records = await this.store.listCas();
    const keys = new Map<number, CaKey>();
    for (const r of this.records) {
      if (r.status === 'retired') continue;
      keys.set(r.id, this.keys.get(r.id) ?? (await loadCaKey(r.keyFile)));
    }
    this.keys = keys;
  }

  /** The key that signs new certificates. */
  active(): { id: number; key: CaKey } {
    const record = this.records.find((r) => r.status === 'active');
    if (!record) throw new Error('no active SSH CA key');
    return { id: record.id, key: this.keys.get(record.id)! };
  }

  /** Active and still-trusted keys, newest first: what guests put in TrustedUserCAKeys. */
  trusted(): Array<SshCaRecord & { key: CaKey }> {
    return this.records
      .filter((r) => r.status !== 'retired')
      .sort((a, b) => b.id - a.id)
      .map((r) => ({ ...r, key: this.keys.get(r.id)! }));
  }

  all(): SshCaRecord[] {
    return [...this.records];
  }

  keyFor(caId: number): CaKey | undefined {
    return this.keys.get(caId);
  }

  /** Creates a new key and makes it the signer; the previous signer stays trusted. */
  async rotate(keyType: CaKeyType = this.keyType): Promise<SshCaRecord> {
    const key = generateCaKey(keyType);
    const now = this.clock.now().toISOString();
    const keyFile = join(this.dir, `ca-${now.replace(/[:.]/g, '')}-${randomBytes(3).toString('hex')}.key`);
    await saveCaKey(key, keyFile);
    const id = await this.store.insertCa({
      keyType: key.sshType,
      publicKey: key.openssh,
      fingerprint: key.fingerprint,
      keyFile,
      status: 'trusted',
      createdAt: now,
      retiredAt: null,
    });
    this.keys.set(id, key);
    await this.store.activateCa(id, now);
    await this.reload();
    return this.records.find((r) => r.id === id)!;
  }

  /** Stops trusting an old key. The active key cannot be retired: rotate first. */
  async retire(id: number): Promise<void> {
    const record = this.records.find((r) => r.id === id);
    if (!record || record.status === 'retired') throw notFound(`no trusted SSH CA key with id ${id}`);
    if (record.status === 'active')
      throw conflict('CA_ACTIVE', 'the active CA key cannot be retired; rotate first');
    await this.store.retireCa(id, this.clock.now().toISOString());
    await this.reload();
  }
}
