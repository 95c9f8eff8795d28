import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAdmin } from '../http/auth.js';
import type { InternalCa } from '../pki/internal-ca.js';
import { bodyField, param } from '../http/audit-hooks.js';
import type { Identities } from './identities.js';
import type { IdentityStore } from './store.js';
import { authenticatorFields, identityFields } from './store.js';
import { listWindow } from './list-window.js';
import type { RouteResponses } from '../ops/openapi.js';
import { createInput, updateInput, type ZitiIdentityBody } from './ziti-identity.js';
import * as wire from './wire.js';

export interface IdentityAdminDeps {
  identities: Identities;
  identityStore: IdentityStore;
  ca: Pick<InternalCa, 'certPem'>;
}

const audited = (action: string, responses: RouteResponses = wire.responses.emptyFound) => ({
  audit: { action, object: param('id') },
  responses,
});

/** /identities: admin management of identities (same OpenZiti envelopes as the rest of the group). */
export function registerIdentityAdminRoutes(app: FastifyInstance, s: IdentityAdminDeps) {
  const idParams = { params: wire.schemas.idParams };
  const detail = async (id: string) => {
    const identity = await s.identities.get(id);
    const auths = await s.identityStore.listAuthenticators(
      id,
      listWindow({ limit: 500 }, authenticatorFields),
    );
    return wire.identityDetail(identity, auths.rows, false);
  };

  const create = {
    config: {
      audit: {
        action: 'identity.create',
        object: (r: FastifyRequest, res?: any) => res?.data?.id ?? bodyField('name')(r),
      },
      responses: wire.responses.created,
    },
    schema: { body: wire.schemas.identityCreate },
  };
  app.post('/identities', create, async (request, reply) => {
    requireAdmin(request);
    const identity = await s.identities.create(createInput(request.body as ZitiIdentityBody));
    return reply.status(201).send(wire.createdEnvelope(identity.id, 'identities'));
  });

  app.get(
    '/identities',
    { config: { responses: wire.responses.identities }, schema: { querystring: wire.schemas.listQuery } },
    async (request) => {
      requireAdmin(request);
      const page = await s.identities.list(listWindow(request.query, identityFields));
      const rows = await Promise.all(page.rows.map((i) => detail(i.id)));
      return wire.listEnvelope({ ...page, rows }, (r) => r, Object.keys(identityFields));
    },
  );

  app.get(
    '/identities/:id',
    { config: { responses: wire.responses.identity }, schema: idParams },
    async (request) => {
      requireAdmin(request);
      return wire.envelope(await detail((request.params as { id: string }).id));
    },
  );

  // PATCH changes what the body names; PUT replaces OpenZiti's fields (identityUpdate).
  for (const method of ['PATCH', 'PUT'] as const) {
    app.route({
      method,
      url: '/identities/:id',
      config: audited('identity.update'),
      schema: {
        ...idParams,
        body: method === 'PUT' ? wire.schemas.identityUpdate : wire.schemas.identityPatch,
      },
      handler: async (request) => {
        requireAdmin(request);
        const id = (request.params as { id: string }).id;
        const current = await s.identities.get(id);
        const body = request.body as ZitiIdentityBody;
        await s.identities.update(
          id,
          updateInput(body, current, method === 'PUT'),
          request.principal ?? undefined,
        );
        return wire.emptyEnvelope();
      },
    });
  }

  app.delete('/identities/:id', { config: audited('identity.delete'), schema: idParams }, async (request) => {
    requireAdmin(request);
    await s.identities.remove((request.params as { id: string }).id, request.principal ?? undefined);
    return wire.emptyEnvelope();
  });

  app.post(
    '/identities/:id/certificate',
    {
      config: audited('identity.certificate', wire.responses.certificate),
      schema: { ...idParams, body: wire.schemas.certificateRequest },
    },
    async (request, reply) => {
      requireAdmin(request);
      const { authenticator, certPem } = await s.identities.issueCertificate(
        (request.params as { id: string }).id,
        (request.body as { csr: string }).csr,
      );
      return reply
        .status(201)
        .send(wire.envelope({ authenticatorId: authenticator.id, certificate: certPem, ca: s.ca.certPem }));
    },
  );
}
