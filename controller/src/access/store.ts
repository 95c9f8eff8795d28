import type { Database, Tx } from '../../../lib/store/database.js';
import type {
  AccessSession,
  CertificateQuery,
  CertificateRecord,
  SessionQuery,
  SshCaRecord,
} from './model.js';

/** Certificates past valid_before read as EXPIRED even before the cron job marks them. */
const effectiveStatus = `CASE WHEN status = 'ACTIVE' AND valid_before <= ? THEN 'EXPIRED' ELSE status END`;

export interface AccessStore {
  listCas(): Promise<StoredCa[]>;
  /**
   * In one transaction: inserts a CA key (sealed) as the only active one, the previous active one
   * becoming trusted, and bumps the KRL version. With `onlyIfNone`, does nothing (undefined) when
   * there is an active key already: of controllers starting together on an empty database, one
   * creates the first key.
   */
  addActiveCa(ca: NewCa, onlyIfNone?: boolean): Promise<number | undefined>;
  /** Stores the sealed key of a row created with a key file (an upgrade); false if it had one. */
  sealCaKey(id: number, sealedKey: string): Promise<boolean>;
  retireCa(id: number, at: string): Promise<boolean>;

  /** `alsoInTx` runs in the same transaction (the audit row): both commit, or neither. */
  insertCertificate(c: CertificateRecord, alsoInTx?: (tx: Tx) => unknown): Promise<void>;
  getCertificate(id: string, now: string): Promise<CertificateRecord | undefined>;
  listCertificates(q: CertificateQuery, now: string): Promise<{ rows: CertificateRecord[]; total: number }>;
  /** Revokes, ends the certificate's live sessions and bumps the KRL version, in one transaction. */
  revokeCertificate(
    id: string,
    reason: string,
    at: string,
  ): Promise<{ revoked: boolean; endedSessions: string[]; krlVersion: number }>;
  /**
   * Revokes every certificate of `userId` that is still valid at `at`, ends their live sessions and
   * bumps the KRL version (once), in one transaction with `alsoInTx` (the audit rows).
   */
  revokeActiveOfUser(
    userId: string,
    reason: string,
    at: string,
    alsoInTx?: (tx: Tx, revoked: Array<{ id: string; serial: bigint }>) => unknown,
  ): Promise<{ revoked: Array<{ id: string; serial: bigint }>; endedSessions: string[]; krlVersion: number }>;
  markExpired(now: string): Promise<number>;
  countCertificatesByStatus(): Promise<Array<{ status: string; count: number }>>;
  /** Sessions reported as started and not yet ended. */
  countActiveSessions(): Promise<number>;
  revokedSerials(now: string): Promise<Array<{ serial: bigint; caId: number }>>;
  krlVersion(): Promise<number>;

  insertSession(s: AccessSession): Promise<void>;
  getSession(id: string): Promise<AccessSession | undefined>;
  endSession(id: string, reason: string, at: string): Promise<boolean>;
  listSessions(q: SessionQuery): Promise<{ rows: AccessSession[]; total: number }>;
}

/** A CA row with its private key: sealed (pki/kek.ts), or in key_file for rows from before sealing. */
export type StoredCa = SshCaRecord & { sealedKey: string | null };
export type NewCa = Omit<SshCaRecord, 'id' | 'status' | 'retiredAt' | 'keyFile'> & { sealedKey: string };

type Row = Record<string, unknown>;

export const toCa = (r: Row): StoredCa => ({
  id: r.id as number,
  keyType: r.key_type as string,
  publicKey: r.public_key as string,
  fingerprint: r.fingerprint as string,
  keyFile: (r.key_file as string) || null,
  sealedKey: (r.private_key_sealed as string) ?? null,
  status: r.status as SshCaRecord['status'],
  createdAt: r.created_at as string,
  retiredAt: (r.retired_at as string) ?? null,
});

const toCertificate = (r: Row): CertificateRecord => ({
  id: r.id as string,
  serial: BigInt(r.serial as string),
  sandboxId: r.sandbox_id as string,
  userId: r.user_id as string,
  vmName: r.vm_name as string,
  keyId: r.key_id as string,
  principals: JSON.parse(r.principals as string),
  publicKeyFingerprint: r.public_key_fingerprint as string,
  sshKeyId: (r.ssh_key_id as string) ?? null,
  caId: r.ca_id as number,
  validAfter: r.valid_after as string,
  validBefore: r.valid_before as string,
  issuedAt: r.issued_at as string,
  status: (r.effective_status ?? r.status) as CertificateRecord['status'],
  revokedAt: (r.revoked_at as string) ?? null,
  revokeReason: (r.revoke_reason as string) ?? null,
});

