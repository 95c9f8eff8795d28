import type { Database } from './database.js';

/** A schema step owned by one concern. Ids are applied once, in the order the registry lists them. */
export interface Migration {
  id: string;
  sql: string;
}

export async function migrate(db: Database, migrations: Migration[]): Promise<string[]> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)',
  );
  const done = new Set((await db.all<{ id: string }>('SELECT id FROM schema_migrations')).map((r) => r.id));
  const applied: string[] = [];
  for (const m of migrations) {
    if (done.has(m.id)) continue;
    await db.write(async (tx) => {
      for (const statement of splitStatements(m.sql)) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (id, applied_at) VALUES (?, ?)', [
        m.id,
        new Date().toISOString(),
      ]);
    });
    applied.push(m.id);
  }
  return applied;
}

function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}
