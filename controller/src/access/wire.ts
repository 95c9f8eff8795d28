/**
 * virsh-sandbox access API wire format (shared/contracts/access-api.openapi.yaml): snake_case bodies,
 * RFC 3339 times, errors as `{error, code, details?}` with the HTTP status in `code`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiError } from '../platform/errors.js';
import { positiveIdParam, uuidParam } from '../platform/ids.js';
import type { Instance } from '../inventory/model.js';
import type { AccessSession, CertificateRecord } from './model.js';
import type { IssuedAccess } from './service.js';
import { pageProperties, type PageRules } from '../http/pagination.js';
import { instancePrincipal } from '../../../lib/ssh/identity.js';

const BIG = '\u0000bigint:';

/** JSON with uint64 values (certificate serials) written as exact numbers, as the Go original does. */
export function toJson(value: unknown): string {
  try {
    // Most bodies hold no bigint: plain JSON.stringify (no replacer call per key) throws on one.
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${BIG}${v}` : v)).replace(
    /"\\u0000bigint:(\d+)"/g,
    '$1',
  );
}

export function sendJson(reply: FastifyReply, status: number, value: unknown) {
  return reply.status(status).type('application/json; charset=utf-8').send(toJson(value));
}

export function renderAccessError(err: ApiError, _request: FastifyRequest, reply: FastifyReply) {
  const details = err.cause ? `${err.cause.field}: ${err.cause.reason}` : err.code;
  return sendJson(reply, err.status, { error: err.message, code: err.status, details });
}

const secondsLeft = (until: string, now: Date) =>
  Math.max(0, Math.floor((Date.parse(until) - now.getTime()) / 1000));

export function certificateResponse(c: CertificateRecord, now: Date) {
  return {
    id: c.id,
    sandbox_id: c.sandboxId,
    user_id: c.userId,
    vm_id: c.vmName,
    identity: c.keyId,
    serial_number: c.serial,
    principals: c.principals,
    valid_after: c.validAfter,
    valid_before: c.validBefore,
    status: c.status,
    issued_at: c.issuedAt,
    is_expired: Date.parse(c.validBefore) <= now.getTime(),
    ttl_seconds: secondsLeft(c.validBefore, now),
    public_key_fingerprint: c.publicKeyFingerprint,
    ssh_key_id: c.sshKeyId,
    revoked_at: c.revokedAt,
    revoke_reason: c.revokeReason,
  };
}

export function requestAccessResponse(issued: IssuedAccess, now: Date) {
  const { record, instance } = issued;
  const target = `${instance.loginUser}@${instance.ipAddress}`;
  const connect = `ssh -i <private key> -o CertificateFile=<private key>-cert.pub -p ${instance.sshPort} ${target}`;
  return {
    certificate_id: record.id,
    certificate: issued.certificate,
    vm_ip_address: instance.ipAddress,
    ssh_port: instance.sshPort,
    username: instance.loginUser,
    valid_until: record.validBefore,
    ttl_seconds: secondsLeft(record.validBefore, now),
    connect_command: connect,
    instructions:
      `Save "certificate" as <private key>-cert.pub next to the private key you sent the public half of, ` +
      `then connect with: ${connect}. It opens only instance ${instance.instanceName} and expires at ${record.validBefore}.`,
  };
}

export function sessionResponse(s: AccessSession, now: Date) {
  const end = s.endedAt ? Date.parse(s.endedAt) : now.getTime();
  return {
    id: s.id,
    certificate_id: s.certificateId,
    sandbox_id: s.sandboxId,
    user_id: s.userId,
    vm_id: s.vmName,
    vm_ip_address: s.vmIpAddress,
    source_ip: s.sourceIp,
    started_at: s.startedAt,
    ended_at: s.endedAt ?? '',
    duration_seconds: Math.max(0, Math.floor((end - Date.parse(s.startedAt)) / 1000)),
    status: s.status,
    end_reason: s.endReason ?? '',
  };
}

export function instanceResponse(i: Instance) {
  return {
    server_id: i.serverId,
    instance_name: i.instanceName,
    node_id: i.nodeId,
    ip_address: i.ipAddress,
    ssh_port: i.sshPort,
    login_user: i.loginUser,
    state: i.state,
    source: i.source,
    principal: instancePrincipal(i.serverId),
    created_at: i.createdAt,
    updated_at: i.updatedAt,
  };
}

// ---- request schemas ----

/** Page window of /v1/access and /v1/instances lists (read by http/pagination.ts). */
export const PAGE: PageRules = { defaultLimit: 50, maxLimit: 1000 };
const page = pageProperties(PAGE);

const uuid = { type: 'string', format: 'uuid' } as const;
const loginUser = { type: 'string', pattern: '^[a-z_][a-z0-9_-]{0,31}$' } as const;
const instanceFields = {
  instance_name: { type: 'string', minLength: 1, maxLength: 255 },
  ip_address: { type: 'string', maxLength: 255 },
  ssh_port: { type: 'integer', minimum: 1, maximum: 65535 },
  login_user: loginUser,
  state: { type: 'string', enum: ['running', 'shut off', 'paused', 'crashed', 'unknown'] },
} as const;

export const schemas = {
  request: {
    type: 'object',
    required: ['sandbox_id'],
    properties: {
      // server_id (UUID) or the libvirt name (instance_name)
      sandbox_id: { type: 'string', minLength: 1, maxLength: 255 },
      user_id: { type: 'string', maxLength: 100 },
      public_key: { type: 'string', minLength: 1, maxLength: 16384 },
      ssh_key_id: { type: ['string', 'integer'] },
      // Any JSON value: the policy check (policy.ts) refuses non-integers with the allowed range.
      ttl_minutes: {},
    },
  },
  certificatesQuery: {
    type: 'object',
    properties: {
      sandbox_id: { type: 'string' },
      user_id: { type: 'string' },
      status: { type: 'string', enum: ['ACTIVE', 'EXPIRED', 'REVOKED'] },
      active_only: { type: 'boolean' },
      ...page,
    },
  },
  sessionsQuery: {
    type: 'object',
    properties: {
      sandbox_id: { type: 'string' },
      certificate_id: { type: 'string' },
      user_id: { type: 'string' },
      active_only: { type: 'boolean' },
      ...page,
    },
  },
  pageQuery: { type: 'object', properties: page },
  certParams: {
    type: 'object',
    required: ['certID'],
    properties: { certID: uuidParam },
  },
  revoke: { type: ['object', 'null'], properties: { reason: { type: 'string', maxLength: 1024 } } },
  sessionStart: {
    type: 'object',
    required: ['certificate_id'],
    properties: {
      certificate_id: { type: 'string', minLength: 1 },
      source_ip: { type: 'string', maxLength: 64 },
    },
  },
  sessionEnd: {
    type: 'object',
    required: ['session_id'],
    properties: { session_id: { type: 'string', minLength: 1 }, reason: { type: 'string', maxLength: 1024 } },
  },
  rotate: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: { key_type: { type: 'string', enum: ['ed25519', 'ecdsa-p256', 'rsa'] } },
  },
  caParams: { type: 'object', required: ['id'], properties: { id: positiveIdParam } },
  instanceParams: { type: 'object', required: ['server_id'], properties: { server_id: uuid } },
  grantParams: {
    type: 'object',
    required: ['server_id', 'identity_id'],
    properties: { server_id: uuid, identity_id: uuidParam },
  },
  instanceCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['server_id', 'instance_name', 'login_user', 'state'],
    properties: { server_id: uuid, ...instanceFields },
  },
  instancePatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      ...instanceFields,
      // Which node hosts the instance (a move, or handing an admin-registered instance to a node's
      // agent); null: none.
      node_id: { type: ['integer', 'null'], minimum: 1, maximum: 2147483647 },
    },
  },
  grantCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['identity_id'],
    properties: { identity_id: uuid },
  },
} as const;

// ---- response schemas (documentation: /openapi.json reads them from the routes' config.responses) ----

const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  required,
  properties,
});
const str = { type: 'string' };
const time = { type: 'string', format: 'date-time' };
const nullable = (t: string) => ({ type: [t, 'null'] });

const certificateSchema = obj({
  id: str,
  sandbox_id: str,
  user_id: str,
  vm_id: str,
  identity: str,
  serial_number: { type: 'integer', format: 'uint64' },
  principals: { type: 'array', items: str },
  valid_after: time,
  valid_before: time,
  status: { type: 'string', enum: ['ACTIVE', 'EXPIRED', 'REVOKED'] },
  issued_at: time,
  is_expired: { type: 'boolean' },
  ttl_seconds: { type: 'integer' },
  public_key_fingerprint: str,
  ssh_key_id: nullable('string'),
  revoked_at: nullable('string'),
  revoke_reason: nullable('string'),
});

const sessionSchema = obj({
  id: str,
  certificate_id: str,
  sandbox_id: str,
  user_id: str,
  vm_id: str,
  vm_ip_address: str,
  source_ip: str,
  started_at: time,
  ended_at: { type: 'string', description: "'' while active" },
  duration_seconds: { type: 'integer' },
  status: { type: 'string', enum: ['ACTIVE', 'ENDED', 'REVOKED'] },
  end_reason: str,
});

const caKeySchema = obj({
  id: { type: 'integer' },
  public_key: str,
  fingerprint: str,
  status: str,
  created_at: time,
});

const instanceSchema = obj({
  server_id: str,
  instance_name: str,
  node_id: nullable('integer'),
  ip_address: str,
  ssh_port: { type: 'integer' },
  login_user: str,
  state: { type: 'string', enum: ['running', 'shut off', 'paused', 'crashed', 'unknown'] },
  source: { type: 'string', enum: ['manual', 'agent'] },
  principal: str,
  created_at: time,
  updated_at: time,
});

const grantSchema = obj({ server_id: str, identity_id: str, created_at: time });
const message = (...ids: string[]) => obj({ message: str, ...Object.fromEntries(ids.map((k) => [k, str])) });

export const responses = {
  caPubkey: { 200: obj({ public_key: str, usage: str }) },
  caPubkeys: { 200: obj({ public_keys: { type: 'array', items: caKeySchema }, trusted_user_ca_keys: str }) },
  caRotate: { 200: caKeySchema },
  caRetire: { 200: message('id'), 404: null, 409: null },
  krl: {
    200: {
      description: 'the KRL (OpenSSH PROTOCOL.krl); ETag and X-KRL-Version carry its version',
      content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
    },
    304: null,
  },
  request: {
    200: obj({
      certificate_id: str,
      certificate: { type: 'string', description: 'OpenSSH certificate (…-cert.pub line)' },
      vm_ip_address: str,
      ssh_port: { type: 'integer' },
      username: str,
      valid_until: time,
      ttl_seconds: { type: 'integer' },
      connect_command: str,
      instructions: str,
    }),
    404: null,
  },
  certificates: {
    200: obj({ certificates: { type: 'array', items: certificateSchema }, total: { type: 'integer' } }),
  },
  certificate: { 200: certificateSchema },
  revoke: { 200: message('id') },
  sessionStart: { 200: obj({ session_id: str }), 404: null, 409: null },
  sessionEnd: { 200: message('session_id'), 404: null },
  sessions: { 200: obj({ sessions: { type: 'array', items: sessionSchema }, total: { type: 'integer' } }) },
  // /v1/instances
  instanceCreate: { 201: instanceSchema, 409: null },
  instances: {
    200: obj({ instances: { type: 'array', items: instanceSchema }, total: { type: 'integer' } }),
  },
  instance: { 200: instanceSchema },
  instanceTrust: {
    200: obj({
      sandbox_id: str,
      node_id: nullable('integer'),
      state: str,
      ca_fingerprints: { type: 'array', items: str },
      krl_version: { type: 'integer' },
      login_user: nullable('string'),
      transport: nullable('string'),
      last_success: nullable('string'),
      last_error: nullable('string'),
      reported_at: nullable('string'),
    }),
  },
  instanceDelete: { 200: message('server_id') },
  grants: { 200: obj({ grants: { type: 'array', items: grantSchema }, total: { type: 'integer' } }) },
  grantCreate: { 201: grantSchema, 409: null },
  grantDelete: { 200: message('server_id', 'identity_id') },
};

// ---- the SSH host CA (host-ca/routes.ts) ----

export const hostCaSchemas = {
  hostCertificate: {
    type: 'object',
    additionalProperties: false,
    required: ['public_key', 'principals'],
    properties: {
      public_key: { type: 'string', minLength: 1, maxLength: 16_384 },
      principals: {
        type: 'array',
        minItems: 1,
        maxItems: 64,
        items: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^\\s,*?!]+$' },
      },
      ttl_seconds: { type: 'integer', minimum: 60, maximum: 366 * 86_400 },
    },
  },
} as const;

export const hostCaResponses = {
  hostCaPubkeys: {
    200: obj({
      public_keys: { type: 'array', items: caKeySchema },
      known_hosts: {
        type: 'string',
        description: 'one `@cert-authority * <key> vmwarden-host-ca` line per key',
      },
    }),
  },
  hostCaRotate: { 200: caKeySchema },
  hostCaRetire: { 200: message('id'), 404: null, 409: null },
  hostCertificate: {
    200: obj({
      id: str,
      certificate: { type: 'string', description: 'OpenSSH host certificate (…-cert.pub line)' },
      serial: { type: 'integer', format: 'uint64' },
      valid_before: time,
    }),
  },
};
