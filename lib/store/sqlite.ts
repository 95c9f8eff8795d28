import sqlite3 from 'sqlite3';

const STATEMENT_CACHE_SIZE = 256;

export type SqlParams = ReadonlyArray<unknown> | Record<string, unknown>;

/** Promise face of one sqlite3 connection. */
export class Connection {
  private constructor(private readonly db: sqlite3.Database) {}

  static open(path: string, mode = sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(path, mode, (err) => (err ? reject(err) : resolve(new Connection(db))));
    });
  }

  /**
   * Prepared statements are reused: preparing SQL on every call cost ~10% of the controller's CPU
   * under load. Bounded (LRU) because some SQL is built per call (filters, multi-row inserts).
   */
  private readonly statements = new Map<string, sqlite3.Statement>();

  private statement(sql: string): sqlite3.Statement {
    let stmt = this.statements.get(sql);
    if (stmt) {
      this.statements.delete(sql);
    } else {
      stmt = this.db.prepare(sql);
      if (this.statements.size >= STATEMENT_CACHE_SIZE) {
        const [oldest, old] = this.statements.entries().next().value!;
        this.statements.delete(oldest);
        old.finalize();
      }
    }
    this.statements.set(sql, stmt);
    return stmt;
  }

  run(sql: string, params: SqlParams = []): Promise<{ changes: number; lastID: number }> {
    return new Promise((resolve, reject) => {
      this.statement(sql).run(params, function (err) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const stmt = this.statement(sql);
      // The statement is shared: a get queued behind another one's step (sqlite3 resets only
      // when it binds parameters) would read past its one row, undefined. Reset first, in its queue.
      stmt.reset();
      stmt.get(params, (err, row) => {
        // A stepped-but-unfinished statement would pin its read snapshot: reset it right away, and
        // answer only once it is reset. sqlite3 queues the reset on the thread pool; answering
        // before it ran let the caller's next statement on this connection (a transaction's
        // COMMIT) run first, failing with SQLITE_BUSY "SQL statements in progress" under load.
        stmt.reset(() => {
          if (err) reject(err);
          else resolve(row as T | undefined);
        });
      });
    });
  }

  all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.statement(sql).all(params, (err, rows) => (err ? reject(err) : resolve(rows as T[])));
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }

  async close(): Promise<void> {
    const open = [...this.statements.values()];
    this.statements.clear();
    await Promise.all(open.map((stmt) => new Promise<void>((resolve) => stmt.finalize(() => resolve()))));
    return new Promise((resolve, reject) => this.db.close((err) => (err ? reject(err) : resolve())));
  }
}
