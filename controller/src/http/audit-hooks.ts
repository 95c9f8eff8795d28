import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AUDIT_UNAVAILABLE, auditUnavailable, type AuditLog, type AuditOutcome } from '../ops/audit-log.js';

/**
 * What an audited route does, declared in the route's own options: `config: { audit: {...} }`.
 * `response` is the route's parsed JSON answer, given only once it succeeded.
 */
export interface AuditSpec {
  action: string | ((request: FastifyRequest) => string);
  /** The object acted on (a string or number; anything else is not recorded). */
  object?: (request: FastifyRequest, response?: any) => unknown;
  /** What else a successful action's row says (a grant: the identity); a refusal's detail is its error. */
  detail?: (request: FastifyRequest, response?: any) => unknown;
  /** Who acts when no session does yet (a login: the name it gives, the identity it got). */
  actor?: (request: FastifyRequest, response?: any) => { id?: unknown; name?: unknown };
  /**
   * The route writes its audit row inside the action's own transaction (AuditLog.recordIn), so the
   * row and the action commit together or not at all; the hooks below only record refusals.
   */
  inline?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    auditId?: number;
    /** An audit write failed: the request was refused with AUDIT_UNAVAILABLE. */
    auditRefused?: boolean;
  }
  interface FastifyContextConfig {
    /** The route changes state: audited by installAudit. */
    audit?: AuditSpec;
  }
}

/** A request field as audit text: strings and numbers only (a body may hold any JSON where a name belongs). */
const str = (v: unknown) =>
  typeof v === 'string' ? v || null : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

const specOf = (request: FastifyRequest) => request.routeOptions.config?.audit;
const actionOf = (spec: AuditSpec, request: FastifyRequest) =>
  typeof spec.action === 'string' ? spec.action : spec.action(request);

/**
 * Audits the routes that declare `config.audit`, failing closed:
 *  1. preHandler (after authentication and validation, before the handler acts): an 'attempt' row
 *     is committed. If it cannot be written the request fails with 503 AUDIT_UNAVAILABLE in the
 *     group's error format and the action never runs.
 *  2. onSend (after the handler, before the answer leaves): the row is settled with the outcome
 *     and status. If that write fails, the answer is replaced by a 503 AUDIT_UNAVAILABLE: the
 *     action has happened and its attempt row is in the log, but the caller is not told it succeeded.
 * Requests refused before the preHandler (no session, invalid body) are recorded as one 'failure'
 * row at onSend, best effort.
 */
export function installAudit(app: FastifyInstance, audit: AuditLog): void {
  app.addHook('preHandler', async (request) => {
    const spec = specOf(request);
    if (!spec || spec.inline) return;
    const principal = request.principal;
    request.auditId = await audit.record({
      actorId: principal?.identity.id,
      actorName: principal?.identity.name ?? str(spec.actor?.(request).name),
      sourceAddress: request.ip,
      action: actionOf(spec, request),
      object: str(spec.object?.(request)),
      outcome: 'attempt',
      requestId: String(request.id),
    });
  });

  // The audit log refused a write (the attempt row, or an inline one): nothing more to record.
  app.addHook('onError', (request, _reply, error, done) => {
    if ((error as { code?: unknown }).code === AUDIT_UNAVAILABLE) request.auditRefused = true;
    done();
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const spec = specOf(request);
    if (!spec || request.auditRefused) return payload;
    const status = reply.statusCode;
    const ok = status < 400;
    // Written in the action's own transaction.
    if (ok && spec.inline) return payload;
    let response: any;
    if (typeof payload === 'string') {
      try {
        response = JSON.parse(payload);
      } catch {
        response = undefined;
      }
    }
    const answer = ok ? response : undefined;
    const actor = ok ? spec.actor?.(request, answer) : undefined;
    const detail = ok
      ? str(spec.detail?.(request, answer))
      : str(response?.error?.message ?? response?.error ?? response?.Message ?? null);
    const settled = {
      outcome: (ok ? 'success' : 'failure') as AuditOutcome,
      status,
      object: str(spec.object?.(request, answer)),
      detail: detail && detail.length > 500 ? detail.slice(0, 500) : detail,
      actorId: request.principal?.identity.id ?? str(actor?.id) ?? undefined,
      actorName: request.principal?.identity.name ?? str(actor?.name) ?? undefined,
    };
    if (request.auditId === undefined) {
      // Refused before the preHandler ran (authentication, validation): one row, best effort.
      await audit
        .record({
          ...settled,
          actorName: settled.actorName ?? str(spec.actor?.(request).name),
          sourceAddress: request.ip,
          action: actionOf(spec, request),
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
      return JSON.stringify({ error: auditUnavailable().message, code: AUDIT_UNAVAILABLE });
    }
  });
}

/** For AuditSpec.object: a path parameter, a body field. */
export const param = (name: string) => (request: FastifyRequest) =>
  (request.params as Record<string, unknown>)[name];
export const bodyField = (name: string) => (request: FastifyRequest) =>
  (request.body as Record<string, unknown> | null | undefined)?.[name];
