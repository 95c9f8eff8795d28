import { createHash } from 'node:crypto';

/** One throttling rule: at most `limit` failed attempts per key within `windowMs`. */
export interface ThrottleRule {
  limit: number;
  windowMs: number;
}

/** A counter: which rule, and whose attempts (a username, an address, both). */
export interface ThrottleKey {
  rule: string;
  key: string;
}

/** A slot taken before the secret is checked. Exactly one of the two settles it; later calls do nothing. */
export interface Reservation {
  /** The attempt succeeded (or was not evaluated): the slot is freed and nothing is counted. */
  release(): Promise<void>;
  /** The attempt failed: the slot becomes a recorded failure. */
  fail(): Promise<void>;
}

export type ReserveResult =
  { granted: true; reservation: Reservation } | { granted: false; rule: string; retryAfterSeconds: number };

/**
 * Failure counters behind login-style checks. reserve() takes one slot on every key, all or none:
 * a key is full when its recorded failures plus its attempts in flight reach the rule's limit, so N
 * concurrent guesses evaluate at most the limit, whatever the order in which they finish. The
 * implementation is in the database, shared by every controller (identity/attempt-store.ts).
 */
export interface AttemptThrottle {
  reserve(keys: readonly ThrottleKey[]): Promise<ReserveResult>;
  /** Counts a failure without a reservation (an attempt evaluated under other keys). */
  recordFailure(keys: readonly ThrottleKey[]): Promise<void>;
}

/** Keys longer than this are stored as their SHA-256, so a key costs bounded space. */
const MAX_KEY_CHARS = 256;

/**
 * The stored form of a counter key. Keys longer than MAX_KEY_CHARS (a Basic-auth username has no
 * length limit of its own) and keys with control characters (the NUL between a username and an
 * address; PostgreSQL text cannot hold NUL) are hashed.
 */
export function keyId(key: string): string {
  if (key.length <= MAX_KEY_CHARS && !/[\u0000-\u001f]/.test(key)) return key;
  return `sha256:${createHash('sha256').update(key).digest('base64')}`;
}
