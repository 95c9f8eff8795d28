import type { Database, Tx } from '../../../lib/store/database.js';
import type { SqlFilter } from '../store/sql-filter.js';
import type { ApiSession, Authenticator, Identity } from './model.js';
import { parseAttributes } from './ziti-identity.js';

/** Filterable fields of the OpenZiti filter language → SQL columns. */
export const identityFields: Record<string, string> = {
  id: 'id',
  name: 'name',
  role: 'role',
  disabled: 'disabled',
  isDefaultAdmin: 'is_default_admin',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
};

export const authenticatorFields: Record<string, string> = {
  id: 'id',
  method: 'method',
  username: 'username',
  fingerprint: 'fingerprint',
  identityId: 'identity_id',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
};

export interface ListWindow {
  filter: SqlFilter;
  limit: number;
  offset: number;
}

export interface IdentityStore {
  insertIdentity(identity: Identity, authenticator?: Authenticator): Promise<void>;
  /** Inserts the identity only if the store holds none (checked in the same transaction). */
  insertFirstIdentity(identity: Identity, authenticator: Authenticator): Promise<boolean>;
  getIdentity(id: string): Promise<Identity | undefined>;
  getIdentityByName(name: string): Promise<Identity | undefined>;
  countIdentities(): Promise<number>;
  listIdentities(window: ListWindow): Promise<{ rows: Identity[]; total: number }>;
  updateIdentity(identity: Identity): Promise<void>;
  deleteIdentity(id: string): Promise<boolean>;

  insertAuthenticator(a: Authenticator): Promise<void>;
  getAuthenticator(id: string): Promise<Authenticator | undefined>;
  findUpdbByUsername(username: string): Promise<Authenticator | undefined>;
  findCertByFingerprint(fingerprint: string): Promise<Authenticator | undefined>;
  listAuthenticators(
    identityId: string,
    window: ListWindow,
  ): Promise<{ rows: Authenticator[]; total: number }>;
  updateAuthenticator(a: Authenticator): Promise<void>;
}

export interface SessionStore {
  insert(s: ApiSession): Promise<void>;
  findByTokenHash(hash: string): Promise<ApiSession | undefined>;
  touch(id: string, lastActivityAt: string): Promise<void>;
  delete(id: string): Promise<boolean>;
  deleteForIdentity(identityId: string): Promise<number>;
  deleteIdleSince(cutoff: string): Promise<number>;
  count(): Promise<number>;
}

type Row = Record<string, unknown>;

const toIdentity = (r: Row): Identity => ({
  id: r.id as string,
  name: r.name as string,
  role: r.role as Identity['role'],
  isDefaultAdmin: r.is_default_admin === 1,
  disabled: r.disabled === 1,
  attributes: parseAttributes(r.attributes),
  createdAt: r.created_at as string,
  updatedAt: r.updated_at as string,
});

const toAuthenticator = (r: Row): Authenticator => ({
  id: r.id as string,
  identityId: r.identity_id as string,
  method: r.method as Authenticator['method'],
  username: (r.username as string) ?? null,
  passwordHash: (r.password_hash as string) ?? null,
  certPem: (r.cert_pem as string) ?? null,
  fingerprint: (r.fingerprint as string) ?? null,
  pendingCertPem: (r.pending_cert_pem as string) ?? null,
  pendingFingerprint: (r.pending_fingerprint as string) ?? null,
  extendRequestedAt: (r.extend_requested_at as string) ?? null,
  lastExtendRolledKeys: r.last_extend_rolled_keys === 1,
  createdAt: r.created_at as string,
  updatedAt: r.updated_at as string,
});

const toSession = (r: Row): ApiSession => ({
  id: r.id as string,
  tokenHash: r.token_hash as string,
  identityId: r.identity_id as string,
  authenticatorId: r.authenticator_id as string,
  ipAddress: r.ip_address as string,
  createdAt: r.created_at as string,
  updatedAt: r.updated_at as string,
  lastActivityAt: r.last_activity_at as string,
});

