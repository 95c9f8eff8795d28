import { Connection, type SqlParams } from './sqlite.js';

/** What a write job may do inside its transaction. */
export interface Tx {
  run(sql: string, params?: SqlParams): Promise<{ changes: number; lastID: number }>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
}

/** Reads see committed data only. */
export type Reader = Tx;

interface Job {
  fn: (tx: Tx) => Promise<unknown>;
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

  private constructor(
    private readonly writer: Connection,
    private readonly reader: Connection,
    private readonly maxBatch: number,
  ) {}

  static async open(path: string, opts: { maxBatch?: number } = {}): Promise<Database> {
    const writer = await Connection.open(path);
    await writer.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;',
    );
    const reader = await Connection.open(path);
    await reader.exec('PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;');
    return new Database(writer, reader, opts.maxBatch ?? 256);
  }

  run(sql: string, params?: SqlParams) {
    return this.write((tx) => tx.run(sql, params));
  }
  get<T>(sql: string, params?: SqlParams) {
    return this.reader.get<T>(sql, params);
  }
  all<T>(sql: string, params?: SqlParams) {
    return this.reader.all<T>(sql, params);
  }

  /** Runs fn in a transaction; resolves after its data is committed. */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
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
    await this.reader.close();
    await this.writer.close();
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

  /** A lone job needs no savepoint: its failure is the transaction's. Two round trips fewer. */
  private async runAlone(job: Job): Promise<void> {
    const w = this.writer;
    let value: unknown;
    try {
      value = await job.fn(w);
      await w.run('COMMIT');
    } catch (err) {
      await w.run('ROLLBACK').catch(() => undefined);
      job.reject(err);
      return;
    }
    job.resolve(value);
  }

  private async runBatch(batch: Job[]): Promise<void> {
    const w = this.writer;
    const results: Array<{ ok: boolean; value: unknown }> = [];
    try {
      await w.run('BEGIN IMMEDIATE');
    } catch (err) {
      batch.forEach((job) => job.reject(err));
      return;
    }
    if (batch.length === 1) return this.runAlone(batch[0]!);
    for (const job of batch) {
      await w.run('SAVEPOINT job');
      try {
        const value = await job.fn(w);
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
