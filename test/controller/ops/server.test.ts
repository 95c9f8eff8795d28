/** Operations endpoints: /openapi.json generated from the routes, /metrics, the audit log, health. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { createInstance, grant, makeUserKey, tempDir } from '../access/util.js';
import { openapiPath } from '../../../controller/src/ops/openapi.js';
import * as grpc from '@grpc/grpc-js';
import { controllerClient, unaryCall } from '../../helpers/agent.js';
import { watchdog } from '../../helpers/wait.js';
import { refuseAuditWrites } from './audit-store.js';

watchdog(120);

let c: TestController;
let admin = '';
let cleanup = async () => {};
let dir = '';

test.before(async () => {
  const t = await tempDir('vmwarden-ops-test-');
  dir = t.dir;
  cleanup = t.cleanup;
  c = await startTestController();
  admin = await c.adminToken();
});

test.after(async () => {
  await c?.destroy();
  await cleanup();
});

const metric = (text: string, name: string, labels: Record<string, string> = {}) => {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = Object.fromEntries(
      [...(m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => l[k] === v)) {
      sum += Number(m[4]);
      found = true;
    }
  }
  return found ? sum : undefined;
};

test('healthz and readyz are public', async () => {
  const h = await c.call('GET', '/healthz');
  assert.is(h.status, 200);
  assert.is(h.body.status, 'ok');
  const r = await c.call('GET', '/readyz');
  assert.is(r.status, 200, r.text);
  assert.is(r.body.checks.store, 'ok');
});

test('/openapi.json is an OpenAPI 3 document listing every registered route', async () => {
  const r = await c.call('GET', '/openapi.json');
  assert.is(r.status, 200);
  const doc = r.body;
  assert.is(doc.openapi, '3.0.3');
  assert.type(doc.info.title, 'string');
  assert.type(doc.info.version, 'string');
  assert.ok(doc.paths && typeof doc.paths === 'object');
  for (const s of ['ztSession', 'xAuthToken', 'bearer', 'basic'])
    assert.ok(doc.components.securitySchemes[s], `security scheme ${s}`);
  const tags = new Set(doc.tags.map((t: { name: string }) => t.name));
  for (const t of ['identity', 'access', 'ssh-keys', 'signatures', 'operations']) assert.ok(tags.has(t), t);

  // The server's own route list (the same onRoute collection, via fastify's printRoutes is not
  // structured; so compare with what the app exposes through hasRoute for each documented path,
  // and the other way round with a fresh collection).
  const { buildHttpApp } = await import('../../../controller/src/http/app.js');
  const app = buildHttpApp(c.controller.services);
  const registered: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) registered.push({ method, url: route.url });
  });
  await app.ready();
  await app.close();
  assert.ok(registered.length > 50, `routes registered: ${registered.length}`);
  const opMethods = new Set(['get', 'post', 'put', 'patch', 'delete']);
  const usedTags = new Set<string>();
  const ids = new Set<string>();
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    assert.ok(path.startsWith('/'), path);
    assert.not.match(path, /:/);
    for (const [method, op] of Object.entries<any>(item)) {
      assert.ok(opMethods.has(method), `${method} ${path}`);
      assert.ok(op.responses && Object.keys(op.responses).length > 0);
      assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      usedTags.add(op.tags[0]);
      for (const name of [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]))
        assert.ok(
          op.parameters.some((p: any) => p.in === 'path' && p.name === name && p.required === true),
          `${method} ${path}: path parameter ${name}`,
        );
      for (const sec of op.security)
        for (const k of Object.keys(sec)) assert.ok(doc.components.securitySchemes[k]);
    }
  }
  for (const t of ['identity', 'access', 'ssh-keys', 'signatures', 'operations'])
    assert.ok(usedTags.has(t), t);
  // Every route the server registered appears in the document.
  for (const r of registered) {
    if (r.method === 'HEAD' || r.method === 'OPTIONS') continue;
    const path = openapiPath(r.url);
    assert.ok(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${r.url} missing as ${path}`);
  }
  // Every $ref resolves.
  const refs = [...r.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length > 0);
  for (const ref of refs) assert.ok(doc.components.schemas[ref], `unresolved $ref ${ref}`);
  // Schemas come from the validators: the access request body requires sandbox_id.
  const body = doc.paths['/v1/access/request'].post.requestBody.content['application/json'].schema;
  assert.ok(body.required.includes('sandbox_id'));
  assert.equal(doc.paths['/authenticate'].post.security, []);
  assert.ok(doc.paths['/ssh_key_authenticator/ssh_keys.json'].get.security.some((s: any) => 'basic' in s));
  assert.ok(doc.paths['/v1/audit'].get.parameters.some((p: any) => p.name === 'since' && p.in === 'query'));
});

test('metrics count requests, certificates and sessions; audit records each action kind', async () => {
  const before = (await c.call('GET', '/metrics')).text;
  const scrape = await c.call('GET', '/metrics');
  assert.is(scrape.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.match(before, /# TYPE vmwarden_http_requests_total counter/);
  assert.match(before, /# TYPE vmwarden_http_request_duration_seconds histogram/);
  assert.is(metric(before, 'vmwarden_signatures', { is_valid: 'true' }), 0);

  // login failed + ok, identity create/delete, key add/remove, cert issue/revoke, session, sign, logout
  const bad = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'admin', password: 'nope' },
  });
  assert.is(bad.status, 401);
  const user = await c.createUser('ops-user');
  const gone = await c.createUser('ops-gone');
  assert.is((await c.call('DELETE', `/identities/${gone.id}`, { token: admin })).status, 200);
  const key = await makeUserKey(dir, 'id_ops', 'ed25519');
  const auth = await c.call('GET', `/ssh_key_authenticator/authenticators.json?copersonid=${user.id}`, {
    token: user.token,
  });
  assert.is(auth.status, 200, auth.text);
  const added = await c.call('POST', '/ssh_key_authenticator/ssh_keys.json', {
    token: user.token,
    body: {
      RequestType: 'SshKeys',
      Version: '1.0',
      SshKeys: [
        {
          Version: '1.0',
          Person: { Type: 'CO', Id: user.id },
          SshKeyAuthenticatorId: auth.body.SshKeyAuthenticators[0].Id,
          Skey: key.pub.trim(),
        },
      ],
    },
  });
  assert.ok(added.status < 300, added.text);
  const keyId = added.body.Id;
  assert.is(
    (await c.call('DELETE', `/ssh_key_authenticator/ssh_keys/${keyId}.json`, { token: user.token })).status,
    200,
  );
  const vm = await createInstance(c);
  await grant(c, vm.serverId, user.id);
  const issued = await c.call('POST', '/v1/access/request', {
    token: user.token,
    body: { sandbox_id: vm.serverId, public_key: key.pub.trim() },
  });
  assert.is(issued.status, 200, issued.text);
  const started = await c.call('POST', '/v1/access/session/start', {
    token: admin,
    body: { certificate_id: issued.body.certificate_id, source_ip: '192.0.2.1' },
  });
  assert.is(started.status, 200, started.text);
  const mid = (await c.call('GET', '/metrics')).text;
  assert.is(metric(mid, 'vmwarden_ssh_sessions_active'), 1);
  const revoked = await c.call('DELETE', `/v1/access/certificate/${issued.body.certificate_id}`, {
    token: admin,
  });
  assert.is(revoked.status, 200, revoked.text);
  const signed = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.serverId } });
  assert.ok(signed.status >= 400); // no agent hosts this instance: refused, and audited as a failure
  const node = await c.call('POST', '/v1/nodes', { token: admin, body: { name: 'ops-node' } });
  assert.is(node.status, 201, node.text);
  const toggled = await c.call('POST', `/v1/sign/node/${node.body.node_id}/action`, {
    token: admin,
    body: { action: 'deactivate' },
  });
  assert.is(toggled.status, 200, toggled.text);
  const out = await c.login('ops-user', user.password);
  assert.is((await c.call('DELETE', '/current-api-session', { token: out })).status, 200);

  const after = (await c.call('GET', '/metrics')).text;
  assert.is(metric(after, 'vmwarden_certificates_issued_total'), 1);
  assert.is(metric(after, 'vmwarden_certificates_revoked_total'), 1);
  assert.is(metric(after, 'vmwarden_ssh_sessions_active'), 0);
  assert.ok(
    (metric(after, 'vmwarden_http_requests_total', {
      route: '/authenticate',
      method: 'POST',
      status: '401',
    }) ?? 0) >= 1,
  );
  assert.ok(
    (metric(after, 'vmwarden_http_request_duration_seconds_count', {
      route: '/v1/access/request',
      method: 'POST',
      status: '200',
    }) ?? 0) >= 1,
  );
  assert.ok(
    (metric(after, 'vmwarden_http_requests_total', { route: '/metrics' }) ?? 0) >
      (metric(before, 'vmwarden_http_requests_total', { route: '/metrics' }) ?? 0),
  );

  const audit = await c.call('GET', '/v1/audit?limit=1000', { token: admin });
  assert.is(audit.status, 200, audit.text);
  assert.is(audit.body.total, audit.body.entries.length);
  const has = (action: string, outcome: string, pred: (e: any) => boolean = () => true) =>
    assert.ok(
      audit.body.entries.some((e: any) => e.action === action && e.outcome === outcome && pred(e)),
      `${action} ${outcome} in ${JSON.stringify(audit.body.entries.map((e: any) => `${e.action}:${e.outcome}`))}`,
    );
  has('login.password', 'failure', (e) => e.actorName === 'admin' && e.status === 401 && e.sourceAddress);
  has('login.password', 'success', (e) => e.actorName === 'ops-user' && e.actorId === user.id);
  has('logout', 'success', (e) => e.actorId === user.id);
  has('identity.create', 'success', (e) => e.object === user.id && e.actorName === 'admin');
  has('identity.delete', 'success', (e) => e.object === gone.id);
  has('key.add', 'success', (e) => e.object === String(keyId));
  has('key.remove', 'success', (e) => e.object === String(keyId));
  has(
    'certificate.issue',
    'success',
    (e) => e.object === issued.body.certificate_id && e.actorId === user.id,
  );
  has('certificate.revoke', 'success', (e) => e.object === issued.body.certificate_id);
  has('session.start', 'success');
  has('signature.create', 'failure', (e) => e.object === vm.serverId);
  has('validation.deactivate', 'success', (e) => e.object === String(node.body.node_id));
  assert.not.ok(
    audit.body.entries.some((e: any) => e.outcome === 'attempt'),
    'every attempt is settled',
  );

  // filters
  const onlyLogins = await c.call('GET', '/v1/audit?action=login', { token: admin });
  assert.ok(onlyLogins.body.entries.length >= 2);
  assert.ok(onlyLogins.body.entries.every((e: any) => e.action.startsWith('login.')));
  const byActor = await c.call('GET', `/v1/audit?actor=${user.id}&limit=2&offset=0`, { token: admin });
  assert.is(byActor.body.entries.length, 2);
  assert.ok(byActor.body.total >= 3);
  assert.ok(byActor.body.entries.every((e: any) => e.actorId === user.id));
  const future = await c.call(
    'GET',
    `/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`,
    { token: admin },
  );
  assert.is(future.body.total, 0);
  const until = await c.call('GET', `/v1/audit?until=2000-01-01T00:00:00Z`, { token: admin });
  assert.is(until.body.total, 0);
  // admin only, session needed
  assert.is((await c.call('GET', '/v1/audit', { token: user.token })).status, 403);
  assert.is((await c.call('GET', '/v1/audit')).status, 401);
  assert.is((await c.call('GET', '/v1/audit?limit=0', { token: admin })).status, 400);
});

test('fail closed: an audit write that fails refuses the action', async () => {
  const allowAudit = await refuseAuditWrites(c.controller.services.db);
  let r: Reply;
  try {
    r = await c.call('POST', '/identities', {
      token: admin,
      body: { name: 'never-made', role: 'user', password: 'secret-password' },
    });
  } finally {
    await allowAudit();
  }
  assert.is(r.status, 503, r.text);
  assert.is(r.body.error.code, 'AUDIT_UNAVAILABLE');
  const list = await c.call('GET', `/identities?filter=${encodeURIComponent('name="never-made"')}`, {
    token: admin,
  });
  assert.is(list.status, 200, list.text);
  assert.is(list.body.data.length, 0);
});

test('fail closed: an audit table the store refuses to write blocks logins and revocations', async () => {
  const user = await c.createUser('ops-blocked');
  const vm = await createInstance(c);
  await grant(c, vm.serverId, user.id);
  const key = await makeUserKey(dir, 'id_blocked', 'ed25519');
  const issued = await c.call('POST', '/v1/access/request', {
    token: user.token,
    body: { sandbox_id: vm.serverId, public_key: key.pub.trim() },
  });
  assert.is(issued.status, 200, issued.text);
  const allowAudit = await refuseAuditWrites(c.controller.services.db);
  try {
    const login = await c.call('POST', '/authenticate?method=password', {
      body: { username: 'ops-blocked', password: user.password },
    });
    assert.is(login.status, 503, login.text);
    assert.is(login.body.error.code, 'AUDIT_UNAVAILABLE');
    assert.not.ok(login.headers['zt-session']);
    const revoke = await c.call('DELETE', `/v1/access/certificate/${issued.body.certificate_id}`, {
      token: admin,
    });
    assert.is(revoke.status, 503, revoke.text);
    assert.match(revoke.body.error, /audit/);
    const cert = await c.call('GET', `/v1/access/certificate/${issued.body.certificate_id}`, {
      token: admin,
    });
    assert.is(cert.body.status, 'ACTIVE');
    const m = (await c.call('GET', '/metrics')).text;
    assert.ok((metric(m, 'vmwarden_audit_writes_total', { result: 'error' }) ?? 0) >= 2);
    // reads are not audited and keep working
    assert.is((await c.call('GET', '/v1/access/certificates', { token: admin })).status, 200);
  } finally {
    await allowAudit();
  }
  const revoke = await c.call('DELETE', `/v1/access/certificate/${issued.body.certificate_id}`, {
    token: admin,
  });
  assert.is(revoke.status, 200, revoke.text);
});

test('gRPC calls are counted by method and status code', async () => {
  const client = controllerClient(c);
  try {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${admin}`);
    await unaryCall(client, 'listInstances', { nodeId: 0, limit: 0, offset: 0 }, m);
    await unaryCall(client, 'listInstances', { nodeId: 0, limit: 0, offset: 0 }, new grpc.Metadata()).catch(
      () => undefined,
    );
  } finally {
    client.close();
  }
  const text = (await c.call('GET', '/metrics')).text;
  assert.is(metric(text, 'vmwarden_grpc_calls_total', { method: 'listInstances', code: 'OK' }), 1);
  assert.is(
    metric(text, 'vmwarden_grpc_calls_total', { method: 'listInstances', code: 'UNAUTHENTICATED' }),
    1,
  );
  assert.is(metric(text, 'vmwarden_grpc_calls_started_total', { method: 'listInstances' }), 2);
});

test('readyz answers 503 when the store cannot answer (last: closes the store)', async () => {
  await c.controller.services.db.close();
  const r = await c.call('GET', '/readyz');
  assert.is(r.status, 503, r.text);
  assert.is(r.body.status, 'not ready');
  assert.is((await c.call('GET', '/healthz')).status, 200);
});

test.run();
