/**
 * /openapi.json for generated clients: every operation documents its success body and its 4xx
 * answers (in the group's error format), and what the server really sends validates against what
 * the document says (ajv over the documented schemas, real replies from a real controller).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { createInstance, grant, makeUserKey, tempDir } from '../access/util.js';
import { authenticatorIdOf, BASE, sshKeyRequest } from '../keys/api-helpers.js';
import { makeKey } from '../keys/keygen.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let doc: any;
let dir = '';
let cleanup = async () => {};

test.before(async () => {
  c = await startTestController();
  const t = await tempDir('vmwarden-openapi-test-');
  dir = t.dir;
  cleanup = t.cleanup;
  doc = (await c.call('GET', '/openapi.json')).body;
});

test.after(async () => {
  await c?.destroy();
  await cleanup();
});

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const operations = () =>
  Object.entries<Record<string, any>>(doc.paths).flatMap(([path, item]) =>
    Object.entries<any>(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, op]) => ({ path, method, op })),
  );

const hasBody = (resp: any) => Object.values<any>(resp?.content ?? {}).some((m) => m?.schema);

test('every operation has a 2xx answer with a schema (or none by design) and its 4xx answers', () => {
  const ops = operations();
  assert.ok(ops.length >= 80, `${ops.length} operations`);
  const without2xx: string[] = [];
  const without4xx: string[] = [];
  for (const { path, method, op } of ops) {
    const name = `${method.toUpperCase()} ${path}`;
    const codes = Object.keys(op.responses);
    const success = codes.filter((k) => /^2\d\d$/.test(k));
    // A route that only refuses (a non-JSON format) has no success answer and says so. An empty
    // success (COmanage's PUT/DELETE, a 204) is declared too: a status without content.
    if (op['x-vmwarden-refusal']) assert.is(success.length, 0, name);
    else if (!success.length) without2xx.push(name);
    for (const k of success)
      if (op.responses[k].content)
        assert.ok(hasBody(op.responses[k]), `${name} ${k}: content without schema`);
    const errors = codes.filter((k) => /^4\d\d$/.test(k));
    if (!errors.length) without4xx.push(name);
    for (const k of errors) {
      const ref = op.responses[k].content?.['application/json']?.schema?.$ref ?? '';
      assert.match(
        ref,
        /^#\/components\/schemas\/(ZitiError|AccessError|ComanageError|SignError)$/,
        `${name} ${k}`,
      );
      assert.type(op.responses[k].description, 'string');
    }
    if (op.security?.length) assert.ok(errors.includes('401'), `${name}: 401`);
  }
  const refusals = ops.filter((o) => o.op['x-vmwarden-refusal']).length;
  assert.ok(refusals <= 4, `${refusals} refusal-only operations`);
  assert.equal(without2xx, [], `operations without a success schema: ${without2xx.join(', ')}`);
  assert.equal(without4xx, [], `operations without 4xx: ${without4xx.join(', ')}`);
  assert.not.ok(JSON.stringify(doc).includes('"2XX"'), 'no generic 2XX left');
});

test('each group documents its own error format', () => {
  const err = (path: string, method = 'get', code = '401') =>
    doc.paths[path][method].responses[code].content['application/json'].schema.$ref.split('/').pop();
  assert.is(err('/identities'), 'ZitiError');
  assert.is(err('/edge/management/v1/identities'), 'ZitiError');
  assert.is(err('/v1/access/certificates'), 'AccessError');
  assert.is(err('/v1/instances/{server_id}', 'get', '404'), 'AccessError');
  assert.is(err('/ssh_key_authenticator/ssh_keys.json'), 'ComanageError');
  assert.is(err('/v1/sign/{server_id}', 'get', '404'), 'SignError');
  assert.is(err('/v1/nodes', 'post', '400'), 'SignError');
  assert.is(err('/v1/audit', 'get', '403'), 'AccessError');
});

// ---- real replies against the documented schemas ----

const ajv = new Ajv({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv) => void)(ajv);
ajv.addFormat('uint64', true);
ajv.addFormat('binary', true);

/** A documented schema with the components' $refs inlined (they are flat: the error bodies). */
function inline(schema: any): any {
  if (Array.isArray(schema)) return schema.map(inline);
  if (!schema || typeof schema !== 'object') return schema;
  if (typeof schema.$ref === 'string') return inline(doc.components.schemas[schema.$ref.split('/').pop()]);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, inline(v)]));
}

const checked = new Set<string>();

