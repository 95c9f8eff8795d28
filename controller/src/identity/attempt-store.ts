import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';
import type { Database, Tx } from '../../../lib/store/database.js';
import {
  keyId,
  type AttemptThrottle,
  type ReserveResult,
  type ThrottleKey,
  type ThrottleRule,
} from '../platform/rate-limit.js';

/**
 * How long a reservation counts as an attempt in flight (whatever the rule's window). A reservation
 * its controller never settled (it died or lost the database mid-check) then counts as a FAILURE at
 * its reservation time, until the rule's window passes it. That is the safer of the two choices:
 * counting it as nothing would hand back the slot of an attempt whose secret may have been checked,
 * so killing or cutting off controllers during checks would buy guesses beyond the limit; as a
 * failure it costs its owner one attempt for at most max(this, window), never a lasting lockout.
 */
export const RESERVATION_MS = 60_000;

/**
 * The AttemptThrottle every controller shares: counters are rows (login_attempts), so a guesser
 * spreading attempts over controllers meets the same limits as on one. reserve() is one write job,
 * and write jobs are serialized across the cluster: counting the live attempts of every key and
 * inserting the reservation is atomic, so concurrent attempts on any controllers never exceed a limit.
 */
export class DatabaseAttemptThrottle implements AttemptThrottle {
  constructor(
    private readonly db: Database,
    private readonly rules: Readonly<Record<string, ThrottleRule>>,
    private readonly clock: Clock,
  ) {}

  async reserve(keys: readonly ThrottleKey[]): Promise<ReserveResult> {
    for (const k of keys) this.rule(k.rule);
    const reservation = randomUUID();
    const refused = await this.db.write(async (tx) => {
      const now = this.clock.now().getTime();
      let worst: { rule: string; retryAfterSeconds: number } | undefined;
      for (const k of keys) {
        const wait = await this.full(tx, k, now);
        if (wait !== undefined && (!worst || wait > worst.retryAfterSeconds))
          worst = { rule: k.rule, retryAfterSeconds: wait };
      }
      if (worst) return worst;
      for (const k of keys)
        await tx.run(
          `INSERT INTO login_attempts (reservation, rule, subject, at, pending, expires_at)
           VALUES (?, ?, ?, ?, 1, ?)`,
          [reservation, k.rule, keyId(k.key), now, now + RESERVATION_MS],
        );
      return undefined;
    });
    if (refused) return { granted: false, ...refused };
    let settled = false;
    const settle = async (failed: boolean) => {
      if (settled) return;
      settled = true;
      if (failed)
        await this.db.run(
          `UPDATE login_attempts SET pending = 0, reservation = NULL, at = ?, expires_at = NULL
           WHERE reservation = ? AND pending = 1`,
          [this.clock.now().getTime(), reservation],
        );
      else
        await this.db.run('DELETE FROM login_attempts WHERE reservation = ? AND pending = 1', [reservation]);
    };
    return { granted: true, reservation: { release: () => settle(false), fail: () => settle(true) } };
  }

  async recordFailure(keys: readonly ThrottleKey[]): Promise<void> {
    for (const k of keys) this.rule(k.rule);
    await this.db.write(async (tx) => {
      const now = this.clock.now().getTime();
      for (const k of keys)
        await tx.run(
          `INSERT INTO login_attempts (reservation, rule, subject, at, pending, expires_at)
           VALUES (NULL, ?, ?, ?, 0, NULL)`,
          [k.rule, keyId(k.key), now],
        );
    });
  }

  /** Deletes the rows no window counts any more (the cluster cron job); answers how many. */
  async cleanup(): Promise<number> {
    const now = this.clock.now().getTime();
    return this.db.write(async (tx) => {
      let deleted = 0;
      const windows = Object.entries(this.rules);
      for (const [name, rule] of windows)
        deleted += (
          await tx.run(
            'DELETE FROM login_attempts WHERE rule = ? AND at <= ? AND (pending = 0 OR expires_at <= ?)',
            [name, now - rule.windowMs, now],
          )
        ).changes;
      // rows of rules no longer configured (reservations have expired by then too)
      const longest = Math.max(RESERVATION_MS, ...windows.map(([, r]) => r.windowMs));
      deleted += (await tx.run('DELETE FROM login_attempts WHERE at <= ?', [now - longest])).changes;
      return deleted;
    });
  }

  /**
   * undefined while the key has room for one more attempt; else the seconds until it has (for
   * Retry-After), 1 when attempts in flight fill it. Failures (and reservations past their time,
   * counted as failures) leave the count when they leave the window.
   */
  private async full(tx: Tx, k: ThrottleKey, now: number): Promise<number | undefined> {
    const rule = this.rule(k.rule);
    const subject = keyId(k.key);
    const cutoff = now - rule.windowMs;
    const live = await tx.get<{ n: number | string }>(
      `SELECT count(*) AS n FROM login_attempts
       WHERE rule = ? AND subject = ? AND (at > ? OR (pending = 1 AND expires_at > ?))`,
      [k.rule, subject, cutoff, now],
    );
    if (Number(live?.n ?? 0) < rule.limit) return undefined;
    // the limit-th newest failure frees a slot when it leaves the window
    const oldest = await tx.get<{ at: number | string }>(
      `SELECT at FROM login_attempts
       WHERE rule = ? AND subject = ? AND at > ? AND (pending = 0 OR expires_at <= ?)
       ORDER BY at DESC LIMIT 1 OFFSET ?`,
      [k.rule, subject, cutoff, now, rule.limit - 1],
    );
    if (!oldest) return 1;
    return Math.max(1, Math.ceil((Number(oldest.at) + rule.windowMs - now) / 1000));
  }

  private rule(name: string): ThrottleRule {
    const rule = this.rules[name];
    if (!rule) throw new Error(`no throttle rule '${name}'`);
    return rule;
  }
}
