import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { ApiError } from '../platform/errors.js';
import type { ControllerServices } from '../services.js';
import { identityRoutes, renderZitiError } from '../identity/routes.js';
import { errorEnvelope } from '../identity/wire.js';
import { keyRoutes } from '../keys/routes.js';
import { accessRoutes } from '../access/routes.js';
import { inventoryRoutes } from '../inventory/routes.js';
import { signRoutes } from '../sign/routes.js';
import { captureRender, ErrorFormats, handleErrorsWith, notFoundWith, type RenderError } from './errors.js';
import { installJsonParser } from './json-body.js';
import { installAudit } from './audit-hooks.js';
import { installCors } from './cors.js';
import { opsRoutes } from '../ops/routes.js';
import type { CollectedRoute } from '../ops/openapi.js';
import type { Logger } from 'pino';
import { createLogger, isPretty } from '../../../lib/platform/logger.js';
import { QuietRequestLog } from './request-log.js';

export interface TlsOptions {
  key: string;
  cert: string;
  ca: string;
}

const BODY_LIMIT = 1024 * 1024;

/** Bounds on how long a client may take to send a request (a trickling client is cut, 408). */
export interface HttpTimeouts {
  /** Request line and headers, from the first byte. */
  headersMs: number;
  /** The whole request, body included. */
  requestMs: number;
}

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
  // A request cut after its answer started (a timeout while a response streams): just close.
  if ((socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy(err);
    return;
  }
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

const pathOf = (request: FastifyRequest) => (request.raw.url ?? request.url ?? '/').split('?')[0]!;

/** What the router refuses before any route runs (a malformed %-escape, a path parameter over 100 characters). */
function frameworkErrors(
  formats: ErrorFormats,
  err: { code?: string },
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const e =
    err.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? new ApiError(414, 'URI_TOO_LONG', 'a path parameter is longer than 100 characters')
      : err.code === 'FST_ERR_BAD_URL'
        ? new ApiError(400, 'BAD_URL', 'the URL path is not validly %-encoded')
        : new ApiError(400, 'BAD_REQUEST', 'the request could not be routed');
  return formats.forPath(pathOf(request))(e, request, reply);
}

/**
 * A reply in fastify's own error shape (`{"statusCode":…,"error":…,"message":…}`) is only made when
 * our error handlers themselves failed; even then the client gets its group's format.
 */
function fastifyShaped(payload: unknown): boolean {
  return typeof payload === 'string' && payload.startsWith('{"statusCode":') && payload.length < 4096;
}

function replaceFastifyShaped(
  formats: ErrorFormats,
  request: FastifyRequest,
  reply: FastifyReply,
  payload: unknown,
) {
  let parsed: { code?: string; message?: string } = {};
  try {
    parsed = JSON.parse(payload as string);
  } catch {
    // keep the defaults below
  }
  const status = reply.statusCode;
  const err =
    status >= 500
      ? new ApiError(status, 'UNHANDLED', 'internal error')
      : new ApiError(status, parsed.code ?? 'BAD_REQUEST', parsed.message ?? 'bad request');
  request.log.warn({ status, code: parsed.code }, 'replaced a reply in fastify error shape');
  const out = captureRender(formats.forPath(pathOf(request)), err, request, reply);
  void reply.code(out.status);
  for (const [name, value] of Object.entries(out.headers)) void reply.header(name, value);
  if (out.statusMessage) reply.raw.statusMessage = out.statusMessage;
  return out.body;
}

/**
 * The REST surface. The same app serves plain HTTP (9362) and HTTPS (9443, client certs optional).
 * Each group is an encapsulated plugin with its own auth hook and error format.
 */
export function buildHttpApp(
  services: ControllerServices,
  tls?: TlsOptions,
  timeouts: HttpTimeouts = { headersMs: 30_000, requestMs: 30_000 },
  log: Logger = createLogger({ level: services.config.logLevel, format: services.config.logFormat }),
): FastifyInstance {
  const requestMs = Math.max(1, Math.round(timeouts.requestMs));
  const headersMs = Math.min(requestMs, Math.max(1, Math.round(timeouts.headersMs)));
  // Node checks for expired requests every connectionsCheckingInterval (30 s by default).
  const limits = {
    headersTimeout: headersMs,
    requestTimeout: requestMs,
    connectionsCheckingInterval: Math.max(50, Math.min(5000, Math.floor(headersMs / 4))),
  };
  // Each group claims its prefix as it registers; what no group claims gets the OpenZiti envelope.
  const errorFormats = new ErrorFormats(renderZitiError);
  const renderByPath: RenderError = (err, request, reply) =>
    errorFormats.forPath(pathOf(request))(err, request, reply);
  const app = Fastify({
    loggerInstance: log.child(
      {},
      {
        redact: ['req.headers.authorization', 'req.headers["zt-session"]', 'req.headers["x-auth-token"]'],
        serializers: { req: serializeRequest },
      },
    ),
    ...(isPretty(log) ? { logController: new QuietRequestLog() } : {}),
    bodyLimit: BODY_LIMIT,
    // `/identities/` is `/identities`: clients built from base URLs ending in a slash work.
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: () => randomUUID(),
    forceCloseConnections: 'idle',
    requestTimeout: requestMs,
    // While closing, requests still arriving on open connections are refused by the hook below in
    // the group's format (fastify's own 503 has its default error body).
    return503OnClosing: false,
    clientErrorHandler,
    frameworkErrors: (err, request, reply) => frameworkErrors(errorFormats, err, request, reply),
    ...(tls
      ? {
          https: {
            key: tls.key,
            cert: tls.cert,
            ca: [tls.ca],
            requestCert: true,
            rejectUnauthorized: false,
            handshakeTimeout: headersMs,
            ...limits,
          },
        }
      : { http: limits }),
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validators());
  installCors(app, services.config.corsOrigins);
  installJsonParser(app);
  app.decorateRequest('principal', null);
  handleErrorsWith(app, renderByPath);
  app.setNotFoundHandler(notFoundWith(renderByPath));
  let closing = false;
  app.addHook('preClose', async () => void (closing = true));
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onRequest', (_request, _reply, done) =>
    done(closing ? new ApiError(503, 'SHUTTING_DOWN', 'the controller is shutting down') : undefined),
  );
  app.addHook('onSend', (request, reply, payload, done) => {
    if (reply.statusCode < 400 || !fastifyShaped(payload)) return done(null, payload);
    try {
      done(null, replaceFastifyShaped(errorFormats, request, reply, payload));
    } catch {
      done(null, payload);
    }
  });

  // Every route with the schemas fastify validates it with: the source of /openapi.json.
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      routes.push({
        method,
        url: route.url,
        schema: route.schema as CollectedRoute['schema'],
        public: (route.config as { public?: boolean } | undefined)?.public === true,
        responses: route.config?.responses,
        refusal: route.config?.refusal === true,
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
  installAudit(app, services.audit);

  // Every route sits one context below the root, whose error handler is installed there too: when
  // sending an error reply fails, fastify hands the new error to the parent context's handler, and
  // the root's parent is fastify's default one. Two of ours on every path keep it out of reach.
  app.register(async (all) => {
    const s = services;
    handleErrorsWith(all, renderByPath);
    opsRoutes(all, {
      version: s.version,
      sessions: s.sessions,
      audit: s.audit,
      metrics: s.metrics,
      routes: () => routes,
      errorFormats,
    });
    const identity = {
      version: s.version,
      clock: s.clock,
      sessions: s.sessions,
      logins: s.logins,
      authenticators: s.authenticators,
      identities: s.identities,
      identityStore: s.identityStore,
      ca: s.ca,
      errorFormats,
    };
    for (const prefix of ['', '/edge/management/v1']) all.register(identityRoutes, { ...identity, prefix });
    all.register(keyRoutes, {
      prefix: '/ssh_key_authenticator',
      sshKeys: s.sshKeys,
      logins: s.logins,
      sessions: s.sessions,
      errorFormats,
    });
    all.register(accessRoutes, {
      prefix: '/v1/access',
      clock: s.clock,
      sessions: s.sessions,
      access: s.access,
      accessSessions: s.accessSessions,
      sshAuthority: s.sshAuthority,
      krl: s.krl,
      audit: s.audit,
      hostCa: s.hostCa,
      errorFormats,
    });
    all.register(inventoryRoutes, {
      prefix: '/v1/instances',
      sessions: s.sessions,
      inventory: s.inventory,
      guestTrust: s.guestTrust,
      nodes: s.nodes,
      errorFormats,
    });
    all.register(signRoutes, {
      sessions: s.sessions,
      sign: s.sign,
      nodes: s.nodes,
      tasks: s.tasks,
      errorFormats,
    });
  });
  return app;
}
