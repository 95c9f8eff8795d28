import type { FastifyInstance } from 'fastify';
import { requireAdmin } from '../../http/auth.js';
import { param } from '../../http/audit-hooks.js';
import type { SshCaRecord } from '../model.js';
import type { CaKeyType } from '../sshca/keys.js';
import * as wire from '../wire.js';
import type { HostCertificates } from './service.js';

const caKey = (ca: SshCaRecord) => ({
  id: ca.id,
  public_key: ca.publicKey,
  fingerprint: ca.fingerprint,
  status: ca.status,
  created_at: ca.createdAt,
});

/** The host CA's routes, inside the /v1/access group (its auth hook and error format). */
export function hostCaRoutes(app: FastifyInstance, hostCa: HostCertificates): void {
  // What clients put in known_hosts: public by nature, like the user CA's keys.
  app.get(
    '/host-ca-pubkeys',
    { config: { public: true, responses: wire.hostCaResponses.hostCaPubkeys } },
    async (_req, reply) =>
      wire.sendJson(reply, 200, {
        public_keys: hostCa.trusted().map(caKey),
        known_hosts: hostCa.knownHosts(),
      }),
  );

  const rotate = {
    config: {
      audit: { action: 'host-ca.rotate', object: (_r: unknown, res?: any) => res?.id },
      responses: wire.hostCaResponses.hostCaRotate,
    },
    schema: { body: wire.schemas.rotate },
  };
  app.post('/host-ca/rotate', rotate, async (request, reply) => {
    requireAdmin(request);
    const ca = await hostCa.rotate((request.body as { key_type?: CaKeyType } | null)?.key_type);
    return wire.sendJson(reply, 200, caKey(ca));
  });

  const retire = {
    config: {
      audit: { action: 'host-ca.retire', object: param('id') },
      responses: wire.hostCaResponses.hostCaRetire,
    },
    schema: { params: wire.schemas.caParams },
  };
  app.post('/host-ca/:id/retire', retire, async (request, reply) => {
    requireAdmin(request);
    const id = Number((request.params as { id: string }).id);
    await hostCa.retire(id);
    return wire.sendJson(reply, 200, { message: 'host CA key retired', id: String(id) });
  });

  const sign = {
    config: {
      audit: { action: 'host-certificate.issue', object: (_r: unknown, res?: any) => res?.id },
      responses: wire.hostCaResponses.hostCertificate,
    },
    schema: { body: wire.hostCaSchemas.hostCertificate },
  };
  app.post('/host-certificate', sign, async (request, reply) => {
    requireAdmin(request);
    const body = request.body as { public_key: string; principals: string[]; ttl_seconds?: number };
    const cert = await hostCa.signForHost(body.public_key, body.principals, body.ttl_seconds);
    return wire.sendJson(reply, 200, {
      id: cert.id,
      certificate: cert.certificate,
      serial: cert.serial,
      valid_before: cert.validBefore,
    });
  });
}
