import type { Migration } from '../../../lib/store/migrations.js';

/**
 * SSH key registry. One SSH key authenticator per identity (created on first use; its integer id is
 * the COmanage SshKeyAuthenticatorId), keys with integer ids, soft-deleted, one live copy of a key
 * per person (partial unique index on the fingerprint).
 */
export const keyMigrations: Migration[] = [
  {
    id: '0101-ssh-keys',
    sql: `
CREATE TABLE ssh_key_authenticators (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  identity_id TEXT NOT NULL UNIQUE REFERENCES identities (id) ON DELETE CASCADE,
  locked INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE ssh_keys (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
  authenticator_id INTEGER NOT NULL REFERENCES ssh_key_authenticators (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  skey TEXT NOT NULL,
  comment TEXT NOT NULL DEFAULT '',
  fingerprint TEXT NOT NULL,
  revision INTEGER NOT NULL DEFAULT 0,
  deleted INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  modified_at TEXT NOT NULL
);
CREATE INDEX ssh_keys_identity ON ssh_keys (identity_id, deleted);
CREATE UNIQUE INDEX ssh_keys_live_fingerprint ON ssh_keys (identity_id, fingerprint) WHERE deleted = 0;
`,
  },
  {
    // The CO's SSH key authenticator: one id for the deployment (COmanage's SshKeyAuthenticatorId).
    // The per-person rows above stay: they hold each person's lock and keep their old ids working.
    id: '0102-ssh-key-co-authenticator',
    sql: `
CREATE TABLE ssh_key_co_authenticator (
  id INTEGER PRIMARY KEY,
  description TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
];
