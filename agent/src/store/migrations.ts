import type { Migration } from '../../../lib/store/migrations.js';

/** The agent's local schema (agent.db in the data directory). */
export const agentMigrations: Migration[] = [
  {
    id: 'agent-001-signatures',
    sql: `
CREATE TABLE signatures (
  server_id TEXT PRIMARY KEY,
  instance_name TEXT NOT NULL,
  manifest TEXT NOT NULL,
  signature TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NULL,
  last_verdict TEXT NOT NULL DEFAULT 'unknown' CHECK (last_verdict IN ('true', 'false', 'unknown')),
  last_verified_at TEXT NULL
);
CREATE TABLE baseline_files (
  server_id TEXT NOT NULL REFERENCES signatures (server_id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  chunk_size INTEGER NOT NULL,
  chunks BLOB NOT NULL,
  PRIMARY KEY (server_id, path)
);
CREATE TABLE file_digests (
  path TEXT PRIMARY KEY,
  identity TEXT NOT NULL,
  digest TEXT NOT NULL,
  size INTEGER NOT NULL,
  chunk_size INTEGER NOT NULL,
  chunks BLOB NOT NULL,
  stable INTEGER NOT NULL,
  hashed_at TEXT NOT NULL
);
CREATE TABLE node_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  validation_active INTEGER NOT NULL DEFAULT 0,
  validation_since TEXT NULL
);
INSERT INTO node_state (id, validation_active, validation_since) VALUES (1, 0, NULL);
`,
  },
  {
    // Digests taken with BLAKE3 next to SHA-256: a cached or baseline digest is reused or compared
    // only with one of the same algorithm. Rows from before are SHA-256.
    id: 'agent-002-digest-algorithm',
    sql: `
ALTER TABLE file_digests ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'sha256';
ALTER TABLE baseline_files ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'sha256';
`,
  },
  {
    // Whether a qcow2 disk's dirty bitmap may be trusted at the next seal (signature/seal-trust.ts).
    id: 'agent-seal-trust',
    sql: `
CREATE TABLE seal_trust (
  path TEXT PRIMARY KEY,
  server_id TEXT NOT NULL,
  sealed_identity TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('sealed', 'starting', 'running')),
  epoch TEXT NOT NULL,
  changed_at TEXT NOT NULL
);
CREATE INDEX seal_trust_server ON seal_trust (server_id);
`,
  },
];
