// Benchmark of certificate issuing (npm run bench:certs).
//
// 1. Spawns the real controller (dist/controller/src/main.js) on a temp data dir, HTTP only, logs its
//    admin in, registers one running instance, then issues certificates through POST /v1/access/request
//    at concurrency BENCH_CONCURRENCY (16) for BENCH_SECONDS (10) s over keep-alive connections:
//    certificates/s, p50 and p99 latency. The load generator is a minimal HTTP/1.1 client
//    (keepalive-client.ts): node's http client took 0.4 of the 2 cores, CPU the controller needs. Then checks that every 200 is a committed record
//    (GET /v1/access/certificates?limit=1 → total).
// 2. The original implementation's way: one `ssh-keygen -s ca_key -I id -n principal -V +5m -z serial
//    user.pub` process per certificate, same concurrency and duration: signs/s.
// Targets: ≥ 3,000 certificates/s with every record committed, and ≥ 12× the ssh-keygen rate.
// The last line printed is one JSON object with all figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { spawnController, stopController } from '../helpers/controller-process.js';
import { KeepAliveClient } from './keepalive-client.js';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const TARGET_RATE = 3000;
const TARGET_RATIO = 12;

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

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'vmwarden-bench-certs-'));
  const dataDir = join(tmp, 'data');
  let child: ChildProcess | undefined;
  try {
    // User key and CA key made by the real ssh-keygen.
    const userKey = join(tmp, 'id_user');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench@vmwarden', '-f', userKey]);
    const userPub = readFileSync(`${userKey}.pub`, 'utf8').trim();
    const caKey = join(tmp, 'ca_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-ca', '-f', caKey]);

    // ---- 1. the controller ----
    const started = await spawnController(dataDir);
    child = started.child;
    const base = started.base;
    const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
    const login = await call(base, 'POST', '/authenticate?method=password', undefined, {
      username: 'admin',
      password,
    });
    if (login.status !== 200) throw new Error(`admin login: ${login.status} ${login.text}`);
    const token = JSON.parse(login.text).data.token as string;
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
    const body = { sandbox_id: serverId, public_key: userPub, ttl_minutes: 5 };
    const { hostname, port } = new URL(base);
    const issue = KeepAliveClient.encode(
      'POST',
      '/v1/access/request',
      `${hostname}:${port}`,
      { 'zt-session': token, 'content-type': 'application/json' },
      JSON.stringify(body),
    );
    const clients = await Promise.all(
      Array.from({ length: CONCURRENCY }, () => KeepAliveClient.open(hostname, Number(port))),
    );

    // Warm-up (JIT, connections): not counted, but committed, so counted in the total check.
    let warm = 0;
    for (const until = Date.now() + 1000; Date.now() < until;) {
      await Promise.all(
        clients.map(async (client) => {
          if ((await client.send(issue)) === 200) warm++;
        }),
      );
    }

    const latencies: number[] = [];
    const failures: Record<string, number> = {};
    let ok = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;
    await Promise.all(
      clients.map(async (client) => {
        while (performance.now() < deadline) {
          const s = performance.now();
          try {
            const status = await client.send(issue);
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
    clients.forEach((client) => client.close());
    const elapsed = (performance.now() - t0) / 1000;
    const clientCpu = process.cpuUsage(cpu0);
    const clientCores = (clientCpu.user + clientCpu.system) / 1e6 / elapsed;
    latencies.sort((a, b) => a - b);
    const rate = ok / elapsed;
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);

    const list = await call(base, 'GET', '/v1/access/certificates?limit=1', token);
    const total = JSON.parse(list.text).total as number;
    const committedAll = total === ok + warm;

    await stopController(child);
    child = undefined;

    // ---- 2. ssh-keygen, one process per certificate ----
    const pubs = Array.from({ length: CONCURRENCY }, (_, i) => {
      const p = join(tmp, `w${i}.pub`);
      copyFileSync(`${userKey}.pub`, p);
      return p;
    });
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
            `vm-${serverId}`,
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
    const ratio = rate / keygenRate;

    const meetsRate = rate >= TARGET_RATE && committedAll && Object.keys(failures).length === 0;
    const meetsRatio = ratio >= TARGET_RATIO;
    console.log(
      `machine: ${availableParallelism()} CPUs, load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}; concurrency ${CONCURRENCY}, ${SECONDS} s per phase`,
    );
    console.log(
      `controller: ${ok} certificates in ${r2(elapsed)} s = ${r1(rate)} certificates/s; latency p50 ${r2(p50)} ms, p99 ${r2(p99)} ms` +
        (Object.keys(failures).length ? `; failures ${JSON.stringify(failures)}` : '') +
        `; the load generator used ${r2(clientCores)} of the ${availableParallelism()} cores`,
    );
    console.log(
      `committed: GET /v1/access/certificates total ${total} = ${ok} + ${warm} warm-up: ${committedAll ? 'yes' : 'NO'}`,
    );
    console.log(`ssh-keygen -s per certificate: ${signs} in ${r2(kElapsed)} s = ${r1(keygenRate)} signs/s`);
    console.log(`ratio: ${r1(ratio)}x (target ${TARGET_RATIO}x)`);
    console.log(
      `targets: >= ${TARGET_RATE}/s with every record committed: ${meetsRate ? 'met' : 'NOT met'}; >= ${TARGET_RATIO}x ssh-keygen: ${meetsRatio ? 'met' : 'NOT met'}`,
    );
    console.log(
      JSON.stringify({
        bench: 'certs',
        cpus: availableParallelism(),
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        certificates: ok,
        certificatesPerSecond: r1(rate),
        p50Ms: r2(p50),
        p99Ms: r2(p99),
        clientCores: r2(clientCores),
        failures,
        committedTotal: total,
        warmup: warm,
        allCommitted: committedAll,
        sshKeygenSigns: signs,
        sshKeygenPerSecond: r1(keygenRate),
        ratio: r1(ratio),
        targets: { certificatesPerSecond: TARGET_RATE, ratio: TARGET_RATIO },
        targetsMet: { rate: meetsRate, ratio: meetsRatio, all: meetsRate && meetsRatio },
      }),
    );
  } finally {
    if (child) await stopController(child);
    agent.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
