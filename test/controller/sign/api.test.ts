// The Sign API's wire shapes exactly as its document (shared/seeds/sign-api.md), every error path in
// its `{"error": "..."}` format, and tasks that survive a controller restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { openDatabase } from '../../../lib/store/database.js';
import { SignStore } from '../../../controller/src/sign/store.js';
import type { TestController } from '../../helpers/controller.js';
import { type TestAgent, type TestDomain } from '../../helpers/agent.js';
import {
  assertSignError,
  assertSignShape,
  httpCall,
  RFC1123,
  waitTask,
  signNode,
  type SignNode,
} from './util.js';

let c: TestController;
let a: TestAgent;
let vmA: TestDomain;
let vmB: TestDomain;
let vmC: TestDomain; // in the inventory, never signed
let vmD: TestDomain;
let admin: string;
let user: string;
const signed: any[] = [];

let node: SignNode | undefined;

test.before(async () => {
  node = await signNode('api-node', [
    'instance-00000068',
    'instance-00000069',
    'instance-00000070',
    'instance-00000071',
  ]);
  ({ c, admin, a } = node);
  [vmA, vmB, vmC, vmD] = node.vms as [TestDomain, TestDomain, TestDomain, TestDomain];
  user = (await c.createUser('plainuser', 'user')).token;
});

test.after(async () => {
  await node?.destroy();
});

test('POST /v1/sign answers {"sign": {...}} with exactly the documented fields and types', async () => {
  for (const vm of [vmA, vmB]) {
    // X-Auth-Token, as the document's curl examples send it
    const r = await httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
    assert.is(r.status, 200, r.text);
    assert.equal(Object.keys(r.body), ['sign']);
    assertSignShape(r.body.sign);
    assert.is(r.body.sign.server_id, vm.uuid);
    assert.is(r.body.sign.instance_name, vm.name);
    assert.is(r.body.sign.node_id, a.nodeId);
    assert.is(r.body.sign.is_valid, 'true');
    assert.is(r.body.sign.updated_at, null);
    assert.ok(Math.abs(Date.parse(r.body.sign.created_at) - Date.now()) < 10_000);
    signed.push(r.body.sign);
  }
  assert.ok(signed[1].id > signed[0].id);
});

test('GET /v1/sign/{server_id} answers {"sign": {...}}', async () => {
  const r = await httpCall(c, 'GET', `/v1/sign/${vmA.uuid}`, { token: admin });
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body), ['sign']);
  assertSignShape(r.body.sign);
  assert.equal(r.body.sign, signed[0]);
});

test('GET /v1/sign and /sign answer {"signs": [...]} with offset/limit and $offset/$limit', async () => {
  for (const path of ['/v1/sign', '/sign']) {
    const all = await httpCall(c, 'GET', path, { token: admin });
    assert.is(all.status, 200, all.text);
    assert.equal(Object.keys(all.body), ['signs']);
    assert.equal(all.body.signs, signed);
    for (const s of all.body.signs) assertSignShape(s);
    const page = async (q: string) => {
      const r = await httpCall(c, 'GET', `${path}?${q}`, { token: admin });
      assert.is(r.status, 200, `${path}?${q}: ${r.text}`);
      return r.body.signs.map((s: any) => s.id);
    };
    assert.equal(await page('offset=1&limit=1'), [signed[1].id]);
    assert.equal(await page('offset=0&limit=1'), [signed[0].id]);
    assert.equal(await page('offset=2'), []);
    assert.equal(await page('limit=10'), [signed[0].id, signed[1].id]);
    assert.equal(await page('$offset=0&$limit=10'), [signed[0].id, signed[1].id]);
    assert.equal(await page('$offset=1&$limit=10'), [signed[1].id]);
    assert.equal(await page('%24offset=0&%24limit=1'), [signed[0].id]);
  }
});

test('PUT /v1/sign answers {"sign": {...}} with updated_at in RFC 1123', async () => {
  const r = await httpCall(c, 'PUT', '/v1/sign', { token: admin, body: { server_id: vmB.uuid } });
  assert.is(r.status, 200, r.text);
  assert.equal(Object.keys(r.body), ['sign']);
  assertSignShape(r.body.sign);
  assert.match(r.body.sign.updated_at, RFC1123);
  assert.is(r.body.sign.id, signed[1].id);
  assert.is(r.body.sign.created_at, signed[1].created_at);
  assert.is(r.body.sign.is_valid, 'true');
});

