import type { Migration } from '../../../lib/store/migrations.js';

/**
 * Keys shared by every controller, sealed with the cluster's key-encryption key (kek.ts): a check
 * value that tells a controller holding another KEK apart, and the internal X.509 CA (one row).
 */
export const pkiMigrations: Migration[] = [
  {
    id: '0301-sealed-keys',
    sql: `
CREATE TABLE sealed_key_check (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sealed TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE internal_ca (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  cert_pem TEXT NOT NULL,
  private_key_sealed TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
];
