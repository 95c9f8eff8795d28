/**
 * Requests exactly as OpenZiti's generated edge management client sends them (every request with
 * `Content-Type: application/json`, `Accept: application/json` and `zt-session`, bodiless ones
 * included), and as the virsh-sandbox SDK revokes a certificate; trailing slashes on every group.
 */
import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import { assertError, issueCert, randomUuid } from './util.js';
import { createInstance, grant, issue, tempDir } from '../access/util.js';
import { makeUserKey } from '../access/sshca/fixtures.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let admin: string;

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
});
test.after(async () => c.destroy());

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** A call as the generated client makes it: JSON headers always, the body only when it has one. */
const ziti = (method: string, path: string, body?: unknown, token = admin) =>
  c.call(method, path, {
    headers: { ...JSON_HEADERS, 'zt-session': token },
    raw: body !== undefined ? JSON.stringify(body) : method === 'GET' ? undefined : '',
  });

/** A request on a raw socket with an exact body framing (fetch always sends Content-Length). */
function chunkedEmpty(method: string, path: string, headers: Record<string, string>): Promise<Reply> {
  const [host, port] = c.httpBase.slice('http://'.length).split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host, port: Number(port), method, path, headers: { ...headers, 'transfer-encoding': 'chunked' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers as never,
            body: JSON.parse(text),
            text,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('POST /authenticate?method=cert: JSON content type and an empty body over HTTPS → 200', async () => {
  const created = await ziti('POST', '/identities', {
    name: 'ziti-cert-1',
    type: 'Device',
    isAdmin: false,
    enrollment: { ott: true },
  });
  assert.is(created.status, 201, created.text);
  const cert = await issueCert(c, created.body.data.id, '/CN=ziti-cert-1');
  for (const headers of [
    { ...JSON_HEADERS, 'content-length': '0' },
    { 'content-type': 'application/json' },
  ]) {
    const r = await c.callTls('POST', '/authenticate?method=cert', {
      cert: cert.cert,
      key: cert.key,
      raw: '',
      headers,
    });
    assert.is(r.status, 200, r.text);
    assert.is(r.body.data.identity.id, created.body.data.id);
    assert.type(r.headers['zt-session'], 'string');
  }
  // no certificate: still the login's own refusal, not a body error
  const none = await c.callTls('POST', '/authenticate?method=cert', { raw: '', headers: JSON_HEADERS });
  assertError(none, 401);
});

test('empty JSON bodies: optional body accepted (chunked too), required body refused in the group format', async () => {
  // DELETE with the generated client's headers and no body
  const del = await ziti('POST', '/identities', { name: 'ziti-del-1', type: 'User', isAdmin: false });
  assert.is(del.status, 201, del.text);
  const gone = await ziti('DELETE', `/identities/${del.body.data.id}`);
  assert.is(gone.status, 200, gone.text);
  assertContract(ZITI, 'empty', gone.body);
  const logout = await c.login('admin', c.adminPassword);
  const chunked = await chunkedEmpty('DELETE', '/current-api-session', {
    ...JSON_HEADERS,
    'zt-session': logout,
  });
  assert.is(chunked.status, 200, chunked.text);
  // required bodies still refuse an empty one
  for (const [method, path] of [
    ['POST', '/identities'],
    ['PUT', `/identities/${randomUuid()}`],
    ['POST', '/authenticate?method=password'],
  ]) {
    const r = await ziti(method!, path!);
    assertError(r, method === 'POST' && path!.startsWith('/auth') ? 400 : 400, 'COULD_NOT_VALIDATE');
  }
});

test('virsh-sandbox SDK: DELETE /v1/access/certificate/{id} with its JSON content type and no body revokes', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const key = await makeUserKey(dir, 'id_ed', 'ed25519');
    const user = await c.createUser('sdk-revoker');
    const vm = await createInstance(c);
    await grant(c, vm.serverId, user.id);
    const cert = await issue(c, user.token, { sandbox_id: vm.serverId, public_key: key.pub });
    const sdkHeaders = {
      'content-type': 'application/json',
      accept: 'application/json',
      'zt-session': admin,
    };
    const r = await c.call('DELETE', `/v1/access/certificate/${cert.id}`, { headers: sdkHeaders, raw: '' });
    assert.is(r.status, 200, r.text);
    const after = await c.call('GET', `/v1/access/certificate/${cert.id}`, { token: admin });
    assert.is(after.body.status, 'REVOKED', after.text);
    // a required body in this group still refuses an empty one, in the access format
    const req = await c.call('POST', '/v1/access/request', { headers: sdkHeaders, raw: '' });
    assert.is(req.status, 400, req.text);
    assert.type(req.body.error, 'string');
  } finally {
    await cleanup();
  }
});

