import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireAdmin, requireSession } from '../http/auth.js';
import { routeGroup, type ErrorFormats } from '../http/errors.js';
import { bodyField, param } from '../http/audit-hooks.js';
import { badRequest } from '../platform/errors.js';
import { Nodes } from '../nodes/service.js';
import type { ApiSessions } from '../identity/sessions.js';
import type { SignService } from './service.js';
import type { TaskRunner } from './tasks.js';
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

export interface SignRouteDeps {
  sessions: ApiSessions;
  sign: SignService;
  nodes: Nodes;
  tasks: TaskRunner;
}

const serverBody = { body: wire.schemas.serverBody };
const listOptions = {
  config: { responses: wire.responses.signList },
  schema: { querystring: wire.schemas.listQuery },
};

/** /v1/sign: instance signatures, and the validation actions on nodes. */
function signatureRoutes(app: FastifyInstance, s: SignRouteDeps) {
  app.get('', listOptions, (request) => list(s, request));

  app.get(
    '/:server_id',
    { config: { responses: wire.responses.signOne }, schema: { params: wire.schemas.serverParams } },
    async (request) => ({
      sign: wire.sign(await s.sign.get((request.params as { server_id: string }).server_id)),
    }),
  );

  app.get(
    '/:server_id/manifest',
    { config: { responses: wire.responses.manifest }, schema: { params: wire.schemas.serverParams } },
    async (request) => {
      const m = await s.sign.manifest((request.params as { server_id: string }).server_id);
      return wire.manifest(m.record, m.verdict, m.nodePublicKey);
    },
  );

  app.get(
    '/:server_id/events',
    { config: { responses: wire.responses.events }, schema: { params: wire.schemas.serverParams } },
    async (request) => ({
      events: (await s.sign.events((request.params as { server_id: string }).server_id)).map(wire.signEvent),
    }),
  );

  const create = {
    audit: { action: 'signature.create', object: bodyField('server_id') },
    responses: wire.responses.signWrite,
  };
  app.post('', { config: create, schema: serverBody }, async (request) => ({
    sign: wire.sign(await s.sign.create((request.body as { server_id: string }).server_id)),
  }));

  const update = {
    audit: { action: 'signature.update', object: bodyField('server_id') },
    responses: wire.responses.signWrite,
  };
  app.put('', { config: update, schema: serverBody }, async (request) => ({
    sign: wire.sign(await s.sign.update((request.body as { server_id: string }).server_id)),
  }));

  const nodeAction = async (request: FastifyRequest) => {
    const nodeId = Nodes.parseId((request.params as { node_id: string }).node_id);
    const action = (await actionFrom(request)) as NodeAction;
    await s.nodes.get(nodeId);
    const task = await s.tasks.submit(action, nodeId);
    return { action, node_id: nodeId, success: true, task_id: task.id };
  };
  const validation = {
    audit: {
      action: (r: FastifyRequest) =>
        `validation.${bodyField('action')(r) ?? (r.query as { action?: string }).action ?? 'unknown'}`,
      object: param('node_id'),
    },
    responses: wire.responses.nodeAction,
  };
  app.post('/node/:node_id/action', { config: validation }, nodeAction);
  app.get('/node/:node_id/action', { config: validation }, nodeAction);
}

const list = async (s: SignRouteDeps, request: FastifyRequest) => {
  const { offset, limit } = readPage(request.query, wire.PAGE);
  const signs = await s.sign.list(offset, limit);
  return { signs: signs.map(wire.sign) };
};

/** /sign: the list, under the path the Sign API's own examples use. */
function legacyListRoutes(app: FastifyInstance, s: SignRouteDeps) {
  app.get('', listOptions, (request) => list(s, request));
}

function taskRoutes(app: FastifyInstance, s: SignRouteDeps) {
  app.get(
    '/:task_id',
    { config: { responses: wire.responses.task }, schema: { params: wire.schemas.taskParams } },
    async (request) => wire.task(await s.tasks.get((request.params as { task_id: string }).task_id)),
  );
}

function nodeRoutes(app: FastifyInstance, s: SignRouteDeps) {
  const create = {
    audit: {
      action: 'node.create',
      object: (r: FastifyRequest, res?: any) => res?.node_id ?? bodyField('name')(r),
    },
    responses: wire.responses.nodeCreate,
  };
  app.post('', { config: create, schema: { body: wire.schemas.nodeCreate } }, async (request, reply) => {
    const { node, token } = await s.nodes.create((request.body as { name: string }).name);
    const expiresAt = wire.rfc1123(node.tokenExpiresAt);
    return reply
      .status(201)
      .send({ node_id: node.id, name: node.name, enrollment_token: token, expires_at: expiresAt });
  });

  app.get('', { config: { responses: wire.responses.nodeList } }, async () => ({
    nodes: (await s.nodes.list()).map(wire.node),
  }));

  app.get('/:node_id', { config: { responses: wire.responses.nodeOne } }, async (request) => ({
    node: wire.node(await s.nodes.get(Nodes.parseId((request.params as { node_id: string }).node_id))),
  }));
}

/** Sign API: admin-only management of instance signatures and node validation; one group per prefix. */
export async function signRoutes(
  app: FastifyInstance,
  opts: SignRouteDeps & { errorFormats?: ErrorFormats },
) {
  const parts: Array<[string, (app: FastifyInstance, s: SignRouteDeps) => void]> = [
    ['/v1/sign', signatureRoutes],
    ['/sign', legacyListRoutes],
    ['/v1/tasks', taskRoutes],
    ['/v1/nodes', nodeRoutes],
  ];
  for (const [prefix, routes] of parts) {
    const group = routeGroup(wire.renderSignError, (scope, s: SignRouteDeps) => {
      scope.addHook('onRequest', requireSession(s.sessions));
      scope.addHook('preHandler', async (request) => void requireAdmin(request));
      routes(scope, s);
    });
    app.register(group, { ...opts, prefix });
  }
}
