import type { Migration } from '../../../lib/store/migrations.js';

/**
 * The audit log: one row per audited action. A row is written as 'attempt' before the action runs
 * and settled ('success' / 'failure' with the HTTP status) before the answer leaves.
 */
export const opsMigrations: Migration[] = [
  {
    id: '0201-audit',
    sql: `
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time TEXT NOT NULL,
  actor_id TEXT,
  actor_name TEXT,
  source_address TEXT,
  action TEXT NOT NULL,
  object TEXT,
  outcome TEXT NOT NULL CHECK (outcome IN ('attempt', 'success', 'failure')),
  status INTEGER,
  detail TEXT,
  request_id TEXT
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_action ON audit (action, time);
`,
  },
  {
    // Cron jobs every controller schedules: the tick each job last ran for (ops/cluster-jobs.ts).
    id: '0202-cluster-jobs',
    sql: `
CREATE TABLE cluster_jobs (
  name TEXT PRIMARY KEY,
  last_tick TEXT
);
`,
  },
];
