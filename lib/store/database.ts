import { chmodSync, closeSync, fchmodSync, openSync } from 'node:fs';
import { Connection, type SqlParams } from './sqlite.js';
import { insertScript } from './sql-literal.js';

/** Statements on one connection. Outside a transaction, reads see committed data only. */
export interface Reader {
  run(sql: string, params?: SqlParams): Promise<{ changes: number; lastID: number }>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
}

/** What a write job may do inside its transaction. */
export interface Tx extends Reader {
  /**
   * Adds a row to a multi-row INSERT (`head` is `INSERT INTO t (…) VALUES`, `row` its `(?, …)`) sent
   * before the job's next statement or when its function returns: rows that many callers add in one
   * job (a batch) cost one statement instead of one round trip each. A failure fails the job, with
   * the error `onError` (the first given for this INSERT) makes of it.
   */
  append(head: string, row: string, params: unknown[], onError?: (err: unknown) => Error): void;
}

const CHECKPOINT_MS = 200;

/** SQLite's default limit of bound parameters per statement. */
const MAX_PARAMS = 32_766;
const MAX_ROWS = 500;

interface RowGroup {
  head: string;
  row: string;
  rows: unknown[][];
  onError?: (err: unknown) => Error;
}

/**
 * The Tx of one job on the writer connection. Every statement is a round trip through libuv's
 * thread pool, and each one waits for a turn of a busy event loop: the fewer, the faster a group
 * commit. So BEGIN is sent only with the first statement, and a job that only appended rows (a batch
 * of certificates and their audit rows) commits in ONE call: BEGIN, the INSERTs, COMMIT as a script
 * with the values as literals (sql-literal.ts). If that script fails, it is rolled back and the rows
 * are sent again with bound parameters, one statement at a time, so the error says which insert failed.
 */
class JobTx implements Tx {
  private pending = new Map<string, RowGroup>();

  constructor(
    private readonly conn: Connection,
    private begun: boolean,
  ) {}

  run(sql: string, params?: SqlParams) {
    return this.statement(() => this.conn.run(sql, params));
  }
  get<T>(sql: string, params?: SqlParams) {
    return this.statement(() => this.conn.get<T>(sql, params));
  }
  all<T>(sql: string, params?: SqlParams) {
    return this.statement(() => this.conn.all<T>(sql, params));
  }

  append(head: string, row: string, params: unknown[], onError?: (err: unknown) => Error): void {
    const key = `${head}\n${row}`;
    const group = this.pending.get(key);
    if (group) {
      group.rows.push(params);
      group.onError ??= onError;
    } else this.pending.set(key, { head, row, rows: [params], onError });
  }

  /** Sends appended rows with bound parameters (the transaction begun first). */
  async flush(): Promise<void> {
    if (!this.begun) await this.begin();
    const groups = [...this.pending.values()];
    this.pending.clear();
    for (const g of groups) {
      const perStatement = Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / Math.max(1, g.rows[0]!.length)));
      for (let i = 0; i < g.rows.length; i += perStatement) {
        const chunk = g.rows.slice(i, i + perStatement);
        try {
          await this.conn.run(`${g.head} ${chunk.map(() => g.row).join(', ')}`, chunk.flat());
        } catch (err) {
          throw g.onError ? g.onError(err) : err;
        }
      }
    }
  }

  /** Commits what the job did (nothing to do if it did nothing). */
  async commit(): Promise<void> {
    if (!this.begun && this.pending.size) {
      const script = [...this.pending.values()].map((g) => insertScript(g.head, g.rows));
      try {
        await this.conn.exec(`BEGIN IMMEDIATE; ${script.join('; ')}; COMMIT`);
        this.pending.clear();
        return;
      } catch {
        await this.rollback();
      }
    }
    if (!this.begun && !this.pending.size) return;
    await this.flush();
    await this.conn.run('COMMIT');
  }

  async rollback(): Promise<void> {
    // After a failed script the transaction may or may not be open: ROLLBACK tells.
    await this.conn.run('ROLLBACK').catch(() => undefined);
    this.begun = false;
  }

  /** A statement of the job: after BEGIN and after the rows appended before it. */
  private statement<T>(send: () => Promise<T>): Promise<T> {
    if (this.begun && this.pending.size === 0) return send();
    return (this.pending.size ? this.flush() : this.begin()).then(send);
  }

  private async begin(): Promise<void> {
    await this.conn.run('BEGIN IMMEDIATE');
    this.begun = true;
  }
}