test('IdentityCreate as the client sends it → 201 {data:{id,_links}}; detail in identityDetail shape', async () => {
  const body = {
    name: 'ziti-user-1',
    type: 'User',
    isAdmin: false,
    roleAttributes: ['ops', 'eu'],
    externalId: 'ext-42',
    authPolicyId: 'default',
    tags: { team: 'blue', vip: true },
    appData: { shell: 'bash' },
    defaultHostingPrecedence: 'required',
    defaultHostingCost: 7,
    serviceHostingCosts: { svc1: 3 },
    serviceHostingPrecedences: { svc1: 'failed' },
    enrollment: { updb: 'ziti-user-1' },
  };
  const r = await ziti('POST', '/identities', body);
  assert.is(r.status, 201, r.text);
  const id = r.body.data.id;
  assert.is(r.body.data._links.self.href, `./identities/${id}`);
  assert.type(r.body.meta, 'object');

  const g = await ziti('GET', `/identities/${id}`);
  assert.is(g.status, 200, g.text);
  // The spec's tags type (`additionalProperties: {type: object}`, go-swagger's interface{}) is
  // checked without the tag values; its text says they are strings, booleans or null.
  assertContract(ZITI, 'currentIdentityDetailEnvelope', {
    ...g.body,
    data: { ...g.body.data, tags: {}, appData: {} },
  });
  const d = g.body.data;
  assert.is(d.name, 'ziti-user-1');
  assert.is(d.typeId, 'User');
  assert.is(d.type.id, 'User');
  assert.is(d.isAdmin, false);
  assert.is(d.role, 'user');
  assert.equal(d.roleAttributes, ['ops', 'eu']);
  assert.is(d.externalId, 'ext-42');
  assert.equal(d.tags, { team: 'blue', vip: true });
  assert.equal(d.appData, { shell: 'bash' });
  assert.is(d.defaultHostingPrecedence, 'required');
  assert.is(d.defaultHostingCost, 7);
  assert.equal(d.serviceHostingCosts, { svc1: 3 });
  assert.equal(d.serviceHostingPrecedences, { svc1: 'failed' });
  assert.is(d.authPolicyId, 'default');
  // enrollment.updb without a password: no password authenticator yet
  assert.not.ok(d.authenticators.updb);
});

test('isAdmin and the agent attribute map onto vmwarden roles', async () => {
  const adminId = (
    await ziti('POST', '/identities', { name: 'ziti-admin-1', type: 'Default', isAdmin: true })
  ).body.data.id;
  const a = (await ziti('GET', `/identities/${adminId}`)).body.data;
  assert.is(a.role, 'admin');
  assert.is(a.isAdmin, true);
  assert.is(a.typeId, 'Default');

  const agentId = (
    await ziti('POST', '/identities', {
      name: 'ziti-agent-1',
      type: 'Device',
      isAdmin: false,
      roleAttributes: ['vmwarden-agent', 'rack-1'],
    })
  ).body.data.id;
  const g = (await ziti('GET', `/identities/${agentId}`)).body.data;
  assert.is(g.role, 'agent');
  assert.is(g.typeId, 'Router');
  assert.equal(g.roleAttributes, ['rack-1', 'vmwarden-agent']);
  const router = await ziti('POST', '/identities', { name: 'ziti-router-1', type: 'Router', isAdmin: false });
  assert.is((await ziti('GET', `/identities/${router.body.data.id}`)).body.data.role, 'agent');

  // an admin agent, or the old role contradicting isAdmin → 400
  for (const body of [
    { name: 'ziti-bad-1', type: 'Router', isAdmin: true },
    { name: 'ziti-bad-2', type: 'User', isAdmin: true, roleAttributes: ['vmwarden-agent'] },
    { name: 'ziti-bad-3', role: 'user', isAdmin: true },
  ]) {
    const bad = await ziti('POST', '/identities', body);
    assertError(bad, 400, 'COULD_NOT_VALIDATE');
    assert.is(bad.body.error.cause.field, 'isAdmin');
  }
});

