const toAuthenticator = (r) => ({
    id: r.id,
    identityId: r.identity_id,
    locked: r.locked === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
});
const toKey = (r) => ({
    id: r.id,
    identityId: r.identity_id,
    authenticatorId: r.authenticator_id,
    type: r.type,
    skey: r.skey,
    comment: r.comment ?? '',
    fingerprint: r.fingerprint,
    revision: r.revision,
    deleted: r.deleted === 1,
    createdAt: r.created_at,
    modifiedAt: r.modified_at,
});
/** Reads outside transactions see committed data; writes go through Database.write. */
export class SshKeyStore {
    db;
    constructor(db) {
        this.db = db;
    }
    /** Runs fn in one write transaction, with this store's helpers bound to it. */
    transaction(fn) {
        return this.db.write((tx) => fn(new SshKeyTx(tx)));
    }
    async getKey(id) {
        const r = await this.db.get('SELECT * FROM ssh_keys WHERE id = ?', [id]);
        return r && toKey(r);
    }
    async listLive(identityId) {
        const rows = identityId
            ? await this.db.all('SELECT * FROM ssh_keys WHERE deleted = 0 AND identity_id = ? ORDER BY id', [
                identityId,
            ])
            : await this.db.all('SELECT * FROM ssh_keys WHERE deleted = 0 ORDER BY id');
        return rows.map(toKey);
    }
    async getAuthenticator(id) {
        const r = await this.db.get('SELECT * FROM ssh_key_authenticators WHERE id = ?', [id]);
        return r && toAuthenticator(r);
    }
    async authenticatorOf(identityId) {
        const r = await this.db.get('SELECT * FROM ssh_key_authenticators WHERE identity_id = ?', [
            identityId,
        ]);
        return r && toAuthenticator(r);
    }
    async listAuthenticators() {
        return (await this.db.all('SELECT * FROM ssh_key_authenticators ORDER BY id')).map(toAuthenticator);
    }
}
/** The store's operations inside one transaction (checks and writes see the same state). */
export class SshKeyTx {
    tx;
    constructor(tx) {
        this.tx = tx;
    }
    /** The identity's authenticator, created unlocked on first use. */
    async ensureAuthenticator(identityId, now) {
        await this.tx.run(`INSERT INTO ssh_key_authenticators (identity_id, locked, created_at, updated_at) VALUES (?, 0, ?, ?)
       ON CONFLICT (identity_id) DO NOTHING`, [identityId, now, now]);
        return toAuthenticator((await this.tx.get('SELECT * FROM ssh_key_authenticators WHERE identity_id = ?', [identityId])));
    }
    async getAuthenticator(id) {
        const r = await this.tx.get('SELECT * FROM ssh_key_authenticators WHERE id = ?', [id]);
        return r && toAuthenticator(r);
    }
    async setLocked(id, locked, now) {
        await this.tx.run('UPDATE ssh_key_authenticators SET locked = ?, updated_at = ? WHERE id = ?', [
            locked ? 1 : 0,
            now,
            id,
        ]);
    }
    async getKey(id) {
        const r = await this.tx.get('SELECT * FROM ssh_keys WHERE id = ?', [id]);
        return r && toKey(r);
    }
    /** A live key of this person with this fingerprint, other than `exceptId`. */
    async findLiveDuplicate(identityId, fingerprint, exceptId = 0) {
        const r = await this.tx.get('SELECT id FROM ssh_keys WHERE identity_id = ? AND fingerprint = ? AND deleted = 0 AND id <> ?', [identityId, fingerprint, exceptId]);
        return r?.id;
    }
    async insertKey(identityId, authenticatorId, m, now) {
        const r = await this.tx.run(`INSERT INTO ssh_keys (identity_id, authenticator_id, type, skey, comment, fingerprint, revision, deleted,
         created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?)`, [identityId, authenticatorId, m.type, m.skey, m.comment, m.fingerprint, now, now]);
        return r.lastID;
    }
    async updateKey(id, m, now) {
        await this.tx.run(`UPDATE ssh_keys SET type = ?, skey = ?, comment = ?, fingerprint = ?, revision = revision + 1,
         modified_at = ? WHERE id = ? AND deleted = 0`, [m.type, m.skey, m.comment, m.fingerprint, now, id]);
    }
    async softDelete(id, now) {
        await this.tx.run('UPDATE ssh_keys SET deleted = 1, revision = revision + 1, modified_at = ? WHERE id = ? AND deleted = 0', [now, id]);
    }
}
//# sourceMappingURL=store.js.map