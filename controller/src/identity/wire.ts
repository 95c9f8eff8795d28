/**
 * OpenZiti edge-management wire format for the identity & API sessions group: envelopes, entity
 * shapes and request schemas. Shapes follow shared/contracts/current-api-session.swagger.yaml.
 */
import type { ApiError } from '../platform/errors.js';
import { uuidParam } from '../platform/ids.js';
import type { ApiSession, Authenticator, Identity, Page } from './model.js';
import { pageProperties, type PageRules } from '../http/pagination.js';
import { AGENT_ATTRIBUTE, IDENTITY_TYPES } from './ziti-identity.js';

/** Page window of the group's lists (OpenZiti: limit 10 by default, at most 500). */
export const PAGE: PageRules = { defaultLimit: 10, maxLimit: 500 };

export const API_VERSION = '0.0.1';
const meta = () => ({ apiVersion: API_VERSION, apiEnrollmentVersion: API_VERSION });

export function envelope(data: unknown) {
  return { meta: meta(), data };
}

export function emptyEnvelope() {
  return { meta: {}, data: {} };
}

export function listEnvelope<T>(page: Page<T>, map: (row: T) => unknown, filterableFields: string[]) {
  return {
    meta: {
      ...meta(),
      filterableFields,
      pagination: { limit: page.limit, offset: page.offset, totalCount: page.total },
    },
    data: page.rows.map(map),
  };
}

export function createdEnvelope(id: string, collection: string) {
  return { meta: meta(), data: { id, _links: { self: { href: `./${collection}/${id}` } } } };
}

export function errorEnvelope(err: ApiError, requestId: string) {
  return {
    meta: meta(),
    error: {
      code: err.code,
      message: err.message,
      ...(err.cause ? { cause: err.cause } : {}),
      requestId,
    },
  };
}

const ref = (entity: string, id: string, name: string) => ({
  _links: { self: { href: `./${entity}/${id}` } },
  entity,
  id,
  name,
});

export interface SessionView {
  session: ApiSession;
  identity: Identity;
  token: string;
  expiresAt: Date;
  cachedLastActivityAt: string;
  isCertExtendable: boolean;
  now: Date;
}

export function currentApiSession(v: SessionView) {
  const { session, identity } = v;
  return {
    _links: { self: { href: './current-api-session' } },
    id: session.id,
    createdAt: session.createdAt,
    updatedAt: session.updatedAt,
    tags: {},
    token: v.token,
    identity: ref('identities', identity.id, identity.name),
    identityId: identity.id,
    authenticatorId: session.authenticatorId,
    configTypes: [],
    ipAddress: session.ipAddress,
    authQueries: [],
    isMfaRequired: false,
    isMfaComplete: false,
    isCertExtendable: v.isCertExtendable,
    isCertExtendRequested: false,
    isCertKeyRollRequested: false,
    improperClientCertChain: false,
    lastActivityAt: session.lastActivityAt,
    cachedLastActivityAt: v.cachedLastActivityAt,
    cachedUpdatedAt: v.cachedLastActivityAt,
    expiresAt: v.expiresAt.toISOString(),
    expirationSeconds: Math.max(0, Math.floor((v.expiresAt.getTime() - v.now.getTime()) / 1000)),
  };
}

export function authenticatorDetail(a: Authenticator, identity: Identity) {
  return {
    _links: { self: { href: `./current-identity/authenticators/${a.id}` } },
    id: a.id,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
    tags: {},
    method: a.method,
    identityId: a.identityId,
    identity: ref('identities', identity.id, identity.name),
    ...(a.method === 'updb' ? { username: a.username ?? '' } : {}),
    ...(a.method === 'cert' ? { certPem: a.certPem ?? '', fingerprint: a.fingerprint ?? '' } : {}),
    isIssuedByNetwork: a.method === 'cert',
    isExtendRequested: a.pendingFingerprint !== null,
    isKeyRollRequested: false,
    extendRequestedAt: a.extendRequestedAt,
    lastAuthResolvedToRoot: a.method === 'cert',
    lastExtendRolledKeys: a.lastExtendRolledKeys,
  };
}

