/** The store cannot be reached (PostgreSQL down, restarting, or the connection lost): a 503, not a 500. */
export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('the database is unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}

export function isStoreUnavailable(err: unknown): boolean {
  return err instanceof StoreUnavailableError;
}

/** Errors that mean the connection (not the statement) failed: node errors, PostgreSQL classes 08 and 57P. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e) return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^(ECONNREFUSED|ECONNRESET|ENOENT|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code))
    return true;
  if (/^08|^57P0[1-3]$|^53300$/.test(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Client was closed|connection is closed/i.test(
    message,
  );
}

/** PostgreSQL refusing text it cannot hold (a NUL character, bytes that are not UTF-8): bad input. */
export function isInvalidText(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '22021' || code === '22P05';
}

/**
 * The table whose UNIQUE index or PRIMARY KEY refused a duplicate (SQLite's message names it;
 * PostgreSQL's error carries it), or undefined when err is not a duplicate.
 */
export function uniqueViolationTable(err: unknown): string | undefined {
  const e = err as { code?: unknown; message?: unknown; table?: unknown } | null;
  if (!e) return undefined;
  if (e.code === '23505') return typeof e.table === 'string' ? e.table : '';
  if (e.code !== 'SQLITE_CONSTRAINT' || typeof e.message !== 'string') return undefined;
  return /(?:UNIQUE|PRIMARY KEY) constraint failed: ([A-Za-z0-9_]+)\./.exec(e.message)?.[1];
}
