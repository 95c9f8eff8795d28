/**
 * The OpenAPI 3.0.3 document of the REST surface, generated from the routes fastify registered and
 * the very schemas it validates requests with (collected by an onRoute hook in buildHttpApp).
 */

/**
 * What a route answers, declared in its `config.responses` (documentation only: fastify's
 * `schema.response` would re-serialize replies and drop what a schema does not list). Status → a
 * JSON Schema of the application/json body, `null` for no body, or `{ content: { type: schema } }`
 * for other media types. A 4xx/5xx status listed as `null` is an error in the group's format.
 */
export type RouteResponses = Record<number, object | null>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route answers, for /openapi.json (see RouteResponses). */
    responses?: RouteResponses;
    /** The route only ever refuses (e.g. a format other than JSON): documented without a 2xx. */
    refusal?: boolean;
  }
}

export interface CollectedRoute {
  method: string;
  url: string;
  schema?: { body?: unknown; querystring?: unknown; params?: unknown; headers?: unknown };
  public: boolean;
  responses?: RouteResponses;
  refusal?: boolean;
}

/** A non-JSON answer for `config.responses`. */
export const mediaResponse = (type: string, schema: object = { type: 'string' }) => ({
  content: { [type]: { schema } },
});

interface Group {
  tag: string;
  description: string;
  match: (path: string) => boolean;
  /** Which security schemes the group accepts. */
  security: string[];
  /** The group's error body (components.schemas). */
  error: string;
}

const SESSION_SCHEMES = ['ztSession', 'xAuthToken', 'bearer'];

export const GROUPS: Group[] = [
  {
    tag: 'ssh-keys',
    error: 'ComanageError',
    description: 'SSH key registry (COmanage Registry SshKey API format)',
    match: (p) => p.startsWith('/ssh_key_authenticator'),
    security: [...SESSION_SCHEMES, 'basic'],
  },
  {
    tag: 'access',
    error: 'AccessError',
    description:
      'SSH access: certificates, revocation, sessions, instances (virsh-sandbox access API format)',
    match: (p) => p.startsWith('/v1/access') || p.startsWith('/v1/instances'),
    security: SESSION_SCHEMES,
  },
  {
    tag: 'signatures',
    error: 'SignError',
    description: 'Instance signatures, node validation tasks, nodes (Sign API format)',
    match: (p) => /^\/(v1\/)?sign(\/|$)|^\/v1\/(tasks|nodes)(\/|$)/.test(p),
    security: SESSION_SCHEMES,
  },
  {
    tag: 'operations',
    error: 'AccessError',
    description: 'Health, metrics, this document, the audit log',
    match: (p) =>
      ['/healthz', '/readyz', '/metrics', '/openapi.json'].includes(p) || p.startsWith('/v1/audit'),
    security: SESSION_SCHEMES,
  },
  {
    tag: 'identity',
    error: 'ZitiError',
    description: 'Identities, authenticators and API sessions (OpenZiti edge management format)',
    match: () => true,
    security: SESSION_SCHEMES,
  },
];

export const groupOf = (path: string) => GROUPS.find((g) => g.match(path))!;

/** '/a/:id/b' → '/a/{id}/b'; fastify's regexp suffixes and '*' wildcards are dropped/renamed. */
export function openapiPath(url: string): string {
  return url
    .replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, '{$1}')
    .replace(/\*$/, '{wildcard}')
    .replace(/(.)\/$/, '$1');
}

const pathParams = (path: string) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);

/** Removes what OpenAPI 3.0 schema objects do not accept ($id, $schema, const → enum). */
function toOas(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOas);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$id' || k === '$schema') continue;
    if (k === 'required' && Array.isArray(v) && v.length === 0) continue; // 3.0: at least one name
    if (k === 'const') {
      out.enum = [v];
      continue;
    }
    if (k === 'type' && Array.isArray(v)) {
      const types = v.filter((t) => t !== 'null');
      if (types.length < v.length) out.nullable = true;
      if (types.length === 1) out.type = types[0];
      else out.anyOf = types.map((t) => ({ type: t }));
      continue;
    }
    out[k] = toOas(v);
  }
  return out;
}

function parameters(where: 'query' | 'path' | 'header', schema: unknown, path: string) {
  const s = schema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  const props = s?.properties ?? {};
  const names =
    where === 'path' ? [...new Set([...pathParams(path), ...Object.keys(props)])] : Object.keys(props);
  return names
    .filter((name) => where !== 'path' || pathParams(path).includes(name))
    .map((name) => ({
      name,
      in: where,
      required: where === 'path' ? true : (s?.required ?? []).includes(name),
      schema: toOas(props[name] ?? { type: 'string' }),
    }));
}

