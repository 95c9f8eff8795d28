const toInstance = (r) => ({
    serverId: r.server_id,
    instanceName: r.instance_name,
    nodeId: r.node_id ?? null,
    ipAddress: r.ip_address,
    sshPort: r.ssh_port,
    loginUser: r.login_user,
    state: r.state,
    source: r.source,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
});
export class SqliteInventoryStore {
    db;
    constructor(db) {
        this.db = db;
    }
    async get(serverId) {
        const r = await this.db.get('SELECT * FROM instances WHERE server_id = ?', [serverId]);
        return r && toInstance(r);
    }
    async listByNode(nodeId) {
        return (await this.db.all('SELECT * FROM instances WHERE node_id = ?', [nodeId])).map(toInstance);
    }
    async list(opts) {
        const where = opts.grantedTo
            ? 'WHERE server_id IN (SELECT server_id FROM instance_grants WHERE identity_id = ?)'
            : '';
        const params = opts.grantedTo ? [opts.grantedTo] : [];
        const total = (await this.db.get(`SELECT COUNT(*) AS n FROM instances ${where}`, params))
            .n;
        const rows = await this.db.all(`SELECT * FROM instances ${where} ORDER BY instance_name, server_id LIMIT ? OFFSET ?`, [...params, opts.limit, opts.offset]);
        return { rows: rows.map(toInstance), total };
    }
    async insert(i) {
        await this.db.run(`INSERT INTO instances (server_id, instance_name, node_id, ip_address, ssh_port, login_user, state, source,
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
            i.serverId,
            i.instanceName,
            i.nodeId,
            i.ipAddress,
            i.sshPort,
            i.loginUser,
            i.state,
            i.source,
            i.createdAt,
            i.updatedAt,
        ]);
    }
    async update(i) {
        await this.db.run(`UPDATE instances SET instance_name = ?, node_id = ?, ip_address = ?, ssh_port = ?, login_user = ?, state = ?,
         source = ?, updated_at = ? WHERE server_id = ?`, [
            i.instanceName,
            i.nodeId,
            i.ipAddress,
            i.sshPort,
            i.loginUser,
            i.state,
            i.source,
            i.updatedAt,
            i.serverId,
        ]);
    }
    async delete(serverId) {
        return (await this.db.run('DELETE FROM instances WHERE server_id = ?', [serverId])).changes > 0;
    }
    async grant(g) {
        const r = await this.db.run('INSERT OR IGNORE INTO instance_grants (server_id, identity_id, created_at) VALUES (?, ?, ?)', [g.serverId, g.identityId, g.createdAt]);
        return r.changes > 0;
    }
    async revokeGrant(serverId, identityId) {
        const r = await this.db.run('DELETE FROM instance_grants WHERE server_id = ? AND identity_id = ?', [
            serverId,
            identityId,
        ]);
        return r.changes > 0;
    }
    async grants(serverId) {
        const rows = await this.db.all('SELECT * FROM instance_grants WHERE server_id = ? ORDER BY created_at', [serverId]);
        return rows.map((r) => ({
            serverId: r.server_id,
            identityId: r.identity_id,
            createdAt: r.created_at,
        }));
    }
    async isGranted(serverId, identityId) {
        return Boolean(await this.db.get('SELECT 1 FROM instance_grants WHERE server_id = ? AND identity_id = ?', [
            serverId,
            identityId,
        ]));
    }
}
//# sourceMappingURL=store.js.map