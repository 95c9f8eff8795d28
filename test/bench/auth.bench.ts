// Benchmark of API session authentication on the REST surface (npm run bench:auth).
// The real controller binary runs in its own process (so the load generator does not share its event
// loop) on an ephemeral loopback port with a temp data dir and --log-level warn (per-request access
// logging would cost both phases alike and hide the difference this measures). One admin login, then:
//   auth    GET /current-api-session with the token (session lookup + sliding-activity update + body)
//   unauth  GET /version (public route: the same HTTP/fastify stack without authentication)
// each at concurrency 32 for BENCH_SECONDS (default 10) after a 1 s warm-up, through node:http with a
// keep-alive Agent (maxSockets 32). Reports requests/s, p50 and p99 latency (ms), the error count and
// the auth/unauth throughput ratio. The last line printed is one JSON object with all figures.
import { spawnController, stopController } from '../helpers/controller-process.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const CONCURRENCY = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = 1;

interface Phase {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

function get(
  agent: Agent,
  host: string,
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host, port, path, method: 'GET', headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** CONCURRENCY workers issue requests back to back until the time is up. */
async function load(
  base: string,
  path: string,
  headers: Record<string, string>,
  seconds: number,
  record: boolean,
): Promise<Phase> {
  const [host, portText] = base.split(':');
  const port = Number(portText);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  let errors = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  const worker = async () => {
    while (process.hrtime.bigint() < end) {
      const t0 = process.hrtime.bigint();
      let status = 0;
      try {
        status = await get(agent, host!, port, path, headers);
      } catch {
        status = 0;
      }
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (status !== 200) errors++;
      else if (record) latencies.push(ms);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
  return {
    requests: latencies.length,
    errors,
    seconds: round(elapsed, 3),
    rps: round(latencies.length / elapsed, 1),
    p50Ms: round(percentile(sorted, 50), 3),
    p99Ms: round(percentile(sorted, 99), 3),
  };
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-bench-auth-'));
  const { child, base } = await spawnController(dataDir);
  const http = base.replace('http://', '');
  try {
    const password = readFileSync(join(dataDir, 'admin-password'), 'utf8').trim();
    const res = await fetch(`http://${http}/authenticate?method=password`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
    const token = ((await res.json()) as { data: { token: string } }).data.token;

    const phases: Record<'auth' | 'unauth', Phase> = {} as never;
    const plan = [
      ['auth', '/current-api-session', { 'zt-session': token }],
      ['unauth', '/version', {}],
    ] as const;
    for (const [name, path, headers] of plan) {
      await load(http, path, headers, WARMUP_SECONDS, false);
      phases[name] = await load(http, path, headers, SECONDS, true);
      const p = phases[name];
      console.log(
        `${name.padEnd(6)} GET ${path.padEnd(20)} ${p.rps.toFixed(0).padStart(7)} req/s  ` +
          `p50 ${p.p50Ms.toFixed(2)} ms  p99 ${p.p99Ms.toFixed(2)} ms  ` +
          `(${p.requests} requests, ${p.errors} errors, ${p.seconds} s, concurrency ${CONCURRENCY})`,
      );
    }
    // the session is still alive after the load (the sliding window moved, nothing broke)
    const check = await fetch(`http://${http}/current-api-session`, { headers: { 'zt-session': token } });
    const ratio = Math.round((phases.auth.rps / phases.unauth.rps) * 1000) / 1000;
    console.log(`auth/unauth throughput ratio ${ratio} (1.0 = authentication costs nothing)`);
    console.log(
      JSON.stringify({
        bench: 'auth',
        concurrency: CONCURRENCY,
        seconds: SECONDS,
        auth: phases.auth,
        unauth: phases.unauth,
        ratio,
        sessionAliveAfter: check.status === 200,
        cpus: availableParallelism(),
        loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
        node: process.version,
      }),
    );
  } finally {
    await stopController(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
