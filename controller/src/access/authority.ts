import type { Clock } from '../../../lib/platform/clock.js';
import { conflict, notFound } from '../platform/errors.js';
import { KeyEncryptionKeyError, type KeyEncryptionKey } from '../pki/kek.js';
import {
  caKeyFromDer,
  caKeyToDer,
  generateCaKey,
  loadCaKey,
  type CaKey,
  type CaKeyType,
} from './sshca/keys.js';
import type { SshCaRecord } from './model.js';
import type { AccessStore, StoredCa } from './store.js';

/** The rows of one CA's keys: the user CA's (ssh_cas) or the host CA's (ssh_host_cas). */
export type CaKeyRows = Pick<AccessStore, 'listCas' | 'addActiveCa' | 'sealCaKey' | 'retireCa'>;

/** Which CA: names the seal label (a sealed key cannot be moved to another row or CA) and messages. */
export interface CaKind {
  label: 'ssh-ca' | 'ssh-host-ca';
  name: string;
  /** The public key's comment (default vmwarden-ca). */
  comment?: string;
}
const USER_CA: CaKind = { label: 'ssh-ca', name: 'SSH CA' };

/**
 * The fleet's SSH user CA (cf. Teleport lib/sshca): one active key signs, older keys stay trusted
 * (published to guests) until retired, so a rotation never locks anyone out. The private keys live
 * in the database sealed with the cluster's key-encryption key, so every controller signs with the
 * same keys; a rotation on one is a new row the others load (reload()).
 */
export class SshAuthority {
  private keys = new Map<number, CaKey>();
  private records: SshCaRecord[] = [];
  /** reload() calls that overlap apply in the order they read the database. */
  private reads = 0;
  private applied = 0;

  private constructor(
    private readonly store: CaKeyRows,
    private readonly kek: KeyEncryptionKey,
    private readonly clock: Clock,
    private readonly keyType: CaKeyType,
    private readonly kind: CaKind,
  ) {}

  /** What a CA private key is sealed as: a sealed key cannot be moved to another row. */
  private sealLabel(fingerprint: string): string {
    return `vmwarden ${this.kind.label} ${fingerprint}`;
  }

  /**
   * Loads every non-retired CA key (importing the key files of rows from before sealing); creates
   * the first one when the database has none, once however many controllers start together.
   */
  static async open(
    store: CaKeyRows,
    kek: KeyEncryptionKey,
    clock: Clock,
    keyType: CaKeyType,
    kind: CaKind = USER_CA,
  ): Promise<SshAuthority> {
    const authority = new SshAuthority(store, kek, clock, keyType, kind);
    await authority.reload();
    if (!authority.records.some((r) => r.status === 'active')) {
      await authority.addActive(keyType, true);
      await authority.reload();
    }
    return authority;
  }

  /**
   * Reads the CA rows again (after a rotation or retirement, here or on another controller): keys
   * already loaded are kept, new ones unsealed, retired ones dropped.
   */
  async reload(): Promise<void> {
    const seq = ++this.reads;
    const rows = await this.store.listCas();
    const keys = new Map<number, CaKey>();
    for (const row of rows) {
      if (row.status === 'retired') continue;
      keys.set(row.id, this.keys.get(row.id) ?? (await this.unseal(row)));
    }
    if (seq < this.applied) return; // a later read already applied
    this.applied = seq;
    this.records = rows.map(({ sealedKey: _, ...record }) => record);
    this.keys = keys;
  }

  /** The key that signs new certificates. */
  active(): { id: number; key: CaKey } {
    const record = this.records.find((r) => r.status === 'active');
    if (!record) throw new Error(`no active ${this.kind.name} key`);
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
    const id = (await this.addActive(keyType, false))!;
    await this.reload();
    return this.records.find((r) => r.id === id)!;
  }

  /** Stops trusting an old key. The active key cannot be retired: rotate first. */
  async retire(id: number): Promise<void> {
    const record = this.records.find((r) => r.id === id);
    if (!record || record.status === 'retired')
      throw notFound(`no trusted ${this.kind.name} key with id ${id}`);
    if (record.status === 'active')
      throw conflict('CA_ACTIVE', 'the active CA key cannot be retired; rotate first');
    await this.store.retireCa(id, this.clock.now().toISOString());
    await this.reload();
  }

  /** Generates, seals and inserts a key as the active one, in one transaction (see addActiveCa). */
  private async addActive(keyType: CaKeyType, onlyIfNone: boolean): Promise<number | undefined> {
    const key = generateCaKey(keyType, undefined, this.kind.comment);
    const id = await this.store.addActiveCa(
      {
        keyType: key.sshType,
        publicKey: key.openssh,
        fingerprint: key.fingerprint,
        sealedKey: this.kek.seal(caKeyToDer(key), this.sealLabel(key.fingerprint)),
        createdAt: this.clock.now().toISOString(),
      },
      onlyIfNone,
    );
    if (id !== undefined) this.keys.set(id, key);
    return id;
  }

  /** The row's private key: unsealed, or (a row from before sealing) read from its file and sealed. */
  private async unseal(row: StoredCa): Promise<CaKey> {
    let key: CaKey;
    if (row.sealedKey) {
      key = caKeyFromDer(this.kek.open(row.sealedKey, this.sealLabel(row.fingerprint)), this.kind.comment);
    } else if (row.keyFile) {
      key = await loadCaKey(row.keyFile).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        throw new KeyEncryptionKeyError(
          `${this.kind.name} key ${row.id} is still in ${row.keyFile} on the controller that created it: start that controller once so it seals the key into the database`,
        );
      });
      if (key.fingerprint === row.fingerprint)
        await this.store.sealCaKey(row.id, this.kek.seal(caKeyToDer(key), this.sealLabel(key.fingerprint)));
    } else {
      throw new Error(`${this.kind.name} key ${row.id} has neither a sealed key nor a key file`);
    }
    if (key.fingerprint !== row.fingerprint)
      throw new Error(
        `${this.kind.name} key ${row.id}: its private key does not match its fingerprint ${row.fingerprint}`,
      );
    return key;
  }
}
