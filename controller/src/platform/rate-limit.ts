import { createHash } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';

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
 * concurrent guesses evaluate at most the limit, whatever the order in which they finish.
 *
 * The in-memory implementation below is the only one today; the interface is async so that a shared
 * store (a later PostgreSQL one, with the same all-or-none reservation in one statement) fits it.
 */
export interface AttemptThrottle {
  reserve(keys: readonly ThrottleKey[]): Promise<ReserveResult>;
  /** Counts a failure without a reservation (an attempt evaluated under other keys). */
  recordFailure(keys: readonly ThrottleKey[]): Promise<void>;
}

interface Entry {
  /** Failure times, ascending; only the newest `limit` matter, so no more are kept. */
  failures: number[];
  /** Reservations not yet settled. */
  pending: number;
}

/** Keys longer than this are stored as their SHA-256, so a key costs bounded memory. */
const MAX_KEY_CHARS = 256;

/**
 * In-memory AttemptThrottle. Memory is bounded: failures per key are capped at the rule's limit, keys
 * whose failures have left the window are dropped, and each rule tracks at most `maxKeys` keys —
 * beyond that the least recently touched keys without attempts in flight are forgotten (an attacker
 * who can fill the table needs that many distinct addresses or usernames, each within its limits).
 * Everything reserve() decides happens synchronously, before its first await: that is the atomicity.
 */
export class MemoryAttemptThrottle implements AttemptThrottle {
  private readonly tables = new Map<string, Map<string, Entry>>();

  constructor(
    private readonly rules: Readonly<Record<string, ThrottleRule>>,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {
    for (const name of Object.keys(rules)) this.tables.set(name, new Map());
  }

  reserve(keys: readonly ThrottleKey[]): Promise<ReserveResult> {
    const now = this.clock.now().getTime();
    let refused: { rule: string; retryAfterSeconds: number } | undefined;
    for (const k of keys) {
      const rule = this.rule(k.rule);
      const entry = this.live(k, now);
      if (!entry || entry.failures.length + entry.pending < rule.limit) continue;
      const wait = retryAfter(entry, rule, now);
      if (!refused || wait > refused.retryAfterSeconds) refused = { rule: k.rule, retryAfterSeconds: wait };
    }
    if (refused) return Promise.resolve({ granted: false, ...refused });
    const taken = keys.map((k) => {
      const entry = this.entry(k, now);
      entry.pending++;
      return { k, entry };
    });
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return Promise.resolve();
      settled = true;
      const at = this.clock.now().getTime();
      for (const { k, entry } of taken) {
        entry.pending--;
        if (failed) this.push(k, entry, at);
        // the entry may have been dropped while empty of failures; put it back only if it matters
        else if (entry.pending === 0) this.live(k, at);
      }
      return Promise.resolve();
    };
    return Promise.resolve({
      granted: true,
      reservation: { release: () => settle(false), fail: () => settle(true) },
    });
  }

  recordFailure(keys: readonly ThrottleKey[]): Promise<void> {
    const now = this.clock.now().getTime();
    for (const k of keys) this.push(k, this.entry(k, now), now);
    return Promise.resolve();
  }

  /** Number of keys tracked for a rule (tests and metrics). */
  size(rule: string): number {
    return this.table(rule).size;
  }

  private push(k: ThrottleKey, entry: Entry, at: number) {
    const rule = this.rule(k.rule);
    entry.failures.push(at);
    if (entry.failures.length > rule.limit) entry.failures.splice(0, entry.failures.length - rule.limit);
    const table = this.table(k.rule);
    const id = keyId(k.key);
    // (re)insert at the end: Map order is least recently touched first
    table.delete(id);
    table.set(id, entry);
  }

  /** The key's entry with expired failures dropped; undefined (and forgotten) when nothing is left. */
  private live(k: ThrottleKey, now: number): Entry | undefined {
    const table = this.table(k.rule);
    const id = keyId(k.key);
    const entry = table.get(id);
    if (!entry) return undefined;
    prune(entry, this.rule(k.rule), now);
    if (entry.failures.length === 0 && entry.pending === 0) {
      table.delete(id);
      return undefined;
    }
    return entry;
  }

  /** The key's entry, created when missing; touching it moves it to the end of the eviction order. */
  private entry(k: ThrottleKey, now: number): Entry {
    const table = this.table(k.rule);
    const id = keyId(k.key);
    let entry = this.live(k, now);
    if (entry) {
      table.delete(id);
    } else {
      if (table.size >= this.maxKeys) this.makeRoom(table, this.rule(k.rule), now);
      entry = { failures: [], pending: 0 };
    }
    table.set(id, entry);
    return entry;
  }

  /** Drops expired keys, then the least recently touched idle ones, down to 90% of the cap. */
  private makeRoom(table: Map<string, Entry>, rule: ThrottleRule, now: number) {
    for (const [id, e] of table) {
      prune(e, rule, now);
      if (e.failures.length === 0 && e.pending === 0) table.delete(id);
    }
    const target = Math.floor(this.maxKeys * 0.9);
    for (const [id, e] of table) {
      if (table.size <= target) break;
      if (e.pending === 0) table.delete(id);
    }
  }

  private rule(name: string): ThrottleRule {
    const rule = this.rules[name];
    if (!rule) throw new Error(`no throttle rule '${name}'`);
    return rule;
  }

  private table(name: string): Map<string, Entry> {
    const table = this.tables.get(name);
    if (!table) throw new Error(`no throttle rule '${name}'`);
    return table;
  }
}

function prune(entry: Entry, rule: ThrottleRule, now: number) {
  const cutoff = now - rule.windowMs;
  let n = 0;
  while (n < entry.failures.length && entry.failures[n]! <= cutoff) n++;
  if (n > 0) entry.failures.splice(0, n);
}

/** Seconds until one more attempt fits (for Retry-After); 1 when only attempts in flight fill the key. */
function retryAfter(entry: Entry, rule: ThrottleRule, now: number): number {
  const n = entry.failures.length;
  if (n < rule.limit) return 1;
  const freedAt = entry.failures[n - rule.limit]! + rule.windowMs;
  return Math.max(1, Math.ceil((freedAt - now) / 1000));
}

function keyId(key: string): string {
  if (key.length <= MAX_KEY_CHARS) return key;
  // Long keys (a Basic-auth username has no length limit of its own) are hashed down.
  return `sha256:${createHash('sha256').update(key).digest('base64')}`;
}
