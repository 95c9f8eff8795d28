/**
 * A throwaway PostgreSQL cluster (Debian's postgresql): initdb + pg_ctl in a temp dir, reachable on
 * a unix socket in that dir only. As root, the server runs as the `postgres` user (initdb refuses
 * root). Tests that need PostgreSQL start one; the runner's PostgreSQL pass starts one for a whole
 * run and names it in VMWARDEN_TEST_PG, and each test then gets its own database in it.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface PgCluster {
  dir: string;
  /** URL of database `db` (as the superuser `postgres`, trusted on the socket). */
  url(db?: string): string;
  /** A new empty database; its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** pg_ctl stop (fast) and start again on the same data: a database restart. */
  stopServer(): void;
  startServer(): void;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error(
    "PostgreSQL server binaries not found: install Debian's postgresql (scripts/install-deps.sh)",
  );
}

function asServerUser(cmd: string, args: string[]): void {
  const argv = process.getuid?.() === 0 ? ['-u', 'postgres', '--', cmd, ...args] : args;
  execFileSync(process.getuid?.() === 0 ? 'runuser' : cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface StartOptions {
  /**
   * Durable like production: fsync, full_page_writes and synchronous_commit on (a commit returns
   * after its WAL is flushed to disk). The default, for tests, turns fsync and full_page_writes off.
   */
  durable?: boolean;
}

function clusterAt(dir: string, port: number, bin = binDir(), opts: StartOptions = {}): PgCluster {
  const data = join(dir, 'data');
  const safety = opts.durable
    ? '-c fsync=on -c full_page_writes=on -c synchronous_commit=on'
    : '-c fsync=off -c full_page_writes=off';
  const url = (db = 'postgres') => `postgres://postgres@/${db}?host=${encodeURIComponent(dir)}&port=${port}`;
  const startServer = () =>
    asServerUser(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-k ${dir} -p ${port} -c listen_addresses='' ${safety} -c max_connections=300`,
      'start',
    ]);
  const stopServer = () => asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', 'stop']);
  return {
    dir,
    url,
    async createDatabase(prefix = 't') {
      const name = `${prefix}_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: url() });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(name);
    },
    startServer,
    stopServer,
    async stop() {
      try {
        asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a new cluster (a few seconds: initdb, then the server). */
export function startPostgres(opts: StartOptions = {}): PgCluster {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(dir, uid, gid);
  }
  asServerUser(join(bin, 'initdb'), [
    '-D',
    join(dir, 'data'),
    '-A',
    'trust',
    '-U',
    'postgres',
    '--locale=C',
    '-E',
    'UTF8',
    ...(opts.durable ? [] : ['--no-sync']),
  ]);
  const cluster = clusterAt(dir, 5432, bin, opts);
  cluster.startServer();
  return cluster;
}

/** The cluster the runner started for its PostgreSQL pass, if this file runs in that pass. */
export function sharedCluster(): PgCluster | undefined {
  const spec = process.env.VMWARDEN_TEST_PG;
  if (!spec) return undefined;
  const { dir, port } = JSON.parse(spec) as { dir: string; port: number };
  return clusterAt(dir, port);
}

/** Describes a cluster for VMWARDEN_TEST_PG. */
export function describeCluster(c: PgCluster): string {
  return JSON.stringify({ dir: c.dir, port: 5432 });
}