interface Job {
  fn: (tx: Tx) => Promise<unknown>;
  /** One statement alone: run in autocommit, no BEGIN/COMMIT round trips. */
  single?: { sql: string; params?: SqlParams };
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * SQLite in WAL mode with one writer and one reader connection.
 *
 * Writes are group-committed: jobs that arrive while a transaction is open wait, then the next
 * batch runs as ONE transaction, each job inside its own SAVEPOINT so a failing job rolls back alone.
 * A job's promise settles only after COMMIT, so "the record is committed before we answer" holds
 * while hundreds of concurrent requests share one commit.
 */
export class Database implements Reader {
  private queue: Job[] = [];
  private draining = false;
  private closed = false;

  private readonly checkpointTimer: NodeJS.Timeout;
  private checkpointing?: Promise<unknown>;

  private constructor(
    private readonly writer: Connection,
    private readonly reader: Connection,
    private readonly checkpointer: Connection,
    private readonly maxBatch: number,
  ) {
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
  static async open(path: string, opts: { maxBatch?: number } = {}): Promise<Database> {
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
    return new Database(writer, reader, checkpointer, opts.maxBatch ?? 256);
  }

  private checkpoint(): void {
    this.checkpointing ??= this.checkpointer
      .get('PRAGMA wal_checkpoint(PASSIVE)')
      .catch(() => undefined) // busy or closing: the next one will do
      .finally(() => (this.checkpointing = undefined));
  }

  run(sql: string, params?: SqlParams) {
    return this.enqueue<{ changes: number; lastID: number }>((tx) => tx.run(sql, params), { sql, params });
  }
  get<T>(sql: string, params?: SqlParams) {
    return this.reader.get<T>(sql, params);
  }
  all<T>(sql: string, params?: SqlParams) {
    return this.reader.all<T>(sql, params);
  }

  /** Runs fn in a transaction; resolves after its data is committed. */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue(fn);
  }

  private enqueue<T>(fn: (tx: Tx) => Promise<T>, single?: Job['single']): Promise<T> {
    if (this.closed) return Promise.reject(new Error('database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, single, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Schema changes run outside the batching queue, before the service starts. */
  exec(sql: string): Promise<void> {
    return this.writer.exec(sql);
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining || this.queue.length) await new Promise((r) => setTimeout(r, 5));
    clearInterval(this.checkpointTimer);
    await this.checkpointing;
    await this.checkpointer.close();
    await this.reader.close();
    await this.writer.close(); // the last connection closed checkpoints the WAL and removes it
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        await this.runBatch(batch);
      }
    } finally {
      this.draining = false;
    }
  }

  /** A lone job needs no savepoint: its failure is the transaction's. */
  private async runAlone(job: Job): Promise<void> {
    if (job.single) {
      await this.writer.run(job.single.sql, job.single.params).then(job.resolve, job.reject);
      return;
    }
    const tx = new JobTx(this.writer, false);
    let value: unknown;
    try {
      value = await job.fn(tx);
      await tx.commit();
    } catch (err) {
      await tx.rollback();
      job.reject(err);
      return;
    }
    job.resolve(value);
  }

  private async runBatch(batch: Job[]): Promise<void> {
    if (batch.length === 1) return this.runAlone(batch[0]!);
    const w = this.writer;
    const results: Array<{ ok: boolean; value: unknown }> = [];
    try {
      await w.run('BEGIN IMMEDIATE');
    } catch (err) {
      batch.forEach((job) => job.reject(err));
      return;
    }
    for (const job of batch) {
      await w.run('SAVEPOINT job');
      try {
        const tx = new JobTx(w, true);
        const value = await job.fn(tx);
        await tx.flush();
        await w.run('RELEASE job');
        results.push({ ok: true, value });
      } catch (err) {
        await w.run('ROLLBACK TO job').catch(() => undefined);
        await w.run('RELEASE job').catch(() => undefined);
        results.push({ ok: false, value: err });
      }
    }
    try {
      await w.run('COMMIT');
    } catch (err) {
      await w.run('ROLLBACK').catch(() => undefined);
      batch.forEach((job) => job.reject(err));
      return;
    }
    batch.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.value);
      else job.reject(r.value);
    });
  }
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
