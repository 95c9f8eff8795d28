import type { ApiError } from '../platform/errors.js';

/**
 * Whether a store error is SQLite refusing a duplicate (a UNIQUE index or PRIMARY KEY), optionally
 * on one table. Check-then-insert is a race under concurrency (two creates of one name both pass
 * the check); the index is what decides, and this is how its refusal is recognised.
 */
export function isUniqueViolation(err: unknown, table?: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || e.code !== 'SQLITE_CONSTRAINT' || typeof e.message !== 'string') return false;
  const m = /(?:UNIQUE|PRIMARY KEY) constraint failed: ([A-Za-z0-9_]+)\./.exec(e.message);
  return Boolean(m && (table === undefined || m[1] === table));
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