/** OpenZiti's identityDetail; `role` is vmwarden's own (see ziti-identity.ts for the mapping). */
export function identityDetail(i: Identity, authenticators: Authenticator[], hasApiSession: boolean) {
  const updb = authenticators.find((a) => a.method === 'updb');
  const cert = authenticators.find((a) => a.method === 'cert');
  const a = i.attributes;
  const typeId = i.role === 'agent' ? 'Router' : a.type;
  return {
    _links: { self: { href: `./identities/${i.id}` } },
    id: i.id,
    createdAt: i.createdAt,
    updatedAt: i.updatedAt,
    tags: a.tags,
    appData: a.appData,
    name: i.name,
    role: i.role,
    type: ref('identity-types', typeId, typeId),
    typeId,
    isAdmin: i.role === 'admin',
    isDefaultAdmin: i.isDefaultAdmin,
    authenticators: {
      ...(updb ? { updb: { id: updb.id, username: updb.username ?? '' } } : {}),
      ...(cert ? { cert: { id: cert.id, fingerprint: cert.fingerprint ?? '' } } : {}),
    },
    enrollment: {},
    envInfo: {},
    sdkInfo: {},
    roleAttributes: i.role === 'agent' ? [...a.roleAttributes, AGENT_ATTRIBUTE] : a.roleAttributes,
    hasEdgeRouterConnection: false,
    edgeRouterConnectionStatus: 'unknown',
    hasApiSession,
    isMfaEnabled: false,
    serviceHostingPrecedences: a.serviceHostingPrecedences,
    serviceHostingCosts: a.serviceHostingCosts,
    defaultHostingCost: a.defaultHostingCost,
    defaultHostingPrecedence: a.defaultHostingPrecedence,
    authPolicyId: a.authPolicyId,
    authPolicy: ref(
      'auth-policies',
      a.authPolicyId,
      a.authPolicyId === 'default' ? 'Default' : a.authPolicyId,
    ),
    externalId: a.externalId,
    disabled: i.disabled,
    disabledAt: null,
    disabledUntil: null,
    permissions: i.role === 'admin' ? ['admin_readonly'] : [],
  };
}

/**
 * OpenZiti's version (GET / and GET /version). This group is served both at the root and under
 * /edge/management/v1 (OpenZiti's path), so both base URLs are listed; the others groups are at
 * the root only.
 */
export function versionInfo(version: string, origin: string) {
  return {
    version,
    revision: 'local',
    buildDate: '',
    runtimeVersion: process.version,
    capabilities: [],
    apiVersions: {
      'edge-management': {
        v1: { apiBaseUrls: [`${origin}/edge/management/v1`, origin], path: '/edge/management/v1' },
      },
    },
  };
}

// ---- request schemas (validated by fastify; failures render as COULD_NOT_VALIDATE) ----

const username = { type: 'string', minLength: 4, maxLength: 100 } as const;
const password = { type: 'string', minLength: 5, maxLength: 100 } as const;
const tags = { type: ['object', 'null'] } as const;
const identityName = {
  type: 'string',
  minLength: 4,
  maxLength: 100,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$',
} as const;
const nullable = <T extends { type: string }>(s: T) => ({ ...s, type: [s.type, 'null'] });
const cost = { type: 'integer', minimum: 0, maximum: 65535 } as const;
const precedence = { type: 'string', enum: ['default', 'required', 'failed'] } as const;
/** OpenZiti's identityCreate/identityUpdate/identityPatch fields, and vmwarden's role/password/disabled. */
const identityFields = {
  name: identityName,
  type: { type: 'string', enum: IDENTITY_TYPES },
  isAdmin: { type: 'boolean' },
  roleAttributes: {
    type: ['array', 'null'],
    maxItems: 100,
    items: { type: 'string', minLength: 1, maxLength: 100 },
  },
  externalId: nullable({ type: 'string', maxLength: 255 }),
  authPolicyId: nullable({ type: 'string', minLength: 1, maxLength: 100 }),
  tags,
  appData: tags,
  defaultHostingCost: cost,
  defaultHostingPrecedence: precedence,
  serviceHostingCosts: { type: 'object', maxProperties: 500, additionalProperties: cost },
  serviceHostingPrecedences: { type: 'object', maxProperties: 500, additionalProperties: precedence },
  role: { type: 'string', enum: ['admin', 'user', 'agent'] },
} as const;
const enrollment = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ott: { type: 'boolean' },
    ottca: nullable({ type: 'string', maxLength: 100 }),
    updb: nullable(username),
  },
} as const;