test('IdentityCreate validation: type and isAdmin required (unless role), unknown fields and bad types → 400', async () => {
  for (const [body, field] of [
    [{ name: 'ziti-v-1', isAdmin: false }, 'type'],
    [{ name: 'ziti-v-1', type: 'User' }, 'isAdmin'],
    [{ name: 'ziti-v-1', type: 'Person', isAdmin: false }, 'type'],
    [{ name: 'ziti-v-1', type: 'User', isAdmin: 'no' }, 'isAdmin'],
    [{ name: 'ziti-v-1', type: 'User', isAdmin: false, color: 'red' }, 'color'],
    [{ name: 'ziti-v-1', type: 'User', isAdmin: false, enrollment: { jwt: 'x' } }, 'jwt'],
    [{ name: 'ziti-v-1', type: 'User', isAdmin: false, defaultHostingCost: 70000 }, 'defaultHostingCost'],
    [{ name: 'ziti-v-1', type: 'User', isAdmin: false, roleAttributes: [1] }, 'roleAttributes.0'],
  ] as const) {
    const r = await ziti('POST', '/identities', body);
    assertError(r, 400, 'COULD_NOT_VALIDATE');
    assert.is(r.body.error.cause.field, field, r.text);
  }
  // roleAttributes may be null (the client's default)
  const ok = await ziti('POST', '/identities', {
    name: 'ziti-v-2',
    type: 'User',
    isAdmin: false,
    roleAttributes: null,
  });
  assert.is(ok.status, 201, ok.text);
});

test('GET /identities: OpenZiti list envelope with pagination and filterableFields', async () => {
  for (let i = 0; i < 3; i++)
    assert.is(
      (await ziti('POST', '/identities', { name: `ziti-list-${i}`, type: 'User', isAdmin: false })).status,
      201,
    );
  const r = await ziti(
    'GET',
    `/identities?limit=2&offset=1&filter=${encodeURIComponent('name contains "ziti-list-"')}`,
  );
  assert.is(r.status, 200, r.text);
  assert.equal(r.body.meta.pagination, { limit: 2, offset: 1, totalCount: 3 });
  assert.ok(Array.isArray(r.body.meta.filterableFields) && r.body.meta.filterableFields.includes('name'));
  assert.is(r.body.data.length, 2);
  for (const d of r.body.data) assertContract(ZITI, 'identityDetail', d);
});

