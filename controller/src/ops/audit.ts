import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database, Tx } from '../store/database.js';
import type { Clock } from '../platform/clock.js';
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

export const auditUnavailable = () =>
  new ApiError(503, 'AUDIT_UNAVAILABLE', 'the audit log cannot be written: the action was refused');

/**
 * The audit log. Every write is committed before it resolves (the store's group commit), so a
 * caller that awaits record() knows the row is durable. A write that fails throws AUDIT_UNAVAILABLE.
 */
export class AuditLog {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly metrics?: Metrics,
  ) {}

  async record(entry: AuditEntry): Promise<number> {
    return this.insert(this.db, entry);
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

  private async insert(runner: Pick<Tx, 'run'>, entry: AuditEntry): Promise<number> {
    try {
      const { lastID } = await runner.run(`${INSERT_AUDIT} ${AUDIT_ROW}`, this.params(entry));
      this.metrics?.auditWrites.inc({ result: 'ok' });
      return lastID;
    } catch {
      this.metrics?.auditWrites.inc({ result: 'error' });
      throw auditUnavailable();
    }
  }

  private params(entry: AuditEntry): unknown[] {
    return [
      this.clock.now().toISOString(),
      entry.actorId ?? null,
      entry.actorName ?? null,
      entry.sourceAddress ?? null,
      entry.action,
      entry.object ?? null,
      entry.outcome,
      entry.status ?? null,
      entry.detail ?? null,
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
          update.object ?? null,
          update.detail ?? null,
          update.actorId ?? null,
          update.actorName ?? null,
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

/** What an audited route does, and how to name the object it acts on. */
interface AuditRule {
  method: string;
  /** Route template without the '/edge/management/v1' alias prefix. */
  url: string;
  action: (request: FastifyRequest, response: any) => string;
  object?: (request: FastifyRequest, response: any) => unknown;
  /**
   * The route writes its audit row inside the action's own transaction (AuditLog.recordIn), so the
   * row and the action commit together or not at all; the hooks below only record refusals.
   */
  inline?: boolean;
}

const p = (request: FastifyRequest, name: string) => (request.params as Record<string, unknown>)[name];
const b = (request: FastifyRequest, name: string) =>
  (request.body as Record<string, unknown> | null | undefined)?.[name];

const RULES: AuditRule[] = [
  {
    method: 'POST',
    url: '/authenticate',
    action: (r) => `login.${(r.query as { method?: string }).method ?? 'unknown'}`,
    object: (r) => b(r, 'username'),
  },
  { method: 'DELETE', url: '/current-api-session', action: () => 'logout' },
  {
    method: 'POST',
    url: '/identities',
    action: () => 'identity.create',
    object: (r, res) => res?.data?.id ?? b(r, 'name'),
  },
  { method: 'PATCH', url: '/identities/:id', action: () => 'identity.update', object: (r) => p(r, 'id') },
  { method: 'DELETE', url: '/identities/:id', action: () => 'identity.delete', object: (r) => p(r, 'id') },
  {
    method: 'POST',
    url: '/identities/:id/certificate',
    action: () => 'identity.certificate',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'PUT',
    url: '/current-identity/authenticators/:id',
    action: () => 'authenticator.update',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'PATCH',
    url: '/current-identity/authenticators/:id',
    action: () => 'authenticator.update',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'POST',
    url: '/current-identity/authenticators/:id/extend',
    action: () => 'authenticator.extend',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'POST',
    url: '/current-identity/authenticators/:id/extend-verify',
    action: () => 'authenticator.extend-verify',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'POST',
    url: '/v1/access/request',
    inline: true,
    action: () => 'certificate.issue',
    object: (r, res) => res?.certificate_id ?? res?.id ?? b(r, 'sandbox_id'),
  },
  {
    method: 'DELETE',
    url: '/v1/access/certificate/:certID',
    action: () => 'certificate.revoke',
    object: (r) => p(r, 'certID'),
  },
  { method: 'POST', url: '/v1/access/ca/rotate', action: () => 'ca.rotate', object: (_r, res) => res?.id },
  { method: 'POST', url: '/v1/access/ca/:id/retire', action: () => 'ca.retire', object: (r) => p(r, 'id') },
  {
    method: 'POST',
    url: '/v1/access/session/start',
    action: () => 'session.start',
    object: (r, res) => res?.session_id ?? b(r, 'certificate_id'),
  },
  {
    method: 'POST',
    url: '/v1/access/session/end',
    action: () => 'session.end',
    object: (r) => b(r, 'session_id'),
  },
  {
    method: 'POST',
    url: '/v1/instances/',
    action: () => 'instance.create',
    object: (r, res) => res?.id ?? res?.server_id ?? b(r, 'id'),
  },
  {
    method: 'POST',
    url: '/v1/instances',
    action: () => 'instance.create',
    object: (r, res) => res?.id ?? res?.server_id ?? b(r, 'id'),
  },
  {
    method: 'PATCH',
    url: '/v1/instances/:server_id',
    action: () => 'instance.update',
    object: (r) => p(r, 'server_id'),
  },
  {
    method: 'DELETE',
    url: '/v1/instances/:server_id',
    action: () => 'instance.delete',
    object: (r) => p(r, 'server_id'),
  },
  {
    method: 'POST',
    url: '/ssh_key_authenticator/ssh_keys.json',
    action: () => 'key.add',
    object: (_r, res) => res?.Id,
  },
  {
    method: 'PUT',
    url: '/ssh_key_authenticator/ssh_keys/:ref',
    action: () => 'key.update',
    object: (r) => String(p(r, 'ref')).replace(/\.json$/, ''),
  },
  {
    method: 'DELETE',
    url: '/ssh_key_authenticator/ssh_keys/:ref',
    action: () => 'key.remove',
    object: (r) => String(p(r, 'ref')).replace(/\.json$/, ''),
  },
  {
    method: 'POST',
    url: '/ssh_key_authenticator/authenticators/:id/lock',
    action: () => 'keys.lock',
    object: (r) => p(r, 'id'),
  },
  {
    method: 'POST',
    url: '/ssh_key_authenticator/authenticators/:id/unlock',
    action: () => 'keys.unlock',
    object: (r) => p(r, 'id'),
  },
  { method: 'POST', url: '/v1/sign', action: () => 'signature.create', object: (r) => b(r, 'server_id') },
  { method: 'PUT', url: '/v1/sign', action: () => 'signature.update', object: (r) => b(r, 'server_id') },
  ...['POST', 'GET'].map((method) => ({
    method,
    url: '/v1/sign/node/:node_id/action',
    action: (r: FastifyRequest, res: any) =>
      `validation.${res?.action ?? b(r, 'action') ?? (r.query as { action?: string }).action ?? 'unknown'}`,
    object: (r: FastifyRequest) => p(r, 'node_id'),
  })),
  {
    method: 'POST',
    url: '/v1/nodes',
    action: () => 'node.create',
    object: (r, res) => res?.node_id ?? b(r, 'name'),
  },
];

const ALIAS = '/edge/management/v1';
const ruleIndex = new Map(RULES.map((r) => [`${r.method} ${r.url}`, r]));

function ruleFor(request: FastifyRequest): AuditRule | undefined {
  let url = request.routeOptions.url;
  if (!url) return undefined;
  if (url.startsWith(ALIAS)) url = url.slice(ALIAS.length) || '/';
  return ruleIndex.get(`${request.method} ${url}`);
}

/** A request field as audit text: strings and numbers only (a body may hold any JSON where a name belongs). */
const str = (v: unknown) =>
  typeof v === 'string' ? v || null : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

/** Audited actions (exposed so tests and the OpenAPI document can list them). */
export const auditedRoutes = RULES.map((r) => `${r.method} ${r.url}`);

declare module 'fastify' {
  interface FastifyRequest {
    auditId?: number;
  }
}

/**
 * Audits the state-changing routes, failing closed:
 *  1. preHandler (after authentication and validation, before the handler acts): an 'attempt' row
 *     is committed. If it cannot be written the request fails with 503 AUDIT_UNAVAILABLE in the
 *     group's error format and the action never runs.
 *  2. onSend (after the handler, before the answer leaves): the row is settled with the outcome
 *     and status. If that write fails, the answer is replaced by a 503 AUDIT_UNAVAILABLE: the
 *     action has happened and its attempt row is in the log, but the caller is not told it succeeded.
 * Requests refused before the preHandler (no session, invalid body) are recorded as one 'failure'
 * row at onSend, best effort.
 * Certificates issued/revoked are counted here too (the counters of /metrics).
 */
export function installAudit(app: FastifyInstance, audit: AuditLog, metrics: Metrics): void {
  app.addHook('preHandler', async (request) => {
    const rule = ruleFor(request);
    if (!rule || rule.inline) return;
    const principal = request.principal;
    request.auditId = await audit.record({
      actorId: principal?.identity.id,
      actorName:
        principal?.identity.name ??
        str(rule.method === 'POST' && rule.url === '/authenticate' ? b(request, 'username') : null),
      sourceAddress: request.ip,
      action: rule.action(request, undefined),
      object: str(rule.object?.(request, undefined)),
      outcome: 'attempt',
      requestId: String(request.id),
    });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const rule = ruleFor(request);
    if (!rule) return payload;
    const status = reply.statusCode;
    const ok = status < 400;
    if (ok && rule.inline) {
      // Written in the action's own transaction; only the counter is left (no need to parse the answer).
      if (rule.action(request, undefined) === 'certificate.issue') metrics.certificatesIssued.inc();
      return payload;
    }
    let response: any;
    if (typeof payload === 'string') {
      try {
        response = JSON.parse(payload);
      } catch {
        response = undefined;
      }
    }
    const action = rule.action(request, ok ? response : undefined);
    if (ok && action === 'certificate.issue') metrics.certificatesIssued.inc();
    if (ok && action === 'certificate.revoke') metrics.certificatesRevoked.inc();
    const loginIdentity = ok && rule.url === '/authenticate' ? response?.data?.identity : undefined;
    const detail = ok ? null : str(response?.error?.message ?? response?.error ?? response?.Message ?? null);
    const settled = {
      outcome: (ok ? 'success' : 'failure') as AuditOutcome,
      status,
      object: str(rule.object?.(request, ok ? response : undefined)),
      detail: detail && detail.length > 500 ? detail.slice(0, 500) : detail,
      actorId: request.principal?.identity.id ?? loginIdentity?.id,
      actorName: request.principal?.identity.name ?? loginIdentity?.name,
    };
    if (request.auditId === undefined) {
      if (status === 503 && response && JSON.stringify(response).includes('audit')) return payload;
      // Refused before the preHandler ran (authentication, validation): one row, best effort.
      await audit
        .record({
          ...settled,
          actorName: settled.actorName ?? str(rule.url === '/authenticate' ? b(request, 'username') : null),
          sourceAddress: request.ip,
          action,
          requestId: String(request.id),
        })
        .catch((err) => request.log.error({ err }, 'audit write failed for a refused request'));
      return payload;
    }
    try {
      await audit.settle(request.auditId, settled);
      return payload;
    } catch (err) {
      request.log.error({ err, auditId: request.auditId }, 'audit outcome could not be written');
      void reply.status(503).type('application/json; charset=utf-8');
      return JSON.stringify({
        error: auditUnavailable().message,
        code: 'AUDIT_UNAVAILABLE',
      });
    }
  });
}
