const toNode = (r) => ({
    id: r.id,
    name: r.name,
    identityId: r.identity_id ?? null,
    tokenHash: r.token_hash ?? null,
    tokenExpiresAt: r.token_expires_at ?? null,
    enrolledAt: r.enrolled_at ?? null,
    publicKeyPem: r.public_key_pem ?? null,
    agentAddress: r.agent_address ?? null,
    hostname: r.hostname ?? null,
    libvirtUri: r.libvirt_uri ?? null,
    validationActive: r.validation_active === 1,
    lastSeenAt: r.last_seen_at ?? null,
    createdAt: r.created_at,
});
export class NodeStore {
    db;
    constructor(db) {
        this.db = db;
    }
    async create(name, tokenHash, expiresAt, now) {
        const id = await this.db.write(async (tx) => {
            const r = await tx.run('INSERT INTO nodes (name, token_hash, token_expires_at, created_at) VALUES (?, ?, ?, ?)', [name, tokenHash, expiresAt, now]);
            return r.lastID;
        });
        return (await this.get(id));
    }
    async get(id) {
        const r = await this.db.get('SELECT * FROM nodes WHERE id = ?', [id]);
        return r && toNode(r);
    }
    async byName(name) {
        const r = await this.db.get('SELECT * FROM nodes WHERE name = ?', [name]);
        return r && toNode(r);
    }
    async byTokenHash(hash) {
        const r = await this.db.get('SELECT * FROM nodes WHERE token_hash = ?', [hash]);
        return r && toNode(r);
    }
    async byIdentity(identityId) {
        const r = await this.db.get('SELECT * FROM nodes WHERE identity_id = ?', [identityId]);
        return r && toNode(r);
    }
    async list() {
        return (await this.db.all('SELECT * FROM nodes ORDER BY id')).map(toNode);
    }
    /** Consumes the one-time token: succeeds only for the first caller. */
    async completeEnrollment(id, tokenHash, e) {
        const r = await this.db.run(`UPDATE nodes SET token_hash = NULL, token_expires_at = NULL, identity_id = ?, public_key_pem = ?,
         agent_address = ?, hostname = ?, enrolled_at = ?, last_seen_at = ? WHERE id = ? AND token_hash = ?`, [e.identityId, e.publicKeyPem, e.agentAddress, e.hostname, e.at, e.at, id, tokenHash]);
        return r.changes > 0;
    }
    async seen(id, s) {
        await this.db.run('UPDATE nodes SET agent_address = ?, validation_active = ?, libvirt_uri = ?, last_seen_at = ? WHERE id = ?', [s.agentAddress, s.validationActive ? 1 : 0, s.libvirtUri, s.at, id]);
    }
    async setValidation(id, active) {
        await this.db.run('UPDATE nodes SET validation_active = ? WHERE id = ?', [active ? 1 : 0, id]);
    }
}
//# sourceMappingURL=store.js.map