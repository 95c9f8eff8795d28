/**
 * The hostile request corpus, generated from the controller's own /openapi.json: every route ×
 * every class of bad input (malformed JSON, wrong types per body field, deep nesting, huge numbers,
 * NUL/unicode strings, traversal ids, bad pagination, bad content types, bad auth headers, empty
 * bodies). Pure: the same document, ids and seed give the same cases in the same order.
 */

export type Auth = 'admin' | 'none';

export interface HostileCase {
  cls: string;
  /** What was sent, for failure messages. */
  label: string;
  method: string;
  /** Path with query, already escaped as sent. */
  path: string;
  /** The documented route (OpenAPI path) and its tag. */
  route: string;
  tag: string;
  headers: Record<string, string>;
  body?: string;
  /** Send with the admin session, without any, or only with the case's own headers. */
  auth: Auth | 'custom';
  /** The server may refuse it by closing the connection (a 1 MB URL or header). */
  mayReset?: boolean;
}

export interface Operation {
  method: string;
  path: string;
  tag: string;
  public: boolean;
  params: Array<{ name: string; in: string; schema: any }>;
  body?: any;
}

/** Real object ids the corpus may aim at (path parameter name → id), chosen by the test. */
export type KnownIds = Record<string, string>;

export const CLASSES = [
  'malformed-json',
  'wrong-types',
  'deep-nesting',
  'huge-numbers',
  'nul-unicode',
  'traversal-ids',
  'bad-pagination',
  'bad-content-type',
  'bad-auth',
  'empty-body',
] as const;

/** mulberry32: small, seeded, deterministic. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function operations(doc: any): Operation[] {
  const ops: Operation[] = [];
  for (const [path, byMethod] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(byMethod)) {
      ops.push({
        method: method.toUpperCase(),
        path,
        tag: op.tags[0],
        public: Array.isArray(op.security) && op.security.length === 0,
        params: op.parameters ?? [],
        body: op.requestBody?.content?.['application/json']?.schema,
      });
    }
  }
  return ops;
}

/** Bodies for routes that check their body by hand (no schema in the document). */
function handBody(op: Operation): Record<string, unknown> | undefined {
  if (op.path.startsWith('/ssh_key_authenticator/ssh_keys') && op.method !== 'GET' && op.method !== 'DELETE')
    return {
      RequestType: 'SshKeys',
      Version: '1.0',
      SshKeys: [
        {
          Version: '1.0',
          Person: { Type: 'CO', Id: '00000000-0000-4000-8000-000000000000' },
          Comment: 'hostile',
          Type: 'ssh-ed25519',
          Skey: 'AAAAC3NzaC1lZDI1NTE5AAAAIH1hZ3N0aWxlLWtleS1ub3QtcmVhbC1hdC1hbGwtISEh',
        },
      ],
    };
  if (op.path.endsWith('/action')) return { action: 'activate' };
  return undefined;
}

const FAKE_UUID = '7b0c8a6e-4d1f-4c3a-9e2b-5f6a7d8c9e0f';

