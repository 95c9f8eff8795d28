import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, unauthorized } from '../platform/errors.js';
import { tokenFrom } from '../http/auth.js';
import { routeGroup } from '../http/errors.js';
import { param, type AuditSpec } from '../http/audit-hooks.js';
import type { Identity } from '../identity/model.js';
import type { Logins } from '../identity/logins.js';
import type { ApiSessions } from '../identity/sessions.js';
import type { SshKeys } from './service.js';
import type { RouteResponses } from '../ops/openapi.js';
import * as wire from './wire.js';
import { authenticatorUnknown, invalidField, sshKeyUnknown } from './errors.js';

const REALM = 'Basic realm="vmwarden SSH key registry", charset="UTF-8"';

/** COmanage ErrorResponse, used by this group's routes and for unknown paths under /ssh_key_authenticator. */
export function renderComanageError(err: ApiError, request: FastifyRequest, reply: FastifyReply) {
  let e = err;
  if (err.code === 'REQUEST_TOO_LARGE')
    e = new ApiError(413, err.code, `the request body is larger than ${wire.BODY_LIMIT / 1024} KiB`);
  const { body, statusText } = wire.errorResponse(
    e,
    wire.errorIdFor(request.method, request.url, request.params),
  );
  if (e.status === 401) void reply.header('www-authenticate', REALM);
  if (statusText) reply.raw.statusMessage = statusText;
  return reply.status(e.status).type('application/json; charset=utf-8').send(body);
}

/** Who is calling: an API session (any of the usual headers) or HTTP Basic username:password. */
const callers = new WeakMap<FastifyRequest, Identity>();

function who(request: FastifyRequest): Identity {
  const identity = callers.get(request);
  if (!identity) throw unauthorized('UNAUTHORIZED', 'Authentication required');
  return identity;
}

