import pg from 'pg';
import type { Database, SqlParams } from './types.js';
import { GroupCommittedStore, type Conn, type WriteLane } from './group-commit.js';
import { pgParams, toPostgres } from './postgres-sql.js';
import { pgInsertScript } from './sql-literal.js';
import { StoreUnavailableError, isConnectionError } from './errors.js';

/** The advisory lock every write transaction takes: writes are serialised across all controllers. */
const WRITE_LOCK = 0x766d77; // "vmw"
const BEGIN = `BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK})`;
const POOL_SIZE = 10;
const RELISTEN_MAX_MS = 5_000;

/** Results typed as SQLite returns them: 64-bit integers and numerics as numbers, booleans as 0/1. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (v: string) => Number(v);
    if (oid === 16) return (v: string) => (v === 't' ? 1 : 0);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** Statements on a pooled client (or the pool): SQLite SQL translated, connection failures as StoreUnavailableError. */
class PgConn implements Conn {
  broken = false;
  constructor(private readonly target: pg.Pool | pg.PoolClient) {}

  async run(sql: string, params?: SqlParams) {
    const r = await this.query(toPostgres(sql), pgParams(params));
    return { changes: r.rowCount ?? 0, lastID: 0 };
  }
  async get<T>(sql: string, params?: SqlParams) {
    return (await this.query(toPostgres(sql), pgParams(params))).rows[0] as T | undefined;
  }
  async all<T>(sql: string, params?: SqlParams) {
    return (await this.query(toPostgres(sql), pgParams(params))).rows as T[];
  }
  async exec(sql: string) {
    await this.query(toPostgres(sql));
  }
  /** PostgreSQL's SQL as it is (simple protocol: several statements, one round trip). */
  async execRaw(sql: string) {
    await this.query(sql);
  }

  private async query(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await (params ? this.target.query(sql, params) : this.target.query(sql));
    } catch (err) {
      if (isConnectionError(err)) {
        this.broken = true;
        throw new StoreUnavailableError(err);
      }
      throw err;
    }
  }
}

/**
 * PostgreSQL, shared by any number of controllers (node-postgres pool). Reads go to any pooled
 * connection; writes are group-committed like SQLite's, each batch one transaction that first takes
 * the cluster-wide write lock. Notifications are LISTEN/NOTIFY on one dedicated connection that
 * reconnects by itself; after a reconnect every handler hears `null` and catches up.
 */
export class PostgresDatabase extends GroupCommittedStore<PgConn> implements Database {
  readonly dialect = 'postgres' as const;
  private readonly handlers = new Map<string, Set<(payload: string | null) => void>>();
  private listener?: pg.Client;
  private listening?: Promise<void>;
  private relistenTimer?: NodeJS.Timeout;
  private relistenDelay = 250;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
  ) {
    const lane: WriteLane = {
      acquire: async () => {
        const client = await checkOut(pool);
        const conn = new PgConn(client);
        return { conn, release: (err?: unknown) => client.release(conn.broken || err ? true : undefined) };
      },
      begin: (conn) => conn.exec(BEGIN),
      // A job that only appended rows (a batch of certificates and their audit rows) goes in one
      // round trip, BEGIN, the INSERTs, COMMIT, and WITHOUT the write lock: it reads nothing, so its
      // result cannot depend on what runs beside it; its rows are new (unique indexes decide
      // duplicates); a job holding the lock sees them entirely or not at all. Taking the lock here
      // made two controllers commit their batches one after the other, WAL flush included
      // (bench:certs, two controllers: 0.78x of one with the lock, 1.01x without).
      literalScript: {
        begin: 'BEGIN',
        insert: (head, rows) => pgInsertScript(toPostgres(head), rows),
        exec: (conn, script) => (conn as PgConn).execRaw(script),
      },
      autocommitSingles: false,
    };
    super(new PgConn(pool), lane, 256);
  }

  static async open(url: string): Promise<PostgresDatabase> {
    const pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // A controller that stops answering mid-transaction must not hold the write lock for long.
      idle_in_transaction_session_timeout: 15_000,
      statement_timeout: 30_000,
      application_name: 'vmwarden-controller',
      types,
    } as pg.PoolConfig);
    // Idle clients whose server went away emit here; the pool drops them. Never crash on it.
    pool.on('error', () => undefined);
    const db = new PostgresDatabase(pool, url);
    await db.ping();
    return db;
  }

  /** A schema script in one transaction, under the write lock (simple protocol: several statements). */
  async exec(sql: string): Promise<void> {
    const client = await checkOut(this.pool);
    const conn = new PgConn(client);
    try {
      await conn.exec(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK}); ${sql}; COMMIT`);
    } catch (err) {
      await conn.exec('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(conn.broken || undefined);
    }
  }
  async ping(): Promise<void> {
    await this.reader.get('SELECT 1');
  }

  async notify(channel: string, payload = ''): Promise<void> {
    await this.reader.get('SELECT pg_notify(?, ?)', [channelName(channel), payload]);
  }

  listen(channel: string, handler: (payload: string | null) => void): () => void {
    const name = channelName(channel);
    let set = this.handlers.get(name);
    if (!set) {
      set = new Set();
      this.handlers.set(name, set);
      if (this.listener) void this.listener.query(`LISTEN "${name}"`).catch(() => undefined);
    }
    set.add(handler);
    this.listening ??= this.connectListener();
    return () => set.delete(handler);
  }

  /** Resolves when the listening connection is up (tests wait on it before they notify). */
  async listeningReady(): Promise<void> {
    await this.listening;
  }

  private async connectListener(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.url, application_name: 'vmwarden-listener' });
    const lost = () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => undefined);
      this.scheduleRelisten();
    };
    client.on('error', lost);
    client.on('end', lost);
    client.on('notification', (msg) => {
      for (const h of this.handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    try {
      await client.connect();
      for (const name of this.handlers.keys()) await client.query(`LISTEN "${name}"`);
      this.listener = client;
      this.relistenDelay = 250;
    } catch {
      client.end().catch(() => undefined);
      this.scheduleRelisten();
      return;
    }
  }

  private scheduleRelisten(): void {
    if (this.closed || this.relistenTimer) return;
    this.relistenTimer = setTimeout(async () => {
      this.relistenTimer = undefined;
      await this.connectListener();
      // Back after a gap: whatever was notified meanwhile is lost, so everyone catches up.
      if (this.listener) for (const set of this.handlers.values()) for (const h of set) h(null);
    }, this.relistenDelay);
    this.relistenTimer.unref();
    this.relistenDelay = Math.min(RELISTEN_MAX_MS, this.relistenDelay * 2);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.relistenTimer);
    await this.commits.close();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

/**
 * A pooled client for a transaction. A checked-out client whose server goes away emits 'error' on
 * itself (the pool listens only while it is idle): without a listener that would end the process.
 * The failing query rejects too, and marks the connection broken, so the listener has nothing to do.
 */
async function checkOut(pool: pg.Pool): Promise<pg.PoolClient> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw isConnectionError(err) ? new StoreUnavailableError(err) : err;
  }
  if (!guarded.has(client)) {
    guarded.add(client);
    client.on('error', () => undefined);
  }
  return client;
}
const guarded = new WeakSet<pg.PoolClient>();

function channelName(channel: string): string {
  if (!/^[a-z][a-z0-9_]{0,50}$/.test(channel)) throw new TypeError(`bad notification channel ${channel}`);
  return `vmwarden_${channel}`;
}
