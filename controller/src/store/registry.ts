import type { Migration } from '../../../lib/store/migrations.js';
import { identityMigrations } from '../identity/migrations.js';
import { inventoryMigrations } from '../inventory/migrations.js';
import { accessMigrations } from '../access/migrations.js';
import { nodeMigrations } from '../nodes/migrations.js';
import { signMigrations } from '../sign/migrations.js';
import { keyMigrations } from '../keys/migrations.js';
import { opsMigrations } from '../ops/migrations.js';
import { pkiMigrations } from '../pki/migrations.js';

/** Every concern's schema steps, in the order they must apply (later ones may reference earlier tables). */
export const allMigrations: Migration[] = [
  ...identityMigrations,
  ...inventoryMigrations,
  ...accessMigrations,
  ...nodeMigrations,
  ...signMigrations,
  ...keyMigrations,
  ...opsMigrations,
  ...pkiMigrations,
];