function insertAuthenticatorTx(tx: Tx, a: Authenticator) {
  return tx.run(
    `INSERT INTO authenticators (id, identity_id, method, username, password_hash, cert_pem, fingerprint,
       pending_cert_pem, pending_fingerprint, extend_requested_at, last_extend_rolled_keys, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      a.id,
      a.identityId,
      a.method,
      a.username,
      a.passwordHash,
      a.certPem,
      a.fingerprint,
      a.pendingCertPem,
      a.pendingFingerprint,
      a.extendRequestedAt,
      a.lastExtendRolledKeys ? 1 : 0,
      a.createdAt,
      a.updatedAt,
    ],
  );
}

async function page<T>(
  db: Database,
  table: string,
  scope: { where: string; params: unknown[] },
  window: ListWindow,
  map: (r: Row) => T,
): Promise<{ rows: T[]; total: number }> {
  const where = `(${scope.where}) AND (${window.filter.where})`;
  const params = [...scope.params, ...window.filter.params];
  const total = (await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params))!.n;
  const order = window.filter.orderBy || 'created_at ASC';
  const rows = await db.all<Row>(
    `SELECT * FROM ${table} WHERE ${where} ORDER BY ${order}, id LIMIT ? OFFSET ?`,
    [...params, window.limit, window.offset],
  );
  return { rows: rows.map(map), total };
}

async function insertIdentityTx(tx: Tx, i: Identity, authenticator?: Authenticator): Promise<void> {
  await tx.run(
    `INSERT INTO identities (id, name, role, is_default_admin, disabled, attributes, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [
      i.id,
      i.name,
      i.role,
      i.isDefaultAdmin ? 1 : 0,
      i.disabled ? 1 : 0,
      JSON.stringify(i.attributes),
      i.createdAt,
      i.updatedAt,
    ],
  );
  if (authenticator) await insertAuthenticatorTx(tx, authenticator);
}

export class SqliteIdentityStore implements IdentityStore {
  constructor(private readonly db: Database) {}

  insertIdentity(i: Identity, authenticator?: Authenticator) {
    return this.db.write((tx) => insertIdentityTx(tx, i, authenticator));
  }

  insertFirstIdentity(i: Identity, authenticator: Authenticator) {
    return this.db.write(async (tx) => {
      if (await tx.get('SELECT id FROM identities ORDER BY id LIMIT 1')) return false;
      await insertIdentityTx(tx, i, authenticator);
      return true;
    });
  }

  async getIdentity(id: string) {
    const r = await this.db.get<Row>('SELECT * FROM identities WHERE id = ?', [id]);
    return r && toIdentity(r);
  }

  async getIdentityByName(name: string) {
    const r = await this.db.get<Row>('SELECT * FROM identities WHERE name = ?', [name]);
    return r && toIdentity(r);
  }

  async countIdentities() {
    return (await this.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM identities'))!.n;
  }

  listIdentities(window: ListWindow) {
    return page(this.db, 'identities', { where: '1=1', params: [] }, window, toIdentity);
  }

  async updateIdentity(i: Identity) {
    await this.db.run(
      'UPDATE identities SET name = ?, role = ?, disabled = ?, attributes = ?, updated_at = ? WHERE id = ?',
      [i.name, i.role, i.disabled ? 1 : 0, JSON.stringify(i.attributes), i.updatedAt, i.id],
    );
  }

  async deleteIdentity(id: string) {
    return (await this.db.run('DELETE FROM identities WHERE id = ?', [id])).changes > 0;
  }

  async insertAuthenticator(a: Authenticator) {
    await this.db.write((tx) => insertAuthenticatorTx(tx, a));
  }

  async getAuthenticator(id: string) {
    const r = await this.db.get<Row>('SELECT * FROM authenticators WHERE id = ?', [id]);
    return r && toAuthenticator(r);
  }

  async findUpdbByUsername(username: string) {
    const r = await this.db.get<Row>("SELECT * FROM authenticators WHERE method = 'updb' AND username = ?", [
      username,
    ]);
    return r && toAuthenticator(r);
  }

  async findCertByFingerprint(fingerprint: string) {
    const r = await this.db.get<Row>(
      "SELECT * FROM authenticators WHERE method = 'cert' AND fingerprint = ?",
      [fingerprint],
    );
    return r && toAuthenticator(r);
  }

  listAuthenticators(identityId: string, window: ListWindow) {
    return page(
      this.db,
      'authenticators',
      { where: 'identity_id = ?', params: [identityId] },
      window,
      toAuthenticator,
    );
  }

  async updateAuthenticator(a: Authenticator) {
    await this.db.run(
      `UPDATE authenticators SET username = ?, password_hash = ?, cert_pem = ?, fingerprint = ?,
         pending_cert_pem = ?, pending_fingerprint = ?, extend_requested_at = ?, last_extend_rolled_keys = ?,
         updated_at = ? WHERE id = ?`,
      [
        a.username,
        a.passwordHash,
        a.certPem,
        a.fingerprint,
        a.pendingCertPem,
        a.pendingFingerprint,
        a.extendRequestedAt,
        a.lastExtendRolledKeys ? 1 : 0,
        a.updatedAt,
        a.id,
      ],
    );
  }
}

export class SqliteSessionStore implements SessionStore {
  constructor(private readonly db: Database) {}

  async count() {
    return (await this.db.get<{ n: number }>('SELECT count(*) AS n FROM api_sessions'))!.n;
  }

  async insert(s: ApiSession) {
    await this.db.run(
      `INSERT INTO api_sessions (id, token_hash, identity_id, authenticator_id, ip_address, created_at, updated_at,
         last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        s.id,
        s.tokenHash,
        s.identityId,
        s.authenticatorId,
        s.ipAddress,
        s.createdAt,
        s.updatedAt,
        s.lastActivityAt,
      ],
    );
  }

  async findByTokenHash(hash: string) {
    const r = await this.db.get<Row>('SELECT * FROM api_sessions WHERE token_hash = ?', [hash]);
    return r && toSession(r);
  }

  async touch(id: string, lastActivityAt: string) {
    await this.db.run('UPDATE api_sessions SET last_activity_at = ? WHERE id = ? AND last_activity_at < ?', [
      lastActivityAt,
      id,
      lastActivityAt,
    ]);
  }

  async delete(id: string) {
    return (await this.db.run('DELETE FROM api_sessions WHERE id = ?', [id])).changes > 0;
  }

  async deleteForIdentity(identityId: string) {
    return (await this.db.run('DELETE FROM api_sessions WHERE identity_id = ?', [identityId])).changes;
  }

  async deleteIdleSince(cutoff: string) {
    return (await this.db.run('DELETE FROM api_sessions WHERE last_activity_at <= ?', [cutoff])).changes;
  }
}
