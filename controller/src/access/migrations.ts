import type { Migration } from '../../../lib/store/migrations.js';

export const accessMigrations: Migration[] = [
  {
    id: '0003-ssh-access',
    sql: `
CREATE TABLE ssh_cas (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_type TEXT NOT NULL,
  public_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  key_file TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'trusted', 'retired')),
  created_at TEXT NOT NULL,
  retired_at TEXT
);
CREATE TABLE certificates (
  id TEXT PRIMARY KEY,
  serial TEXT NOT NULL UNIQUE,
  sandbox_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  vm_name TEXT NOT NULL,
  key_id TEXT NOT NULL,
  principals TEXT NOT NULL,
  public_key_fingerprint TEXT NOT NULL,
  ssh_key_id TEXT,
  ca_id INTEGER NOT NULL REFERENCES ssh_cas (id),
  valid_after TEXT NOT NULL,
  valid_before TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'EXPIRED', 'REVOKED')),
  revoked_at TEXT,
  revoke_reason TEXT
);
CREATE INDEX certificates_sandbox ON certificates (sandbox_id, issued_at);
CREATE INDEX certificates_user ON certificates (user_id, issued_at);
CREATE INDEX certificates_status ON certificates (status, valid_before);
CREATE TABLE access_sessions (
  id TEXT PRIMARY KEY,
  certificate_id TEXT NOT NULL REFERENCES certificates (id),
  sandbox_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  vm_name TEXT NOT NULL,
  vm_ip_address TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('ACTIVE', 'ENDED', 'REVOKED')),
  end_reason TEXT
);
CREATE INDEX access_sessions_certificate ON access_sessions (certificate_id);
CREATE INDEX access_sessions_sandbox ON access_sessions (sandbox_id, started_at);
CREATE INDEX access_sessions_user ON access_sessions (user_id, started_at);
CREATE TABLE krl_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
INSERT INTO krl_state (id, version, updated_at) VALUES (1, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
`,
  },
  {
    // The CA private key sealed with the cluster's key-encryption key (pki/kek.ts). key_file stays for
    // rows created before it (their file is imported at start); new rows have key_file ''.
    id: '0007-ssh-ca-sealed-key',
    sql: `ALTER TABLE ssh_cas ADD COLUMN private_key_sealed TEXT`,
  },
  {
    // What agents last reported about trust inside each guest: in the store, so every controller
    // answers GET /v1/instances/{id}/trust the same whichever controller the agent reports to.
    id: '0009-guest-trust-status',
    sql: `CREATE TABLE guest_trust_status (
  server_id TEXT PRIMARY KEY,
  node_id INTEGER NOT NULL,
  state TEXT NOT NULL,
  ca_fingerprints TEXT NOT NULL,
  krl_version INTEGER NOT NULL,
  last_success TEXT,
  last_error TEXT,
  login_user TEXT NOT NULL,
  transport TEXT NOT NULL,
  reported_at TEXT NOT NULL
)`,
  },
  {
    // The SSH host CA (host certificates for guests' sshd, no trust on first use): its keys in a table
    // of their own, same columns and lifecycle as ssh_cas; and every host certificate it signed.
    id: '0030-ssh-host-ca',
    sql: `
CREATE TABLE ssh_host_cas (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_type TEXT NOT NULL,
  public_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL UNIQUE,
  key_file TEXT NOT NULL,
  private_key_sealed TEXT,
  status TEXT NOT NULL CHECK (status IN ('active', 'trusted', 'retired')),
  created_at TEXT NOT NULL,
  retired_at TEXT
);
CREATE TABLE host_certificates (
  id TEXT PRIMARY KEY,
  serial TEXT NOT NULL UNIQUE,
  server_id TEXT,
  node_id INTEGER,
  principals TEXT NOT NULL,
  public_key_fingerprint TEXT NOT NULL,
  ca_id INTEGER NOT NULL REFERENCES ssh_host_cas (id),
  valid_before TEXT NOT NULL,
  issued_at TEXT NOT NULL
);
CREATE INDEX host_certificates_server ON host_certificates (server_id, issued_at);
`,
  },
];
