import type { Database } from './database.js';

/** A schema step owned by one concern. Ids are applied once, in the order the registry lists them. */
export interface Migration {
  id: string;
  sql: string;
}

/**
 * Applies the steps not applied yet, all in ONE write job: write jobs are serialised across every
 * controller on the store, so when several start together on an empty database the first applies
 * everything and the others find it done.
 */
export async function migrate(db: Database, migrations: Migration[]): Promise<string[]> {
  return db.write(async (tx) => {
    await tx.run(
      'CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)',
    );
    const done = new Set((await tx.all<{ id: string }>('SELECT id FROM schema_migrations')).map((r) => r.id));
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      for (const statement of splitStatements(m.sql)) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)', [
        m.id,
        new Date().toISOString(),
      ]);
      applied.push(m.id);
    }
    return applied;
  });
}

function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}
