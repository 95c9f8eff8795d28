/**
 * The inputs issue 12 saw reach a 500, each now a 4xx in the route group's own format:
 * 10,000-level nested JSON (and no stack trace in the log), huge/negative/non-numeric pagination
 * on every list route, 20 concurrent identical creates (one 201, the rest 409).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { deepArray, deepObject } from './corpus.js';
import { FORMATS, rawRequest, type Group, type RawReply } from './util.js';
import { spawnController, stopController } from '../../helpers/controller-process.js';
import { watchdog, sleep } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let admin: string;

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
});
test.after(async () => c.destroy());

function assertGroupError(r: RawReply, status: number, group: Group, what: string) {
  assert.is(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.not.ok('statusCode' in (r.body ?? {}), `${what}: fastify-shaped body ${r.text}`);
  assert.ok(FORMATS[group](r.body), `${what}: not in the ${group} format: ${r.text.slice(0, 300)}`);
}

const json = { 'content-type': 'application/json' };
const send = (method: string, path: string, body?: string, token?: string) =>
  rawRequest(c.httpBase, {
    method,
    path,
    body,
    headers: { ...(body !== undefined ? json : {}), ...(token ? { 'zt-session': token } : {}) },
  });

const NESTING_ROUTES: Array<{ group: Group; method: string; path: string; field: string; auth: boolean }> = [
  {
    group: 'identity',
    method: 'POST',
    path: '/authenticate?method=password',
    field: 'username',
    auth: false,
  },
  { group: 'identity', method: 'POST', path: '/identities', field: 'name', auth: true },
  { group: 'access', method: 'POST', path: '/v1/instances', field: 'server_id', auth: true },
  { group: 'access', method: 'POST', path: '/v1/access/request', field: 'sandbox_id', auth: true },
  {
    group: 'comanage',
    method: 'POST',
    path: '/ssh_key_authenticator/ssh_keys.json',
    field: 'SshKeys',
    auth: true,
  },
  { group: 'sign', method: 'POST', path: '/v1/nodes', field: 'name', auth: true },
  { group: 'sign', method: 'POST', path: '/v1/sign', field: 'server_id', auth: true },
];

test('10,000-level nested JSON, in a field or as the body → 400 in the group format', async () => {
  for (const r of NESTING_ROUTES) {
    for (const [kind, deep] of [
      ['arrays', deepArray(10_000)],
      ['objects', deepObject(10_000)],
    ] as const) {
      for (const body of [`{"${r.field}":${deep},"password":"x"}`, deep]) {
        const token = r.auth ? admin : undefined;
        const reply = await send(r.method, r.path, body, token);
        assertGroupError(reply, 400, r.group, `${r.method} ${r.path} nested ${kind}`);
      }
    }
  }
  // Unauthenticated callers get the same 400 or a 401, never a 500.
  const anon = await send('POST', '/v1/nodes', `{"name":${deepArray(10_000)}}`);
  assert.ok([400, 401].includes(anon.status), anon.text);
  assert.ok(FORMATS.sign(anon.body), anon.text);
});

test('nesting up to the limit still parses; strings with brackets do not count', async () => {
  const r = await send(
    'POST',
    '/authenticate?method=password',
    `{"username":${deepArray(60)},"password":"x"}`,
  );
  assertGroupError(r, 400, 'identity', 'depth 60');
  assert.is(r.body.error.code, 'COULD_NOT_VALIDATE'); // reached validation: parsed fine
  const s = await send(
    'POST',
    '/v1/nodes',
    JSON.stringify({ name: '['.repeat(5000) + '{'.repeat(5000) }),
    admin,
  );
  assertGroupError(s, 400, 'sign', 'brackets in a string');
  assert.not.match(s.body.error, /nested deeper/);
});

const PAGINATED: Array<{ group: Group; path: string; names: string[] }> = [
  { group: 'access', path: '/v1/instances', names: ['offset', 'limit'] },
  { group: 'access', path: '/v1/access/certificates', names: ['offset', 'limit'] },
  { group: 'access', path: '/v1/access/sessions', names: ['offset', 'limit'] },
  { group: 'access', path: '/v1/audit', names: ['offset', 'limit'] },
  { group: 'sign', path: '/v1/sign', names: ['offset', '$offset', 'limit', '$limit'] },
  { group: 'sign', path: '/sign', names: ['offset', '$offset', 'limit', '$limit'] },
  { group: 'identity', path: '/identities', names: ['offset', 'limit'] },
  { group: 'identity', path: '/current-identity/authenticators', names: ['offset', 'limit'] },
];
const BAD_PAGE = ['99999999999999999999', '1e999', '9223372036854775808', '-1', 'abc', '1.5', 'NaN', ''];

test('huge, negative or non-numeric offset/limit → 400 on every list route, in its group format', async () => {
  for (const route of PAGINATED) {
    for (const name of route.names) {
      for (const value of BAD_PAGE) {
        if (value === '' && name.includes('offset')) continue; // empty offset: treated as absent by some clients
        const r = await send('GET', `${route.path}?${encodeURIComponent(name)}=${value}`, undefined, admin);
        assertGroupError(r, 400, route.group, `${route.path}?${name}=${value}`);
      }
    }
    // A sane window still works.
    const ok = await send('GET', `${route.path}?${route.names[0]}=0&limit=5`, undefined, admin);
    assert.is(ok.status, 200, `${route.path}: ${ok.text}`);
  }
  for (const f of ['skip 99999999999999999999', 'skip 9223372036854775808', 'limit 1000']) {
    const r = await send('GET', `/identities?filter=${encodeURIComponent(f)}`, undefined, admin);
    assertGroupError(r, 400, 'identity', `filter ${f}`);
  }
});

/** N identical requests at once, each on its own connection. */
async function concurrently(n: number, method: string, path: string, body: unknown): Promise<RawReply[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  try {
    // Open the connections first, so the creates arrive together rather than as sockets connect.
    await Promise.all(
      Array.from({ length: n }, () => rawRequest(c.httpBase, { method: 'GET', path: '/healthz', agent })),
    );
    return await Promise.all(
      Array.from({ length: n }, () =>
        rawRequest(c.httpBase, {
          method,
          path,
          agent,
          headers: { ...json, 'zt-session': admin },
          body: JSON.stringify(body),
        }),
      ),
    );
  } finally {
    agent.destroy();
  }
}

