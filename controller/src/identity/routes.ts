import type { FastifyReply, FastifyRequest } from 'fastify';
import { badRequest, type ApiError } from '../platform/errors.js';
import { caller, peerCertificate, requireSession } from '../http/auth.js';
import { routeGroup } from '../http/errors.js';
import { bodyField, param } from '../http/audit-hooks.js';
import type { Clock } from '../../../lib/platform/clock.js';
import type { Principal } from './model.js';
import type { ApiSessions } from './sessions.js';
import type { Logins } from './logins.js';
import type { OwnAuthenticators } from './authenticators.js';
import { authenticatorFields } from './store.js';
import { listWindow } from './list-window.js';
import { registerIdentityAdminRoutes, type IdentityAdminDeps } from './admin-routes.js';
import * as wire from './wire.js';

/** OpenZiti-format errors, used by this group's routes and for unknown paths of the group. */
export function renderZitiError(err: ApiError, request: FastifyRequest, reply: FastifyReply) {
  return reply.status(err.status).send(wire.errorEnvelope(err, String(request.id)));
}

export interface IdentityRouteDeps extends IdentityAdminDeps {
  version: string;
  clock: Clock;
  sessions: ApiSessions;
  logins: Logins;
  authenticators: OwnAuthenticators;
}

/** Identity & API sessions group (OpenZiti edge management semantics). */
export const identityRoutes = routeGroup(renderZitiError, async (app, s: IdentityRouteDeps) => {
  app.addHook('onRequest', requireSession(s.sessions));

  const sessionView = async (p: Principal) => {
    return wire.currentApiSession({
      session: p.session,
      identity: p.identity,
      token: p.token,
      expiresAt: s.sessions.expiresAt(p.session),
      cachedLastActivityAt: s.sessions.persistedActivityAt(p.session),
      isCertExtendable: (await s.sessions.authenticatorMethod(p.session)) === 'cert',
      now: s.clock.now(),
    });
  };

  // Public, as on the OpenZiti controller (GET / answers the same there).
  const version = async (request: FastifyRequest) =>
    wire.envelope(wire.versionInfo(s.version, `${request.protocol}://${request.host}`));
  app.get('/version', { config: { public: true, responses: wire.responses.version } }, version);
  if (!app.prefix) app.get('/', { config: { public: true, responses: wire.responses.version } }, version);

  app.post(
    '/authenticate',
    {
      config: {
        public: true,
        responses: wire.responses.authenticate,
        audit: {
          action: (r) => `login.${(r.query as { method?: string }).method ?? 'unknown'}`,
          object: bodyField('username'),
          actor: (r, res) => ({
            id: res?.data?.identity?.id,
            name: res?.data?.identity?.name ?? bodyField('username')(r),
          }),
        },
      },
      // Certificate logins usually send no body at all.
      preValidation: async (request: FastifyRequest) => {
        if (request.body === undefined || request.body === null) request.body = {};
      },
      schema: { querystring: wire.schemas.authenticateQuery, body: wire.schemas.authenticateBody },
    },
    async (request, reply) => {
      const { method } = request.query as { method: string };
      const body = (request.body ?? {}) as { username?: string; password?: string };
      let principal: Principal;
      if (method === 'password') {
        if (typeof body.username !== 'string' || typeof body.password !== 'string') {
          throw badRequest('COULD_NOT_VALIDATE', "method=password needs 'username' and 'password' strings", {
            field: typeof body.username !== 'string' ? 'username' : 'password',
            reason: 'is required',
          });
        }
        principal = await s.logins.withPassword(body.username, body.password, request.ip);
      } else if (method === 'cert') {
        principal = await s.logins.withCertificate(peerCertificate(request), request.ip);
      } else {
        throw badRequest(
          'INVALID_AUTH_METHOD',
          `authentication method '${method}' is not enabled on this controller`,
        );
      }
      void reply.header('zt-session', principal.token);
      return wire.envelope(await sessionView(principal));
    },
  );

  app.get('/current-api-session', { config: { responses: wire.responses.apiSession } }, async (request) =>
    wire.envelope(await sessionView(caller(request))),
  );

  app.delete(
    '/current-api-session',
    { config: { audit: { action: 'logout' }, responses: wire.responses.empty } },
    async (request) => {
      await s.sessions.end(caller(request).session);
      return wire.emptyEnvelope();
    },
  );

  app.get('/current-identity', { config: { responses: wire.responses.identity } }, async (request) => {
    const p = caller(request);
    const auths = await s.authenticators.list(p, listWindow({ limit: 500 }, authenticatorFields));
    return wire.envelope(wire.identityDetail(p.identity, auths.rows, true));
  });

  app.get(
    '/current-identity/authenticators',
    { config: { responses: wire.responses.authenticators }, schema: { querystring: wire.schemas.listQuery } },
    async (request) => {
      const p = caller(request);
      const page = await s.authenticators.list(p, listWindow(request.query, authenticatorFields));
      return wire.listEnvelope(
        page,
        (a) => wire.authenticatorDetail(a, p.identity),
        Object.keys(authenticatorFields),
      );
    },
  );

  const idParams = { params: wire.schemas.idParams };
  app.get(
    '/current-identity/authenticators/:id',
    { config: { responses: wire.responses.authenticator }, schema: idParams },
    async (request) => {
      const p = caller(request);
      const a = await s.authenticators.get(p, (request.params as { id: string }).id);
      return wire.envelope(wire.authenticatorDetail(a, p.identity));
    },
  );

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route({
      method,
      url: '/current-identity/authenticators/:id',
      config: {
        audit: { action: 'authenticator.update', object: param('id') },
        responses: wire.responses.emptyFound,
      },
      schema: {
        ...idParams,
        body: method === 'PUT' ? wire.schemas.authenticatorUpdate : wire.schemas.authenticatorPatch,
      },
      handler: async (request) => {
        const body = request.body as {
          username?: string | null;
          password?: string | null;
          currentPassword: string;
        };
        await s.authenticators.changeCredentials(
          caller(request),
          (request.params as { id: string }).id,
          body,
          request.ip,
        );
        return wire.emptyEnvelope();
      },
    });
  }

  app.post(
    '/current-identity/authenticators/:id/extend',
    {
      config: {
        audit: { action: 'authenticator.extend', object: param('id') },
        responses: wire.responses.extend,
      },
      schema: { ...idParams, body: wire.schemas.extendRequest },
    },
    async (request) => {
      const presented = peerCertificate(request);
      const result = await s.authenticators.extend(
        caller(request),
        (request.params as { id: string }).id,
        (request.body as { clientCertCsr: string }).clientCertCsr,
        presented?.authorized ? presented.fingerprint : undefined,
      );
      return wire.envelope(result);
    },
  );

  app.post(
    '/current-identity/authenticators/:id/extend-verify',
    {
      config: {
        audit: { action: 'authenticator.extend-verify', object: param('id') },
        responses: wire.responses.emptyFound,
      },
      schema: { ...idParams, body: wire.schemas.extendVerifyRequest },
    },
    async (request) => {
      await s.authenticators.extendVerify(
        caller(request),
        (request.params as { id: string }).id,
        (request.body as { clientCert: string }).clientCert,
      );
      return wire.emptyEnvelope();
    },
  );

  registerIdentityAdminRoutes(app, s);
});