const toSession = (r: Row): AccessSession => ({
  id: r.id as string,
  certificateId: r.certificate_id as string,
  sandboxId: r.sandbox_id as string,
  userId: r.user_id as string,
  vmName: r.vm_name as string,
  vmIpAddress: r.vm_ip_address as string,
  sourceIp: r.source_ip as string,
  startedAt: r.started_at as string,
  endedAt: (r.ended_at as string) ?? null,
  status: r.status as AccessSession['status'],
  endReason: (r.end_reason as string) ?? null,
});

/** WHERE clause from the filters that were given: each condition carries its own parameters. */
function where(conditions: Array<[string, ...unknown[]] | false | undefined>): {
  sql: string;
  params: unknown[];
} {
  const used = conditions.filter((c): c is [string, ...unknown[]] => Array.isArray(c));
  return {
    sql: used.length ? `WHERE ${used.map(([c]) => c).join(' AND ')}` : '',
    params: used.flatMap(([, ...p]) => p),
  };
}

const bumpKrl = (tx: Tx, at: string) =>
  tx.run('UPDATE krl_state SET version = version + 1, updated_at = ? WHERE id = 1', [at]);

interface PendingInsert {
  record: CertificateRecord;
  alsoInTx?: (tx: Tx) => unknown;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Certificates per transaction (a bound on the size of one commit). */
const MAX_INSERT_ROWS = 500;
const INSERT_CERTIFICATE = `INSERT INTO certificates (id, serial, sandbox_id, user_id, vm_name, key_id, principals,
  public_key_fingerprint, ssh_key_id, ca_id, valid_after, valid_before, issued_at, status, revoked_at, revoke_reason)
  VALUES`;
const CERTIFICATE_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
const certificateParams = (c: CertificateRecord) => [
  c.id,
  c.serial.toString(),
  c.sandboxId,
  c.userId,
  c.vmName,
  c.keyId,
  JSON.stringify(c.principals),
  c.publicKeyFingerprint,
  c.sshKeyId,
  c.caId,
  c.validAfter,
  c.validBefore,
  c.issuedAt,
  c.status,
  c.revokedAt,
  c.revokeReason,
];

export class SqliteAccessStore implements AccessStore {
  constructor(private readonly db: Database) {}

  async listCas() {
    return (await this.db.all<Row>('SELECT * FROM ssh_cas ORDER BY id')).map(toCa);
  }

  addActiveCa(ca: NewCa, onlyIfNone = false) {
    return this.db.write(async (tx) => {
      if (onlyIfNone && (await tx.get("SELECT id FROM ssh_cas WHERE status = 'active'"))) return undefined;
      await tx.run("UPDATE ssh_cas SET status = 'trusted' WHERE status = 'active'");
      const r = await tx.get<{ id: number }>(
        `INSERT INTO ssh_cas (key_type, public_key, fingerprint, key_file, private_key_sealed, status, created_at)
         VALUES (?, ?, ?, '', ?, 'active', ?) RETURNING id`,
        [ca.keyType, ca.publicKey, ca.fingerprint, ca.sealedKey, ca.createdAt],
      );
      await bumpKrl(tx, ca.createdAt);
      return r!.id;
    });
  }

  async sealCaKey(id: number, sealedKey: string) {
    const r = await this.db.run(
      'UPDATE ssh_cas SET private_key_sealed = ? WHERE id = ? AND private_key_sealed IS NULL',
      [sealedKey, id],
    );
    return r.changes > 0;
  }

  retireCa(id: number, at: string) {
    return this.db.write(async (tx) => {
      const r = await tx.run(
        "UPDATE ssh_cas SET status = 'retired', retired_at = ? WHERE id = ? AND status = 'trusted'",
        [at, id],
      );
      if (r.changes) await bumpKrl(tx, at);
      return r.changes > 0;
    });
  }

