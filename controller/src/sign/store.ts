import type { Database } from '../../../lib/store/database.js';
import type { SignEvent, SignRecord, Task, Validity } from './model.js';

type Row = Record<string, unknown>;

/** Who runs a task, and until when (ms since the epoch) unless renewed. */
export interface Lease {
  owner: string;
  until: number;
}

const toSign = (r: Row): SignRecord => ({
  id: r.id as number,
  serverId: r.server_id as string,
  instanceName: r.instance_name as string,
  nodeId: r.node_id as number,
  isValid: r.is_valid as Validity,
  manifest: r.manifest as string,
  signature: r.signature as string,
  createdAt: r.created_at as string,
  updatedAt: (r.updated_at as string) ?? null,
  checkedAt: (r.checked_at as string) ?? null,
});

const toTask = (r: Row): Task => ({
  id: r.id as string,
  action: r.action as Task['action'],
  nodeId: r.node_id as number,
  state: r.state as Task['state'],
  progress: r.progress as number,
  createdAt: r.created_at as string,
  startedAt: (r.started_at as string) ?? null,
  finishedAt: (r.finished_at as string) ?? null,
  error: (r.error as string) ?? null,
});

export class SignStore {
  constructor(private readonly db: Database) {}

  countByVerdict() {
    return this.db.all<{ verdict: string; count: number }>(
      'SELECT is_valid AS verdict, count(*) AS count FROM signatures GROUP BY is_valid',
    );
  }

  async get(serverId: string) {
    const r = await this.db.get<Row>('SELECT * FROM signatures WHERE server_id = ?', [serverId]);
    return r && toSign(r);
  }

  async list(offset: number, limit: number) {
    return (
      await this.db.all<Row>('SELECT * FROM signatures ORDER BY id LIMIT ? OFFSET ?', [limit, offset])
    ).map(toSign);
  }

  async insert(s: Omit<SignRecord, 'id'>): Promise<SignRecord> {
    await this.db.run(
      `INSERT INTO signatures (server_id, instance_name, node_id, is_valid, manifest, signature, created_at, updated_at,
         checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        s.serverId,
        s.instanceName,
        s.nodeId,
        s.isValid,
        s.manifest,
        s.signature,
        s.createdAt,
        s.updatedAt,
        s.checkedAt,
      ],
    );
    return (await this.get(s.serverId))!;
  }

  async replaceBaseline(s: SignRecord) {
    await this.db.run(
      `UPDATE signatures SET instance_name = ?, node_id = ?, is_valid = ?, manifest = ?, signature = ?, updated_at = ?,
         checked_at = ? WHERE server_id = ?`,
      [s.instanceName, s.nodeId, s.isValid, s.manifest, s.signature, s.updatedAt, s.checkedAt, s.serverId],
    );
  }

  async setVerdict(serverId: string, isValid: Validity, at: string) {
    await this.db.run('UPDATE signatures SET is_valid = ?, checked_at = ? WHERE server_id = ?', [
      isValid,
      at,
      serverId,
    ]);
  }

  /** A new task row, leased to `lease.owner` until `lease.until` (ms) when given (unleased: any controller may claim it). */
  async insertTask(t: Task, lease?: Lease) {
    await this.db.run(
      `INSERT INTO tasks (id, action, node_id, state, progress, created_at, started_at, finished_at, error, lease_owner,
         lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        t.id,
        t.action,
        t.nodeId,
        t.state,
        t.progress,
        t.createdAt,
        t.startedAt,
        t.finishedAt,
        t.error,
        lease?.owner ?? null,
        lease?.until ?? null,
      ],
    );
  }

  /** Writes the task's state if `owner` still holds its lease; false when it does not (the task was taken over). */
  async updateTask(t: Task, owner: string): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE tasks SET state = ?, progress = ?, started_at = ?, finished_at = ?, error = ?
       WHERE id = ? AND lease_owner = ?`,
      [t.state, t.progress, t.startedAt, t.finishedAt, t.error, t.id, owner],
    );
    return r.changes === 1;
  }

  async getTask(id: string) {
    const r = await this.db.get<Row>('SELECT * FROM tasks WHERE id = ?', [id]);
    return r && toTask(r);
  }

  /**
   * Leases to `lease.owner` the unfinished tasks nobody holds (no lease, or one that ran out before
   * `now`), oldest first, skipping `skip` (tasks the owner runs already). One write job: writes are
   * serialized across the cluster, so two controllers never claim the same task.
   */
  claimTasks(lease: Lease, now: number, skip: ReadonlySet<string>, max = 100): Promise<Task[]> {
    return this.db.write(async (tx) => {
      const rows = await tx.all<Row>(
        `SELECT * FROM tasks WHERE state IN ('PENDING', 'RUNNING') AND (lease_until IS NULL OR lease_until < ?)
         ORDER BY created_at, id LIMIT ?`,
        [now, max + skip.size],
      );
      const claimed = rows.filter((r) => !skip.has(r.id as string)).slice(0, max);
      for (const r of claimed)
        await tx.run('UPDATE tasks SET lease_owner = ?, lease_until = ? WHERE id = ?', [
          lease.owner,
          lease.until,
          r.id,
        ]);
      return claimed.map(toTask);
    });
  }

  /** Extends the owner's leases on `ids`; answers the ids it no longer holds. */
  renewLeases(lease: Lease, ids: readonly string[]): Promise<string[]> {
    return this.db.write(async (tx) => {
      const lost: string[] = [];
      for (const id of ids) {
        const r = await tx.run('UPDATE tasks SET lease_until = ? WHERE id = ? AND lease_owner = ?', [
          lease.until,
          id,
          lease.owner,
        ]);
        if (r.changes !== 1) lost.push(id);
      }
      return lost;
    });
  }

  /** Gives up the owner's unfinished tasks so that another controller claims them at its next poll. */
  async releaseLeases(owner: string): Promise<void> {
    await this.db.run(
      `UPDATE tasks SET lease_owner = NULL, lease_until = NULL
       WHERE lease_owner = ? AND state IN ('PENDING', 'RUNNING')`,
      [owner],
    );
  }

  async insertEvents(events: Array<Omit<SignEvent, 'id'>>) {
    for (const e of events) {
      await this.db.run(
        `INSERT INTO sign_events (server_id, node_id, time, component, old_digest, new_digest, action, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [e.serverId, e.nodeId, e.time, e.component, e.oldDigest, e.newDigest, e.action, e.detail],
      );
    }
  }

  async events(serverId: string, limit = 1000): Promise<SignEvent[]> {
    const rows = await this.db.all<Row>(
      'SELECT * FROM sign_events WHERE server_id = ? ORDER BY id DESC LIMIT ?',
      [serverId, limit],
    );
    return rows.reverse().map((r) => ({
      id: r.id as number,
      serverId: r.server_id as string,
      nodeId: r.node_id as number,
      time: r.time as string,
      component: (r.component as string) ?? null,
      oldDigest: (r.old_digest as string) ?? null,
      newDigest: (r.new_digest as string) ?? null,
      action: r.action as SignEvent['action'],
      detail: r.detail as string,
    }));
  }
}
