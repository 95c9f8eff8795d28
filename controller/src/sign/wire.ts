/** Sign API wire format (shared/seeds/sign-api.md): RFC 1123 dates, is_valid as a string, `{error}`. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiError } from '../platform/errors.js';
import type { Node } from '../nodes/model.js';
import type { VerdictMsg } from '../../../proto/messages.js';
import type { SignEvent, SignRecord, Task } from './model.js';
import { pageProperties, type PageRules } from '../http/pagination.js';

/** Page window of GET /v1/sign and /sign; the Sign API document's own example writes `?$offset=0&$limit=10`. */
export const PAGE: PageRules = {
  defaultLimit: 100,
  maxLimit: 1000,
  offsetNames: ['offset', '$offset'],
  limitNames: ['limit', '$limit'],
};

/** `Mon, 03 Jun 2024 10:45:36 GMT`. */
export const rfc1123 = (iso: string | null) => (iso ? new Date(iso).toUTCString() : null);

export function renderSignError(err: ApiError, _request: FastifyRequest, reply: FastifyReply) {
  return reply.status(err.status).send({ error: err.message });
}

export function sign(r: SignRecord) {
  return {
    id: r.id,
    instance_name: r.instanceName,
    server_id: r.serverId,
    node_id: r.nodeId,
    is_valid: r.isValid,
    created_at: rfc1123(r.createdAt),
    updated_at: rfc1123(r.updatedAt),
    // Beyond the document, only when is_valid is "unknown" for that reason: what was not inspected.
    ...(r.uninspected?.length ? { uninspected: r.uninspected } : {}),
  };
}

export function manifest(r: SignRecord, verdict: VerdictMsg | null, nodePublicKey: string) {
  return {
    server_id: r.serverId,
    node_id: r.nodeId,
    is_valid: verdict ? verdict.isValid : 'unknown',
    checked_at: rfc1123(verdict?.checkedAt || null),
    uninspected: verdict?.uninspected ?? [],
    manifest: JSON.parse(r.manifest),
    signature: r.signature,
    signature_algorithm: 'ed25519',
    node_public_key: nodePublicKey,
    differences: (verdict?.differences ?? []).map((d) => ({
      component: d.component,
      ...(d.role ? { role: d.role } : {}),
      ...(d.target ? { target: d.target } : {}),
      ...(d.path ? { path: d.path } : {}),
      ...(d.expected ? { expected: d.expected } : {}),
      ...(d.actual ? { actual: d.actual } : {}),
      ...(d.chunks?.length ? { chunks: d.chunks } : {}),
      ...(d.reason ? { reason: d.reason } : {}),
    })),
  };
}

export function signEvent(e: SignEvent) {
  return {
    time: rfc1123(e.time),
    component: e.component,
    old_digest: e.oldDigest,
    new_digest: e.newDigest,
    action: e.action,
    detail: e.detail,
  };
}

export function task(t: Task) {
  return {
    task_id: t.id,
    action: t.action,
    node_id: t.nodeId,
    state: t.state,
    progress: t.progress,
    created_at: rfc1123(t.createdAt),
    started_at: rfc1123(t.startedAt),
    finished_at: rfc1123(t.finishedAt),
    error: t.error,
  };
}

export function node(n: Node) {
  return {
    id: n.id,
    name: n.name,
    hostname: n.hostname,
    enrolled: n.enrolledAt !== null,
    enrolled_at: rfc1123(n.enrolledAt),
    agent_address: n.agentAddress,
    libvirt_uri: n.libvirtUri,
    validation_active: n.validationActive,
    public_key_pem: n.publicKeyPem,
    last_seen_at: rfc1123(n.lastSeenAt),
    created_at: rfc1123(n.createdAt),
  };
}

export const schemas = {
  serverBody: {
    type: 'object',
    required: ['server_id'],
    properties: { server_id: { type: 'string', minLength: 1, maxLength: 64 } },
  },
  serverParams: {
    type: 'object',
    required: ['server_id'],
    properties: { server_id: { type: 'string', maxLength: 64 } },
  },
  listQuery: { type: 'object', properties: pageProperties(PAGE) },
  actionBody: {
    type: 'object',
    required: ['action'],
    properties: { action: { type: 'string' } },
  },
  nodeCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' } },
  },
  taskParams: {
    type: 'object',
    required: ['task_id'],
    properties: { task_id: { type: 'string', maxLength: 64 } },
  },
} as const;

