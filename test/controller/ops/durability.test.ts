/**
 * kill -9 under load: certificates are issued at concurrency 16 through the real controller process,
 * which is killed with SIGKILL while requests are in flight. After a restart on the same data dir,
 * every certificate whose request got a 200 exists, and so does its `certificate.issue` audit row.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawnController, stopController } from '../../helpers/controller-process.js';
import { cleanUp } from '../../helpers/cleanup.js';
import { makeUserKey } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(300);

const CONCURRENCY = 16;
/** Issued certificates before the kill (the kill lands while the next 16 are in flight). */
const BEFORE_KILL = 400;

const tmp = mkdtempSync(join(tmpdir(), 'vmwarden-durability-'));
const dataDir = join(tmp, 'data');
let child: ChildProcess | undefined;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

test.after(() =>
  cleanUp({
    controller: () => child && stopController(child),
    sockets: () => agent.destroy(),
    'temp dir': () => rmSync(tmp, { recursive: true, force: true }),
  }),
);

function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  return new Promise<{ status: number; body: any }>((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (token) headers['zt-session'] = token;
    if (data) Object.assign(headers, { 'content-type': 'application/json', 'content-length': data.length });
    const req = request(base + path, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function adminToken(base: string) {
  const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
  const r = await call(base, 'POST', '/authenticate?method=password', undefined, {
    username: 'admin',
    password,
  });
  assert.is(r.status, 200, JSON.stringify(r.body));
  return r.body.data.token as string;
}

test('every certificate answered 200 before kill -9 is there after the restart, with its audit row', async () => {
  const first = await spawnController(dataDir);
  child = first.child;
  let token = await adminToken(first.base);
  const serverId = randomUUID();
  const inst = await call(first.base, 'POST', '/v1/instances', token, {
    server_id: serverId,
    instance_name: 'durability-vm',
    ip_address: '192.0.2.10',
    ssh_port: 22,
    login_user: 'debian',
    state: 'running',
  });
  assert.is(inst.status, 201, JSON.stringify(inst.body));
  const key = await makeUserKey(tmp, 'user', 'ed25519');
  const body = { sandbox_id: serverId, public_key: key.pub, ttl_minutes: 5 };

  const answered: string[] = [];
  let cut = 0;
  let killed = false;
  const exited = new Promise((resolve) => first.child.once('exit', resolve));
  const worker = async () => {
    while (!killed) {
      try {
        const r = await call(first.base, 'POST', '/v1/access/request', token, body);
        assert.is(r.status, 200, JSON.stringify(r.body));
        answered.push(r.body.certificate_id);
      } catch (err) {
        if (!killed) throw err;
        cut++; // the connection died with the process: this one may or may not have committed
        return;
      }
      if (answered.length >= BEFORE_KILL && !killed) {
        killed = true; // the other workers' requests are in flight
        first.child.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await exited;
  assert.is(first.child.signalCode, 'SIGKILL');
  agent.destroy();
  process.stdout.write(`  ${answered.length} certificates answered 200, ${cut} requests cut by the kill\n`);

  const second = await spawnController(dataDir);
  child = second.child;
  token = await adminToken(second.base);
  for (let i = 0; i < answered.length; i += CONCURRENCY) {
    await Promise.all(
      answered.slice(i, i + CONCURRENCY).map(async (id) => {
        const r = await call(second.base, 'GET', `/v1/access/certificate/${id}`, token);
        assert.is(r.status, 200, `certificate ${id} answered 200 before the kill is gone: ${r.status}`);
        assert.is(r.body.id ?? r.body.certificate_id, id);
      }),
    );
  }
  const audited = new Set<string>();
  for (let offset = 0; ; offset += 1000) {
    const r = await call(
      second.base,
      'GET',
      `/v1/audit?action=certificate.issue&limit=1000&offset=${offset}`,
      token,
    );
    assert.is(r.status, 200, JSON.stringify(r.body));
    for (const e of r.body.entries) if (e.outcome === 'success') audited.add(e.object);
    if (r.body.entries.length < 1000) break;
  }
  const unaudited = answered.filter((id) => !audited.has(id));
  assert.equal(unaudited, [], `${unaudited.length} issued certificates have no audit row`);
});

test.run();
