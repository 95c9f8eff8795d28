import type { Database, Tx } from '../../../lib/store/database.js';

export interface SshKeyAuthenticator {
  id: number;
  identityId: string;
  locked: boolean;
  createdAt: string;
  updatedAt: string;
}

/** The CO's authenticator (one per deployment): the SshKeyAuthenticatorId of every key. */
export interface CoAuthenticator {
  id: number;
  description: string;
  createdAt: string;
}

export const CO_AUTHENTICATOR_ID = 1;

export interface SshKey {
  id: number;
  identityId: string;
  authenticatorId: number;
  type: string;
  skey: string;
  comment: string;
  fingerprint: string;
  revision: number;
  deleted: boolean;
  createdAt: string;
  modifiedAt: string;
}

/** What a write may change on a key. */
export interface KeyMaterialRow {
  type: string;
  skey: string;
  comment: string;
  fingerprint: string;
}

type Row = Record<string, unknown>;

const toAuthenticator = (r: Row): SshKeyAuthenticator => ({
  id: r.id as number,
  identityId: r.identity_id as string,
  locked: r.locked === 1,
  createdAt: r.created_at as string,
  updatedAt: r.updated_at as string,
});

const toKey = (r: Row): SshKey => ({
  id: r.id as number,
  identityId: r.identity_id as string,
  authenticatorId: r.authenticator_id as number,
  type: r.type as string,
  skey: r.skey as string,
  comment: (r.comment as string) ?? '',
  fingerprint: r.fingerprint as string,
  revision: r.revision as number,
  deleted: r.deleted === 1,
  createdAt: r.created_at as string,
  modifiedAt: r.modified_at as string,
});

/** Reads outside transactions see committed data; writes go through Database.write. */
export class SshKeyStore {
  constructor(private readonly db: Database) {}

  /** Runs fn in one write transaction, with this store's helpers bound to it. */
  transaction<T>(fn: (tx: SshKeyTx) => Promise<T>): Promise<T> {
    return this.db.write((tx) => fn(new SshKeyTx(tx)));
  }

  async getKey(id: number): Promise<SshKey | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM ssh_keys WHERE id = ?', [id]);
    return r && toKey(r);
  }

  async listLive(identityId?: string): Promise<SshKey[]> {
    const rows = identityId
      ? await this.db.all<Row>('SELECT * FROM ssh_keys WHERE deleted = 0 AND identity_id = ? ORDER BY id', [
          identityId,
        ])
      : await this.db.all<Row>('SELECT * FROM ssh_keys WHERE deleted = 0 ORDER BY id');
    return rows.map(toKey);
  }

  async getAuthenticator(id: number): Promise<SshKeyAuthenticator | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM ssh_key_authenticators WHERE id = ?', [id]);
    return r && toAuthenticator(r);
  }

  async authenticatorOf(identityId: string): Promise<SshKeyAuthenticator | undefined> {
    const r = await this.db.get<Row>('SELECT * FROM ssh_key_authenticators WHERE identity_id = ?', [
      identityId,
    ]);
    return r && toAuthenticator(r);
  }

  /** The CO's authenticator, created on first use. */
  async coAuthenticator(now: string): Promise<CoAuthenticator> {
    const read = () =>
      this.db.get<Row>('SELECT * FROM ssh_key_co_authenticator WHERE id = ?', [CO_AUTHENTICATOR_ID]);
    let r = await read();
    if (!r) {
      await this.db.write((tx) =>
        tx.run(
          `INSERT INTO ssh_key_co_authenticator (id, description, created_at) VALUES (?, ?, ?)
           ON CONFLICT (id) DO NOTHING`,
          [CO_AUTHENTICATOR_ID, 'SSH Key Authenticator', now],
        ),
      );
      r = await read();
    }
    return { id: r!.id as number, description: r!.description as string, createdAt: r!.created_at as string };
  }

  async listAuthenticators(): Promise<SshKeyAuthenticator[]> {
    return (await this.db.all<Row>('SELECT * FROM ssh_key_authenticators ORDER BY id')).map(toAuthenticator);
  }
}

/** The store's operations inside one transaction (checks and writes see the same state). */
export class SshKeyTx {
  constructor(private readonly tx: Tx) {}

  /** The identity's authenticator, created unlocked on first use. */
  async ensureAuthenticator(identityId: string, now: string): Promise<SshKeyAuthenticator> {
    await this.tx.run(
      `INSERT INTO ssh_key_authenticators (identity_id, locked, created_at, updated_at) VALUES (?, 0, ?, ?)
       ON CONFLICT (identity_id) DO NOTHING`,
      [identityId, now, now],
    );
    return toAuthenticator(
      (await this.tx.get<Row>('SELECT * FROM ssh_key_authenticators WHERE identity_id = ?', [identityId]))!,
    );
  }

  async getAuthenticator(id: number): Promise<SshKeyAuthenticator | undefined> {
    const r = await this.tx.get<Row>('SELECT * FROM ssh_key_authenticators WHERE id = ?', [id]);
    return r && toAuthenticator(r);
  }

  async setLocked(id: number, locked: boolean, now: string): Promise<void> {
    await this.tx.run('UPDATE ssh_key_authenticators SET locked = ?, updated_at = ? WHERE id = ?', [
      locked ? 1 : 0,
      now,
      id,
    ]);
  }

  async getKey(id: number): Promise<SshKey | undefined> {
    const r = await this.tx.get<Row>('SELECT * FROM ssh_keys WHERE id = ?', [id]);
    return r && toKey(r);
  }

  /** A live key of this person with this fingerprint, other than `exceptId`. */
  async findLiveDuplicate(
    identityId: string,
    fingerprint: string,
    exceptId = 0,
  ): Promise<number | undefined> {
    const r = await this.tx.get<{ id: number }>(
      'SELECT id FROM ssh_keys WHERE identity_id = ? AND fingerprint = ? AND deleted = 0 AND id <> ?',
      [identityId, fingerprint, exceptId],
    );
    return r?.id;
  }

  async insertKey(
    identityId: string,
    authenticatorId: number,
    m: KeyMaterialRow,
    now: string,
  ): Promise<number> {
    const r = await this.tx.get<{ id: number }>(
      `INSERT INTO ssh_keys (identity_id, authenticator_id, type, skey, comment, fingerprint, revision, deleted,
         created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?) RETURNING id`,
      [identityId, authenticatorId, m.type, m.skey, m.comment, m.fingerprint, now, now],
    );
    return r!.id;
  }

  async updateKey(id: number, m: KeyMaterialRow, now: string): Promise<void> {
    await this.tx.run(
      `UPDATE ssh_keys SET type = ?, skey = ?, comment = ?, fingerprint = ?, revision = revision + 1,
         modified_at = ? WHERE id = ? AND deleted = 0`,
      [m.type, m.skey, m.comment, m.fingerprint, now, id],
    );
  }

  async softDelete(id: number, now: string): Promise<void> {
    await this.tx.run(
      'UPDATE ssh_keys SET deleted = 1, revision = revision + 1, modified_at = ? WHERE id = ? AND deleted = 0',
      [now, id],
    );
  }
}