// ---- response schemas (documentation: /openapi.json reads them from the routes' config.responses) ----

const date = { type: ['string', 'null'], description: 'RFC 1123, e.g. Mon, 03 Jun 2024 10:45:36 GMT' };
const validity = { type: 'string', enum: ['true', 'false', 'unknown'] };
const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  required,
  properties,
});

const uninspected = {
  type: 'array',
  items: { type: 'string' },
  description: 'parts not inspected: why is_valid is "unknown"',
};
const signSchema = obj(
  {
    id: { type: 'integer' },
    instance_name: { type: 'string' },
    server_id: { type: 'string' },
    node_id: { type: 'integer' },
    is_valid: validity,
    created_at: date,
    updated_at: date,
    uninspected,
  },
  ['id', 'instance_name', 'server_id', 'node_id', 'is_valid', 'created_at', 'updated_at'],
);

const nodeSchema = obj({
  id: { type: 'integer' },
  name: { type: 'string' },
  hostname: { type: ['string', 'null'] },
  enrolled: { type: 'boolean' },
  enrolled_at: date,
  agent_address: { type: ['string', 'null'] },
  libvirt_uri: { type: ['string', 'null'] },
  validation_active: { type: 'boolean' },
  public_key_pem: { type: ['string', 'null'] },
  last_seen_at: date,
  created_at: date,
});

const difference = obj(
  {
    component: { type: 'string' },
    role: { type: 'string' },
    target: { type: 'string' },
    path: { type: 'string' },
    expected: { type: 'string' },
    actual: { type: 'string' },
    chunks: { type: 'array', items: {} },
    reason: { type: 'string' },
  },
  ['component'],
);

export const responses = {
  signOne: { 200: obj({ sign: signSchema }), 404: null },
  signList: { 200: obj({ signs: { type: 'array', items: signSchema } }) },
  signWrite: { 200: obj({ sign: signSchema }), 404: null, 409: null },
  manifest: {
    200: obj({
      server_id: { type: 'string' },
      node_id: { type: 'integer' },
      is_valid: validity,
      checked_at: date,
      manifest: { type: 'object', description: 'the signed manifest, as the agent wrote it' },
      signature: { type: 'string' },
      signature_algorithm: { type: 'string', enum: ['ed25519'] },
      node_public_key: { type: 'string' },
      differences: { type: 'array', items: difference },
      uninspected,
    }),
    404: null,
  },
  events: {
    200: obj({
      events: {
        type: 'array',
        items: obj({
          time: date,
          component: { type: ['string', 'null'] },
          old_digest: { type: ['string', 'null'] },
          new_digest: { type: ['string', 'null'] },
          action: { type: 'string', enum: ['alert', 'refused', 'destroyed', 'allowed', 'signed'] },
          detail: { type: 'string' },
        }),
      },
    }),
    404: null,
  },
  nodeAction: {
    200: obj({
      action: { type: 'string', enum: ['activate', 'deactivate'] },
      node_id: { type: 'integer' },
      success: { type: 'boolean' },
      task_id: { type: 'string' },
    }),
    404: null,
  },
  task: {
    200: obj({
      task_id: { type: 'string' },
      action: { type: 'string', enum: ['activate', 'deactivate'] },
      node_id: { type: 'integer' },
      state: { type: 'string', enum: ['PENDING', 'RUNNING', 'SUCCESS', 'FAILURE'] },
      progress: { type: 'number' },
      created_at: date,
      started_at: date,
      finished_at: date,
      error: { type: ['string', 'null'] },
    }),
    404: null,
  },
  nodeCreate: {
    201: obj({
      node_id: { type: 'integer' },
      name: { type: 'string' },
      enrollment_token: { type: 'string' },
      expires_at: date,
    }),
    409: null,
  },
  nodeList: { 200: obj({ nodes: { type: 'array', items: nodeSchema } }) },
  nodeOne: { 200: obj({ node: nodeSchema }), 404: null },
};
