import type { Migration } from './migrations.js';
import { identityMigrations } from '../identity/migrations.js';

/** Every concern's schema steps, in the order they must apply (later ones may reference earlier tables). */
export const allMigrations: Migration[] = [...identityMigrations];