export const schemas = {
  idParams: { type: 'object', required: ['id'], properties: { id: uuidParam } },
  listQuery: {
    type: 'object',
    properties: {
      ...pageProperties(PAGE),
      filter: { type: 'string', maxLength: 4096 },
    },
  },
  authenticateQuery: {
    type: 'object',
    required: ['method'],
    properties: { method: { type: 'string', enum: ['password', 'cert', 'ext-jwt'] } },
  },
  authenticateBody: {
    type: 'object',
    properties: {
      username: { type: 'string', maxLength: 100 },
      password: { type: 'string', maxLength: 100 },
      configTypes: { type: 'array', items: { type: 'string' } },
      envInfo: { type: 'object' },
      sdkInfo: { type: 'object' },
    },
  },
  authenticatorUpdate: {
    type: 'object',
    additionalProperties: false,
    required: ['username', 'password', 'currentPassword'],
    properties: { username, password, currentPassword: password, tags },
  },
  authenticatorPatch: {
    type: 'object',
    additionalProperties: false,
    required: ['currentPassword'],
    properties: {
      username: { ...username, type: ['string', 'null'] },
      password: { ...password, type: ['string', 'null'] },
      currentPassword: password,
      tags,
    },
  },
  extendRequest: {
    type: 'object',
    required: ['clientCertCsr'],
    properties: { clientCertCsr: { type: 'string', minLength: 1, maxLength: 65536 } },
  },
  extendVerifyRequest: {
    type: 'object',
    required: ['clientCert'],
    properties: { clientCert: { type: 'string', minLength: 1, maxLength: 65536 } },
  },
  // `type` and `isAdmin` are required unless vmwarden's `role` is given (checked in ziti-identity.ts).
  identityCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { ...identityFields, enrollment, password },
  },
  identityUpdate: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { ...identityFields, disabled: { type: 'boolean' } },
  },
  identityPatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      ...identityFields,
      name: nullable(identityName),
      type: { type: ['string', 'null'], enum: [...IDENTITY_TYPES, null] },
      isAdmin: { type: ['boolean', 'null'] },
      defaultHostingCost: nullable(cost),
      defaultHostingPrecedence: { type: ['string', 'null'], enum: [...precedence.enum, null] },
      disabled: { type: 'boolean' },
    },
  },
  certificateRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['csr'],
    properties: { csr: { type: 'string', minLength: 1, maxLength: 65536 } },
  },
} as const;

// ---- response schemas (documentation: /openapi.json reads them from the routes' config.responses) ----

const obj = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  required,
  properties,
});
const str = { type: 'string' };
const bool = { type: 'boolean' };
const time = { type: 'string', format: 'date-time' };
const links = { type: 'object', additionalProperties: { type: 'object', properties: { href: str } } };
const entityRef = obj({ _links: links, entity: str, id: str, name: str });
const metaSchema = obj({ apiVersion: str, apiEnrollmentVersion: str }, []);
const data = (schema: object) => obj({ meta: metaSchema, data: schema });
const listMeta = obj({
  apiVersion: str,
  apiEnrollmentVersion: str,
  filterableFields: { type: 'array', items: str },
  pagination: obj({
    limit: { type: 'integer' },
    offset: { type: 'integer' },
    totalCount: { type: 'integer' },
  }),
});
const list = (item: object) => obj({ meta: listMeta, data: { type: 'array', items: item } });
const empty = obj({ meta: { type: 'object' }, data: { type: 'object' } });

