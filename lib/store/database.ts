import type { Database as Store } from './types.js';

export type { Dialect, Reader, SqlParams, Tx } from './types.js';
/** The store interface (types.ts); the value of the same name opens the embedded SQLite store. */
export type Database = Store;

/** The store a `--database` value names: a `postgres://` / `postgresql://` URL, else a SQLite file path. */
export async function openDatabase(location: string): Promise<Database> {
  if (isPostgresUrl(location)) {
    const { PostgresDatabase } = await import('./postgres.js');
    return PostgresDatabase.open(location);
  }
  const { SqliteDatabase } = await import('./sqlite-database.js');
  return SqliteDatabase.open(location);
}

export function isPostgresUrl(location: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(location);
}

/** `Database.open(path)`: the embedded SQLite store (tests and tools that want a file). */
export const Database = {
  async open(path: string, opts: { maxBatch?: number } = {}): Promise<Database> {
    const { SqliteDatabase } = await import('./sqlite-database.js');
    return SqliteDatabase.open(path, opts);
  },
};
