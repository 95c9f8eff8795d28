// Benchmark of certificate issuing (npm run bench:certs).
//
// 1. Spawns the real controller (dist/controller/src/main.js), HTTP only, logs its admin in, registers
//    one running instance, then issues certificates through POST /v1/access/request at concurrency
//    BENCH_CONCURRENCY (16) for BENCH_SECONDS (10) s over keep-alive connections: certificates/s, p50
//    and p99 latency. The load generator is a minimal HTTP/1.1 client (keepalive-client.ts): node's
//    http client took 0.4 of the 2 cores, CPU the controller needs. Then checks that every 200 is a
//    committed record (GET /v1/access/certificates?limit=1 → total). Three modes in the same run:
//    - sqlite: one controller on SQLite in its temp data dir (as in production: WAL, synchronous=NORMAL);
//    - postgres1: one controller on PostgreSQL (a throwaway cluster, durable like production: fsync,
//      full_page_writes and synchronous_commit on, see startPostgres({ durable: true }); unix socket;
//      otherwise PostgreSQL's defaults: shared_buffers 128MB holds a run's few tens of MB, and a run
//      writes far less WAL than max_wal_size, so no checkpoint tuning matters here);
//    - postgres2: two controller processes on one PostgreSQL database (sharing the key-encryption key
//      file), the same total concurrency split evenly over both; the total is counted once (shared database).
//    For each mode, CPU seconds per 1,000 certificates of the controller process(es) and of PostgreSQL
//    (the postmaster and its children: /proc/<pid>/stat, exited children included): where the time goes;
//    and, sampled in pg_stat_activity, how many controller connections wait for the write lock.
// 2. The original implementation's way: one `ssh-keygen -s ca_key -I id -n principal -V +5m -z serial
//    user.pub` process per certificate, same concurrency and duration: signs/s.
// Targets: SQLite ≥ 3,000 certificates/s with every record committed and ≥ 12× the ssh-keygen rate;
// one controller on PostgreSQL ≥ 0.5× SQLite; two controllers on PostgreSQL ≥ one.
// BENCH_MODES=sqlite,postgres1,postgres2 picks modes (all by default).
// The last line printed is one JSON object with all figures.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { spawnController, stopController } from '../helpers/controller-process.js';
import { KeepAliveClient } from './keepalive-client.js';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const TARGET_RATE = 3000;
const TARGET_RATIO = 12;
const TARGET_PG1_VS_SQLITE = 0.5;
const TARGET_PG2_VS_PG1 = 1;

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`)),
    );
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });

interface Res {
  status: number;
  text: string;
}

function call(base: string, method: string, path: string, token?: string, body?: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = {};
    if (token) headers['zt-session'] = token;
    if (data) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = data.length;
    }
    const req = request(base + path, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;

/** CPU seconds of a process, its own and its reaped children's (utime, stime, cutime, cstime). */
function procCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0; // gone
  }
}

/** CPU seconds of a PostgreSQL cluster: the postmaster, its live children and those it reaped. */
function clusterCpu(cluster: PgCluster): number {
  const postmaster = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let children: number[] = [];
  try {
    children = execFileSync('pgrep', ['-P', String(postmaster)])
      .toString()
      .trim()
      .split('\n')
      .map(Number);
  } catch {
    // no children
  }
  return procCpu(postmaster) + children.reduce((sum, pid) => sum + procCpu(pid), 0);
}

interface Setup {
  bases: string[];
  tokens: string[];
  serverId: string;
  controllerPids: number[];
  cluster?: PgCluster;
}

async function login(base: string, dataDir: string): Promise<string> {
  const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
  const r = await call(base, 'POST', '/authenticate?method=password', undefined, {
    username: 'admin',
    password,
  });
  if (r.status !== 200) throw new Error(`admin login: ${r.status} ${r.text}`);
  return JSON.parse(r.text).data.token as string;
}

async function createInstance(base: string, token: string): Promise<string> {
  const serverId = randomUUID();
  const inst = await call(base, 'POST', '/v1/instances', token, {
    server_id: serverId,
    instance_name: 'bench-vm',
    ip_address: '192.0.2.10',
    ssh_port: 22,
    login_user: 'debian',
    state: 'running',
  });
  if (inst.status !== 201) throw new Error(`create instance: ${inst.status} ${inst.text}`);
  return serverId;
}

interface ModeResult {
  controllers: number;
  certificates: number;
  seconds: number;
  certificatesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: Record<string, number>;
  warmup: number;
  committedTotal: number;
  allCommitted: boolean;
  clientCores: number;
  /** CPU seconds per 1,000 certificates. */
  cpuPer1000: { controllers: number; postgres?: number; loadGenerator: number };
  /**
   * Sampled every 50 ms in pg_stat_activity: controller connections waiting for the write lock
   * (`advisory`) and running a statement, on average; waiting/running is the share of the database
   * work that queues for the lock.
   */
  writeLock?: { waiting: number; active: number; samples: number };
  /** Cores busy on average during the measured window. */
  cores: { controllers: number; postgres?: number; loadGenerator: number };
}

async function measure(setup: Setup, userPub: string): Promise<ModeResult> {
  const body = JSON.stringify({ sandbox_id: setup.serverId, public_key: userPub, ttl_minutes: 5 });
  const clients = await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      const { hostname, port } = new URL(setup.bases[i % setup.bases.length]!);
      const request = KeepAliveClient.encode(
        'POST',
        '/v1/access/request',
        `${hostname}:${port}`,
        { 'zt-session': setup.tokens[i % setup.tokens.length]!, 'content-type': 'application/json' },
        body,
      );
      return { client: await KeepAliveClient.open(hostname, Number(port)), request };
    }),
  );

  // Warm-up (JIT, connections): not counted, but committed, so counted in the total check.
  let warm = 0;
  const warmFailures: Record<string, number> = {};
  for (const until = Date.now() + 1000; Date.now() < until;) {
    await Promise.all(
      clients.map(async ({ client, request }) => {
        const status = await client.send(request);
        if (status === 200) warm++;
        else warmFailures[status] = (warmFailures[status] ?? 0) + 1;
      }),
    );
  }
  if (Object.keys(warmFailures).length) throw new Error(`warm-up failures: ${JSON.stringify(warmFailures)}`);

  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  let ok = 0;
  const controllerCpu = () => setup.controllerPids.reduce((sum, pid) => sum + procCpu(pid), 0);
  const locks = setup.cluster ? await sampleLockWaits(setup.cluster) : undefined;
  const ctl0 = controllerCpu();
  const pg0 = setup.cluster ? clusterCpu(setup.cluster) : 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(
    clients.map(async ({ client, request }) => {
      while (performance.now() < deadline) {
        const s = performance.now();
        try {
          const status = await client.send(request);
          latencies.push(performance.now() - s);
          if (status === 200) ok++;
          else failures[status] = (failures[status] ?? 0) + 1;
        } catch (e) {
          failures[(e as Error).message] = (failures[(e as Error).message] ?? 0) + 1;
          break;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const ctlCpu = controllerCpu() - ctl0;
  const pgCpu = setup.cluster ? clusterCpu(setup.cluster) - pg0 : undefined;
  const lockWaits = await locks?.stop();
  const clientCpu = process.cpuUsage(cpu0);
  const clientSeconds = (clientCpu.user + clientCpu.system) / 1e6;
  clients.forEach(({ client }) => client.close());
  latencies.sort((a, b) => a - b);

  // The database is shared: one controller's count is everyone's.
  const list = await call(setup.bases[0]!, 'GET', '/v1/access/certificates?limit=1', setup.tokens[0]);
  const total = JSON.parse(list.text).total as number;
  const per1000 = (cpu: number) => r2((cpu / Math.max(1, ok)) * 1000);
  return {
    controllers: setup.bases.length,
    certificates: ok,
    seconds: r2(elapsed),
    certificatesPerSecond: r1(ok / elapsed),
    p50Ms: r2(percentile(latencies, 50)),
    p99Ms: r2(percentile(latencies, 99)),
    failures,
    warmup: warm,
    committedTotal: total,
    allCommitted: total === ok + warm,
    clientCores: r2(clientSeconds / elapsed),
    cpuPer1000: {
      controllers: per1000(ctlCpu),
      ...(pgCpu === undefined ? {} : { postgres: per1000(pgCpu) }),
      loadGenerator: per1000(clientSeconds),
    },
    ...(lockWaits && { writeLock: lockWaits }),
    cores: {
      controllers: r2(ctlCpu / elapsed),
      ...(pgCpu === undefined ? {} : { postgres: r2(pgCpu / elapsed) }),
      loadGenerator: r2(clientSeconds / elapsed),
    },
  };
}

/** Samples pg_stat_activity until stop(): how many controller connections wait for the write lock. */
async function sampleLockWaits(cluster: PgCluster) {
  const client = new pg.Client({ connectionString: cluster.url() });
  await client.connect();
  let waiting = 0;
  let active = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const r = await client.query<{ waiting: number; active: number }>(
        `SELECT count(*) FILTER (WHERE wait_event = 'advisory')::int AS waiting,
                count(*) FILTER (WHERE state = 'active')::int AS active
           FROM pg_stat_activity WHERE application_name = 'vmwarden-controller'`,
      );
      waiting += r.rows[0]!.waiting;
      active += r.rows[0]!.active;
      samples++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await client.end();
      return {
        waiting: r2(waiting / Math.max(1, samples)),
        active: r2(active / Math.max(1, samples)),
        samples,
      };
    },
  };
}

/** Starts `n` controllers on `database` ('' = SQLite in the first one's data dir), logs in on each. */
async function startControllers(
  tmp: string,
  name: string,
  n: number,
  children: ChildProcess[],
  database?: { url: string; keyFile: string; cluster: PgCluster },
): Promise<Setup> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')),
  );
  if (database) {
    env.VMWARDEN_DATABASE_URL = database.url;
    env.VMWARDEN_KEY_ENCRYPTION_KEY_FILE = database.keyFile;
  }
  const bases: string[] = [];
  const dirs: string[] = [];
  // One after the other: the first creates the schema, the CA and the admin (its data dir has the password).
  for (let i = 0; i < n; i++) {
    const dir = join(tmp, `${name}-${i}`);
    const started = await spawnController(dir, { env });
    children.push(started.child);
    bases.push(started.base);
    dirs.push(dir);
  }
  const tokens = await Promise.all(bases.map((base) => login(base, dirs[0]!)));
  const serverId = await createInstance(bases[0]!, tokens[0]!);
  return {
    bases,
    tokens,
    serverId,
    controllerPids: children.slice(-n).map((c) => c.pid!),
    cluster: database?.cluster,
  };
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.splice(0).map((c) => stopController(c)));
}

async function main() {
  const modes = (process.env.BENCH_MODES ?? 'sqlite,postgres1,postgres2').split(',');
  const tmp = mkdtempSync(join(tmpdir(), 'vmwarden-bench-certs-'));
  const children: ChildProcess[] = [];
  let cluster: PgCluster | undefined;
  try {
    // User key and CA key made by the real ssh-keygen.
    const userKey = join(tmp, 'id_user');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench@vmwarden', '-f', userKey]);
    const userPub = readFileSync(`${userKey}.pub`, 'utf8').trim();
    const caKey = join(tmp, 'ca_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-ca', '-f', caKey]);

    // ---- 1. the controller(s) ----
    const results: Record<string, ModeResult> = {};
    let pgSettings: Record<string, string> | undefined;
    for (const mode of modes) {
      let database: { url: string; keyFile: string; cluster: PgCluster } | undefined;
      if (mode !== 'sqlite') {
        cluster ??= startPostgres({ durable: true });
        const keyFile = join(tmp, `${mode}.key`);
        writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
        database = { url: await cluster.createDatabase('bench'), keyFile, cluster };
        pgSettings ??= await serverSettings(database.url);
      }
      const n = mode === 'postgres2' ? 2 : 1;
      const setup = await startControllers(tmp, mode, n, children, database);
      results[mode] = await measure(setup, userPub);
      await stopAll(children);
    }
    await cluster?.stop();
    cluster = undefined;

    // ---- 2. ssh-keygen, one process per certificate ----
    const pubs = Array.from({ length: CONCURRENCY }, (_, i) => {
      const p = join(tmp, `w${i}.pub`);
      copyFileSync(`${userKey}.pub`, p);
      return p;
    });
    const principal = `vm-${randomUUID()}`;
    let signs = 0;
    let serial = 1;
    const k0 = performance.now();
    const kDeadline = k0 + SECONDS * 1000;
    await Promise.all(
      pubs.map(async (pub) => {
        while (performance.now() < kDeadline) {
          const z = serial++;
          await run('ssh-keygen', [
            '-q',
            '-s',
            caKey,
            '-I',
            `user:bench-cert:${z}`,
            '-n',
            principal,
            '-V',
            '+5m',
            '-z',
            String(z),
            pub,
          ]);
          signs++;
        }
      }),
    );
    const kElapsed = (performance.now() - k0) / 1000;
    const keygenRate = signs / kElapsed;

    console.log(
      `machine: ${availableParallelism()} CPUs, load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; concurrency ${CONCURRENCY}, ${SECONDS} s per phase`,
    );
    if (pgSettings)
      console.log(
        `postgres: ${Object.entries(pgSettings)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
    const ok = (m?: ModeResult) => !!m && m.allCommitted && Object.keys(m.failures).length === 0;
    for (const [mode, m] of Object.entries(results)) {
      const cpu = m.cpuPer1000;
      console.log(
        `${mode} (${m.controllers} controller${m.controllers > 1 ? 's' : ''}): ${m.certificates} certificates in ${m.seconds} s = ${m.certificatesPerSecond} certificates/s; ` +
          `latency p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms` +
          (Object.keys(m.failures).length ? `; failures ${JSON.stringify(m.failures)}` : '') +
          `; committed: total ${m.committedTotal} = ${m.certificates} + ${m.warmup} warm-up: ${m.allCommitted ? 'yes' : 'NO'}; ` +
          `CPU s per 1000 certificates: controller${m.controllers > 1 ? 's' : ''} ${cpu.controllers}` +
          (cpu.postgres === undefined ? '' : `, postgres ${cpu.postgres}`) +
          `, load generator ${cpu.loadGenerator}` +
          (m.writeLock
            ? `; connections waiting for the write lock ${m.writeLock.waiting}, running a statement ${m.writeLock.active} (average)`
            : ''),
      );
    }
    const sqlite = results.sqlite;
    const pg1 = results.postgres1;
    const pg2 = results.postgres2;
    const ratio = sqlite ? sqlite.certificatesPerSecond / keygenRate : NaN;
    const pg1VsSqlite = sqlite && pg1 ? pg1.certificatesPerSecond / sqlite.certificatesPerSecond : NaN;
    const pg2VsPg1 = pg1 && pg2 ? pg2.certificatesPerSecond / pg1.certificatesPerSecond : NaN;
    console.log(`ssh-keygen -s per certificate: ${signs} in ${r2(kElapsed)} s = ${r1(keygenRate)} signs/s`);
    console.log(
      `ratios: sqlite/ssh-keygen ${r1(ratio)}x (target ${TARGET_RATIO}x); postgres1/sqlite ${r2(pg1VsSqlite)}x ` +
        `(target ${TARGET_PG1_VS_SQLITE}x); postgres2/postgres1 ${r2(pg2VsPg1)}x (target ${TARGET_PG2_VS_PG1}x)`,
    );
    const met = {
      rate: !!sqlite && sqlite.certificatesPerSecond >= TARGET_RATE && ok(sqlite),
      ratio: ratio >= TARGET_RATIO,
      postgres1VsSqlite: pg1VsSqlite >= TARGET_PG1_VS_SQLITE && ok(pg1),
      postgres2VsPostgres1: pg2VsPg1 >= TARGET_PG2_VS_PG1 && ok(pg2),
    };
    console.log(
      `targets: sqlite >= ${TARGET_RATE}/s with every record committed: ${met.rate ? 'met' : 'NOT met'}; ` +
        `>= ${TARGET_RATIO}x ssh-keygen: ${met.ratio ? 'met' : 'NOT met'}; ` +
        `postgres1 >= ${TARGET_PG1_VS_SQLITE}x sqlite, all committed: ${met.postgres1VsSqlite ? 'met' : 'NOT met'}; ` +
        `postgres2 >= ${TARGET_PG2_VS_PG1}x postgres1, all committed: ${met.postgres2VsPostgres1 ? 'met' : 'NOT met'}`,
    );
    console.log(
      JSON.stringify({
        bench: 'certs',
        cpus: availableParallelism(),
        load: loadavg().map(r2),
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        // SQLite's figures at the top level, as before the PostgreSQL modes.
        ...(sqlite && {
          certificates: sqlite.certificates,
          certificatesPerSecond: sqlite.certificatesPerSecond,
          p50Ms: sqlite.p50Ms,
          p99Ms: sqlite.p99Ms,
          clientCores: sqlite.clientCores,
          failures: sqlite.failures,
          committedTotal: sqlite.committedTotal,
          warmup: sqlite.warmup,
          allCommitted: sqlite.allCommitted,
        }),
        modes: results,
        postgresSettings: pgSettings,
        sshKeygenSigns: signs,
        sshKeygenPerSecond: r1(keygenRate),
        ratio: r1(ratio),
        ratios: {
          sqliteVsSshKeygen: r1(ratio),
          postgres1VsSqlite: r2(pg1VsSqlite),
          postgres2VsPostgres1: r2(pg2VsPg1),
        },
        targets: {
          certificatesPerSecond: TARGET_RATE,
          ratio: TARGET_RATIO,
          postgres1VsSqlite: TARGET_PG1_VS_SQLITE,
          postgres2VsPostgres1: TARGET_PG2_VS_PG1,
        },
        targetsMet: { ...met, all: Object.values(met).every(Boolean) },
      }),
    );
  } finally {
    await stopAll(children);
    await cluster?.stop();
    agent.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The server settings that decide commit cost, as the bench's cluster runs them. */
async function serverSettings(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const names = [
      'server_version',
      'fsync',
      'synchronous_commit',
      'full_page_writes',
      'wal_sync_method',
      'shared_buffers',
    ];
    const r = await client.query<{ name: string; setting: string }>(
      'SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name ORDER BY name',
      [names],
    );
    return Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
