/**
 * @store once — a controller process on PostgreSQL while the database restarts under load: the
 * process does not crash, requests meanwhile get a clear 503 (never a 500), /readyz says not ready,
 * and everything works again after the restart without restarting the controller.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, type PgCluster } from '../../helpers/postgres.js';
import { spawnController, stopController, type SpawnedController } from '../../helpers/controller-process.js';
import { cleanUp } from '../../helpers/cleanup.js';
import { sleep, waitFor, watchdog } from '../../helpers/wait.js';

watchdog(180);

let pg: PgCluster;
let c: SpawnedController;
const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-dbrestart-'));

test.before(async () => {
  pg = startPostgres();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  c = await spawnController(dataDir, {
    env: { ...env, VMWARDEN_DATABASE_URL: await pg.createDatabase('restart') },
    keepLog: true,
  });
});
test.after(() =>
  cleanUp({
    controller: () => c && stopController(c.child),
    pg: () => pg?.stop(),
    dir: () => rmSync(dataDir, { recursive: true, force: true }),
  }),
);

/** A request; a connection the controller dropped (it crashed) is status 0. */
async function call(method: string, path: string, token?: string, body?: unknown) {
  const r = await fetch(c.base + path, {
    method,
    headers: {
      ...(token ? { 'zt-session': token } : {}),
      ...(body ? { 'content-type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  }).catch((err: Error) => err);
  if (r instanceof Error) return { status: 0, text: `${r.message}: ${c.log().slice(-2000)}` };
  const text = await r.text();
  return { status: r.status, text };
}

test('database restart under load: 503s while it is down, no 500, no crash, recovery without a restart', async () => {
  const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
  const login = await call('POST', '/authenticate?method=password', undefined, {
    username: 'admin',
    password,
  });
  assert.is(login.status, 200, login.text);
  const token = JSON.parse(login.text).data.token as string;
  assert.is((await call('GET', '/readyz')).status, 200);

  const statuses = new Map<number, number>();
  const bodies: string[] = [];
  let loading = true;
  const worker = async (i: number) => {
    for (let n = 0; loading; n++) {
      // reads and writes: list identities, create (and so commit) an identity
      const r =
        n % 2
          ? await call('GET', '/identities?limit=5', token)
          : await call('POST', '/identities', token, {
              name: `load-${i}-${n}`,
              role: 'user',
            });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if ((r.status >= 500 || r.status === 0 || r.status === 400) && bodies.length < 5)
        bodies.push(`${r.status} ${r.text}`);
    }
  };
  const workers = Array.from({ length: 4 }, (_, i) => worker(i));
  await sleep(500);
  pg.stopServer();
  await waitFor('/readyz to say not ready', async () => (await call('GET', '/readyz')).status === 503, {
    timeoutMs: 10_000,
  });
  await sleep(1500);
  pg.startServer();
  await waitFor('/readyz to say ready again', async () => (await call('GET', '/readyz')).status === 200, {
    timeoutMs: 20_000,
  });
  await sleep(500);
  loading = false;
  await Promise.all(workers);

  assert.is(c.child.exitCode, null, 'the controller is still running');
  assert.ok(!statuses.has(500), `no 500: ${JSON.stringify([...statuses])} ${bodies.join(' | ')}`);
  assert.ok((statuses.get(503) ?? 0) > 0, `some requests met the outage: ${JSON.stringify([...statuses])}`);
  const unavailable = bodies.find((b) => b.startsWith('503'));
  assert.ok(!bodies.some((b) => /^(0|400|500) /.test(b)), bodies.join(' | '));
  assert.ok(unavailable && /unavailable/i.test(unavailable), unavailable);
  for (const s of statuses.keys())
    assert.ok(
      [200, 201, 503].includes(s),
      `status ${s}: ${JSON.stringify([...statuses])} ${bodies.join(' | ')}`,
    );
  // Works again: the session (in the database) still holds, a write commits.
  const after = await call('POST', '/identities', token, {
    name: 'after-restart',
    role: 'user',
  });
  assert.ok(after.status === 201 || after.status === 200, after.text);
  assert.is((await call('GET', '/identities?filter=name%3D%22after-restart%22', token)).status, 200);
});

test.run();
