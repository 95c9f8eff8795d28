import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { notFound } from '../platform/errors.js';
import type { ControllerServices } from '../services.js';
import { identityRoutes, renderZitiError } from '../identity/routes.js';
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
  return app;
}
