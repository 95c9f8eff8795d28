import type { Migration } from '../../../lib/store/migrations.js';

export const signMigrations: Migration[] = [
  {
    id: '0005-signatures',
    sql: `
CREATE TABLE signatures (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  server_id TEXT NOT NULL UNIQUE,
  instance_name TEXT NOT NULL,
  node_id INTEGER NOT NULL REFERENCES nodes (id),
  is_valid TEXT NOT NULL CHECK (is_valid IN ('true', 'false', 'unknown')),
  manifest TEXT NOT NULL,
  signature TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT,
  checked_at TEXT
);
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  action TEXT NOT NULL,
  node_id INTEGER NOT NULL REFERENCES nodes (id),
  state TEXT NOT NULL CHECK (state IN ('PENDING', 'RUNNING', 'SUCCESS', 'FAILURE')),
  progress INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  error TEXT
);
CREATE INDEX tasks_state ON tasks (state);
`,
  },
  {
    // Audit trail of enforcement: every verdict, refusal and tamper shutdown an agent reports.
    id: '0006-sign-events',
    sql: `
CREATE TABLE sign_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  server_id TEXT NOT NULL,
  node_id INTEGER NOT NULL REFERENCES nodes (id),
  time TEXT NOT NULL,
  component TEXT,
  old_digest TEXT,
  new_digest TEXT,
  action TEXT NOT NULL CHECK (action IN ('alert', 'refused', 'destroyed', 'allowed', 'signed')),
  detail TEXT NOT NULL
);
CREATE INDEX sign_events_server ON sign_events (server_id, id);
`,
  },
  {
    // Tasks are leased (sign/tasks.ts): the controller running one and until when (ms) it holds it.
    id: '0007-task-leases',
    sql: `
ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_until INTEGER;
`,
  },
];
