import type { FastifyRequest } from 'fastify';
import { caller, requireAdmin, requireSession } from '../http/auth.js';
import { routeGroup } from '../http/errors.js';
import { bodyField, param } from '../http/audit-hooks.js';
import type { ApiSessions } from '../identity/sessions.js';
import type { GuestTrust } from '../access/guest-trust.js';
import type { Nodes } from '../nodes/service.js';
import type { RouteResponses } from '../ops/openapi.js';
import * as wire from '../access/wire.js';
import type { Inventory, InstancePatch } from './service.js';
import { readPage } from '../http/pagination.js';

type Body = Record<string, any>;

export interface InventoryRouteDeps {
  sessions: ApiSessions;
  inventory: Inventory;
  guestTrust: GuestTrust;
  nodes: Nodes;
}

const audited = (action: string, responses: RouteResponses) => ({
  audit: { action, object: param('server_id') },
  responses,
});

/** /v1/instances: the inventory access is granted on. Same wire conventions as /v1/access. */
export const inventoryRoutes = routeGroup(wire.renderAccessError, async (app, s: InventoryRouteDeps) => {
  app.addHook('onRequest', requireSession(s.sessions));
  const serverId = (params: unknown) => (params as { server_id: string }).server_id;

  const create = {
    config: {
      audit: {
        action: 'instance.create',
        object: (r: FastifyRequest, res?: any) => res?.id ?? res?.server_id ?? bodyField('id')(r),
      },
      responses: wire.responses.instanceCreate,
    },
    schema: { body: wire.schemas.instanceCreate },
  };
  app.post('/', create, async (request, reply) => {
    requireAdmin(request);
    const b = request.body as Body;
    const instance = await s.inventory.register({
      serverId: b.server_id.toLowerCase(),
      instanceName: b.instance_name,
      ipAddress: b.ip_address ?? '',
      sshPort: b.ssh_port ?? 22,
      loginUser: b.login_user,
      state: b.state,
    });
    return wire.sendJson(reply, 201, wire.instanceResponse(instance));
  });

  app.get(
    '/',
    { config: { responses: wire.responses.instances }, schema: { querystring: wire.schemas.pageQuery } },
    async (request, reply) => {
      const { limit, offset } = readPage(request.query, wire.PAGE);
      const { rows, total } = await s.inventory.list(caller(request), limit, offset);
      return wire.sendJson(reply, 200, { instances: rows.map(wire.instanceResponse), total });
    },
  );

  const params = { params: wire.schemas.instanceParams };
  app.get(
    '/:server_id',
    { config: { responses: wire.responses.instance }, schema: params },
    async (request, reply) => {
      const instance = await s.inventory.getFor(caller(request), serverId(request.params));
      return wire.sendJson(reply, 200, wire.instanceResponse(instance));
    },
  );

  // Trust installed inside the guest, as its agent last reported it.
  app.get(
    '/:server_id/trust',
    { config: { responses: wire.responses.instanceTrust }, schema: params },
    async (request, reply) => {
      const instance = await s.inventory.getFor(caller(request), serverId(request.params));
      const t = await s.guestTrust.status(instance.serverId, instance.nodeId);
      return wire.sendJson(reply, 200, {
        sandbox_id: instance.serverId,
        node_id: t.nodeId || null,
        state: t.state,
        ca_fingerprints: t.caFingerprints,
        krl_version: t.krlVersion,
        login_user: t.loginUser || null,
        transport: t.transport || null,
        last_success: t.lastSuccess,
        last_error: t.lastError,
        reported_at: t.reportedAt || null,
      });
    },
  );

  app.patch(
    '/:server_id',
    {
      config: audited('instance.update', wire.responses.instance),
      schema: { ...params, body: wire.schemas.instancePatch },
    },
    async (request, reply) => {
      requireAdmin(request);
      const b = request.body as Body;
      const patch: InstancePatch = {
        instanceName: b.instance_name,
        ipAddress: b.ip_address,
        sshPort: b.ssh_port,
        loginUser: b.login_user,
        state: b.state,
        nodeId: b.node_id,
      };
      // An admin's move: the node must exist (its agent then reports the instance as its own).
      if (typeof b.node_id === 'number') await s.nodes.get(b.node_id);
      return wire.sendJson(
        reply,
        200,
        wire.instanceResponse(await s.inventory.update(serverId(request.params), patch)),
      );
    },
  );

  app.delete(
    '/:server_id',
    { config: audited('instance.delete', wire.responses.instanceDelete), schema: params },
    async (request, reply) => {
      requireAdmin(request);
      await s.inventory.remove(serverId(request.params));
      return wire.sendJson(reply, 200, { message: 'instance deleted', server_id: serverId(request.params) });
    },
  );

  app.get(
    '/:server_id/grants',
    { config: { responses: wire.responses.grants }, schema: params },
    async (request, reply) => {
      requireAdmin(request);
      const grants = await s.inventory.grants(serverId(request.params));
      return wire.sendJson(reply, 200, {
        grants: grants.map((g) => ({
          server_id: g.serverId,
          identity_id: g.identityId,
          created_at: g.createdAt,
        })),
        total: grants.length,
      });
    },
  );

  app.post(
    '/:server_id/grants',
    {
      config: {
        audit: { action: 'grant.add', object: param('server_id'), detail: bodyField('identity_id') },
        responses: wire.responses.grantCreate,
      },
      schema: { ...params, body: wire.schemas.grantCreate },
    },
    async (request, reply) => {
      requireAdmin(request);
      const g = await s.inventory.grant(serverId(request.params), (request.body as Body).identity_id);
      return wire.sendJson(reply, 201, {
        server_id: g.serverId,
        identity_id: g.identityId,
        created_at: g.createdAt,
      });
    },
  );

  app.delete(
    '/:server_id/grants/:identity_id',
    {
      config: {
        audit: { action: 'grant.remove', object: param('server_id'), detail: param('identity_id') },
        responses: wire.responses.grantDelete,
      },
      schema: { params: wire.schemas.grantParams },
    },
    async (request, reply) => {
      requireAdmin(request);
      const p = request.params as { server_id: string; identity_id: string };
      await s.inventory.revokeGrant(p.server_id, p.identity_id);
      return wire.sendJson(reply, 200, {
        message: 'grant removed',
        server_id: p.server_id,
        identity_id: p.identity_id,
      });
    },
  );
});
