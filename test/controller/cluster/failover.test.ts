/**
 * @store once — a controller killed with SIGKILL while it works, another on the same PostgreSQL
 * carrying on: every certificate that got a 200 from either is committed; a node validation task
 * the dead controller was running is taken over by the other within 30 s and finishes.
 *
 * B runs in this process, A as its own process (so it can be killed). The agent is enrolled
 * through B; controllers reach it through a proxy that can hold new connections, so A's call to the
 * agent is still pending when A dies.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { sharedCluster, startPostgres, type PgCluster } from '../../helpers/postgres.js';
import { spawnController, type SpawnedController } from '../../helpers/controller-process.js';
import { startTestAgent, type TestAgent } from '../../helpers/agent.js';
import { startFreezableProxy, type FreezableProxy } from '../../helpers/freezable-proxy.js';
import { cleanUp } from '../../helpers/cleanup.js';
import { sleep, waitFor, watchdog } from '../../helpers/wait.js';
import { createInstance, makeUserKey, tempDir } from '../access/util.js';

watchdog(300);

let pg: PgCluster;
let ownCluster = false;
let B: TestController;
let database = '';
const dir = mkdtempSync(join(tmpdir(), 'vmwarden-failover-'));
const kekFile = join(dir, 'cluster.key');
const spawned: SpawnedController[] = [];
let agent: TestAgent | undefined;
let proxy: FreezableProxy | undefined;

test.before(async () => {
  pg = sharedCluster() ?? ((ownCluster = true), startPostgres());
  database = await pg.createDatabase('failover');
  writeFileSync(kekFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  B = await startTestController({ database, keyEncryptionKeyFile: kekFile });
});
test.after(() =>
  cleanUp({
    spawned: () => spawned.forEach((s) => s.child.kill('SIGKILL')),
    agent: () => agent?.stop(),
    proxy: () => proxy?.close(),
    B: () => B?.destroy(),
    pg: () => (ownCluster ? pg.stop() : undefined),
    dir: () => rmSync(dir, { recursive: true, force: true }),
  }),
);

/** Controller A: its own process and data dir, the same database and key-encryption key. */
async function startA(): Promise<SpawnedController> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  const a = await spawnController(mkdtempSync(join(dir, 'a-')), {
    env: { ...env, VMWARDEN_DATABASE_URL: database, VMWARDEN_KEY_ENCRYPTION_KEY_FILE: kekFile },
  });
  spawned.push(a);
  return a;
}

async function call(base: string, method: string, path: string, token: string, body?: unknown) {
  const r = await fetch(base + path, {
    method,
    headers: { 'zt-session': token, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, body: (await r.json().catch(() => ({}))) as any };
}

test('SIGKILL of A during an issuing load on A and B: every certificate that got a 200 is committed', async () => {
  const A = await startA();
  const admin = await B.adminToken();
  const { dir: keyDir, cleanup } = await tempDir();
  const key = await makeUserKey(keyDir, 'id_load', 'ed25519');
  const vm = await createInstance(B);
  const body = { sandbox_id: vm.serverId, public_key: key.pub };
  const ok: string[] = [];
  let refused = 0;
  let loading = true;
  const worker = async (base: string) => {
    while (loading) {
      try {
        const r = await call(base, 'POST', '/v1/access/request', admin, body);
        if (r.status === 200) ok.push(r.body.certificate_id);
        else refused++;
      } catch {
        refused++; // A's connections die with it
        if (base === A.base) return;
      }
    }
  };
  const workers = [
    ...Array.from({ length: 6 }, () => worker(A.base)),
    ...Array.from({ length: 6 }, () => worker(B.httpBase)),
  ];
  await sleep(1500);
  const okBeforeKill = ok.length;
  A.child.kill('SIGKILL');
  await sleep(1000);
  loading = false;
  await Promise.all(workers);
  await cleanup();
  assert.ok(okBeforeKill > 20, `load ran on both before the kill (${okBeforeKill} certificates)`);
  const missing: string[] = [];
  for (const id of ok) {
    const r = await B.call('GET', `/v1/access/certificate/${id}`, { token: admin });
    if (r.status !== 200) missing.push(id);
  }
  assert.equal(missing, [], `${ok.length} certificates got a 200 (${refused} refused or cut)`);
});

test('SIGKILL of A during a node validation task: B takes it over within 30 s and it finishes', async () => {
  proxy = await startFreezableProxy();
  agent = await startTestAgent(B, { config: { advertiseAddress: proxy.address } });
  proxy.target = agent.agent.endpoints.grpc!;
  await agent.agent.report();
  const A = await startA();
  const admin = await B.adminToken();
  // A has never called the agent: its first connection is held, so A's task stays mid-call.
  proxy.frozen = true;
  const submitted = await call(A.base, 'POST', `/v1/sign/node/${agent.nodeId}/action`, admin, {
    action: 'activate',
  });
  assert.is(submitted.status, 200, JSON.stringify(submitted.body));
  const taskId = submitted.body.task_id as string;
  await waitFor(
    'A to run the task (its call to the agent held)',
    async () => {
      const t = await B.call('GET', `/v1/tasks/${taskId}`, { token: admin });
      return t.body.state === 'RUNNING' && proxy!.held() > 0;
    },
    { timeoutMs: 10_000 },
  );
  A.child.kill('SIGKILL');
  const killedAt = Date.now();
  proxy.thaw();
  const done = await waitFor(
    'the task to finish on B',
    async () => {
      const t = await B.call('GET', `/v1/tasks/${taskId}`, { token: admin });
      return ['SUCCESS', 'FAILURE'].includes(t.body.state) ? t.body : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250 },
  );
  assert.is(done.state, 'SUCCESS', JSON.stringify(done));
  assert.ok(Date.now() - killedAt < 30_000);
  const node = await B.call('GET', `/v1/nodes/${agent.nodeId}`, { token: admin });
  assert.is(node.status, 200, node.text);
  assert.is(node.body.node.validation_active, true, node.text);
});

test.run();