  /**
   * Concurrent inserts are coalesced: while one batch is being committed, the next ones queue up and
   * go together in the next transaction, as appended rows (with their audit rows: one round trip to
   * SQLite for the whole batch, see JobTx). Each caller's promise still settles only after COMMIT.
   * Kept on top of the database's group commit, which gives each job its own SAVEPOINT (four round
   * trips per certificate): without this queue bench:certs fell from 901 and 1,346 to 497 and 553
   * certificates/s (runs alternated, TMPDIR=/dev/shm), about -50%.
   */
  insertCertificate(c: CertificateRecord, alsoInTx?: (tx: Tx) => unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingCertificates.push({ record: c, alsoInTx, resolve, reject });
      if (!this.flushingCertificates) void this.flushCertificates();
    });
  }

  private pendingCertificates: PendingInsert[] = [];
  private flushingCertificates = false;

  private async flushCertificates(): Promise<void> {
    this.flushingCertificates = true;
    try {
      while (this.pendingCertificates.length) {
        const batch = this.pendingCertificates.splice(0, MAX_INSERT_ROWS);
        try {
          await this.db.write(async (tx) => {
            for (const p of batch) {
              tx.append(INSERT_CERTIFICATE, CERTIFICATE_ROW, certificateParams(p.record));
              await p.alsoInTx?.(tx);
            }
          });
          for (const p of batch) p.resolve();
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          // One bad row fails the whole statement: retry one by one so only that row fails.
          await Promise.all(
            batch.map((p) =>
              this.db
                .write(async (tx) => {
                  await tx.run(`${INSERT_CERTIFICATE} ${CERTIFICATE_ROW}`, certificateParams(p.record));
                  await p.alsoInTx?.(tx);
                })
                .then(() => p.resolve(), p.reject),
            ),
          );
        }
      }
    } finally {
      this.flushingCertificates = false;
    }
  }

  countCertificatesByStatus() {
    return this.db.all<{ status: string; count: number }>(
      'SELECT status, count(*) AS count FROM certificates GROUP BY status',
    );
  }

  async countActiveSessions() {
    return (await this.db.get<{ n: number }>(
      "SELECT count(*) AS n FROM access_sessions WHERE status = 'ACTIVE'",
    ))!.n;
  }

  async getCertificate(id: string, now: string) {
    const r = await this.db.get<Row>(
      `SELECT *, ${effectiveStatus} AS effective_status FROM certificates WHERE id = ?`,
      [now, id],
    );
    return r && toCertificate(r);
  }

  async listCertificates(q: CertificateQuery, now: string) {
    const w = where([
      q.sandboxId !== undefined && ['sandbox_id = ?', q.sandboxId],
      q.userId !== undefined && ['user_id = ?', q.userId],
      q.status !== undefined && [`${effectiveStatus} = ?`, now, q.status],
      q.activeOnly && [`${effectiveStatus} = 'ACTIVE'`, now],
    ]);
    const total = (await this.db.get<{ n: number }>(
      `SELECT COUNT(*) AS n FROM certificates ${w.sql}`,
      w.params,
    ))!.n;
    const rows = await this.db.all<Row>(
      `SELECT *, ${effectiveStatus} AS effective_status FROM certificates ${w.sql}
       ORDER BY issued_at DESC, id LIMIT ? OFFSET ?`,
      [now, ...w.params, q.limit, q.offset],
    );
    return { rows: rows.map(toCertificate), total };
  }

  revokeCertificate(id: string, reason: string, at: string) {
    return this.db.write(async (tx) => {
      const r = await tx.run(
        "UPDATE certificates SET status = 'REVOKED', revoked_at = ?, revoke_reason = ? WHERE id = ? AND status != 'REVOKED'",
        [at, reason, id],
      );
      if (!r.changes) return { revoked: false, endedSessions: [], krlVersion: 0 };
      const live = await tx.all<{ id: string }>(
        "SELECT id FROM access_sessions WHERE certificate_id = ? AND status = 'ACTIVE'",
        [id],
      );
      await tx.run(
        `UPDATE access_sessions SET status = 'REVOKED', ended_at = ?, end_reason = ?
         WHERE certificate_id = ? AND status = 'ACTIVE'`,
        [at, `certificate revoked: ${reason}`, id],
      );
      await bumpKrl(tx, at);
      const v = await tx.get<{ version: number }>('SELECT version FROM krl_state WHERE id = 1');
      return { revoked: true, endedSessions: live.map((s) => s.id), krlVersion: v!.version };
    });
  }

  revokeActiveOfUser(
    userId: string,
    reason: string,
    at: string,
    alsoInTx?: (tx: Tx, revoked: Array<{ id: string; serial: bigint }>) => unknown,
  ) {
    return this.db.write(async (tx) => {
      const rows = await tx.all<{ id: string; serial: string }>(
        "SELECT id, serial FROM certificates WHERE user_id = ? AND status = 'ACTIVE' AND valid_before > ?",
        [userId, at],
      );
      const revoked = rows.map((r) => ({ id: r.id, serial: BigInt(r.serial) }));
      if (!revoked.length) {
        const v = await tx.get<{ version: number }>('SELECT version FROM krl_state WHERE id = 1');
        return { revoked, endedSessions: [] as string[], krlVersion: v!.version };
      }
      await tx.run(
        `UPDATE certificates SET status = 'REVOKED', revoked_at = ?, revoke_reason = ?
         WHERE user_id = ? AND status = 'ACTIVE' AND valid_before > ?`,
        [at, reason, userId, at],
      );
      // Sessions of any revoked certificate of the user (those just revoked among them) end.
      const live = await tx.all<{ id: string }>(
        `SELECT id FROM access_sessions WHERE status = 'ACTIVE' AND certificate_id IN
           (SELECT id FROM certificates WHERE user_id = ? AND status = 'REVOKED')`,
        [userId],
      );
      if (live.length) {
        await tx.run(
          `UPDATE access_sessions SET status = 'REVOKED', ended_at = ?, end_reason = ?
           WHERE status = 'ACTIVE' AND certificate_id IN
             (SELECT id FROM certificates WHERE user_id = ? AND status = 'REVOKED')`,
          [at, `certificate revoked: ${reason}`, userId],
        );
      }
      await bumpKrl(tx, at);
      await alsoInTx?.(tx, revoked);
      const v = await tx.get<{ version: number }>('SELECT version FROM krl_state WHERE id = 1');
      return { revoked, endedSessions: live.map((s) => s.id), krlVersion: v!.version };
    });
  }

  async markExpired(now: string) {
    return (
      await this.db.run(
        "UPDATE certificates SET status = 'EXPIRED' WHERE status = 'ACTIVE' AND valid_before <= ?",
        [now],
      )
    ).changes;
  }

  async revokedSerials(now: string) {
    const rows = await this.db.all<{ serial: string; ca_id: number }>(
      "SELECT serial, ca_id FROM certificates WHERE status = 'REVOKED' AND valid_before > ?",
      [now],
    );
    return rows.map((r) => ({ serial: BigInt(r.serial), caId: r.ca_id }));
  }

  async krlVersion() {
    return (await this.db.get<{ version: number }>('SELECT version FROM krl_state WHERE id = 1'))!.version;
  }

  async insertSession(s: AccessSession) {
    await this.db.run(
      `INSERT INTO access_sessions (id, certificate_id, sandbox_id, user_id, vm_name, vm_ip_address, source_ip,
         started_at, ended_at, status, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        s.id,
        s.certificateId,
        s.sandboxId,
        s.userId,
        s.vmName,
        s.vmIpAddress,
        s.sourceIp,
        s.startedAt,
        s.endedAt,
        s.status,
        s.endReason,
      ],
    );
  }

  async getSession(id: string) {
    const r = await this.db.get<Row>('SELECT * FROM access_sessions WHERE id = ?', [id]);
    return r && toSession(r);
  }

  async endSession(id: string, reason: string, at: string) {
    const r = await this.db.run(
      "UPDATE access_sessions SET status = 'ENDED', ended_at = ?, end_reason = ? WHERE id = ? AND status = 'ACTIVE'",
      [at, reason, id],
    );
    return r.changes > 0;
  }

  async listSessions(q: SessionQuery) {
    const w = where([
      q.sandboxId !== undefined && ['sandbox_id = ?', q.sandboxId],
      q.certificateId !== undefined && ['certificate_id = ?', q.certificateId],
      q.userId !== undefined && ['user_id = ?', q.userId],
      q.activeOnly && ["status = 'ACTIVE'"],
    ]);
    const total = (await this.db.get<{ n: number }>(
      `SELECT COUNT(*) AS n FROM access_sessions ${w.sql}`,
      w.params,
    ))!.n;
    const rows = await this.db.all<Row>(
      `SELECT * FROM access_sessions ${w.sql} ORDER BY started_at DESC, id LIMIT ? OFFSET ?`,
      [...w.params, q.limit, q.offset],
    );
    return { rows: rows.map(toSession), total };
  }
}