/** A plausible value for a schema, so one bad field is the only thing wrong with a body. */
function sample(schema: any, name: string): unknown {
  if (!schema || typeof schema !== 'object') return 'hostile';
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const type = schema.type ?? schema.anyOf?.[0]?.type;
  switch (type) {
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return {};
    case 'string':
      if (schema.format === 'uuid') return FAKE_UUID;
      if (schema.format === 'date-time') return '2026-01-01T00:00:00Z';
      if (name.endsWith('_user')) return 'hostile';
      return `hostile-${name}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, Math.max(4, schema.maxLength ?? 24));
    default:
      return 'hostile';
  }
}

function baseBody(op: Operation): Record<string, unknown> | undefined {
  const hand = handBody(op);
  if (hand) return hand;
  const s = op.body;
  if (!s) return undefined;
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries<any>(s.properties ?? {})) out[name] = sample(prop, name);
  return out;
}

/** The body fields a class mutates: the schema's, or the hand-checked body's top-level keys. */
function bodyFields(op: Operation): Array<[string, any]> {
  if (op.body?.properties) return Object.entries<any>(op.body.properties);
  const hand = handBody(op);
  return hand ? Object.keys(hand).map((k) => [k, {}]) : [];
}

const typeOf = (v: unknown) =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v;

const WRONG_VALUES: unknown[] = [0, -1, 1.5, true, null, 'x', '', [], {}, [1, 'a'], { a: { b: 1 } }];

function wrongFor(schema: any): unknown[] {
  const declared = new Set<string>(
    [schema?.type, ...(schema?.anyOf ?? []).map((x: any) => x.type)].filter(Boolean),
  );
  if (declared.has('number')) declared.add('integer');
  if (schema?.nullable) declared.add('null');
  // An empty schema accepts anything: still send everything, the route must cope.
  return WRONG_VALUES.filter((v) => declared.size === 0 || !declared.has(typeOf(v)));
}

/** JSON text of `body` with field `name` set to raw JSON text. */
function withRaw(body: Record<string, unknown>, name: string, raw: string): string {
  return JSON.stringify({ ...body, [name]: '\u0001HOSTILE\u0001' }).replace(
    JSON.stringify('\u0001HOSTILE\u0001'),
    () => raw,
  );
}

export const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
export const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

const HUGE = [
  '1e999',
  '-1e999',
  '99999999999999999999',
  '9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '1.7976931348623157e+309',
  '4.9e-325',
  '-0',
  '123456789012345678901234567890.5',
];

const STRINGS: string[] = [
  '"\\u0000"',
  '"a\\u0000b"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\uffff\\ufffe"',
  JSON.stringify('🦀'.repeat(2000)),
  JSON.stringify('\u202eevil\u202d'),
  '"../../etc/passwd"',
  '"..\\\\..\\\\windows\\\\system32"',
  '"%00"',
  '"%2e%2e%2f"',
  JSON.stringify('x'.repeat(70_000)),
  '"\\n\\r\\t\\b\\f"',
  JSON.stringify("'; DROP TABLE identities; --"),
  JSON.stringify('${jndi:ldap://x}'),
  JSON.stringify('\u0000'.repeat(1000)),
];

const IDS: string[] = [
  '..%2F..%2Fetc%2Fpasswd',
  '..%2f..%2f..%2fetc%2fshadow',
  '%2e%2e',
  '..',
  '%00',
  'a%00b',
  '%E0%A4%A',
  '%ZZ',
  '%F0%9F%A6%80',
  '-1',
  '+1',
  '0x10',
  '1e999',
  '99999999999999999999',
  '9223372036854775808',
  '%20',
  'null',
  '%2F',
  'x'.repeat(101),
  'a'.repeat(1 << 20),
];

const PAGE_VALUES = [
  '99999999999999999999',
  '1e999',
  '9223372036854775808',
  '-1',
  '-9223372036854775809',
  'abc',
  '1.5',
  '',
  '0x10',
  'NaN',
  'Infinity',
  '%00',
  '0',
  '1e3',
  '%20',
];

const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/jsonx',
  '*/*',
  'application/json, text/plain',
  ';;;',
  'application/octet-stream',
  'application/json; boundary=' + 'x'.repeat(2000),
];

const MALFORMED = [
  '{',
  '{"a":',
  '[1,]',
  'nul',
  '{"a":1}}',
  '\u0000',
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '\ufeff{}',
  'NaN',
  "{'a':1}",
  '{"a":"\\x41"}',
  '"unterminated',
  '{"a":1,"a":2}',
  '\xff\xfe',
];

const EMPTY = ['', 'null', '{}', '[]', '""', '0', 'true', ' '];

function authCases(): Array<[string, Record<string, string>, boolean?]> {
  return [
    ['no auth', {}],
    ['garbage zt-session', { 'zt-session': 'garbage' }],
    ['huge zt-session', { 'zt-session': 'A'.repeat(8000) }],
    ['oversized header', { authorization: `Bearer ${'x'.repeat(100_000)}` }, true],
    ['basic garbage', { authorization: 'Basic !!!not-base64' }],
    ['basic no colon', { authorization: `Basic ${Buffer.from('nocolon').toString('base64')}` }],
    ['bearer empty', { authorization: 'Bearer' }],
    ['digest scheme', { authorization: 'Digest username="admin", realm="x"' }],
    ['negotiate', { authorization: 'Negotiate YIIB' }],
    ['x-auth-token tab', { 'x-auth-token': '\t' }],
    ['bearer uuid', { authorization: `Bearer ${FAKE_UUID}` }],
    ['x-auth-token long', { 'x-auth-token': 'z'.repeat(4096) }],
  ];
}

/** Fills path parameters: real ids where known (except for DELETE), else a well-formed fake. */
function fillPath(op: Operation, ids: KnownIds, override?: [string, string]): string {
  return op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (override && override[0] === name) return override[1];
    const param = op.params.find((p) => p.in === 'path' && p.name === name);
    const known = op.method === 'DELETE' ? undefined : (ids[`${op.path}:${name}`] ?? ids[name]);
    if (known) return encodeURIComponent(known);
    const schema = param?.schema ?? {};
    if (schema.type === 'integer') return '987654';
    if (schema.format === 'uuid' || /id$/i.test(name)) return FAKE_UUID;
    if (name === 'format') return 'json';
    return 'hostile';
  });
}

const hasBody = (op: Operation) => op.method !== 'GET' && op.method !== 'HEAD';

/** Every case of every class for one operation, in a fixed order. */
export function casesFor(op: Operation, ids: KnownIds): HostileCase[] {
  const out: HostileCase[] = [];
  const json = { 'content-type': 'application/json' };
  const path = fillPath(op, ids);
  const base = baseBody(op);
  const baseText = base ? JSON.stringify(base) : '{}';
  const add = (cls: string, label: string, c: Partial<HostileCase>) =>
    out.push({
      cls,
      label,
      method: op.method,
      path,
      route: op.path,
      tag: op.tag,
      headers: {},
      auth: 'admin',
      ...c,
    });

  if (hasBody(op)) {
    for (const raw of MALFORMED)
      add('malformed-json', `body ${JSON.stringify(raw)}`, { headers: json, body: raw });
    for (const [name, schema] of bodyFields(op))
      for (const v of wrongFor(schema))
        add('wrong-types', `${name}=${JSON.stringify(v)}`, {
          headers: json,
          body: JSON.stringify({ ...(base ?? {}), [name]: v }),
        });
    add('deep-nesting', 'whole body [×10000]', { headers: json, body: deepArray(10_000) });
    add('deep-nesting', 'whole body {×10000}', { headers: json, body: deepObject(10_000) });
    for (const [name] of bodyFields(op)) {
      add('deep-nesting', `${name}=[×10000]`, {
        headers: json,
        body: withRaw(base ?? {}, name, deepArray(10_000)),
      });
      add('deep-nesting', `${name}={×10000}`, {
        headers: json,
        body: withRaw(base ?? {}, name, deepObject(10_000)),
      });
      add('deep-nesting', `${name}=[×65]`, { headers: json, body: withRaw(base ?? {}, name, deepArray(65)) });
    }
    for (const [name] of bodyFields(op))
      for (const n of HUGE)
        add('huge-numbers', `${name}=${n}`, { headers: json, body: withRaw(base ?? {}, name, n) });
    for (const [name] of bodyFields(op))
      for (const s of STRINGS)
        add('nul-unicode', `${name}=${s.slice(0, 30)}`, {
          headers: json,
          body: withRaw(base ?? {}, name, s),
        });
    for (const ct of CONTENT_TYPES)
      add('bad-content-type', `content-type ${ct.slice(0, 40)}`, {
        headers: { 'content-type': ct },
        body: baseText,
      });
    add('bad-content-type', 'no content-type', { headers: {}, body: baseText });
    for (const raw of EMPTY) add('empty-body', `json ${JSON.stringify(raw)}`, { headers: json, body: raw });
    add('empty-body', 'no content-type, no body', { headers: {} });
    add('empty-body', 'text/plain empty', { headers: { 'content-type': 'text/plain' }, body: '' });
  } else {
    // GET routes: a body the route does not read, and content types it must ignore.
    add('malformed-json', 'GET with a malformed JSON body', { headers: json, body: '{' });
    add('deep-nesting', 'GET with a deep body', { headers: json, body: deepArray(10_000) });
    add('bad-content-type', 'GET with content-type application/xml', {
      headers: { 'content-type': 'application/xml' },
      body: '<a/>',
    });
    add('empty-body', 'GET with an empty JSON body', { headers: json, body: '' });
  }

  for (const p of op.params.filter((x) => x.in === 'path'))
    for (const id of IDS)
      add('traversal-ids', `${p.name}=${id.length > 40 ? `${id.slice(0, 8)}…(${id.length})` : id}`, {
        path: fillPath(op, ids, [p.name, id]),
        headers: hasBody(op) ? json : {},
        body: hasBody(op) ? baseText : undefined,
        mayReset: id.length > 16_000,
      });

  const query = op.params.filter((x) => x.in === 'query').map((x) => x.name);
  const pageNames = query.filter((n) => /^\$?(limit|offset)$/.test(n));
  for (const name of pageNames.length ? pageNames : ['limit', 'offset'])
    for (const v of PAGE_VALUES)
      add('bad-pagination', `?${name}=${v}`, {
        path: `${path}?${encodeURIComponent(name)}=${v}`,
        headers: hasBody(op) ? json : {},
        body: hasBody(op) ? baseText : undefined,
      });
  if (query.includes('filter'))
    for (const f of [
      'skip 99999999999999999999',
      'limit 1e999',
      'skip -1',
      'limit 0',
      'name = "x" skip 9223372036854775808',
    ])
      add('bad-pagination', `filter=${f}`, { path: `${path}?filter=${encodeURIComponent(f)}` });
  for (const q of query.filter((n) => !pageNames.includes(n)))
    for (const v of ['%00', '1e999', 'x'.repeat(5000), '%E0%A4%A', '[]'])
      add('bad-pagination', `?${q}=${v.slice(0, 20)}`, { path: `${path}?${encodeURIComponent(q)}=${v}` });

  for (const [label, headers, reset] of authCases())
    add('bad-auth', label, {
      auth: 'custom',
      headers: { ...headers, ...(hasBody(op) ? json : {}) },
      body: hasBody(op) ? baseText : undefined,
      mayReset: reset,
    });
  return out;
}

/**
 * The corpus: every case (full) or a seeded sample of `perClass` cases per route and class. Every
 * case except bad-auth is sent twice, as admin and unauthenticated.
 */
export function buildCorpus(
  ops: Operation[],
  ids: KnownIds,
  opts: { full: boolean; perClass: number; seed: number },
): HostileCase[] {
  const random = rng(opts.seed);
  const out: HostileCase[] = [];
  for (const op of ops) {
    const all = casesFor(op, ids);
    for (const cls of CLASSES) {
      let picked = all.filter((c) => c.cls === cls);
      if (!opts.full && picked.length > opts.perClass) {
        const order = picked.map((c) => [random(), c] as const).sort((a, b) => a[0] - b[0]);
        picked = order.slice(0, opts.perClass).map(([, c]) => c);
      }
      for (const c of picked) {
        if (c.auth === 'custom') out.push(c);
        else out.push(c, { ...c, auth: 'none' });
      }
    }
  }
  return out;
}
