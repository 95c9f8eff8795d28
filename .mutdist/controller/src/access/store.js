/** Certificates past valid_before read as EXPIRED even before the cron job marks them. */
const effectiveStatus = `CASE WHEN status = 'ACTIVE' AND valid_before <= ? THEN 'EXPIRED' ELSE status END`;
const toCa = (r) => ({
    id: r.id,
    keyType: r.key_type,
    publicKey: r.public_key,
    fingerprint: r.fingerprint,
    keyFile: r.key_file,
    status: r.status,
    createdAt: r.created_at,
    retiredAt: r.retired_at ?? null,
});
const toCertificate = (r) => ({
    id: r.id,
    serial: BigInt(r.serial),
    sandboxId: r.sandbox_id,
    userId: r.user_id,
    vmName: r.vm_name,
    keyId: r.key_id,
    principals: JSON.parse(r.principals),
    publicKeyFingerprint: r.public_key_fingerprint,
    sshKeyId: r.ssh_key_id ?? null,
    caId: r.ca_id,
    validAfter: r.valid_after,
    validBefore: r.valid_before,
    issuedAt: r.issued_at,
    status: (r.effective_status ?? r.status),
    revokedAt: r.revoked_at ?? null,
    revokeReason: r.revoke_reason ?? null,
});
const toSession = (r) => ({
    id: r.id,
    certificateId: r.certificate_id,
    sandboxId: r.sandbox_id,
    userId: r.user_id,
    vmName: r.vm_name,
    vmIpAddress: r.vm_ip_address,
    sourceIp: r.source_ip,
    startedAt: r.started_at,
    endedAt: r.ended_at ?? null,
    status: r.status,
    endReason: r.end_reason ?? null,
});
/** WHERE clause from the filters that were given: each condition carries its own parameters. */
function where(conditions) {
    const used = conditions.filter((c) => Array.isArray(c));
    return {
        sql: used.length ? `WHERE ${used.map(([c]) => c).join(' AND ')}` : '',
        params: used.flatMap(([, ...p]) => p),
    };
}
const bumpKrl = (tx, at) => tx.run('UPDATE krl_state SET version = version + 1, updated_at = ? WHERE id = 1', [at]);
/** 16 parameters per row; SQLite allows 32766 per statement. */
const MAX_INSERT_ROWS = 500;
const INSERT_CERTIFICATE = `INSERT INTO certificates (id, serial, sandbox_id, user_id, vm_name, key_id, principals,
  public_key_fingerprint, ssh_key_id, ca_id, valid_after, valid_before, issued_at, status, revoked_at, revoke_reason)
  VALUES`;
