import { EventEmitter } from 'node:events';
import { chmodSync, closeSync, fchmodSync, openSync } from 'node:fs';
import { Connection } from './sqlite.js';
import { GroupCommittedStore, type WriteLane } from './group-commit.js';
import type { Database } from './types.js';
import { insertScript } from './sql-literal.js';

const CHECKPOINT_MS = 200;

/**
 * SQLite in WAL mode with one writer and one reader connection: the embedded store of a single
 * controller. Writes are group-committed (group-commit.ts); notifications stay in the process.
 */
export class SqliteDatabase extends GroupCommittedStore<Connection> implements Database {
  readonly dialect = 'sqlite' as const;
  private readonly events: EventEmitter;
  private readonly checkpointTimer: NodeJS.Timeout;
  private checkpointing?: Promise<unknown>;

  private constructor(
    private readonly writer: Connection,
    reader: Connection,
    private readonly checkpointer: Connection,
    maxBatch: number,
    path: string,
  ) {
    const lane: WriteLane = {
      acquire: async () => ({ conn: writer, release: () => undefined }),
      begin: (conn) => conn.run('BEGIN IMMEDIATE').then(() => undefined),
      literalScript: {
        begin: 'BEGIN IMMEDIATE',
        insert: insertScript,
        exec: (conn, script) => conn.exec(script),
      },
      autocommitSingles: true,
    };
    super(reader, lane, maxBatch);
    this.events = busFor(path);
    this.checkpointTimer = setInterval(() => this.checkpoint(), CHECKPOINT_MS);
    this.checkpointTimer.unref();
  }

  /**
   * Checkpoints run on their own connection, PASSIVE (never blocking the writer), a few times a
   * second, instead of inside whichever commit crosses SQLite's autocheckpoint threshold: that
   * commit would copy the WAL into the database and fsync it while every caller in its batch waits
   * (the 10+ ms p99 of certificate issuing on disk). A fully checkpointed WAL is reused from its
   * start by the next write, and its file is cut back to journal_size_limit.
   */
  static async open(path: string, opts: { maxBatch?: number } = {}): Promise<SqliteDatabase> {
    privateDbFiles(path, 'before');
    const writer = await Connection.open(path);
    await writer.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; ' +
        'PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;',
    );
    const reader = await Connection.open(path);
    await reader.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;');
    const checkpointer = await Connection.open(path);
    await checkpointer.exec('PRAGMA busy_timeout = 5000;');
    privateDbFiles(path, 'after');
    return new SqliteDatabase(writer, reader, checkpointer, opts.maxBatch ?? 256, path);
  }

  private checkpoint(): void {
    this.checkpointing ??= this.checkpointer
      .get('PRAGMA wal_checkpoint(PASSIVE)')
      .catch(() => undefined) // busy or closing: the next one will do
      .finally(() => (this.checkpointing = undefined));
  }

  /** Schema changes run outside the batching queue, before the service starts. */
  exec(sql: string): Promise<void> {
    return this.writer.exec(sql);
  }

  async notify(channel: string, payload = ''): Promise<void> {
    setImmediate(() => this.events.emit(channel, payload));
  }

  listen(channel: string, handler: (payload: string | null) => void): () => void {
    this.events.on(channel, handler);
    return () => this.events.off(channel, handler);
  }

  async ping(): Promise<void> {
    await this.reader.get('SELECT 1');
  }

  async close(): Promise<void> {
    await this.commits.close();
    clearInterval(this.checkpointTimer);
    await this.checkpointing;
    await this.checkpointer.close();
    await this.reader.close();
    await this.writer.close(); // the last connection closed checkpoints the WAL and removes it
  }
}

/** Notifications of one SQLite file: every handle this process opened on it hears them. */
const buses = new Map<string, EventEmitter>();
function busFor(path: string): EventEmitter {
  const key = path === ':memory:' || path === '' ? Symbol('private').toString() + Math.random() : path;
  let bus = buses.get(key);
  if (!bus) {
    bus = new EventEmitter();
    bus.setMaxListeners(0);
    buses.set(key, bus);
  }
  return bus;
}

/**
 * The database holds secrets (session token hashes, password hashes, audit): it and its -wal/-shm
 * are 0600 whatever the umask. The main file is created (or fixed) 0600 before SQLite opens it;
 * SQLite gives -wal/-shm the main file's mode when it creates them (os_unix.c findCreateFileMode,
 * fchmod'ed past the umask), and ones left 0644 by an older version are fixed after the open.
 */
function privateDbFiles(path: string, when: 'before' | 'after'): void {
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  if (when === 'before') {
    const fd = openSync(path, 'a', 0o600);
    try {
      fchmodSync(fd, 0o600);
    } finally {
      closeSync(fd);
    }
  }
  for (const suffix of when === 'before' ? ['-wal', '-shm', '-journal'] : ['', '-wal', '-shm']) {
    try {
      chmodSync(path + suffix, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