test('PATCH changes what it names; PUT replaces the OpenZiti fields', async () => {
  const id = (
    await ziti('POST', '/identities', {
      name: 'ziti-upd-1',
      type: 'User',
      isAdmin: false,
      roleAttributes: ['a'],
      tags: { k: 'v' },
      externalId: 'e1',
    })
  ).body.data.id;
  const get = async () => (await ziti('GET', `/identities/${id}`)).body.data;

  let r = await ziti('PATCH', `/identities/${id}`, { roleAttributes: ['b', 'c'], isAdmin: null });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);
  let d = await get();
  assert.equal(d.roleAttributes, ['b', 'c']);
  assert.equal(d.tags, { k: 'v' });
  assert.is(d.externalId, 'e1');
  assert.is(d.role, 'user');

  r = await ziti('PATCH', `/identities/${id}`, { isAdmin: true });
  assert.is(r.status, 200, r.text);
  d = await get();
  assert.is(d.role, 'admin');
  assert.equal(d.roleAttributes, ['b', 'c']);

  r = await ziti('PUT', `/identities/${id}`, { name: 'ziti-upd-2', type: 'Device', isAdmin: false });
  assert.is(r.status, 200, r.text);
  d = await get();
  assert.is(d.name, 'ziti-upd-2');
  assert.is(d.typeId, 'Device');
  assert.is(d.role, 'user');
  assert.equal(d.roleAttributes, []);
  assert.equal(d.tags, {});
  assert.is(d.externalId, null);

  // the agent attribute through PATCH makes an agent; dropping it makes a user again
  await ziti('PATCH', `/identities/${id}`, { roleAttributes: ['vmwarden-agent'] });
  assert.is((await get()).role, 'agent');
  await ziti('PATCH', `/identities/${id}`, { roleAttributes: [] });
  assert.is((await get()).role, 'user');

  // PUT requires name, type and isAdmin
  for (const body of [
    { name: 'ziti-upd-2', type: 'User' },
    { type: 'User', isAdmin: false },
  ]) {
    assertError(await ziti('PUT', `/identities/${id}`, body), 400, 'COULD_NOT_VALIDATE');
  }
  assertError(
    await ziti('PUT', `/identities/${randomUuid()}`, { name: 'nobody-1', type: 'User', isAdmin: false }),
    404,
  );
  // the default admin cannot be demoted through isAdmin either
  const me = (await ziti('GET', '/current-identity')).body.data.id;
  assertError(await ziti('PATCH', `/identities/${me}`, { isAdmin: false }), 409);
});

test('GET / and GET /version: OpenZiti version envelope, public', async () => {
  for (const path of ['/', '/version', '/edge/management/v1/version']) {
    const r = await c.call('GET', path, { headers: { accept: 'application/json' } });
    assert.is(r.status, 200, `${path}: ${r.text}`);
    const d = r.body.data;
    assert.type(r.body.meta, 'object');
    for (const k of ['version', 'revision', 'buildDate', 'runtimeVersion']) assert.type(d[k], 'string', k);
    const v1 = d.apiVersions['edge-management'].v1;
    assert.is(v1.path, '/edge/management/v1');
    assert.ok(v1.apiBaseUrls.includes(`${c.httpBase}/edge/management/v1`), JSON.stringify(v1));
  }
});

test('trailing slashes are tolerated on every group; unknown paths keep their group format', async () => {
  const user = await c.createUser('slash-user');
  const paths = [
    '/identities',
    '/current-identity',
    '/edge/management/v1/identities',
    '/v1/access/certificates',
    '/v1/instances',
    '/ssh_key_authenticator/ssh_keys.json',
    '/v1/nodes',
    '/version',
  ];
  for (const path of paths) {
    const headers = { ...JSON_HEADERS, 'zt-session': admin };
    const plain = await c.call('GET', path, { headers });
    const slashed = await c.call('GET', `${path}/`, { headers });
    assert.is(plain.status, 200, `${path}: ${plain.text.slice(0, 300)}`);
    assert.is(slashed.status, 200, `${path}/: ${slashed.text.slice(0, 300)}`);
    assert.equal(Object.keys(slashed.body), Object.keys(plain.body), path);
  }
  const one = await ziti('GET', `/identities/${user.id}/`);
  assert.is(one.body.data.id, user.id);
  // 404s: OpenZiti envelope, access {error, code}
  assertError(await ziti('GET', '/identities/x/y/'), 404);
  const access404 = await c.call('GET', '/v1/access/nope/', { token: admin });
  assert.is(access404.status, 404);
  assert.type(access404.body.error, 'string');
  // metrics label the route by its template, with or without the slash
  const metrics = await c.call('GET', '/metrics', { token: admin });
  assert.not.match(metrics.text, /route="\/identities\/"/);
});

test.run();
