/**
 * Files and logs that hold secrets, and ids in paths:
 *  - controller.db, its -wal/-shm and endpoints.json are 0600 whatever the umask (and a database left
 *    0644 by an older version is fixed at start); the agent's database too;
 *  - query strings are redacted in request logs (values replaced, parameter names kept);
 *  - path ids are parsed strictly (`+1`, `0x10`, ` 1`, `1e1`, `01` are not ids; UUIDs are canonical),
 *    refused with a 4xx in the group's format.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Database } from '../../../lib/store/database.js';
import { AgentStore } from '../../../agent/src/store/agent-store.js';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import { spawnController, stopController, type SpawnedController } from '../../helpers/controller-process.js';
import { redactUrl } from '../../../controller/src/http/app.js';
import { watchdog } from '../../helpers/wait.js';

const temps: string[] = [];
const children = new Set<ChildProcess>();
watchdog(180, () => {
  for (const child of children) child.kill('SIGKILL');
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'vmwarden-hard-'));
  temps.push(d);
  return d;
}
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8).padStart(4, '0');

let c: TestController;
test.before(async () => {
  c = await startTestController();
});
test.after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await c?.destroy();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

test('controller process (umask 022): db, -wal, -shm and endpoints.json are 0600; query values are not logged', async () => {
  const old = process.umask(0o022);
  const dataDir = tempDir();
  // A database left world-readable by an older version, with a stale WAL: fixed at start.
  writeFileSync(join(dataDir, 'controller.db'), '');
  chmodSync(join(dataDir, 'controller.db'), 0o644);
  let spawned: SpawnedController;
  try {
    spawned = await spawnController(dataDir, {
      https: '127.0.0.1:0',
      grpc: '127.0.0.1:0',
      logLevel: 'info',
      env: { PATH: process.env.PATH ?? '' },
      keepLog: true,
    });
  } finally {
    process.umask(old);
  }
  const { child, log } = spawned;
  children.add(child);
  const endpoints = JSON.parse(readFileSync(join(dataDir, 'endpoints.json'), 'utf8'));
  const base = `http://${endpoints.http}`;
  const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
  const login = await fetch(`${base}/authenticate?method=password`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  assert.is(login.status, 200);
  const token = ((await login.json()) as any).data.token as string;
  // A token pasted into a URL, and a bare token as the whole query.
  await fetch(`${base}/current-identity?token=${token}&limit=10`);
  await fetch(`${base}/v1/instances?${token}`);

  for (const f of [
    'controller.db',
    'controller.db-wal',
    'controller.db-shm',
    'endpoints.json',
    'admin-password',
  ]) {
    assert.ok(existsSync(join(dataDir, f)), `${f} missing`);
    assert.is(mode(join(dataDir, f)), '0600', f);
  }
  await stopController(child);
  children.delete(child);
  const out = log();

  assert.not.ok(out.includes(token), 'the token was logged');
  assert.ok(out.includes('/current-identity?token=[redacted]&limit=[redacted]'), out.slice(-2000));
  assert.ok(out.includes('/v1/instances?[redacted]'), out.slice(-2000));
  // The password went in a body, never in a log.
  assert.not.ok(out.includes(password));
});

test('redactUrl: values go, names stay; odd shapes too', () => {
  assert.is(redactUrl('/a'), '/a');
  assert.is(redactUrl('/a?'), '/a?');
  assert.is(redactUrl('/a?x=1&y=&z'), '/a?x=[redacted]&y=[redacted]&z=[redacted]');
  assert.is(redactUrl('/a?x=1=2&&b=c'), '/a?x=[redacted]&&b=[redacted]');
  assert.is(redactUrl(`/a?${'k'.repeat(43)}`), '/a?[redacted]');
  assert.is(redactUrl('/a?sec%20ret=1'), '/a?[redacted]');
});

test('Database.open: new and pre-existing files end 0600 under umask 0; the agent store too', async () => {
  const old = process.umask(0);
  const dir = tempDir();
  try {
    const path = join(dir, 'x.db');
    writeFileSync(path, '');
    chmodSync(path, 0o666);
    const db = await Database.open(path);
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.run('INSERT INTO t VALUES (1)');
    for (const f of ['x.db', 'x.db-wal', 'x.db-shm']) assert.is(mode(join(dir, f)), '0600', f);
    await db.close();

    const agentPath = join(dir, 'agent.db');
    const store = await AgentStore.open(agentPath);
    for (const f of ['agent.db', 'agent.db-wal', 'agent.db-shm'])
      if (existsSync(join(dir, f))) assert.is(mode(join(dir, f)), '0600', f);
    assert.ok(existsSync(agentPath));
    await store.close();
  } finally {
    process.umask(old);
  }
});

// --- Strict path ids --------------------------------------------------------------------------

const NOT_IDS = ['+1', '0x10', '%201', '1%20', '1e1', '01', '1.0', '-1', '00'];

function accessError(r: Reply, status = 400) {
  assert.is(r.status, status, r.text);
  assert.type(r.body.error, 'string', r.text);
  assert.is(r.body.code, status);
  for (const k of Object.keys(r.body)) assert.ok(['code', 'error', 'details'].includes(k), r.text);
}
function zitiError(r: Reply, status = 400) {
  assert.is(r.status, status, r.text);
  assert.type(r.body.error, 'object', r.text);
  assert.type(r.body.error.code, 'string');
  assert.type(r.body.meta, 'object');
}
function signError(r: Reply, status = 400) {
  assert.is(r.status, status, r.text);
  assert.equal(Object.keys(r.body), ['error'], r.text);
  assert.type(r.body.error, 'string');
}
function comanageError(r: Reply, field: string) {
  assert.is(r.status, 400, r.text);
  assert.is(r.body.ResponseType, 'ErrorResponse');
  assert.ok(r.body.InvalidFields?.[field], r.text);
}

test('access: CA ids and certificate ids', async () => {
  const admin = await c.adminToken();
  for (const id of NOT_IDS) accessError(await c.call('POST', `/v1/access/ca/${id}/retire`, { token: admin }));
  accessError(await c.call('POST', '/v1/access/ca/9999/retire', { token: admin }), 404);
  const uuid = randomUUID();
  for (const id of [
    uuid.toUpperCase(),
    `urn:uuid:${uuid}`,
    `{${uuid}}`,
    uuid.replace(/-/g, ''),
    `${uuid} `,
  ]) {
    accessError(await c.call('GET', `/v1/access/certificate/${encodeURIComponent(id)}`, { token: admin }));
    accessError(await c.call('DELETE', `/v1/access/certificate/${encodeURIComponent(id)}`, { token: admin }));
  }
  accessError(await c.call('GET', `/v1/access/certificate/${uuid}`, { token: admin }), 404);
});

test('identities: ids are canonical UUIDs', async () => {
  const admin = await c.adminToken();
  const me = (await c.call('GET', '/current-identity', { token: admin })).body.data.id as string;
  zitiError(await c.call('GET', `/identities/${me.toUpperCase()}`, { token: admin }));
  zitiError(await c.call('GET', `/identities/urn:uuid:${me}`, { token: admin }));
  zitiError(await c.call('PATCH', `/identities/${me.toUpperCase()}`, { token: admin, body: { name: 'x' } }));
  assert.is((await c.call('GET', `/identities/${me}`, { token: admin })).status, 200);
});

test('sign: node ids', async () => {
  const admin = await c.adminToken();
  for (const id of NOT_IDS) {
    signError(await c.call('GET', `/v1/nodes/${id}`, { token: admin }));
    signError(
      await c.call('POST', `/v1/sign/node/${id}/action`, { token: admin, body: { action: 'activate' } }),
    );
  }
  signError(await c.call('GET', '/v1/nodes/1234567890123456', { token: admin }));
  signError(await c.call('GET', '/v1/nodes/999', { token: admin }), 404);
});

test('key registry: key and authenticator ids', async () => {
  const admin = await c.adminToken();
  for (const id of ['+1', '0x10', '%201', '1e1', '01', '1.0', '-1'])
    comanageError(await c.call('GET', `/ssh_key_authenticator/ssh_keys/${id}.json`, { token: admin }), 'Id');
  for (const id of ['01', '+1', '0x10'])
    comanageError(
      await c.call('GET', `/ssh_key_authenticator/authenticators/${id}.json`, { token: admin }),
      'Id',
    );
  assert.is((await c.call('GET', '/ssh_key_authenticator/ssh_keys/0.json', { token: admin })).status, 404);
  assert.is((await c.call('GET', '/ssh_key_authenticator/ssh_keys/999.json', { token: admin })).status, 404);
});

test.run();
