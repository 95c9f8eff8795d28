import type { SqlParams } from './sqlite.js';

export type { SqlParams } from './sqlite.js';

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

export type Dialect = 'sqlite' | 'postgres';

/**
 * The store every concern writes through: SQLite (one controller, embedded) or PostgreSQL (any
 * number of controllers). Concerns write one SQL (`?` placeholders, SQLite's type names); the
 * PostgreSQL backend translates it (postgres-sql.ts) — the only place dialects differ.
 *
 * Write jobs are serialised across everything that shares the store: SQLite has one writer;
 * on PostgreSQL every write transaction that runs a statement first takes one advisory lock (a job
 * that only appends new rows needs none: it reads nothing). So a job that reads then
 * writes is atomic even when two controllers run it at once.
 */
export interface Database extends Reader {
  readonly dialect: Dialect;
  /** Runs fn in a transaction; resolves after its data is committed. */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Schema changes (a script of statements, no parameters). */
  exec(sql: string): Promise<void>;
  /** Tells every controller on this store (this one included) that something on `channel` changed. */
  notify(channel: string, payload?: string): Promise<void>;
  /**
   * Calls `handler` for each notification on `channel`; with `null` when notifications may have
   * been missed (the listening connection was lost): the handler then catches up from the store.
   * Returns the unsubscribe function.
   */
  listen(channel: string, handler: (payload: string | null) => void): () => void;
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