const CERTIFICATE_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
const certificateParams = (c) => [
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
export class SqliteAccessStore {
    db;
    constructor(db) {
        this.db = db;
    }
    async listCas() {
        return (await this.db.all('SELECT * FROM ssh_cas ORDER BY id')).map(toCa);
    }
    insertCa(ca) {
        return this.db.write(async (tx) => {
            const r = await tx.run(`INSERT INTO ssh_cas (key_type, public_key, fingerprint, key_file, status, created_at, retired_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`, [ca.keyType, ca.publicKey, ca.fingerprint, ca.keyFile, ca.status, ca.createdAt, ca.retiredAt]);
            return r.lastID;
        });
    }
    activateCa(id, at) {
        return this.db.write(async (tx) => {
            await tx.run("UPDATE ssh_cas SET status = 'trusted' WHERE status = 'active' AND id != ?", [id]);
            await tx.run("UPDATE ssh_cas SET status = 'active' WHERE id = ?", [id]);
            await bumpKrl(tx, at);
        });
    }
    retireCa(id, at) {
        return this.db.write(async (tx) => {
            const r = await tx.run("UPDATE ssh_cas SET status = 'retired', retired_at = ? WHERE id = ? AND status = 'trusted'", [at, id]);
            if (r.changes)
                await bumpKrl(tx, at);
            return r.changes > 0;
        });
    }
    /**
     * Concurrent inserts are coalesced: while one multi-row INSERT is being committed, the next ones
     * queue up and go together in the next statement (one statement per group commit instead of one
     * SAVEPOINT + INSERT per certificate). Each caller's promise still settles only after COMMIT.
     */
    insertCertificate(c) {
        return new Promise((resolve, reject) => {
            this.pendingCertificates.push({ record: c, resolve, reject });
            if (!this.flushingCertificates)
                void this.flushCertificates();
        });
    }
    pendingCertificates = [];
    flushingCertificates = false;
    async flushCertificates() {
        this.flushingCertificates = true;
        try {
            while (this.pendingCertificates.length) {
                const batch = this.pendingCertificates.splice(0, MAX_INSERT_ROWS);
                try {
                    await this.db.write((tx) => tx.run(`${INSERT_CERTIFICATE} ${batch.map(() => CERTIFICATE_ROW).join(', ')}`, batch.flatMap((p) => certificateParams(p.record))));
                    for (const p of batch)
                        p.resolve();
                }
                catch (err) {
                    if (batch.length === 1) {
                        batch[0].reject(err);
                        continue;
                    }
                    // One bad row fails the whole statement: retry one by one so only that row fails.
                    await Promise.all(batch.map((p) => this.db
                        .write((tx) => tx.run(`${INSERT_CERTIFICATE} ${CERTIFICATE_ROW}`, certificateParams(p.record)))
                        .then(() => p.resolve(), p.reject)));
                }
            }
        }
        finally {
            this.flushingCertificates = false;
        }
    }
    async getCertificate(id, now) {
        const r = await this.db.get(`SELECT *, ${effectiveStatus} AS effective_status FROM certificates WHERE id = ?`, [now, id]);
        return r && toCertificate(r);
    }
    async listCertificates(q, now) {
        const w = where([
            q.sandboxId !== undefined && ['sandbox_id = ?', q.sandboxId],
            q.userId !== undefined && ['user_id = ?', q.userId],
            q.status !== undefined && [`${effectiveStatus} = ?`, now, q.status],
            q.activeOnly && [`${effectiveStatus} = 'ACTIVE'`, now],
        ]);
        const total = (await this.db.get(`SELECT COUNT(*) AS n FROM certificates ${w.sql}`, w.params)).n;
        const rows = await this.db.all(`SELECT *, ${effectiveStatus} AS effective_status FROM certificates ${w.sql}
       ORDER BY issued_at DESC, id LIMIT ? OFFSET ?`, [now, ...w.params, q.limit, q.offset]);
        return { rows: rows.map(toCertificate), total };
    }
    revokeCertificate(id, reason, at) {
        return this.db.write(async (tx) => {
            const r = await tx.run("UPDATE certificates SET status = 'REVOKED', revoked_at = ?, revoke_reason = ? WHERE id = ? AND status != 'REVOKED'", [at, reason, id]);
            if (!r.changes)
                return { revoked: false, endedSessions: [], krlVersion: 0 };
            const live = await tx.all("SELECT id FROM access_sessions WHERE certificate_id = ? AND status = 'ACTIVE'", [id]);
            await tx.run(`UPDATE access_sessions SET status = 'REVOKED', ended_at = ?, end_reason = ?
         WHERE certificate_id = ? AND status = 'ACTIVE'`, [at, `certificate revoked: ${reason}`, id]);
            await bumpKrl(tx, at);
            const v = await tx.get('SELECT version FROM krl_state WHERE id = 1');
            return { revoked: true, endedSessions: live.map((s) => s.id), krlVersion: v.version };
        });
    }
    async markExpired(now) {
        return (await this.db.run("UPDATE certificates SET status = 'EXPIRED' WHERE status = 'ACTIVE' AND valid_before <= ?", [now])).changes;
    }
    async revokedSerials(now) {
        const rows = await this.db.all("SELECT serial, ca_id FROM certificates WHERE status = 'REVOKED' AND valid_before > ?", [now]);
        return rows.map((r) => ({ serial: BigInt(r.serial), caId: r.ca_id }));
    }
    async krlVersion() {
        return (await this.db.get('SELECT version FROM krl_state WHERE id = 1')).version;
    }
    async insertSession(s) {
        await this.db.run(`INSERT INTO access_sessions (id, certificate_id, sandbox_id, user_id, vm_name, vm_ip_address, source_ip,
         started_at, ended_at, status, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
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
        ]);
    }
    async getSession(id) {
        const r = await this.db.get('SELECT * FROM access_sessions WHERE id = ?', [id]);
        return r && toSession(r);
    }
    async endSession(id, reason, at) {
        const r = await this.db.run("UPDATE access_sessions SET status = 'ENDED', ended_at = ?, end_reason = ? WHERE id = ? AND status = 'ACTIVE'", [at, reason, id]);
        return r.changes > 0;
    }
    async listSessions(q) {
        const w = where([
            q.sandboxId !== undefined && ['sandbox_id = ?', q.sandboxId],
            q.certificateId !== undefined && ['certificate_id = ?', q.certificateId],
            q.userId !== undefined && ['user_id = ?', q.userId],
            q.activeOnly && ["status = 'ACTIVE'"],
        ]);
        const total = (await this.db.get(`SELECT COUNT(*) AS n FROM access_sessions ${w.sql}`, w.params)).n;
        const rows = await this.db.all(`SELECT * FROM access_sessions ${w.sql} ORDER BY started_at DESC, id LIMIT ? OFFSET ?`, [...w.params, q.limit, q.offset]);
        return { rows: rows.map(toSession), total };
    }
}
//# sourceMappingURL=store.js.map