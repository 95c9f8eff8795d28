import type { Migration } from '../../../lib/store/migrations.js';

export const inventoryMigrations: Migration[] = [
  {
    id: '0002-instances',
    sql: `
CREATE TABLE instances (
  server_id TEXT PRIMARY KEY,
  instance_name TEXT NOT NULL,
  node_id INTEGER,
  ip_address TEXT NOT NULL DEFAULT '',
  ssh_port INTEGER NOT NULL DEFAULT 22,
  login_user TEXT NOT NULL,
  state TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('manual', 'agent')),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE instance_grants (
  server_id TEXT NOT NULL REFERENCES instances (server_id) ON DELETE CASCADE,
  identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  created_at TEXT NOT NULL,
  PRIMARY KEY (server_id, identity_id)
);
CREATE INDEX instance_grants_identity ON instance_grants (identity_id);
`,
  },
  {
    // Access routes take a libvirt name wherever they take a server_id (Inventory.resolve).
    id: '0010-instance-name-index',
    sql: 'CREATE INDEX instances_name ON instances (instance_name);',
  },
];
