import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { ApiError, notFound } from '../platform/errors.js';
import type { ControllerServices } from '../services.js';
import { identityRoutes, renderZitiError } from '../identity/routes.js';
import { errorEnvelope } from '../identity/wire.js';
import { keyRoutes, renderComanageError } from '../keys/routes.js';
import { accessRoutes } from '../access/routes.js';
import { inventoryRoutes } from '../inventory/routes.js';
import { renderAccessError } from '../access/wire.js';
import { signRoutes } from '../sign/routes.js';
import { renderSignError } from '../sign/wire.js';
import { handleErrorsWith } from './errors.js';
import { installAudit } from '../ops/audit.js';
import { opsRoutes } from '../ops/routes.js';
import type { CollectedRoute } from '../ops/openapi.js';

export interface TlsOptions {
  key: string;
  cert: string;
  ca: string;
}

const BODY_LIMIT = 1024 * 1024;

/** Request bodies are validated strictly (no type coercion); query strings and params are coerced. */
function validators() {
  const make = (coerceTypes: boolean) => {
    const ajv = new Ajv({
      coerceTypes,
      useDefaults: true,
      removeAdditional: false,
      allErrors: false,
      strict: false,
    });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    return ajv;
  };
  const body = make(false);
  const other = make(true);
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? body : other).compile(schema);
}

/**
 * Requests Node's HTTP parser rejects before fastify sees them (header overflow, malformed request
 * line): answered in the error envelope like every other error instead of fastify's default body.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'REQUEST_TIMEOUT', 'the request was not received in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'REQUEST_HEADERS_TOO_LARGE', 'the request line and headers exceed the allowed size']
        : [400, 'BAD_REQUEST', 'the request could not be parsed as HTTP'];
  const body = JSON.stringify(errorEnvelope(new ApiError(status, code, message), randomUUID()));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}

/**
 * A URL for the logs: the path, and the query with every value replaced by `[redacted]` (a token
 * pasted into a query string must not end up in a log file); parameter names are kept.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      // A name that does not look like one (a bare token: `?eyJhbGci…`) is redacted too.
      return /^[A-Za-z0-9_.$[\]-]{1,32}$/.test(name) ? `${name}=[redacted]` : '[redacted]';
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

/** Fastify's default request serializer, with the query values redacted. */
function serializeRequest(req: {
  method: string;
  url: string;
  hostname?: string;
  ip?: string;
  socket?: { remotePort?: number };
}) {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.hostname,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

/** Which group owns a path, so unknown paths get the error format their clients expect. */
function renderNotFound(request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split('?')[0]!;
  const err = notFound(`no route ${request.method} ${path}`);
  if (path === '/ssh_key_authenticator' || path.startsWith('/ssh_key_authenticator/'))
    return renderComanageError(err, request, reply);
  if (path.startsWith('/v1/access/') || path.startsWith('/v1/instances'))
    return renderAccessError(err, request, reply);
  if (/^\/(v1\/)?sign(\/|$)|^\/v1\/(tasks|nodes)(\/|$)/.test(path))
    return renderSignError(err, request, reply);
  return renderZitiError(err, request, reply);
}

/**
 * The REST surface. The same app serves plain HTTP (9362) and HTTPS (9443, client certs optional).
 * Each group is an encapsulated plugin with its own auth hook and error format.
 */
export function buildHttpApp(services: ControllerServices, tls?: TlsOptions): FastifyInstance {
  const app = Fastify({
    logger: {
      level: services.config.logLevel,
      redact: ['req.headers.authorization', 'req.headers["zt-session"]', 'req.headers["x-auth-token"]'],
      serializers: { req: serializeRequest },
    },
    bodyLimit: BODY_LIMIT,
    genReqId: () => randomUUID(),
    forceCloseConnections: 'idle',
    clientErrorHandler,
    ...(tls
      ? {
          https: { key: tls.key, cert: tls.cert, ca: [tls.ca], requestCert: true, rejectUnauthorized: false },
        }
      : {}),
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validators());
  app.decorateRequest('principal', null);
  handleErrorsWith(app, renderZitiError);
  app.setNotFoundHandler(renderNotFound);

  // Every route with the schemas fastify validates it with: the source of /openapi.json.
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({
        method,
        url: route.url,
        schema: route.schema as CollectedRoute['schema'],
        public: (route.config as { public?: boolean } | undefined)?.public === true,
      });
  });
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      route: request.routeOptions.url ?? 'unmatched',
      method: request.method,
      status: String(reply.statusCode),
    };
    services.metrics.httpRequests.inc(labels);
    services.metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });
  installAudit(app, services.audit, services.metrics);
  opsRoutes(app, services, () => routes);

  for (const prefix of ['', '/edge/management/v1']) app.register(identityRoutes, { prefix, services });
  app.register(keyRoutes, { prefix: '/ssh_key_authenticator', services });
  app.register(accessRoutes, { prefix: '/v1/access', services });
  app.register(inventoryRoutes, { prefix: '/v1/instances', services });
  app.register(signRoutes, { services });
  return app;
}
