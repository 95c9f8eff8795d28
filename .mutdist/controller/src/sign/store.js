const toSign = (r) => ({
    id: r.id,
    serverId: r.server_id,
    instanceName: r.instance_name,
    nodeId: r.node_id,
    isValid: r.is_valid,
    manifest: r.manifest,
    signature: r.signature,
    createdAt: r.created_at,
    updatedAt: r.updated_at ?? null,
    checkedAt: r.checked_at ?? null,
});
const toTask = (r) => ({
    id: r.id,
    action: r.action,
    nodeId: r.node_id,
    state: r.state,
    progress: r.progress,
    createdAt: r.created_at,
    startedAt: r.started_at ?? null,
    finishedAt: r.finished_at ?? null,
    error: r.error ?? null,
});
export class SignStore {
    db;
    constructor(db) {
        this.db = db;
    }
    async get(serverId) {
        const r = await this.db.get('SELECT * FROM signatures WHERE server_id = ?', [serverId]);
        return r && toSign(r);
    }
    async list(offset, limit) {
        return (await this.db.all('SELECT * FROM signatures ORDER BY id LIMIT ? OFFSET ?', [limit, offset])).map(toSign);
    }
    async insert(s) {
        await this.db.run(`INSERT INTO signatures (server_id, instance_name, node_id, is_valid, manifest, signature, created_at, updated_at,
         checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
            s.serverId,
            s.instanceName,
            s.nodeId,
            s.isValid,
            s.manifest,
            s.signature,
            s.createdAt,
            s.updatedAt,
            s.checkedAt,
        ]);
        return (await this.get(s.serverId));
    }
    async replaceBaseline(s) {
        await this.db.run(`UPDATE signatures SET instance_name = ?, node_id = ?, is_valid = ?, manifest = ?, signature = ?, updated_at = ?,
         checked_at = ? WHERE server_id = ?`, [s.instanceName, s.nodeId, s.isValid, s.manifest, s.signature, s.updatedAt, s.checkedAt, s.serverId]);
    }
    async setVerdict(serverId, isValid, at) {
        await this.db.run('UPDATE signatures SET is_valid = ?, checked_at = ? WHERE server_id = ?', [
            isValid,
            at,
            serverId,
        ]);
    }
    async insertTask(t) {
        await this.db.run(`INSERT INTO tasks (id, action, node_id, state, progress, created_at, started_at, finished_at, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [t.id, t.action, t.nodeId, t.state, t.progress, t.createdAt, t.startedAt, t.finishedAt, t.error]);
    }
    async updateTask(t) {
        await this.db.run('UPDATE tasks SET state = ?, progress = ?, started_at = ?, finished_at = ?, error = ? WHERE id = ?', [t.state, t.progress, t.startedAt, t.finishedAt, t.error, t.id]);
    }
    async getTask(id) {
        const r = await this.db.get('SELECT * FROM tasks WHERE id = ?', [id]);
        return r && toTask(r);
    }
    async unfinishedTasks() {
        return (await this.db.all("SELECT * FROM tasks WHERE state IN ('PENDING', 'RUNNING') ORDER BY created_at")).map(toTask);
    }
}
//# sourceMappingURL=store.js.map