function operationId(method: string, path: string): string {
  const words = path
    .replace(/[{}]/g, '')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w, i) => (i === 0 ? w : w[0]!.toUpperCase() + w.slice(1)));
  return `${method.toLowerCase()}${words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}`;
}

/** The four error formats (one per group; the operations group's audit route uses the access one). */
const ERROR_SCHEMAS = {
  ZitiError: {
    type: 'object',
    required: ['meta', 'error'],
    properties: {
      meta: { type: 'object' },
      error: {
        type: 'object',
        required: ['code', 'message', 'requestId'],
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          cause: { type: 'object' },
          requestId: { type: 'string' },
        },
      },
    },
  },
  AccessError: {
    type: 'object',
    required: ['error', 'code'],
    properties: { error: { type: 'string' }, code: { type: 'integer' }, details: { type: 'string' } },
  },
  ComanageError: {
    type: 'object',
    required: ['ResponseType', 'Version', 'Error'],
    properties: {
      ResponseType: { type: 'string', enum: ['ErrorResponse'] },
      Version: { type: 'string' },
      Id: { type: 'string' },
      Error: { type: 'string' },
      InvalidFields: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
    },
  },
  SignError: { type: 'object', required: ['error'], properties: { error: { type: 'string' } } },
};

const REASONS: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad request: the body, query or path parameters are invalid',
  401: 'No valid session token',
  403: 'Not allowed for this identity',
  404: 'No such object',
  409: 'Conflicts with an existing object',
  413: 'Body too large',
  415: 'Unsupported content type',
  429: 'Too many attempts',
  503: 'Not ready / store unavailable',
};

function responsesOf(r: CollectedRoute, path: string, group: Group) {
  const out: Record<string, unknown> = {};
  const error = (status: number) => ({
    description: `${REASONS[status] ?? 'error'} (${group.tag} error format)`,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${group.error}` } } },
  });
  for (const [key, value] of Object.entries(r.responses ?? {})) {
    const status = Number(key);
    if (status >= 400 && value === null) out[key] = error(status);
    else if (value === null) out[key] = { description: REASONS[status] ?? 'success' };
    else if ('content' in value && !('type' in value))
      out[key] = { description: REASONS[status] ?? 'success', ...toOasDeep(value) };
    else
      out[key] = {
        description: REASONS[status] ?? 'success',
        content: { 'application/json': { schema: toOas(value) } },
      };
  }
  if (!r.refusal && !Object.keys(out).some((k) => k.startsWith('2'))) out['2XX'] = { description: 'success' };
  const auto = [400, ...(r.public ? [] : [401, 403]), ...(pathParams(path).length ? [404] : [])];
  for (const status of auto) out[String(status)] ??= error(status);
  out.default = {
    description: `unexpected error (${group.tag} error format)`,
    content: { 'application/json': { schema: { $ref: `#/components/schemas/${group.error}` } } },
  };
  return out;
}

const toOasDeep = (v: object) => toOas(v) as Record<string, unknown>;

export function buildOpenApi(routes: CollectedRoute[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  const seen = new Set<string>();
  const ids = new Set<string>();
  for (const r of routes) {
    const method = r.method.toLowerCase();
    if (method === 'head' || method === 'options') continue;
    const path = openapiPath(r.url);
    const key = `${method} ${path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const group = groupOf(path);
    let opId = operationId(method, path);
    while (ids.has(opId)) opId += '_';
    ids.add(opId);
    const op: Record<string, unknown> = {
      tags: [group.tag],
      operationId: opId,
      summary: `${r.method} ${path}`,
      parameters: [
        ...parameters('path', r.schema?.params, path),
        ...parameters('query', r.schema?.querystring, path),
      ],
      responses: responsesOf(r, path, group),
      ...(r.refusal ? { 'x-vmwarden-refusal': true } : {}),
      security: r.public ? [] : group.security.map((name) => ({ [name]: [] })),
    };
    if (r.schema?.body && method !== 'get')
      op.requestBody = {
        required: !['DELETE'].includes(r.method),
        content: { 'application/json': { schema: toOas(r.schema.body) } },
      };
    (paths[path] ??= {})[method] = op;
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'vmwarden controller',
      version,
      description:
        'Generated from the routes and validation schemas the controller serves. Four groups keep four wire formats.',
    },
    tags: GROUPS.map((g) => ({ name: g.tag, description: g.description })),
    paths,
    components: {
      schemas: ERROR_SCHEMAS,
      securitySchemes: {
        ztSession: { type: 'apiKey', in: 'header', name: 'zt-session' },
        xAuthToken: { type: 'apiKey', in: 'header', name: 'X-Auth-Token' },
        bearer: { type: 'http', scheme: 'bearer' },
        basic: { type: 'http', scheme: 'basic', description: 'SSH key registry only' },
      },
    },
  };
}