test('node action: POST and GET-with-body both answer {action, node_id, success: true, task_id}', async () => {
  const post = await httpCall(c, 'POST', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'deactivate' },
  });
  assert.is(post.status, 200, post.text);
  assert.equal(Object.keys(post.body).sort(), ['action', 'node_id', 'success', 'task_id']);
  assert.is(post.body.action, 'deactivate');
  assert.is(post.body.node_id, a.nodeId);
  assert.is(post.body.success, true);
  assert.type(post.body.task_id, 'string');
  assert.is((await waitTask(c, admin, post.body.task_id)).final.state, 'SUCCESS');

  const get = await httpCall(c, 'GET', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'deactivate' },
  });
  assert.is(get.status, 200, get.text);
  assert.equal(get.body, {
    action: 'deactivate',
    node_id: a.nodeId,
    success: true,
    task_id: get.body.task_id,
  });
  assert.is.not(get.body.task_id, post.body.task_id);
  const task = await waitTask(c, admin, get.body.task_id);
  assert.is(task.final.state, 'SUCCESS');
  assert.equal(Object.keys(task.final).sort(), [
    'action',
    'created_at',
    'error',
    'finished_at',
    'node_id',
    'progress',
    'started_at',
    'state',
    'task_id',
  ]);
});

test('errors: bodies of POST/PUT /v1/sign', async () => {
  const post = (body: unknown) => httpCall(c, 'POST', '/v1/sign', { token: admin, body });
  const put = (body: unknown) => httpCall(c, 'PUT', '/v1/sign', { token: admin, body });
  assertSignError(await post({}), 400); // missing server_id
  assertSignError(await post({ server_id: 123 }), 400); // not a string
  assertSignError(await post({ server_id: ['x'] }), 400);
  assertSignError(await post({ server_id: '' }), 400);
  assertSignError(await post({ server_id: 'x'.repeat(65) }), 400);
  assertSignError(await put({}), 400);
  assertSignError(await put({ server_id: 7 }), 400);
  assertSignError(await httpCall(c, 'POST', '/v1/sign', { token: admin, raw: '{"server_id": ' }), 400);
  assertSignError(await httpCall(c, 'PUT', '/v1/sign', { token: admin, raw: 'not json' }), 400);
});

test('errors: unknown server 404, already signed 409, PUT without a signature 404', async () => {
  assertSignError(
    await httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: randomUUID() } }),
    404,
  );
  assertSignError(
    await httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: vmA.uuid } }),
    409,
  );
  assertSignError(await httpCall(c, 'PUT', '/v1/sign', { token: admin, body: { server_id: vmC.uuid } }), 404);
  assertSignError(
    await httpCall(c, 'PUT', '/v1/sign', { token: admin, body: { server_id: randomUUID() } }),
    404,
  );
  assertSignError(await httpCall(c, 'GET', `/v1/sign/${vmC.uuid}`, { token: admin }), 404);
  assertSignError(await httpCall(c, 'GET', `/v1/sign/${randomUUID()}/manifest`, { token: admin }), 404);
  // nothing was created by the failures
  const list = await httpCall(c, 'GET', '/v1/sign', { token: admin });
  assert.is(list.body.signs.length, 2);
});

test('errors: node actions and tasks', async () => {
  const action = (node: string, body?: unknown, raw?: string, method = 'POST') =>
    httpCall(c, method, `/v1/sign/node/${node}/action`, { token: admin, body, raw });
  assertSignError(await action(String(a.nodeId), { action: 'explode' }), 400); // unknown action
  assertSignError(await action(String(a.nodeId), {}), 400); // missing action
  assertSignError(await action(String(a.nodeId), { action: 7 }), 400);
  assertSignError(await action(String(a.nodeId), undefined, undefined, 'GET'), 400); // GET without a body
  assertSignError(await action(String(a.nodeId), undefined, '{"action": "activ', 'GET'), 400); // malformed
  assertSignError(await action(String(a.nodeId), undefined, '{"action": "activ'), 400); // malformed
  for (const bad of ['abc', '1.5', '0', '-1', '1e3', '99999999999'])
    assertSignError(await action(bad, { action: 'activate' }), 400); // non-integer node id
  assertSignError(await action('999', { action: 'activate' }), 404); // unknown node
  assertSignError(await httpCall(c, 'GET', '/v1/nodes/abc', { token: admin }), 400);
  assertSignError(await httpCall(c, 'GET', '/v1/nodes/999', { token: admin }), 404);
  assertSignError(await httpCall(c, 'GET', `/v1/tasks/${randomUUID()}`, { token: admin }), 404); // unknown task
  assertSignError(await httpCall(c, 'GET', '/v1/tasks/nope', { token: admin }), 404);
});

test('errors: list paging parameters', async () => {
  for (const q of ['offset=-1', 'limit=0', 'limit=abc', '$limit=-3', 'offset=x'])
    assertSignError(await httpCall(c, 'GET', `/v1/sign?${q}`, { token: admin }), 400);
});

