import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

const MAIN = fileURLToPath(new URL('../../controller/src/main.js', import.meta.url));

/**
 * The real controller binary in its own process (so a load generator never shares its event loop),
 * HTTP only, on an ephemeral port. Benchmarks run it at log level `warn` (BENCH_LOG_LEVEL overrides)
 * so per-request access logs are not what gets measured; BENCH_CPU_PROF=<dir> profiles it.
 */
export async function spawnController(dataDir: string): Promise<{ child: ChildProcess; base: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  const nodeArgs = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
    : [];
  const args = [
    MAIN,
    '--data-dir',
    dataDir,
    '--listen-http',
    '127.0.0.1:0',
    '--listen-https',
    '',
    '--listen-grpc',
    '',
  ];
  args.push('--log-level', process.env.BENCH_LOG_LEVEL ?? 'warn');
  const child = spawn(process.execPath, [...nodeArgs, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    if (out.length < 100_000) out += d; // only the start-up lines matter
  });
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const endpoint = () => {
    if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}`);
    return /"endpoints":\{"http":"([^"]+)"/.exec(out)?.[1];
  };
  const http = await waitFor('the controller endpoints', endpoint, {
    timeoutMs: 60_000,
    intervalMs: 50,
  }).catch(() => undefined);
  if (http) return { child, base: `http://${http}` };
  child.kill('SIGKILL');
  throw new Error(`controller did not start:\n${out}\n${err}`);
}

export async function stopController(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
