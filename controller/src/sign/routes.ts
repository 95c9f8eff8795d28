import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAdmin, requireSession } from '../http/auth.js';
import { handleErrorsWith } from '../http/errors.js';
import { badRequest } from '../platform/errors.js';
import { Nodes } from '../nodes/service.js';
import type { ControllerServices } from '../services.js';
import type { NodeAction } from './model.js';
import { readPage } from '../http/pagination.js';
import * as wire from './wire.js';

const ACTIONS: NodeAction[] = ['activate', 'deactivate'];

/** Fastify parses no body on GET, but the Sign API's own example sends the action as a GET body. */
async function actionFrom(request: FastifyRequest): Promise<string> {
  let body = request.body as { action?: unknown } | undefined;
  if (request.method === 'GET') {
    let raw = '';
    for await (const chunk of request.raw) {
      raw += chunk;
      if (raw.length > 4096) throw badRequest('BAD_REQUEST', 'request body too large');
    }
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      throw badRequest('BAD_REQUEST', 'body is not valid JSON');
    }
  }
  const action = body?.action;
  if (typeof action !== 'string' || !ACTIONS.includes(action as NodeAction)) {
    throw badRequest(
      'BAD_REQUEST',
      `action must be one of ${ACTIONS.join(', ')}, got ${JSON.stringify(action ?? null)}`,
    );
  }
  return action;
}

/** Sign API: admin-only management of instance signatures and node validation. */
export async function signRoutes(app: FastifyInstance, opts: { services: ControllerServices }) {
  const s = opts.services;
  handleErrorsWith(app, wire.renderSignError);
  app.addHook('onRequest', requireSession(s.sessions));
  app.addHook('preHandler', async (request) => void requireAdmin(request));

  const list = async (request: FastifyRequest) => {
    const { offset, limit } = readPage(request.query, wire.PAGE);
    const signs = await s.sign.list(offset, limit);
    return { signs: signs.map(wire.sign) };
  };
  app.get('/v1/sign', { schema: { querystring: wire.schemas.listQuery } }, list);
  app.get('/sign', { schema: { querystring: wire.schemas.listQuery } }, list);

  app.get('/v1/sign/:server_id', { schema: { params: wire.schemas.serverParams } }, async (request) => ({
    sign: wire.sign(await s.sign.get((request.params as { server_id: string }).server_id)),
  }));

  app.get(
    '/v1/sign/:server_id/manifest',
    { schema: { params: wire.schemas.serverParams } },
    async (request) => {
      const m = await s.sign.manifest((request.params as { server_id: string }).server_id);
      return wire.manifest(m.record, m.verdict, m.nodePublicKey);
    },
  );

  app.get(
    '/v1/sign/:server_id/events',
    { schema: { params: wire.schemas.serverParams } },
    async (request) => ({
      events: (await s.sign.events((request.params as { server_id: string }).server_id)).map(wire.signEvent),
    }),
  );

  app.post('/v1/sign', { schema: { body: wire.schemas.serverBody } }, async (request) => ({
    sign: wire.sign(await s.sign.create((request.body as { server_id: string }).server_id)),
  }));

  app.put('/v1/sign', { schema: { body: wire.schemas.serverBody } }, async (request) => ({
    sign: wire.sign(await s.sign.update((request.body as { server_id: string }).server_id)),
  }));

  const nodeAction = async (request: FastifyRequest) => {
    const nodeId = Nodes.parseId((request.params as { node_id: string }).node_id);
    const action = (await actionFrom(request)) as NodeAction;
    await s.nodes.get(nodeId);
    const task = await s.tasks.submit(action, nodeId);
    return { action, node_id: nodeId, success: true, task_id: task.id };
  };
  app.post('/v1/sign/node/:node_id/action', nodeAction);
  app.get('/v1/sign/node/:node_id/action', nodeAction);

  app.get('/v1/tasks/:task_id', { schema: { params: wire.schemas.taskParams } }, async (request) =>
    wire.task(await s.tasks.get((request.params as { task_id: string }).task_id)),
  );

  app.post('/v1/nodes', { schema: { body: wire.schemas.nodeCreate } }, async (request, reply) => {
    const { node, token } = await s.nodes.create((request.body as { name: string }).name);
    const expiresAt = wire.rfc1123(node.tokenExpiresAt);
    return reply
      .status(201)
      .send({ node_id: node.id, name: node.name, enrollment_token: token, expires_at: expiresAt });
  });

  app.get('/v1/nodes', async () => ({ nodes: (await s.nodes.list()).map(wire.node) }));

  app.get('/v1/nodes/:node_id', async (request) => ({
    node: wire.node(await s.nodes.get(Nodes.parseId((request.params as { node_id: string }).node_id))),
  }));
}
