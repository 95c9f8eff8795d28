import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

const MAIN = fileURLToPath(new URL('../../controller/src/main.js', import.meta.url));

export interface SpawnOptions {
  /** Listen addresses; '' turns a listener off (the default for HTTPS and gRPC). */
  https?: string;
  grpc?: string;
  /** Default `warn` (BENCH_LOG_LEVEL overrides), so per-request logs are not what a bench measures. */
  logLevel?: string;
  /** The child's environment; default: this process's without VMWARDEN_* variables. */
  env?: NodeJS.ProcessEnv;
  /** Keep all it prints (stdout and stderr) for log(); otherwise only the start-up lines. */
  keepLog?: boolean;
}

export interface SpawnedController {
  child: ChildProcess;
  base: string;
  /** What the controller printed (all of it with keepLog). */
  log: () => string;
}

/**
 * The real controller binary in its own process (so a load generator never shares its event loop),
 * on ephemeral loopback ports. BENCH_CPU_PROF=<dir> profiles it.
 */
export async function spawnController(dataDir: string, opts: SpawnOptions = {}): Promise<SpawnedController> {
  const env =
    opts.env ?? Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VMWARDEN_')));
  const nodeArgs = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF]
    : [];
  const args = [
    MAIN,
    ...['--data-dir', dataDir, '--listen-http', '127.0.0.1:0'],
    ...['--listen-https', opts.https ?? '', '--listen-grpc', opts.grpc ?? ''],
    ...['--log-level', opts.logLevel ?? process.env.BENCH_LOG_LEVEL ?? 'warn'],
  ];
  const child = spawn(process.execPath, [...nodeArgs, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    if (opts.keepLog || out.length < 100_000) out += d;
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  try {
    const http = await waitFor(
      'the controller to listen',
      () => {
        if (child.exitCode !== null) throw new Error(`controller exited with ${child.exitCode}:\n${out}`);
        return /"endpoints":\{"http":"([^"]+)"/.exec(out)?.[1];
      },
      { timeoutMs: 60_000, intervalMs: 50, state: () => out },
    );
    return { child, base: `http://${http}`, log: () => out };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

export async function stopController(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
