import type { SqlParams } from './sqlite.js';
import type { Tx } from './types.js';

/** One connection's statements (a sqlite3 connection, or a pooled PostgreSQL client). */
export interface Conn {
  run(sql: string, params?: SqlParams): Promise<{ changes: number; lastID: number }>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  exec(sql: string): Promise<void>;
}

/** Where a batch of write jobs runs, and how its transaction begins. */
export interface WriteLane {
  /** The connection a batch runs on; `release` is given the error that broke the connection, if any. */
  acquire(): Promise<{ conn: Conn; release(err?: unknown): void }>;
  /** Opens the write transaction (and takes the cluster-wide write lock where there is one). */
  begin(conn: Conn): Promise<void>;
  /**
   * Statements of a job that only appended rows may go as one script with literal values: `begin`
   * (opening the transaction and taking the write lock, if any), the INSERTs, COMMIT.
   */
  literalScript?: {
    begin: string;
    /** `head` followed by the rows as literals, in the database's own SQL. */
    insert(head: string, rows: unknown[][]): string;
    /** Sends the script as it is, in one round trip. */
    exec(conn: Conn, script: string): Promise<void>;
  };
  /** A lone one-statement job may run in autocommit (SQLite: it is serialised anyway). */
  autocommitSingles: boolean;
}

/** SQLite's default limit of bound parameters per statement (PostgreSQL allows 65,535). */
const MAX_PARAMS = 32_766;
const MAX_ROWS = 500;

interface RowGroup {
  head: string;
  row: string;
  rows: unknown[][];
  onError?: (err: unknown) => Error;
}

/**
 * The Tx of one job. Every statement is a round trip, and each one waits for a turn of a busy event
 * loop: the fewer, the faster a group commit. So the transaction begins only with the first
 * statement, and a job that only appended rows (a batch of certificates and their audit rows)
 * commits in ONE call: BEGIN (and the write lock), the INSERTs, COMMIT as a script with the values as
 * literals (sql-literal.ts). If that script fails, it is rolled back and the rows are sent again with bound
 * parameters, one statement at a time, so the error says which insert failed.
 */
class JobTx implements Tx {
  private pending = new Map<string, RowGroup>();

  constructor(
    private readonly conn: Conn,
    private readonly lane: WriteLane,
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
    const script = this.lane.literalScript;
    if (script && !this.begun && this.pending.size) {
      const inserts = [...this.pending.values()].map((g) => script.insert(g.head, g.rows));
      try {
        await script.exec(this.conn, `${script.begin}; ${inserts.join('; ')}; COMMIT`);
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
    await this.lane.begin(this.conn);
    this.begun = true;
  }
}

interface Job {
  fn: (tx: Tx) => Promise<unknown>;
  /** One statement alone: may run in autocommit, no BEGIN/COMMIT round trips. */
  single?: { sql: string; params?: SqlParams };
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: jobs that arrive while a transaction is open wait, then the next batch runs as ONE
 * transaction, each job inside its own SAVEPOINT so a failing job rolls back alone. A job's promise
 * settles only after COMMIT, so "the record is committed before we answer" holds while hundreds of
 * concurrent requests share one commit.
 */
export class GroupCommit {
  private queue: Job[] = [];
  private draining = false;
  private closed = false;

  constructor(
    private readonly lane: WriteLane,
    private readonly maxBatch: number,
  ) {}

  run(sql: string, params?: SqlParams) {
    return this.enqueue<{ changes: number; lastID: number }>((tx) => tx.run(sql, params), { sql, params });
  }

  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue(fn);
  }

  /** Refuses new jobs and waits for the queued ones. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.draining || this.queue.length) await new Promise((r) => setTimeout(r, 5));
  }

  private enqueue<T>(fn: (tx: Tx) => Promise<T>, single?: Job['single']): Promise<T> {
    if (this.closed) return Promise.reject(new Error('database is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, single, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        let lease: Awaited<ReturnType<WriteLane['acquire']>>;
        try {
          lease = await this.lane.acquire();
        } catch (err) {
          batch.forEach((job) => job.reject(err));
          continue;
        }
        let broken: unknown;
        try {
          await (batch.length === 1
            ? this.runAlone(lease.conn, batch[0]!)
            : this.runBatch(lease.conn, batch));
        } catch (err) {
          broken = err;
        } finally {
          lease.release(broken);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /** A lone job needs no savepoint: its failure is the transaction's. */
  private async runAlone(conn: Conn, job: Job): Promise<void> {
    if (job.single && this.lane.autocommitSingles) {
      await conn.run(job.single.sql, job.single.params).then(job.resolve, job.reject);
      return;
    }
    const tx = new JobTx(conn, this.lane, false);
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

  private async runBatch(conn: Conn, batch: Job[]): Promise<void> {
    const results: Array<{ ok: boolean; value: unknown }> = [];
    try {
      await this.lane.begin(conn);
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
      batch.forEach((job) => job.reject(err));
      return;
    }
    for (const job of batch) {
      try {
        await conn.run('SAVEPOINT job');
      } catch (err) {
        results.push({ ok: false, value: err });
        continue;
      }
      try {
        const tx = new JobTx(conn, this.lane, true);
        const value = await job.fn(tx);
        await tx.flush();
        await conn.run('RELEASE job');
        results.push({ ok: true, value });
      } catch (err) {
        await conn.run('ROLLBACK TO job').catch(() => undefined);
        await conn.run('RELEASE job').catch(() => undefined);
        results.push({ ok: false, value: err });
      }
    }
    try {
      await conn.run('COMMIT');
    } catch (err) {
      await conn.run('ROLLBACK').catch(() => undefined);
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

/** Reads on `reader`, writes group-committed through `lane`: what both stores share. */
export abstract class GroupCommittedStore<R extends Pick<Conn, 'get' | 'all'>> {
  protected readonly commits: GroupCommit;

  protected constructor(
    protected readonly reader: R,
    lane: WriteLane,
    maxBatch: number,
  ) {
    this.commits = new GroupCommit(lane, maxBatch);
  }

  run(sql: string, params?: SqlParams) {
    return this.commits.run(sql, params);
  }
  get<T>(sql: string, params?: SqlParams) {
    return this.reader.get<T>(sql, params);
  }
  all<T>(sql: string, params?: SqlParams) {
    return this.reader.all<T>(sql, params);
  }
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.commits.write(fn);
  }
}
