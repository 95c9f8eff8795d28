import type { Database, Tx } from '../../../lib/store/database.js';
import type { Clock } from '../../../lib/platform/clock.js';
import { ApiError } from '../platform/errors.js';
import type { Metrics } from './metrics.js';

export type AuditOutcome = 'attempt' | 'success' | 'failure';

export interface AuditEntry {
  actorId?: string | null;
  actorName?: string | null;
  sourceAddress?: string | null;
  action: string;
  object?: string | null;
  outcome: AuditOutcome;
  status?: number | null;
  detail?: string | null;
  requestId?: string | null;
}

export interface AuditRecord extends AuditEntry {
  id: number;
  time: string;
}

export interface AuditQuery {
  since?: string;
  until?: string;
  actor?: string;
  action?: string;
  limit: number;
  offset: number;
}

interface Row {
  id: number;
  time: string;
  actor_id: string | null;
  actor_name: string | null;
  source_address: string | null;
  action: string;
  object: string | null;
  outcome: AuditOutcome;
  status: number | null;
  detail: string | null;
  request_id: string | null;
}

const INSERT_AUDIT = `INSERT INTO audit (time, actor_id, actor_name, source_address, action, object, outcome,
  status, detail, request_id) VALUES`;
const AUDIT_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

export const AUDIT_UNAVAILABLE = 'AUDIT_UNAVAILABLE';
export const auditUnavailable = () =>
  new ApiError(503, AUDIT_UNAVAILABLE, 'the audit log cannot be written: the action was refused');

/**
 * The audit log. Every write is committed before it resolves (the store's group commit), so a
 * caller that awaits record() knows the row is durable. A write that fails throws AUDIT_UNAVAILABLE.
 */
/**
 * Audit text as written: a NUL (a hostile id) becomes the two characters `\0`, so the row is
 * written on every store (PostgreSQL text cannot hold NUL) and a refusal is still recorded.
 */
const visible = (text: string | null | undefined) => (text == null ? null : text.replaceAll('\u0000', '\\0'));

export class AuditLog {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly metrics?: Metrics,
  ) {}

  /** Readiness: the store answers and the audit table is readable. */
  async check(): Promise<void> {
    await this.db.get('SELECT 1 AS ok');
    await this.db.get('SELECT id FROM audit ORDER BY id LIMIT 1');
  }

  async record(entry: AuditEntry): Promise<number> {
    return this.db.write((tx) => this.insert(tx, entry));
  }

  /**
   * Adds the row to the caller's transaction (appended: the rows of a batch of certificates go in one
   * statement): if it cannot be written, the whole action rolls back with AUDIT_UNAVAILABLE.
   */
  recordIn(tx: Tx, entry: AuditEntry): void {
    tx.append(INSERT_AUDIT, AUDIT_ROW, this.params(entry), () => {
      this.metrics?.auditWrites.inc({ result: 'error' });
      return auditUnavailable();
    });
    this.metrics?.auditWrites.inc({ result: 'ok' });
  }

  private async insert(runner: Pick<Tx, 'get'>, entry: AuditEntry): Promise<number> {
    try {
      const row = await runner.get<{ id: number }>(
        `${INSERT_AUDIT} ${AUDIT_ROW} RETURNING id`,
        this.params(entry),
      );
      this.metrics?.auditWrites.inc({ result: 'ok' });
      return row!.id;
    } catch {
      this.metrics?.auditWrites.inc({ result: 'error' });
      throw auditUnavailable();
    }
  }

  private params(entry: AuditEntry): unknown[] {
    return [
      this.clock.now().toISOString(),
      entry.actorId ?? null,
      visible(entry.actorName),
      entry.sourceAddress ?? null,
      visible(entry.action),
      visible(entry.object),
      entry.outcome,
      entry.status ?? null,
      visible(entry.detail),
      entry.requestId ?? null,
    ];
  }

  /** Settles an 'attempt' row with the action's outcome. */
  async settle(
    id: number,
    update: Pick<AuditEntry, 'outcome' | 'status' | 'object' | 'detail' | 'actorId' | 'actorName'>,
  ): Promise<void> {
    try {
      const { changes } = await this.db.run(
        `UPDATE audit SET outcome = ?, status = ?, object = coalesce(?, object), detail = coalesce(?, detail),
           actor_id = coalesce(actor_id, ?), actor_name = coalesce(actor_name, ?) WHERE id = ?`,
        [
          update.outcome,
          update.status ?? null,
          visible(update.object),
          visible(update.detail),
          update.actorId ?? null,
          visible(update.actorName),
          id,
        ],
      );
      if (changes !== 1) throw new Error(`audit row ${id} is gone`);
      this.metrics?.auditWrites.inc({ result: 'ok' });
    } catch {
      this.metrics?.auditWrites.inc({ result: 'error' });
      throw auditUnavailable();
    }
  }

  async list(q: AuditQuery): Promise<{ entries: AuditRecord[]; total: number }> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, ...values: unknown[]) => {
      where.push(clause);
      params.push(...values);
    };
    if (q.since) add('time >= ?', new Date(q.since).toISOString());
    if (q.until) add('time <= ?', new Date(q.until).toISOString());
    if (q.actor) add('(actor_id = ? OR actor_name = ?)', q.actor, q.actor);
    if (q.action) {
      // 'certificate' matches every 'certificate.*' action; 'certificate.issue' only itself.
      where.push('(action = ? OR action LIKE ?)');
      params.push(q.action, `${q.action.replace(/[%_]/g, '')}.%`);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (await this.db.get<{ n: number }>(
      `SELECT count(*) AS n FROM audit ${clause}`,
      params as never,
    ))!.n;
    const rows = await this.db.all<Row>(`SELECT * FROM audit ${clause} ORDER BY id DESC LIMIT ? OFFSET ?`, [
      ...params,
      q.limit,
      q.offset,
    ] as never);
    return {
      total,
      entries: rows.map((r) => ({
        id: r.id,
        time: r.time,
        actorId: r.actor_id,
        actorName: r.actor_name,
        sourceAddress: r.source_address,
        action: r.action,
        object: r.object,
        outcome: r.outcome,
        status: r.status,
        detail: r.detail,
        requestId: r.request_id,
      })),
    };
  }
}
