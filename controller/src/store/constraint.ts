import type { ApiError } from '../platform/errors.js';
import { uniqueViolationTable } from '../../../lib/store/errors.js';

/**
 * Whether a store error is the store refusing a duplicate (a UNIQUE index or PRIMARY KEY), optionally
 * on one table. Check-then-insert is a race under concurrency (two creates of one name both pass
 * the check); the index is what decides, and this is how its refusal is recognised.
 */
export function isUniqueViolation(err: unknown, table?: string): boolean {
  const violated = uniqueViolationTable(err);
  return violated !== undefined && (table === undefined || violated === table);
}

/** Runs a write; a duplicate refused by the store becomes the caller's conflict (a 409). */
export async function conflictOnDuplicate<T>(
  write: () => Promise<T>,
  conflict: () => ApiError,
  table?: string,
): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err, table)) throw conflict();
    throw err;
  }
}