const apiSessionSchema = obj(
  {
    _links: links,
    id: str,
    createdAt: time,
    updatedAt: time,
    tags: { type: 'object' },
    token: str,
    identity: entityRef,
    identityId: str,
    authenticatorId: str,
    configTypes: { type: 'array', items: str },
    ipAddress: str,
    authQueries: { type: 'array', items: { type: 'object' } },
    isMfaRequired: bool,
    isMfaComplete: bool,
    isCertExtendable: bool,
    isCertExtendRequested: bool,
    isCertKeyRollRequested: bool,
    improperClientCertChain: bool,
    lastActivityAt: time,
    cachedLastActivityAt: time,
    cachedUpdatedAt: time,
    expiresAt: time,
    expirationSeconds: { type: 'integer' },
  },
  ['id', 'token', 'identity', 'identityId', 'expiresAt', 'expirationSeconds'],
);

const authenticatorSchema = obj(
  {
    _links: links,
    id: str,
    createdAt: time,
    updatedAt: time,
    tags: { type: 'object' },
    method: { type: 'string', enum: ['updb', 'cert'] },
    identityId: str,
    identity: entityRef,
    username: { type: 'string', description: 'updb only' },
    certPem: { type: 'string', description: 'cert only' },
    fingerprint: { type: 'string', description: 'cert only' },
    isIssuedByNetwork: bool,
    isExtendRequested: bool,
    isKeyRollRequested: bool,
    extendRequestedAt: { type: ['string', 'null'] },
    lastAuthResolvedToRoot: bool,
    lastExtendRolledKeys: { type: ['boolean', 'null'] },
  },
  ['id', 'method', 'identityId', 'identity'],
);

const identitySchema = obj(
  {
    _links: links,
    id: str,
    createdAt: time,
    updatedAt: time,
    tags: { type: 'object' },
    name: str,
    role: { type: 'string', enum: ['admin', 'user', 'agent'] },
    type: entityRef,
    typeId: str,
    isAdmin: bool,
    isDefaultAdmin: bool,
    authenticators: {
      type: 'object',
      properties: {
        updb: obj({ id: str, username: str }),
        cert: obj({ id: str, fingerprint: str }),
      },
    },
    enrollment: { type: 'object' },
    envInfo: { type: 'object' },
    sdkInfo: { type: 'object' },
    roleAttributes: { type: 'array', items: str },
    hasEdgeRouterConnection: bool,
    edgeRouterConnectionStatus: str,
    hasApiSession: bool,
    isMfaEnabled: bool,
    serviceHostingPrecedences: { type: 'object' },
    serviceHostingCosts: { type: 'object' },
    defaultHostingCost: { type: 'integer' },
    defaultHostingPrecedence: str,
    authPolicyId: str,
    authPolicy: entityRef,
    externalId: { type: ['string', 'null'] },
    disabled: bool,
    disabledAt: { type: ['string', 'null'] },
    disabledUntil: { type: ['string', 'null'] },
    permissions: { type: 'array', items: str },
  },
  ['id', 'name', 'role', 'isAdmin', 'authenticators', 'disabled'],
);

export const responses = {
  version: {
    200: data(
      obj({
        version: str,
        revision: str,
        buildDate: str,
        runtimeVersion: str,
        apiVersions: { type: 'object' },
      }),
    ),
  },
  authenticate: { 200: data(apiSessionSchema), 401: null, 429: null },
  apiSession: { 200: data(apiSessionSchema) },
  empty: { 200: empty },
  emptyFound: { 200: empty, 404: null },
  identity: { 200: data(identitySchema), 404: null },
  identities: { 200: list(identitySchema) },
  authenticators: { 200: list(authenticatorSchema) },
  authenticator: { 200: data(authenticatorSchema), 404: null },
  extend: { 200: data(obj({ clientCert: str, ca: str })), 404: null },
  created: {
    201: data(obj({ id: str, _links: links })),
    409: null,
  },
  certificate: {
    201: data(obj({ authenticatorId: str, certificate: str, ca: str })),
    404: null,
    409: null,
  },
};
