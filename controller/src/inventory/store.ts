import type { Database } from '../../../lib/store/database.js';
import type { Grant, Instance } from './model.js';

export interface InventoryStore {
  get(serverId: string): Promise<Instance | undefined>;
  /** Instances with this libvirt name (at most `limit`): names are not unique in the store. */
  findByName(name: string, limit: number): Promise<Instance[]>;
  listByNode(nodeId: number): Promise<Instance[]>;
  list(opts: {
    grantedTo?: string;
    limit: number;
    offset: number;
  }): Promise<{ rows: Instance[]; total: number }>;
  insert(i: Instance): Promise<void>;
  update(i: Instance): Promise<void>;
  delete(serverId: string): Promise<boolean>;
  grant(g: Grant): Promise<boolean>;
  revokeGrant(serverId: string, identityId: string): Promise<boolean>;
  grants(serverId: string): Promise<Grant[]>;
  isGranted(serverId: string, identityId: string): Promise<boolean>;
}

type Row = Record<string, unknown>;
const toInstance = (r: Row): Instance => ({
  serverId: r.server_id as string,
  instanceName: r.instance_name as string,
  nodeId: (r.node_id as number) ?? null,
  ipAddress: r.ip_address as string,
  sshPort: r.ssh_port as number,
  loginUser: r.login_user as string,
  state: r.state as Instance['state'],
  source: r.source as Instance['source'],
  createdAt: r.created_at as string,
  updatedAt: r.updated_at as string,
});

/** What insert and update both write, in this order: the updatable columns, updated_at, server_id. */
const instanceValues = (i: Instance) => [
  i.instanceName,
  i.nodeId,
  i.ipAddress,
  i.sshPort,
  i.loginUser,
  i.state,
  i.source,
  i.updatedAt,
  i.serverId,
];

const CACHED_INSTANCES = 10_000;
/** How long an instance read from a store other controllers share is used without reading it again. */
const SHARED_TTL_MS = 1_000;

export class SqliteInventoryStore implements InventoryStore {
  /**
   * Instances by server_id: every certificate request looks one up. On SQLite only this store writes
   * the table (no foreign key changes it behind our back), so a write here is all that invalidates.
   * On a store other controllers share, they write it too: an entry is trusted for SHARED_TTL_MS only,
   * so a change made on another controller is seen here within that (as an API session is).
   */
  private readonly cache = new Map<string, { instance: Instance; at: number }>();
  /** Bumped around every write: a read that raced a write is not cached. */
  private generation = 0;
  private readonly ttlMs: number;

  constructor(private readonly db: Database) {
    this.ttlMs = db.dialect === 'sqlite' ? Infinity : SHARED_TTL_MS;
  }

  async get(serverId: string) {
    const hit = this.cache.get(serverId);
    if (hit && performance.now() - hit.at < this.ttlMs) return { ...hit.instance };
    const generation = this.generation;
    const at = performance.now();
    const r = await this.db.get<Row>('SELECT * FROM instances WHERE server_id = ?', [serverId]);
    if (!r) return undefined;
    const instance = toInstance(r);
    if (generation === this.generation) {
      this.cache.delete(serverId);
      if (this.cache.size >= CACHED_INSTANCES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(serverId, { instance, at });
    }
    return { ...instance };
  }

  async findByName(name: string, limit: number) {
    const rows = await this.db.all<Row>(
      'SELECT * FROM instances WHERE instance_name = ? ORDER BY server_id LIMIT ?',
      [name, limit],
    );
    return rows.map(toInstance);
  }

  private async changing<T>(serverId: string, write: () => Promise<T>): Promise<T> {
    this.generation++;
    this.cache.delete(serverId);
    try {
      return await write();
    } finally {
      this.generation++;
      this.cache.delete(serverId);
    }
  }

  async listByNode(nodeId: number) {
    return (await this.db.all<Row>('SELECT * FROM instances WHERE node_id = ?', [nodeId])).map(toInstance);
  }

  async list(opts: { grantedTo?: string; limit: number; offset: number }) {
    const where = opts.grantedTo
      ? 'WHERE server_id IN (SELECT server_id FROM instance_grants WHERE identity_id = ?)'
      : '';
    const params = opts.grantedTo ? [opts.grantedTo] : [];
    const total = (await this.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM instances ${where}`, params))!
      .n;
    const rows = await this.db.all<Row>(
      `SELECT * FROM instances ${where} ORDER BY instance_name, server_id LIMIT ? OFFSET ?`,
      [...params, opts.limit, opts.offset],
    );
    return { rows: rows.map(toInstance), total };
  }

  async insert(i: Instance) {
    await this.changing(i.serverId, () =>
      this.db.run(
        `INSERT INTO instances (instance_name, node_id, ip_address, ssh_port, login_user, state, source,
         updated_at, server_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [...instanceValues(i), i.createdAt],
      ),
    );
  }

  async update(i: Instance) {
    await this.changing(i.serverId, () =>
      this.db.run(
        `UPDATE instances SET instance_name = ?, node_id = ?, ip_address = ?, ssh_port = ?, login_user = ?, state = ?,
         source = ?, updated_at = ? WHERE server_id = ?`,
        instanceValues(i),
      ),
    );
  }

  async delete(serverId: string) {
    const r = await this.changing(serverId, () =>
      this.db.run('DELETE FROM instances WHERE server_id = ?', [serverId]),
    );
    return r.changes > 0;
  }

  async grant(g: Grant) {
    const r = await this.db.run(
      'INSERT INTO instance_grants (server_id, identity_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      [g.serverId, g.identityId, g.createdAt],
    );
    return r.changes > 0;
  }

  async revokeGrant(serverId: string, identityId: string) {
    const r = await this.db.run('DELETE FROM instance_grants WHERE server_id = ? AND identity_id = ?', [
      serverId,
      identityId,
    ]);
    return r.changes > 0;
  }

  async grants(serverId: string) {
    const rows = await this.db.all<Row>(
      'SELECT * FROM instance_grants WHERE server_id = ? ORDER BY created_at',
      [serverId],
    );
    return rows.map((r) => ({
      serverId: r.server_id as string,
      identityId: r.identity_id as string,
      createdAt: r.created_at as string,
    }));
  }

  async isGranted(serverId: string, identityId: string) {
    return Boolean(
      await this.db.get('SELECT 1 FROM instance_grants WHERE server_id = ? AND identity_id = ?', [
        serverId,
        identityId,
      ]),
    );
  }
}
