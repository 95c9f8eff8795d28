import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { notFound } from '../platform/errors.js';
import type { ControllerServices } from '../services.js';
import { identityRoutes, renderZitiError } from '../identity/routes.js';
import { keyRoutes, renderComanageError } from '../keys/routes.js';
import { accessRoutes } from '../access/routes.js';
import { inventoryRoutes } from '../inventory/routes.js';
import { renderAccessError } from '../access/wire.js';
import { handleErrorsWith } from './errors.js';

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

/** Which group owns a path, so unknown paths get the error format their clients expect. */
function renderNotFound(request: FastifyRequest, reply: FastifyReply) {
  const path = request.url.split('?')[0]!;
  const err = notFound(`no route ${request.method} ${path}`);
  if (path === '/ssh_key_authenticator' || path.startsWith('/ssh_key_authenticator/'))
    return renderComanageError(err, request, reply);
  if (path.startsWith('/v1/access/') || path.startsWith('/v1/instances'))
    return renderAccessError(err, request, reply);
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
    },
    bodyLimit: BODY_LIMIT,
    genReqId: () => randomUUID(),
    forceCloseConnections: 'idle',
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

  for (const prefix of ['', '/edge/management/v1']) app.register(identityRoutes, { prefix, services });
  app.register(keyRoutes, { prefix: '/ssh_key_authenticator', services });
  app.register(accessRoutes, { prefix: '/v1/access', services });
  app.register(inventoryRoutes, { prefix: '/v1/instances', services });
  return app;
}