test('errors: no token 401, a plain user 403, an unknown path 404', async () => {
  const routes: Array<[string, string, unknown?]> = [
    ['GET', '/v1/sign'],
    ['GET', '/sign'],
    ['GET', `/v1/sign/${vmA.uuid}`],
    ['GET', `/v1/sign/${vmA.uuid}/manifest`],
    ['POST', '/v1/sign', { server_id: vmC.uuid }],
    ['PUT', '/v1/sign', { server_id: vmA.uuid }],
    ['POST', `/v1/sign/node/${a.nodeId}/action`, { action: 'activate' }],
    ['GET', `/v1/sign/node/${a.nodeId}/action`, { action: 'activate' }],
    ['GET', `/v1/tasks/${randomUUID()}`],
    ['POST', '/v1/nodes', { name: 'sneaky' }],
    ['GET', '/v1/nodes'],
  ];
  for (const [method, path, body] of routes) {
    assertSignError(await httpCall(c, method, path, { body }), 401);
    assertSignError(await httpCall(c, method, path, { body, token: 'not-a-session' }), 401);
    assertSignError(await httpCall(c, method, path, { body, token: user }), 403);
  }
  assertSignError(await httpCall(c, 'GET', '/v1/sign/a/b/c', { token: admin }), 404);
  // still only the two signatures, the node still inactive
  assert.is((await httpCall(c, 'GET', '/v1/sign', { token: admin })).body.signs.length, 2);
  assert.is(
    (await httpCall(c, 'GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node.validation_active,
    false,
  );
});

test('two concurrent POSTs for one server: one 200, one 409, one signature', async () => {
  const post = () => httpCall(c, 'POST', '/v1/sign', { token: admin, body: { server_id: vmD.uuid } });
  const results = await Promise.all([post(), post(), post()]);
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses, [200, 409, 409], results.map((r) => r.text).join('\n'));
  for (const r of results) if (r.status === 409) assertSignError(r, 409);
  const list = (await httpCall(c, 'GET', '/v1/sign', { token: admin })).body.signs;
  assert.is(list.filter((s: any) => s.server_id === vmD.uuid).length, 1);
});

/** Stops the controller, writes a task row straight into its database, starts it again. */
async function injectTask(state: 'PENDING' | 'RUNNING', action: 'activate' | 'deactivate'): Promise<string> {
  await c.stop();
  const db = await openDatabase(c.config.database || join(c.dataDir, 'controller.db'));
  const id = randomUUID();
  const now = new Date().toISOString();
  try {
    await new SignStore(db).insertTask({
      id,
      action,
      nodeId: a.nodeId,
      state,
      progress: state === 'RUNNING' ? 40 : 0,
      createdAt: now,
      startedAt: state === 'RUNNING' ? now : null,
      finishedAt: null,
      error: null,
    });
  } finally {
    await db.close();
  }
  await c.start();
  admin = await c.adminToken();
  return id;
}

test('a task left RUNNING by a stopped controller is resumed at the next start and finishes', async () => {
  const id = await injectTask('RUNNING', 'activate');
  const { final } = await waitTask(c, admin, id);
  assert.is(final.state, 'SUCCESS', final.error);
  assert.is(final.progress, 100);
  assert.is(
    (await httpCall(c, 'GET', `/v1/nodes/${a.nodeId}`, { token: admin })).body.node.validation_active,
    true,
  );
  // activation signed the rest of the node's instances
  const ids = (await httpCall(c, 'GET', '/v1/sign', { token: admin })).body.signs.map(
    (s: any) => s.server_id,
  );
  assert.ok(ids.includes(vmC.uuid));
});

test('a task submitted while the agent is down is finished and still queryable after a restart', async () => {
  await a.stopAgent(); // so the task cannot finish before the controller stops
  const r = await httpCall(c, 'POST', `/v1/sign/node/${a.nodeId}/action`, {
    token: admin,
    body: { action: 'deactivate' },
  });
  assert.is(r.status, 200, r.text);
  await c.stop();
  await a.restartAgent();
  await c.start();
  admin = await c.adminToken();
  const { final } = await waitTask(c, admin, r.body.task_id);
  assert.ok(['SUCCESS', 'FAILURE'].includes(final.state));
  assert.match(final.finished_at, RFC1123);
});

test('a PENDING task whose agent is gone at restart ends FAILURE with its reason, never lost', async () => {
  await a.stopAgent();
  const id = await injectTask('PENDING', 'deactivate');
  const { final } = await waitTask(c, admin, id);
  assert.is(final.state, 'FAILURE');
  assert.match(final.error, /unreachable/);
  await a.restartAgent();
});

test.run();
