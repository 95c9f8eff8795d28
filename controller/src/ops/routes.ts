import type { FastifyInstance } from 'fastify';
import { badRequest } from '../platform/errors.js';
import { requireAdmin, requireSession } from '../http/auth.js';
import { routeGroup, type ErrorFormats } from '../http/errors.js';
import { renderAccessError } from '../access/wire.js';
import type { ApiSessions } from '../identity/sessions.js';
import type { AuditLog, AuditQuery } from './audit-log.js';
import type { Metrics } from './metrics.js';
import { CONTENT_TYPE } from '../../../lib/metrics/prometheus.js';
import { buildOpenApi, type CollectedRoute, type RouteResponses } from './openapi.js';
import { responses } from './wire.js';
import { pageProperties, readPage, type PageRules } from '../http/pagination.js';

const AUDIT_PAGE: PageRules = { defaultLimit: 100, maxLimit: 1000 };

const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    actor: { type: 'string', minLength: 1, maxLength: 200 },
    action: { type: 'string', minLength: 1, maxLength: 100 },
    ...pageProperties(AUDIT_PAGE),
  },
} as const;

/**
 * Operations endpoints. /healthz, /readyz, /metrics and /openapi.json are public (no secret in
 * them; bind the HTTP listener to loopback or filter /metrics at the proxy when that matters).
 * /v1/audit needs an admin session; its errors use the access group's `{error, code}` format.
 */
export interface OpsRouteDeps {
  version: string;
  sessions: ApiSessions;
  audit: AuditLog;
  metrics: Metrics;
  /** Every route registered (the source of /openapi.json). */
  routes: () => CollectedRoute[];
  errorFormats?: ErrorFormats;
}

const auditRoutes = routeGroup(renderAccessError, (app, s: OpsRouteDeps) => {
  app.addHook('onRequest', requireSession(s.sessions));
  app.get(
    '',
    { config: { responses: responses.audit }, schema: { querystring: auditQuery } },
    async (request) => {
      requireAdmin(request);
      const q = request.query as AuditQuery;
      if (q.since && q.until && q.since > q.until)
        throw badRequest('INVALID_RANGE', "'since' is after 'until'");
      return s.audit.list({ ...q, ...readPage(q, AUDIT_PAGE) });
    },
  );
});

export function opsRoutes(app: FastifyInstance, services: OpsRouteDeps) {
  const pub = (r: RouteResponses) => ({ config: { public: true, responses: r } });
  app.get('/healthz', pub(responses.healthz), async () => ({ status: 'ok' }));

  app.get('/readyz', pub(responses.readyz), async (_request, reply) => {
    try {
      await services.audit.check();
      return { status: 'ready', checks: { store: 'ok' } };
    } catch (err) {
      return reply.status(503).send({ status: 'not ready', checks: { store: (err as Error).message } });
    }
  });

  app.get('/metrics', pub(responses.metrics), async (_request, reply) =>
    reply.type(CONTENT_TYPE).send(await services.metrics.render()),
  );

  let doc: string | undefined;
  app.get('/openapi.json', pub(responses.openapi), async (_request, reply) =>
    reply
      .type('application/json; charset=utf-8')
      .send((doc ??= JSON.stringify(buildOpenApi(services.routes(), services.version)))),
  );

  app.register(auditRoutes, { ...services, prefix: '/v1/audit' });
}