function basicCredentials(header: string | undefined): { username: string; password: string } | undefined {
  const m = header ? /^basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return { username: decoded, password: '' };
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export interface KeyRouteDeps {
  sshKeys: SshKeys;
  logins: Logins;
  sessions: ApiSessions;
}

/** COmanage's reason phrases on success status lines (`201 Added`, `200 Deleted`). */
function withReason(reply: FastifyReply, status: number, reason: string) {
  reply.raw.statusMessage = reason;
  return reply.status(status);
}

const audited = (action: string, object: AuditSpec['object'], responses: RouteResponses) => ({
  config: { audit: { action, object }, responses },
});
const keyRef = (r: FastifyRequest) => String(param('ref')(r)).replace(/\.json$/, '');

/** SSH key registry group (COmanage Registry SshKey API semantics, JSON only). */
export const keyRoutes = routeGroup(renderComanageError, async (app, s: KeyRouteDeps) => {
  const keys = s.sshKeys;

  app.addHook('onRequest', async (request) => {
    const authorization = request.headers.authorization;
    if (typeof authorization === 'string' && /^basic(\s|$)/i.test(authorization.trim())) {
      const creds = basicCredentials(authorization.trim());
      if (!creds || !creds.username)
        throw unauthorized(
          'UNAUTHORIZED',
          'Malformed HTTP Basic credentials (expected base64 of username:password)',
        );
      callers.set(request, await s.logins.verifyPassword(creds.username, creds.password, request.ip));
      return;
    }
    const token = tokenFrom(request.headers);
    const principal = token ? await s.sessions.resolve(token) : null;
    if (!principal)
      throw unauthorized(
        'UNAUTHORIZED',
        token
          ? 'Authentication required: the API session token is invalid or has expired'
          : 'Authentication required: use HTTP Basic (username:password) or an API session token',
      );
    callers.set(request, principal.identity);
  });

  const bodyOpts = { bodyLimit: wire.BODY_LIMIT };

  // --- SshKey collection: /ssh_keys.json (other suffixes, or none, are refused) ---------------------
  app.post(
    '/ssh_keys.json',
    { ...bodyOpts, ...audited('key.add', (_r, res) => res?.Id, wire.responses.add) },
    async (request, reply) => {
      const id = await keys.add(who(request), wire.parseSshKeyRequest(request.body));
      return withReason(reply, 201, 'Added').send(wire.newObjectResponse(id));
    },
  );

  app.get('/ssh_keys.json', { config: { responses: wire.responses.list } }, async (request, reply) => {
    const caller = who(request);
    const query = request.query as Record<string, unknown>;
    const unknownParam = Object.keys(query).find((k) => k !== 'copersonid');
    if (unknownParam) throw invalidField(unknownParam.slice(0, 64), 'Unknown query parameter');
    const co = (await keys.co()).id;
    if (query.copersonid === undefined) return wire.sshKeysResponse(await keys.list(caller), co);
    if (typeof query.copersonid !== 'string' || !query.copersonid.trim())
      throw invalidField('copersonid', 'copersonid must be one CO Person id');
    const list = await keys.listForPerson(caller, query.copersonid.trim());
    if (list.length === 0) return reply.status(204).send();
    return wire.sshKeysResponse(list, co);
  });

  const refuseFormat = async (request: FastifyRequest) => {
    who(request);
    throw wire.jsonOnly((request.params as { format?: string }).format ?? '');
  };
  for (const url of ['/ssh_keys', '/ssh_keys.:format']) {
    app.route({
      method: ['GET', 'POST'],
      url,
      ...bodyOpts,
      config: { responses: wire.responses.refused, refusal: true },
      handler: refuseFormat,
    });
  }

  // --- One SshKey: /ssh_keys/<id>.json ------------------------------------------------------------
  const keyId = (request: FastifyRequest) =>
    wire.parseIdRef((request.params as { ref: string }).ref, sshKeyUnknown);

  app.get('/ssh_keys/:ref', { config: { responses: wire.responses.one } }, async (request) => {
    const caller = who(request);
    return wire.sshKeysResponse([await keys.get(caller, keyId(request))], (await keys.co()).id);
  });

  app.put(
    '/ssh_keys/:ref',
    { ...bodyOpts, ...audited('key.update', keyRef, wire.responses.empty) },
    async (request, reply) => {
      const caller = who(request);
      const id = keyId(request);
      await keys.edit(caller, id, wire.parseSshKeyRequest(request.body));
      return reply.status(200).send();
    },
  );

  app.delete(
    '/ssh_keys/:ref',
    audited('key.remove', keyRef, wire.responses.empty),
    async (request, reply) => {
      const caller = who(request);
      await keys.remove(caller, keyId(request));
      return withReason(reply, 200, 'Deleted').send();
    },
  );

  // --- The CO's SSH key authenticator and per-person locks: discovery, lock, unlock ---------------------------
  app.get(
    '/authenticators.json',
    { config: { responses: wire.responses.authenticators } },
    async (request) => {
      const caller = who(request);
      const query = request.query as Record<string, unknown>;
      const unknownParam = Object.keys(query).find((k) => k !== 'copersonid');
      if (unknownParam) throw invalidField(unknownParam.slice(0, 64), 'Unknown query parameter');
      if (query.copersonid === undefined)
        return wire.authenticatorsResponse(await keys.authenticators(caller));
      if (typeof query.copersonid !== 'string' || !query.copersonid.trim())
        throw invalidField('copersonid', 'copersonid must be one CO Person id');
      return wire.authenticatorsResponse(await keys.authenticatorFor(caller, query.copersonid.trim()));
    },
  );

  app.get(
    '/authenticators/:ref',
    { config: { responses: wire.responses.authenticator } },
    async (request) => {
      const caller = who(request);
      const id = wire.parseIdRef((request.params as { ref: string }).ref, authenticatorUnknown);
      return wire.authenticatorsResponse(await keys.getAuthenticator(caller, id));
    },
  );

  for (const action of ['lock', 'unlock'] as const) {
    app.post(
      `/authenticators/:id/${action}`,
      { ...bodyOpts, ...audited(`keys.${action}`, param('id'), wire.responses.authenticator) },
      async (request) => {
        const caller = who(request);
        let ref = (request.params as { id: string }).id;
        if (!ref.includes('.')) ref += '.json';
        const id = wire.parseIdRef(ref, authenticatorUnknown);
        const person = (request.query as Record<string, unknown>).copersonid;
        if (person !== undefined && (typeof person !== 'string' || !person.trim()))
          throw invalidField('copersonid', 'copersonid must be one CO Person id');
        return wire.authenticatorsResponse(
          await keys.setLocked(caller, id, action === 'lock', person?.trim()),
        );
      },
    );
  }
});
