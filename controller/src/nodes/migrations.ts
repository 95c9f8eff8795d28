import type { Migration } from '../../../lib/store/migrations.js';

export const nodeMigrations: Migration[] = [
  {
    id: '0004-nodes',
    sql: `
CREATE TABLE nodes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  identity_id TEXT REFERENCES identities (id) ON DELETE SET NULL,
  token_hash TEXT UNIQUE,
  token_expires_at TEXT,
  enrolled_at TEXT,
  public_key_pem TEXT,
  agent_address TEXT,
  hostname TEXT,
  libvirt_uri TEXT,
  validation_active INTEGER NOT NULL DEFAULT 0,
  last_seen_at TEXT,
  created_at TEXT NOT NULL
);
`,
  },
];
