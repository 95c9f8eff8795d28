import type { Migration } from '../../../lib/store/migrations.js';

export const identityMigrations: Migration[] = [
  {
    id: '0001-identities',
    sql: `
CREATE TABLE identities (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'agent')),
  is_default_admin INTEGER NOT NULL DEFAULT 0,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE authenticators (
  id TEXT PRIMARY KEY,
  identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  method TEXT NOT NULL CHECK (method IN ('updb', 'cert')),
  username TEXT UNIQUE,
  password_hash TEXT,
  cert_pem TEXT,
  fingerprint TEXT UNIQUE,
  pending_cert_pem TEXT,
  pending_fingerprint TEXT,
  extend_requested_at TEXT,
  last_extend_rolled_keys INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX authenticators_identity ON authenticators (identity_id);
CREATE TABLE api_sessions (
  id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  authenticator_id TEXT NOT NULL REFERENCES authenticators (id) ON DELETE CASCADE,
  ip_address TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_activity_at TEXT NOT NULL
);
CREATE INDEX api_sessions_identity ON api_sessions (identity_id);
CREATE INDEX api_sessions_activity ON api_sessions (last_activity_at);
`,
  },
  {
    // Login throttling counters, shared by every controller (identity/attempt-store.ts): one row per
    // counted attempt and counter, pending while its secret is being checked.
    id: '0008-login-attempts',
    sql: `
CREATE TABLE login_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  reservation TEXT,
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  at INTEGER NOT NULL,
  pending INTEGER NOT NULL,
  expires_at INTEGER
);
CREATE INDEX login_attempts_subject ON login_attempts (rule, subject, at);
CREATE INDEX login_attempts_reservation ON login_attempts (reservation);
`,
  },
  {
    // OpenZiti's identity fields vmwarden keeps as given (identity/ziti-identity.ts), as JSON.
    id: '0010-identity-attributes',
    sql: `ALTER TABLE identities ADD COLUMN attributes TEXT`,
  },
];