const CREATES: Array<{ group: Group; path: string; body: unknown }> = [
  {
    group: 'identity',
    path: '/identities',
    body: { name: 'twenty-at-once', role: 'user', password: 'secret-password' },
  },
  { group: 'sign', path: '/v1/nodes', body: { name: 'node-twenty-at-once' } },
  {
    group: 'access',
    path: '/v1/instances',
    body: {
      server_id: '0b3f2a61-7c55-4e2b-9d3a-2f8e6c1d4b70',
      instance_name: 'twenty',
      login_user: 'vmwarden',
      state: 'running',
    },
  },
];

test('20 concurrent identical creates → exactly one 201, nineteen 409 in the group format', async () => {
  for (const create of CREATES) {
    for (let round = 0; round < 2; round++) {
      const body =
        round === 0
          ? create.body
          : JSON.parse(
              JSON.stringify(create.body).replace(/twenty|0b3f2a61/g, (m) =>
                m === 'twenty' ? 'again' : '0b3f2a62',
              ),
            );
      const replies = await concurrently(20, 'POST', create.path, body);
      const statuses = replies.map((r) => r.status).sort();
      assert.is(statuses.filter((s) => s === 201).length, 1, `${create.path}: ${statuses.join(',')}`);
      assert.is(statuses.filter((s) => s === 409).length, 19, `${create.path}: ${statuses.join(',')}`);
      for (const r of replies.filter((x) => x.status === 409))
        assertGroupError(r, 409, create.group, create.path);
    }
  }
});

test('deep nesting leaves no stack trace in the log (separate process)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-hostile-'));
  const p = await spawnController(dataDir, { logLevel: 'info', keepLog: true });
  try {
    const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
    for (const body of [
      `{"username":${deepArray(10_000)},"password":"x"}`,
      `{"username":${deepObject(10_000)},"password":"x"}`,
    ]) {
      const r = await rawRequest(p.base, {
        method: 'POST',
        path: '/authenticate?method=password',
        headers: json,
        body,
      });
      assertGroupError(r, 400, 'identity', 'unauthenticated deep login');
    }
    const login = await rawRequest(p.base, {
      method: 'POST',
      path: '/authenticate?method=password',
      headers: json,
      body: JSON.stringify({ username: 'admin', password }),
    });
    assert.is(login.status, 200, login.text);
    await sleep(200);
    const log = p.log();
    assert.match(log, /"statusCode":400/); // the requests were logged…
    assert.not.match(log, /Maximum call stack|RangeError|"stack"/, 'a stack trace in the log');
    assert.not.match(log, /"level":50/, 'an error-level line in the log');
  } finally {
    await stopController(p.child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
