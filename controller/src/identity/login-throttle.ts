import { isIPv4, isIPv6 } from 'node:net';
import { ApiError } from '../platform/errors.js';
import type { AttemptThrottle, ThrottleKey, ThrottleRule } from '../platform/rate-limit.js';

/** The login limits of the controller configuration (see README, "Security notes"). */
export interface LoginLimits {
  loginMaxFailuresPerUsername: number;
  loginMaxFailuresPerAddress: number;
  loginFailureWindowSeconds: number;
  loginMaxFailuresPerUsernameAnyAddress: number;
  loginAnyAddressWindowSeconds: number;
}

/**
 * The rules, by counter:
 * - `user+address`: wrong passwords for one username from one address. The lockout a guesser meets;
 *   a stranger filling it locks out only that username from the stranger's own address.
 * - `address`: failed logins from one address over all usernames (password spraying), certificate
 *   failures included.
 * - `user`: wrong passwords for one username from anywhere, a slower ceiling against guessing spread
 *   over many addresses. It can lock the username out everywhere, so it is set well above the others.
 * - `cert-address`: failed certificate logins from one address. Certificate logins are checked against
 *   this counter only: wrong passwords do not lock out a client holding a certificate.
 */
export function loginRules(c: LoginLimits): Record<string, ThrottleRule> {
  const windowMs = c.loginFailureWindowSeconds * 1000;
  return {
    'user+address': { limit: c.loginMaxFailuresPerUsername, windowMs },
    address: { limit: c.loginMaxFailuresPerAddress, windowMs },
    user: { limit: c.loginMaxFailuresPerUsernameAnyAddress, windowMs: c.loginAnyAddressWindowSeconds * 1000 },
    'cert-address': { limit: c.loginMaxFailuresPerAddress, windowMs },
  };
}

/**
 * Every check of a password (login, HTTP Basic, currentPassword of a password change) and every
 * certificate login goes through here. The attempt is reserved before the secret is checked, so
 * concurrent guesses cannot all pass a check that only failures recorded afterwards would close.
 */
export class LoginThrottle {
  constructor(private readonly counters: AttemptThrottle) {}

  /**
   * Runs verify (scrypt) if the username/address still has attempts left, else throws 429 RATE_LIMITED
   * without running it. verify returns undefined for a wrong password: that counts as a failure.
   */
  password<T>(username: string, ip: string, verify: () => Promise<T | undefined>): Promise<T | undefined> {
    const address = addressKey(ip);
    return this.run(
      [
        { rule: 'user+address', key: `${username}\u0000${address}` },
        { rule: 'address', key: address },
        { rule: 'user', key: username },
      ],
      [],
      verify,
    );
  }

  /** A certificate login: limited by failed certificate logins only; a failure also counts for the address. */
  certificate<T>(ip: string, verify: () => Promise<T | undefined>): Promise<T | undefined> {
    const address = addressKey(ip);
    return this.run([{ rule: 'cert-address', key: address }], [{ rule: 'address', key: address }], verify);
  }

  private async run<T>(
    keys: ThrottleKey[],
    alsoOnFailure: ThrottleKey[],
    verify: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const r = await this.counters.reserve(keys);
    if (!r.granted) {
      const err = new ApiError(429, 'RATE_LIMITED', 'Too many failed login attempts; try again later');
      (err as ApiError & { retryAfter?: number }).retryAfter = r.retryAfterSeconds;
      throw err;
    }
    let result: T | undefined;
    try {
      result = await verify();
    } catch (err) {
      // Not a verdict on the secret (e.g. the store failed): free the slot, count nothing.
      await r.reservation.release();
      throw err;
    }
    if (result === undefined) {
      await r.reservation.fail();
      if (alsoOnFailure.length) await this.counters.recordFailure(alsoOnFailure);
    } else {
      await r.reservation.release();
    }
    return result;
  }
}

/**
 * The address a counter is kept for: IPv4 as is (also when IPv4-mapped), IPv6 by its /64 — one
 * client usually holds a whole /64, and counting single IPv6 addresses would give it 2^64 budgets.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  const bare = ip.split('%')[0]!;
  if (!isIPv6(bare)) return ip;
  const groups = expandIPv6(bare);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

function expandIPv6(ip: string): string[] {
  let text = ip.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.replace(/^0+(?=.)/, ''));
}