/** The reply validates against the schema the document gives for its operation and status. */
function conforms(method: string, template: string, r: Reply) {
  const op = doc.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `${method} ${template} not documented`);
  const resp = op.responses[String(r.status)];
  assert.ok(
    resp,
    `${method} ${template}: status ${r.status} not documented (${Object.keys(op.responses)}): ${r.text.slice(0, 300)}`,
  );
  const media = Object.keys(resp.content ?? {});
  if (!media.length) {
    assert.is(r.text, '', `${method} ${template} ${r.status}: documented without a body`);
    return;
  }
  const json = resp.content['application/json'];
  if (!json) return; // text / binary answers: the media type is what matters
  const validate = ajv.compile(inline(json.schema));
  assert.ok(
    validate(r.body),
    `${method} ${template} ${r.status}: ${ajv.errorsText(validate.errors)} in ${r.text.slice(0, 300)}`,
  );
  checked.add(`${method} ${template} ${r.status}`);
}

test('replies of every group validate against the documented success and error schemas', async () => {
  const admin = await c.adminToken();
  const user = await c.createUser('openapi-user', 'user');
  const call = async (
    method: string,
    template: string,
    path: string,
    opts: Parameters<TestController['call']>[2] = {},
  ) => {
    const r = await c.call(method, path, opts);
    conforms(method, template, r);
    return r;
  };

  // identity
  await call('GET', '/version', '/version');
  await call('GET', '/edge/management/v1/version', '/edge/management/v1/version');
  await call('POST', '/authenticate', '/authenticate?method=password', {
    body: { username: 'admin', password: c.adminPassword },
  });
  await call('POST', '/authenticate', '/authenticate?method=password', {
    body: { username: 'admin', password: 'wrong-password' },
  });
  await call('GET', '/current-api-session', '/current-api-session', { token: admin });
  await call('GET', '/current-identity', '/current-identity', { token: user.token });
  const auths = await call('GET', '/current-identity/authenticators', '/current-identity/authenticators', {
    token: user.token,
  });
  await call(
    'GET',
    '/current-identity/authenticators/{id}',
    `/current-identity/authenticators/${auths.body.data[0].id}`,
    {
      token: user.token,
    },
  );
  await call('GET', '/identities', '/identities', { token: admin });
  await call('GET', '/identities', '/identities', { token: user.token });
  await call('GET', '/identities', '/identities');
  await call('GET', '/identities/{id}', `/identities/${user.id}`, { token: admin });
  await call('GET', '/identities/{id}', '/identities/00000000-0000-4000-8000-000000000000', { token: admin });
  const created = await call('POST', '/identities', '/identities', {
    token: admin,
    body: { name: 'openapi-made', role: 'user', password: 'secret-password' },
  });
  await call('PATCH', '/identities/{id}', `/identities/${created.body.data.id}`, {
    token: admin,
    body: { name: 'openapi-renamed' },
  });
  await call('POST', '/identities', '/identities', { token: admin, body: { name: 5 } });
  await call('DELETE', '/identities/{id}', `/identities/${created.body.data.id}`, { token: admin });

  // access and inventory
  const vm = await createInstance(c);
  await grant(c, vm.serverId, user.id);
  await call('GET', '/v1/instances', '/v1/instances', { token: admin });
  await call('GET', '/v1/instances/{server_id}', `/v1/instances/${vm.serverId}`, { token: admin });
  await call('GET', '/v1/instances/{server_id}', '/v1/instances/00000000-0000-4000-8000-000000000000', {
    token: admin,
  });
  await call('GET', '/v1/instances/{server_id}/trust', `/v1/instances/${vm.serverId}/trust`, {
    token: admin,
  });
  await call('GET', '/v1/instances/{server_id}/grants', `/v1/instances/${vm.serverId}/grants`, {
    token: admin,
  });
  await call('PATCH', '/v1/instances/{server_id}', `/v1/instances/${vm.serverId}`, {
    token: admin,
    body: { ssh_port: 2222 },
  });
  await call('GET', '/v1/access/ca-pubkey', '/v1/access/ca-pubkey');
  await call('GET', '/v1/access/ca-pubkeys', '/v1/access/ca-pubkeys');
  const key = await makeUserKey(dir, 'id_openapi', 'ed25519');
  const issued = await call('POST', '/v1/access/request', '/v1/access/request', {
    token: user.token,
    body: { sandbox_id: vm.serverId, public_key: key.pub.trim() },
  });
  await call('POST', '/v1/access/request', '/v1/access/request', { token: user.token, body: {} });
  await call('GET', '/v1/access/certificates', '/v1/access/certificates', { token: admin });
  await call(
    'GET',
    '/v1/access/certificate/{certID}',
    `/v1/access/certificate/${issued.body.certificate_id}`,
    {
      token: user.token,
    },
  );
  const session = await call('POST', '/v1/access/session/start', '/v1/access/session/start', {
    token: user.token,
    body: { certificate_id: issued.body.certificate_id },
  });
  await call('GET', '/v1/access/sessions', '/v1/access/sessions', { token: admin });
  await call('POST', '/v1/access/session/end', '/v1/access/session/end', {
    token: user.token,
    body: { session_id: session.body.session_id },
  });
  await call(
    'DELETE',
    '/v1/access/certificate/{certID}',
    `/v1/access/certificate/${issued.body.certificate_id}`,
    {
      token: admin,
    },
  );
  await call('GET', '/v1/access/certificates', '/v1/access/certificates');

  // SSH key registry
  const authId = await authenticatorIdOf(c, user.token, user.id);
  const k = makeKey('ed25519');
  const added = await call('POST', '/ssh_key_authenticator/ssh_keys.json', `${BASE}/ssh_keys.json`, {
    token: user.token,
    body: sshKeyRequest(user.id, authId, { Comment: 'laptop', Type: 'ssh-ed25519', Skey: k.body }),
  });
  await call('GET', '/ssh_key_authenticator/ssh_keys.json', `${BASE}/ssh_keys.json`, { token: user.token });
  await call('GET', '/ssh_key_authenticator/ssh_keys/{ref}', `${BASE}/ssh_keys/${added.body.Id}.json`, {
    token: user.token,
  });
  await call('GET', '/ssh_key_authenticator/ssh_keys/{ref}', `${BASE}/ssh_keys/999999.json`, {
    token: user.token,
  });
  await call('GET', '/ssh_key_authenticator/authenticators.json', `${BASE}/authenticators.json`, {
    token: user.token,
  });
  await call('GET', '/ssh_key_authenticator/ssh_keys.json', `${BASE}/ssh_keys.json`);
  await call('DELETE', '/ssh_key_authenticator/ssh_keys/{ref}', `${BASE}/ssh_keys/${added.body.Id}.json`, {
    token: user.token,
  });

  // signatures, nodes, tasks
  const node = await call('POST', '/v1/nodes', '/v1/nodes', { token: admin, body: { name: 'openapi-node' } });
  await call('GET', '/v1/nodes', '/v1/nodes', { token: admin });
  await call('GET', '/v1/nodes/{node_id}', `/v1/nodes/${node.body.node_id}`, { token: admin });
  await call('GET', '/v1/sign', '/v1/sign', { token: admin });
  await call('GET', '/sign', '/sign', { token: admin });
  await call('GET', '/v1/sign/{server_id}', `/v1/sign/${vm.serverId}`, { token: admin });
  await call('GET', '/v1/sign', '/v1/sign', { token: user.token });
  const action = await call(
    'POST',
    '/v1/sign/node/{node_id}/action',
    `/v1/sign/node/${node.body.node_id}/action`,
    {
      token: admin,
      body: { action: 'activate' },
    },
  );
  await call('GET', '/v1/tasks/{task_id}', `/v1/tasks/${action.body.task_id}`, { token: admin });

  // operations
  await call('GET', '/healthz', '/healthz');
  await call('GET', '/readyz', '/readyz');
  await call('GET', '/openapi.json', '/openapi.json');
  await call('GET', '/metrics', '/metrics');
  await call('GET', '/v1/audit', '/v1/audit', { token: admin });
  await call('GET', '/v1/audit', '/v1/audit?since=nope', { token: admin });

  await call('DELETE', '/v1/instances/{server_id}', `/v1/instances/${vm.serverId}`, { token: admin });
  assert.ok(checked.size >= 50, `${checked.size} operation/status pairs checked`);
});

test('documentation only: replies keep properties the schemas do not list (no response serializer)', async () => {
  // fastify's response schemas would drop undeclared properties; the routes declare them in config.
  const r = await c.call('GET', '/v1/access/ca-pubkeys');
  assert.ok(r.body.trusted_user_ca_keys);
  const op = doc.paths['/v1/access/ca-pubkeys'].get.responses['200'];
  assert.ok(op.content['application/json'].schema.properties.public_keys);
});

test.run();
