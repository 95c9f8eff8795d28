/**
 * /current-identity/authenticators: listing (paging + filter), detail, and self-service credential
 * changes (PUT/PATCH with currentPassword).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import { assertError, issueCert, newCsr, randomUuid, type ClientCert } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const CERTS = 12;
let c: TestController;
let dave: { id: string; token: string; password: string };
let daveUpdbId: string;
let daveCerts: ClientCert[] = [];
let erin: { id: string; token: string; password: string };
let erinUpdbId: string;

const list = (query = '', token = dave.token) =>
  c.call('GET', `/current-identity/authenticators${query}`, { token });
const q = (filter: string) => `?filter=${encodeURIComponent(filter)}`;
const ids = (r: Reply) => (r.body.data as { id: string }[]).map((a) => a.id);

test.before(async () => {
  c = await startTestController();
  dave = await c.createUser('dave', 'user', 'dave-password');
  erin = await c.createUser('erin', 'user', 'erin-password');
  const csr = newCsr('/CN=dave'); // one key, many certificates: each has its own serial and fingerprint
  for (let i = 0; i < CERTS; i++) daveCerts.push(await issueCert(c, dave.id, '/CN=dave', csr));
  const all = await list('?limit=500');
  daveUpdbId = all.body.data.find((a: { method: string }) => a.method === 'updb').id;
  const e = await list('', erin.token);
  erinUpdbId = e.body.data[0].id;
});
test.after(async () => c.destroy());

test('list: defaults limit 10 offset 0, totalCount of all, contract shape', async () => {
  const r = await list();
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'listAuthenticatorsEnvelope', r.body);
  assert.equal(r.body.meta.pagination, { limit: 10, offset: 0, totalCount: CERTS + 1 });
  assert.is(r.body.data.length, 10);
  assert.ok(r.body.meta.filterableFields.includes('method'));
  for (const a of r.body.data) assert.is(a.identityId, dave.id);
});

test('list: limit/offset page through everything exactly once', async () => {
  const seen: string[] = [];
  for (let offset = 0; offset < CERTS + 1; offset += 5) {
    const r = await list(`?limit=5&offset=${offset}`);
    assert.is(r.status, 200);
    assert.equal(r.body.meta.pagination, { limit: 5, offset, totalCount: CERTS + 1 });
    seen.push(...ids(r));
  }
  assert.is(seen.length, CERTS + 1);
  assert.is(new Set(seen).size, CERTS + 1);
  const past = await list('?offset=100');
  assert.is(past.status, 200);
  assert.is(past.body.data.length, 0);
  assert.is(past.body.meta.pagination.totalCount, CERTS + 1);
});

test('list: limit 500 is the maximum; 501, 0, negative or non-numeric → 400', async () => {
  const max = await list('?limit=500');
  assert.is(max.status, 200);
  assert.is(max.body.data.length, CERTS + 1);
  for (const bad of ['?limit=501', '?limit=0', '?limit=-1', '?limit=ten', '?offset=-1', '?offset=x']) {
    assertError(await list(bad), 400);
  }
});

test('list: only the caller’s own authenticators', async () => {
  const r = await list('?limit=500', erin.token);
  assert.is(r.status, 200);
  assert.equal(ids(r), [erinUpdbId]);
  assert.is(r.body.meta.pagination.totalCount, 1);
  // even a filter naming the other identity cannot reach it
  const sneaky = await list(q(`identityId = "${dave.id}"`), erin.token);
  assert.is(sneaky.status, 200);
  assert.is(sneaky.body.data.length, 0);
});

test('filter: field = "v", !=, contains, and, or, parentheses', async () => {
  const updb = await list(q('method = "updb"'));
  assert.is(updb.status, 200, updb.text);
  assert.equal(ids(updb), [daveUpdbId]);
  assert.is(updb.body.meta.pagination.totalCount, 1);

  const certs = await list(`${q('method = "cert"')}&limit=500`);
  assert.is(certs.body.meta.pagination.totalCount, CERTS);
  assert.is(certs.body.data.length, CERTS);

  const notCert = await list(q('method != "cert"'));
  assert.equal(ids(notCert), [daveUpdbId]);

  const contains = await list(q('username contains "av"'));
  assert.equal(ids(contains), [daveUpdbId]);
  const noMatch = await list(q('username contains "zz"'));
  assert.is(noMatch.body.data.length, 0);

  const one = daveCerts[3]!.authenticatorId;
  const and = await list(q(`method = "cert" and id = "${one}"`));
  assert.equal(ids(and), [one]);
  const andNone = await list(q(`method = "updb" and id = "${one}"`));
  assert.is(andNone.body.data.length, 0);

  const or = await list(q(`id = "${one}" or method = "updb"`));
  assert.equal(ids(or).sort(), [one, daveUpdbId].sort());

  const parens = await list(q(`(method = "updb" or id = "${one}") and method = "cert"`));
  assert.equal(ids(parens), [one]);
});

test('filter: sort by asc|desc, skip N, limit N', async () => {
  const asc = await list(`${q('sort by id asc')}&limit=500`);
  const desc = await list(`${q('sort by id desc')}&limit=500`);
  assert.is(asc.status, 200, asc.text);
  const sorted = ids(asc).slice().sort();
  assert.equal(ids(asc), sorted);
  assert.equal(ids(desc), sorted.slice().reverse());

  const window = await list(q('method = "cert" sort by id asc skip 2 limit 3'));
  assert.is(window.status, 200, window.text);
  assert.equal(window.body.meta.pagination, { limit: 3, offset: 2, totalCount: CERTS });
  const certIds = daveCerts.map((x) => x.authenticatorId).sort();
  assert.equal(ids(window), certIds.slice(2, 5));

  // skip/limit in the filter win over the query parameters
  const override = await list(`${q('sort by id asc skip 1 limit 2')}&limit=7&offset=4`);
  assert.equal(override.body.meta.pagination, { limit: 2, offset: 1, totalCount: CERTS + 1 });
  assert.equal(ids(override), sorted.slice(1, 3));

  assertError(await list(q('limit 501')), 400);
});

test('filter: bad filters → 400 INVALID_FILTER', async () => {
  for (const bad of [
    'nosuchfield = "x"',
    'method = ',
    'method ~ "x"',
    'method = "unterminated',
    'method = "cert" and',
    '(method = "cert"',
    'sort id',
    'sort by passwordHash asc',
    'skip -3',
    'limit many',
    'method = "cert" garbage',
    'password_hash = "x"',
  ]) {
    const r = await list(q(bad));
    assertError(r, 400, 'INVALID_FILTER');
    assert.ok(r.body.error.message.includes('filter'), r.body.error.message);
  }
});

test('filter: values are data, never SQL', async () => {
  const r = await list(q(`method = "cert' OR 1=1 --"`));
  assert.is(r.status, 200, r.text);
  assert.is(r.body.data.length, 0);
  const r2 = await list(q('username contains "%"'));
  assert.is(r2.status, 200);
  assert.is(r2.body.data.length, 0);
});

test('GET one: own → 200 in the contract shape; another identity’s → 404; non-UUID → 400', async () => {
  const r = await c.call('GET', `/current-identity/authenticators/${daveUpdbId}`, { token: dave.token });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'detailAuthenticatorEnvelope', r.body);
  assert.is(r.body.data.method, 'updb');
  assert.is(r.body.data.username, 'dave');
  assert.not.ok('passwordHash' in r.body.data);
  assert.not.ok(JSON.stringify(r.body).includes('scrypt'));

  const cert = await c.call('GET', `/current-identity/authenticators/${daveCerts[0]!.authenticatorId}`, {
    token: dave.token,
  });
  assert.is(cert.status, 200);
  assertContract(ZITI, 'detailAuthenticatorEnvelope', cert.body);
  assert.is(cert.body.data.method, 'cert');
  assert.is(cert.body.data.certPem.trim(), daveCerts[0]!.cert.trim());
  assert.match(cert.body.data.fingerprint, /^[0-9a-f]{64}$/);

  const others = await c.call('GET', `/current-identity/authenticators/${erinUpdbId}`, { token: dave.token });
  assertError(others, 404);
  const unknown = await c.call('GET', `/current-identity/authenticators/${randomUuid()}`, {
    token: dave.token,
  });
  assertError(unknown, 404);
  // existence does not leak: both 404s look the same
  assert.is(others.body.error.code, unknown.body.error.code);
  assertError(await c.call('GET', '/current-identity/authenticators/not-a-uuid', { token: dave.token }), 400);
  assertError(await c.call('GET', `/current-identity/authenticators/${daveUpdbId}`), 401, 'UNAUTHORIZED');
});

// ---- PUT / PATCH ----

const put = (id: string, body: unknown, token = dave.token) =>
  c.call('PUT', `/current-identity/authenticators/${id}`, { token, body });
const patch = (id: string, body: unknown, token = dave.token) =>
  c.call('PATCH', `/current-identity/authenticators/${id}`, { token, body });

test('PUT/PATCH: currentPassword is required', async () => {
  assertError(await patch(daveUpdbId, { password: 'new-password' }), 400);
  assertError(await put(daveUpdbId, { username: 'dave', password: 'new-password' }), 400);
});

test('PUT/PATCH: wrong currentPassword → 401 with cause.field currentPassword', async () => {
  for (const r of [
    await patch(daveUpdbId, { password: 'new-password', currentPassword: 'not-daves' }),
    await put(daveUpdbId, { username: 'dave', password: 'new-password', currentPassword: 'not-daves' }),
  ]) {
    assertError(r, 401);
    assert.is(r.body.error.cause.field, 'currentPassword');
  }
  // nothing changed
  assert.ok(await c.login('dave', 'dave-password'));
});

test('PUT/PATCH on a cert authenticator → 409 CAN_NOT_UPDATE_AUTHENTICATOR', async () => {
  const id = daveCerts[0]!.authenticatorId;
  assertError(
    await patch(id, { password: 'new-password', currentPassword: 'dave-password' }),
    409,
    'CAN_NOT_UPDATE_AUTHENTICATOR',
  );
  assertError(
    await put(id, { username: 'dave2', password: 'new-password', currentPassword: 'dave-password' }),
    409,
    'CAN_NOT_UPDATE_AUTHENTICATOR',
  );
});

test('PUT/PATCH: username 4–100 and password 5–100 characters, else 400', async () => {
  const cur = { currentPassword: 'dave-password' };
  for (const body of [
    { ...cur, username: 'abc' },
    { ...cur, username: 'a'.repeat(101) },
    { ...cur, password: 'abcd' },
    { ...cur, password: 'a'.repeat(101) },
    { ...cur, password: 12345678 },
    { ...cur, username: ['dave'] },
    { ...cur, password: 'new-password', role: 'admin' },
  ]) {
    const r = await patch(daveUpdbId, body);
    assertError(r, 400);
    assert.is(r.body.error.code, 'COULD_NOT_VALIDATE', r.text);
  }
  assertError(
    await put(daveUpdbId, { ...cur, username: 'abc', password: 'long-enough' }),
    400,
    'COULD_NOT_VALIDATE',
  );
  assertError(await put(daveUpdbId, { ...cur, password: 'long-enough' }), 400, 'COULD_NOT_VALIDATE');
  // boundaries are accepted (4 and 100 / 5 and 100) — checked on a scratch identity
  const f = await c.createUser('frank', 'user', 'frank-pass');
  const fid = (await list('', f.token)).body.data[0].id;
  let r = await put(
    fid,
    { username: 'frnk', password: 'p'.repeat(100), currentPassword: 'frank-pass' },
    f.token,
  );
  assert.is(r.status, 200, r.text);
  r = await put(
    fid,
    { username: 'f'.repeat(100), password: 'five5', currentPassword: 'p'.repeat(100) },
    f.token,
  );
  assert.is(r.status, 200, r.text);
  assert.ok(await c.login('f'.repeat(100), 'five5'));
});

test('PUT/PATCH on another identity’s authenticator → 404, not a password oracle', async () => {
  assertError(await patch(erinUpdbId, { password: 'hijacked!', currentPassword: 'erin-password' }), 404);
  assertError(
    await put(erinUpdbId, { username: 'erin', password: 'hijacked!', currentPassword: 'erin-password' }),
    404,
  );
  assert.ok(await c.login('erin', 'erin-password'));
  assertError(await patch('nope', { password: 'xxxxxx', currentPassword: 'dave-password' }), 400);
});

test('PATCH password: 200 empty; the new password logs in, the old one fails; sessions continue', async () => {
  const r = await patch(daveUpdbId, { password: 'dave-new-password', currentPassword: 'dave-password' });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);
  assert.ok(await c.login('dave', 'dave-new-password'));
  assertError(
    await c.call('POST', '/authenticate?method=password', {
      body: { username: 'dave', password: 'dave-password' },
    }),
    401,
    'INVALID_AUTH',
  );
  assert.is((await c.call('GET', '/current-api-session', { token: dave.token })).status, 200);
  // the old password is no longer the current one either
  assertError(await patch(daveUpdbId, { password: 'whatever-1', currentPassword: 'dave-password' }), 401);
});

test('PATCH username only (password null keeps the password)', async () => {
  const r = await patch(daveUpdbId, {
    username: 'dave-renamed',
    password: null,
    currentPassword: 'dave-new-password',
  });
  assert.is(r.status, 200, r.text);
  assert.ok(await c.login('dave-renamed', 'dave-new-password'));
  assertError(
    await c.call('POST', '/authenticate?method=password', {
      body: { username: 'dave', password: 'dave-new-password' },
    }),
    401,
  );
  const detail = await c.call('GET', `/current-identity/authenticators/${daveUpdbId}`, { token: dave.token });
  assert.is(detail.body.data.username, 'dave-renamed');
});

test('PUT: username and password together; a taken username → 409', async () => {
  assertError(
    await put(daveUpdbId, { username: 'erin', password: 'whatever-1', currentPassword: 'dave-new-password' }),
    409,
    'DUPLICATE_NAME',
  );
  const r = await put(daveUpdbId, {
    username: 'dave',
    password: 'dave-third-password',
    currentPassword: 'dave-new-password',
  });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);
  assert.ok(await c.login('dave', 'dave-third-password'));
  for (const [u, p] of [
    ['dave', 'dave-new-password'],
    ['dave-renamed', 'dave-third-password'],
    ['dave', 'dave-password'],
  ]) {
    assertError(
      await c.call('POST', '/authenticate?method=password', { body: { username: u, password: p } }),
      401,
    );
  }
});

test.run();
