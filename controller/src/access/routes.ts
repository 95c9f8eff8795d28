import type { FastifyRequest } from 'fastify';
import { caller, requireAdmin, requireSession } from '../http/auth.js';
import { routeGroup } from '../http/errors.js';
import { bodyField, param } from '../http/audit-hooks.js';
import type { Clock } from '../../../lib/platform/clock.js';
import type { ApiSessions } from '../identity/sessions.js';
import type { AuditLog } from '../ops/audit-log.js';
import type { CaKeyType } from './sshca/keys.js';
import type { AccessRequest, AccessService } from './service.js';
import type { SshAuthority } from './authority.js';
import type { KrlPublisher } from './krl-publisher.js';
import type { AccessSessions } from './sessions.js';
import type { HostCertificates } from './host-ca/service.js';
import { hostCaRoutes } from './host-ca/routes.js';
import { readPage } from '../http/pagination.js';
import * as wire from './wire.js';

type Q = Record<string, any>;

export interface AccessRouteDeps {
  clock: Clock;
  sessions: ApiSessions;
  access: AccessService;
  accessSessions: AccessSessions;
  sshAuthority: SshAuthority;
  krl: KrlPublisher;
  audit: AuditLog;
  hostCa: HostCertificates;
}

/** /v1/access: SSH certificates bound to one instance, revocation (KRL), sessions, the CA. */
export const accessRoutes = routeGroup(wire.renderAccessError, async (app, s: AccessRouteDeps) => {
  app.addHook('onRequest', requireSession(s.sessions));
  const now = () => s.clock.now();

  // The CA public keys are what guests must trust: public by nature, as in the original API.
  app.get(
    '/ca-pubkey',
    { config: { public: true, responses: wire.responses.caPubkey } },
    async (_req, reply) =>
      wire.sendJson(reply, 200, {
        public_key: s.sshAuthority.active().key.openssh,
        usage:
          'Add to the TrustedUserCAKeys file of sshd on every instance; logins also need AuthorizedPrincipalsFile with vm-<server_id>.',
      }),
  );

  app.get(
    '/ca-pubkeys',
    { config: { public: true, responses: wire.responses.caPubkeys } },
    async (_req, reply) => {
      const trusted = s.sshAuthority.trusted();
      return wire.sendJson(reply, 200, {
        public_keys: trusted.map((ca) => ({
          id: ca.id,
          public_key: ca.publicKey,
          fingerprint: ca.fingerprint,
          status: ca.status,
          created_at: ca.createdAt,
        })),
        trusted_user_ca_keys: trusted.map((ca) => `${ca.publicKey}\n`).join(''),
      });
    },
  );

  const rotate = {
    config: {
      audit: { action: 'ca.rotate', object: (_r: unknown, res?: any) => res?.id },
      responses: wire.responses.caRotate,
    },
    schema: { body: wire.schemas.rotate },
  };
  app.post('/ca/rotate', rotate, async (request, reply) => {
    requireAdmin(request);
    const ca = await s.access.rotateCa((request.body as { key_type?: CaKeyType } | null)?.key_type);
    return wire.sendJson(reply, 200, {
      id: ca.id,
      public_key: ca.publicKey,
      fingerprint: ca.fingerprint,
      status: ca.status,
      created_at: ca.createdAt,
    });
  });

  const retire = {
    config: { audit: { action: 'ca.retire', object: param('id') }, responses: wire.responses.caRetire },
    schema: { params: wire.schemas.caParams },
  };
  app.post('/ca/:id/retire', retire, async (request, reply) => {
    requireAdmin(request);
    const id = Number((request.params as { id: string }).id);
    await s.access.retireCa(id);
    return wire.sendJson(reply, 200, { message: 'CA key retired', id: String(id) });
  });

  hostCaRoutes(app, s.hostCa);

  app.get('/krl', { config: { responses: wire.responses.krl } }, async (request, reply) => {
    const krl = await s.krl.current();
    const etag = `"${krl.version}"`;
    void reply.header('etag', etag).header('x-krl-version', String(krl.version));
    if (request.headers['if-none-match'] === etag) return reply.status(304).send();
    return reply.type('application/octet-stream').send(krl.blob);
  });

  const issue = {
    // Audited inside the certificate's transaction (below): the hooks only record refusals.
    config: {
      audit: { action: 'certificate.issue', inline: true, object: bodyField('sandbox_id') },
      responses: wire.responses.request,
    },
    schema: { body: wire.schemas.request },
  };
  app.post('/request', issue, async (request, reply) => {
    const body = request.body as AccessRequest & { ssh_key_id?: string | number };
    if (body.ssh_key_id !== undefined) body.ssh_key_id = String(body.ssh_key_id);
    const who = caller(request);
    // Audited inside the certificate's transaction: the record and its audit row commit together.
    const issued = await s.access.request(who, body, request.ip, (tx, record) =>
      s.audit.recordIn(tx, {
        actorId: who.identity.id,
        actorName: who.identity.name,
        sourceAddress: request.ip,
        action: 'certificate.issue',
        object: record.id,
        outcome: 'success',
        status: 200,
        requestId: String(request.id),
      }),
    );
    return wire.sendJson(reply, 200, wire.requestAccessResponse(issued, now()));
  });

  app.get(
    '/certificates',
    {
      config: { responses: wire.responses.certificates },
      schema: { querystring: wire.schemas.certificatesQuery },
    },
    async (request, reply) => {
      const q = request.query as Q;
      const { limit, offset } = readPage(q, wire.PAGE);
      const { rows, total } = await s.access.list(caller(request), {
        sandboxId: q.sandbox_id,
        userId: q.user_id,
        status: q.status,
        activeOnly: q.active_only,
        limit,
        offset,
      });
      const at = now();
      return wire.sendJson(reply, 200, {
        certificates: rows.map((c) => wire.certificateResponse(c, at)),
        total,
      });
    },
  );

  app.get(
    '/certificate/:certID',
    { config: { responses: wire.responses.certificate }, schema: { params: wire.schemas.certParams } },
    async (request, reply) => {
      const cert = await s.access.get(caller(request), (request.params as { certID: string }).certID);
      return wire.sendJson(reply, 200, wire.certificateResponse(cert, now()));
    },
  );

  app.delete(
    '/certificate/:certID',
    {
      config: {
        audit: { action: 'certificate.revoke', object: param('certID') },
        responses: wire.responses.revoke,
      },
      schema: { params: wire.schemas.certParams, body: wire.schemas.revoke },
    },
    async (request, reply) => {
      const id = (request.params as { certID: string }).certID;
      const reason = (request.body as { reason?: string } | null)?.reason || 'revoked by API';
      await s.access.revoke(caller(request), id, reason);
      return wire.sendJson(reply, 200, { message: 'certificate revoked', id });
    },
  );

  const start = {
    config: {
      audit: {
        action: 'session.start',
        object: (r: FastifyRequest, res?: any) => res?.session_id ?? bodyField('certificate_id')(r),
      },
      responses: wire.responses.sessionStart,
    },
    schema: { body: wire.schemas.sessionStart },
  };
  app.post('/session/start', start, async (request, reply) => {
    const body = request.body as { certificate_id: string; source_ip?: string };
    const session = await s.accessSessions.start(
      caller(request),
      body.certificate_id,
      body.source_ip ?? request.ip,
    );
    return wire.sendJson(reply, 200, { session_id: session.id });
  });

  const end = {
    config: {
      audit: { action: 'session.end', object: bodyField('session_id') },
      responses: wire.responses.sessionEnd,
    },
    schema: { body: wire.schemas.sessionEnd },
  };
  app.post('/session/end', end, async (request, reply) => {
    const body = request.body as { session_id: string; reason?: string };
    const session = await s.accessSessions.end(caller(request), body.session_id, body.reason || 'ended');
    return wire.sendJson(reply, 200, { message: 'session ended', session_id: session.id });
  });

  app.get(
    '/sessions',
    { config: { responses: wire.responses.sessions }, schema: { querystring: wire.schemas.sessionsQuery } },
    async (request, reply) => {
      const q = request.query as Q;
      const { limit, offset } = readPage(q, wire.PAGE);
      const { rows, total } = await s.accessSessions.list(caller(request), {
        sandboxId: q.sandbox_id,
        certificateId: q.certificate_id,
        userId: q.user_id,
        activeOnly: q.active_only,
        limit,
        offset,
      });
      const at = now();
      return wire.sendJson(reply, 200, { sessions: rows.map((x) => wire.sessionResponse(x, at)), total });
    },
  );
});
