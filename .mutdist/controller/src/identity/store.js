/** Filterable fields of the OpenZiti filter language → SQL columns. */
export const identityFields = {
    id: 'id',
    name: 'name',
    role: 'role',
    disabled: 'disabled',
    isDefaultAdmin: 'is_default_admin',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
};
export const authenticatorFields = {
    id: 'id',
    method: 'method',
    username: 'username',
    fingerprint: 'fingerprint',
    identityId: 'identity_id',
    createdAt: 'created_at',
    updatedAt: 'updated_at',
};
const toIdentity = (r) => ({
    id: r.id,
    name: r.name,
    role: r.role,
    isDefaultAdmin: r.is_default_admin === 1,
    disabled: r.disabled === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
});
const toAuthenticator = (r) => ({
    id: r.id,
    identityId: r.identity_id,
    method: r.method,
    username: r.username ?? null,
    passwordHash: r.password_hash ?? null,
    certPem: r.cert_pem ?? null,
    fingerprint: r.fingerprint ?? null,
    pendingCertPem: r.pending_cert_pem ?? null,
    pendingFingerprint: r.pending_fingerprint ?? null,
    extendRequestedAt: r.extend_requested_at ?? null,
    lastExtendRolledKeys: r.last_extend_rolled_keys === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
});
const toSession = (r) => ({
    id: r.id,
    tokenHash: r.token_hash,
    identityId: r.identity_id,
    authenticatorId: r.authenticator_id,
    ipAddress: r.ip_address,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastActivityAt: r.last_activity_at,
});
function insertAuthenticatorTx(tx, a) {
    return tx.run(`INSERT INTO authenticators (id, identity_id, method, username, password_hash, cert_pem, fingerprint,
       pending_cert_pem, pending_fingerprint, extend_requested_at, last_extend_rolled_keys, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
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
    ]);
}
async function page(db, table, scope, window, map) {
    const where = `(${scope.where}) AND (${window.filter.where})`;
    const params = [...scope.params, ...window.filter.params];
    const total = (await db.get(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`, params)).n;
    const order = window.filter.orderBy || 'created_at ASC';
    const rows = await db.all(`SELECT * FROM ${table} WHERE ${where} ORDER BY ${order}, id LIMIT ? OFFSET ?`, [...params, window.limit, window.offset]);
    return { rows: rows.map(map), total };
}
export class SqliteIdentityStore {
    db;
    constructor(db) {
        this.db = db;
    }
    insertIdentity(i, authenticator) {
        return this.db.write(async (tx) => {
            await tx.run(`INSERT INTO identities (id, name, role, is_default_admin, disabled, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`, [i.id, i.name, i.role, i.isDefaultAdmin ? 1 : 0, i.disabled ? 1 : 0, i.createdAt, i.updatedAt]);
            if (authenticator)
                await insertAuthenticatorTx(tx, authenticator);
        });
    }
    async getIdentity(id) {
        const r = await this.db.get('SELECT * FROM identities WHERE id = ?', [id]);
        return r && toIdentity(r);
    }
    async getIdentityByName(name) {
        const r = await this.db.get('SELECT * FROM identities WHERE name = ?', [name]);
        return r && toIdentity(r);
    }
    async countIdentities() {
        return (await this.db.get('SELECT COUNT(*) AS n FROM identities')).n;
    }
    listIdentities(window) {
        return page(this.db, 'identities', { where: '1=1', params: [] }, window, toIdentity);
    }
    async updateIdentity(i) {
        await this.db.run('UPDATE identities SET name = ?, role = ?, disabled = ?, updated_at = ? WHERE id = ?', [
            i.name,
            i.role,
            i.disabled ? 1 : 0,
            i.updatedAt,
            i.id,
        ]);
    }
    async deleteIdentity(id) {
        return (await this.db.run('DELETE FROM identities WHERE id = ?', [id])).changes > 0;
    }
    async insertAuthenticator(a) {
        await this.db.write((tx) => insertAuthenticatorTx(tx, a));
    }
    async getAuthenticator(id) {
        const r = await this.db.get('SELECT * FROM authenticators WHERE id = ?', [id]);
        return r && toAuthenticator(r);
    }
    async findUpdbByUsername(username) {
        const r = await this.db.get("SELECT * FROM authenticators WHERE method = 'updb' AND username = ?", [
            username,
        ]);
        return r && toAuthenticator(r);
    }
    async findCertByFingerprint(fingerprint) {
        const r = await this.db.get("SELECT * FROM authenticators WHERE method = 'cert' AND fingerprint = ?", [fingerprint]);
        return r && toAuthenticator(r);
    }
    listAuthenticators(identityId, window) {
        return page(this.db, 'authenticators', { where: 'identity_id = ?', params: [identityId] }, window, toAuthenticator);
    }
    async updateAuthenticator(a) {
        await this.db.run(`UPDATE authenticators SET username = ?, password_hash = ?, cert_pem = ?, fingerprint = ?,
         pending_cert_pem = ?, pending_fingerprint = ?, extend_requested_at = ?, last_extend_rolled_keys = ?,
         updated_at = ? WHERE id = ?`, [
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
        ]);
    }
}
export class SqliteSessionStore {
    db;
    constructor(db) {
        this.db = db;
    }
    async insert(s) {
        await this.db.run(`INSERT INTO api_sessions (id, token_hash, identity_id, authenticator_id, ip_address, created_at, updated_at,
         last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
            s.id,
            s.tokenHash,
            s.identityId,
            s.authenticatorId,
            s.ipAddress,
            s.createdAt,
            s.updatedAt,
            s.lastActivityAt,
        ]);
    }
    async findByTokenHash(hash) {
        const r = await this.db.get('SELECT * FROM api_sessions WHERE token_hash = ?', [hash]);
        return r && toSession(r);
    }
    async touch(id, lastActivityAt) {
        await this.db.run('UPDATE api_sessions SET last_activity_at = ? WHERE id = ? AND last_activity_at < ?', [
            lastActivityAt,
            id,
            lastActivityAt,
        ]);
    }
    async delete(id) {
        return (await this.db.run('DELETE FROM api_sessions WHERE id = ?', [id])).changes > 0;
    }
    async deleteForIdentity(identityId) {
        return (await this.db.run('DELETE FROM api_sessions WHERE identity_id = ?', [identityId])).changes;
    }
    async deleteIdleSince(cutoff) {
        return (await this.db.run('DELETE FROM api_sessions WHERE last_activity_at <= ?', [cutoff])).changes;
    }
}
//# sourceMappingURL=store.js.map