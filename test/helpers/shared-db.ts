/**
 * One migrated database opened several times: each Database stands in for one controller of a
 * cluster sharing the store. A SQLite file; in the runner's PostgreSQL pass, a database of its
 * cluster. Closed (and the file removed) by close().
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database, openDatabase } from '../../lib/store/database.js';
import { sharedCluster } from './postgres.js';
import { migrate } from '../../lib/store/migrations.js';
import { allMigrations } from '../../controller/src/store/registry.js';

export interface SharedDb {
  dbs: Database[];
  close(): Promise<void>;
}

export async function openShared(count: number): Promise<SharedDb> {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-shared-db-'));
  const cluster = sharedCluster();
  const location = cluster ? await cluster.createDatabase('shared') : join(dir, 'controller.db');
  const dbs: Database[] = [];
  for (let i = 0; i < count; i++) dbs.push(await openDatabase(location));
  await migrate(dbs[0]!, allMigrations);
  let closed = false;
  return {
    dbs,
    async close() {
      if (closed) return;
      closed = true;
      for (const db of dbs) await db.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
