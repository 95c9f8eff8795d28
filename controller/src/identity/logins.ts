import type { FailureLimiter } from '../platform/rate-limit.js';
import { ApiError, unauthorized } from '../platform/errors.js';
import { hashPassword, verifyPassword } from '../platform/secrets.js';
import type { Identity, Principal } from './model.js';
import type { ApiSessions } from './sessions.js';
import type { IdentityStore } from './store.js';

export interface PeerCertificate {
  /** TLS verified the chain against the internal CA. */
  authorized: boolean;
  fingerprint: string;
}

const invalidAuth = () => unauthorized('INVALID_AUTH', 'The authentication request failed');

/** POST /authenticate: password and certificate logins, rate-limited per username and per address. */
export class Logins {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly identities: IdentityStore,
    private readonly sessions: ApiSessions,
    private readonly limits: { byUsername: FailureLimiter; byAddress: FailureLimiter },
  ) {}

  async withPassword(username: string, password: string, ip: string): Promise<Principal> {
    const { identity, authenticatorId } = await this.checkPassword(username, password, ip);
    return this.sessions.create(identity, authenticatorId, ip);
  }

  /**
   * Checks username:password (HTTP Basic on the SSH key registry) with the same rate limits as
   * withPassword, without creating an API session.
   */
  async verifyPassword(username: string, password: string, ip: string): Promise<Identity> {
    return (await this.checkPassword(username, password, ip)).identity;
  }

  private async checkPassword(username: string, password: string, ip: string) {
    const keys = [`user:${username}`, `addr:${ip}`];
    this.refuseIfLimited(keys);
    const authenticator = await this.identities.findUpdbByUsername(username);
    // Unknown users cost the same scrypt as known ones, so timing does not reveal which names exist.
    const hash = authenticator?.passwordHash ?? (await (this.dummyHash ??= hashPassword('not-a-password')));
    const ok = (await verifyPassword(password, hash)) && authenticator !== undefined;
    const identity = ok ? await this.identities.getIdentity(authenticator.identityId) : undefined;
    if (!identity || identity.disabled) {
      this.fail(keys);
      throw invalidAuth();
    }
    return { identity, authenticatorId: authenticator!.id };
  }

  async withCertificate(peer: PeerCertificate | undefined, ip: string): Promise<Principal> {
    const keys = [`addr:${ip}`];
    this.refuseIfLimited(keys);
    const authenticator = peer?.authorized
      ? await this.identities.findCertByFingerprint(peer.fingerprint)
      : undefined;
    const identity = authenticator && (await this.identities.getIdentity(authenticator.identityId));
    if (!identity || identity.disabled) {
      this.fail(keys);
      throw invalidAuth();
    }
    return this.sessions.create(identity, authenticator!.id, ip);
  }

  private refuseIfLimited(keys: string[]) {
    const limiter = (k: string) => (k.startsWith('user:') ? this.limits.byUsername : this.limits.byAddress);
    const blocked = keys.find((k) => limiter(k).isBlocked(k));
    if (blocked) {
      const err = new ApiError(429, 'RATE_LIMITED', 'Too many failed login attempts; try again later');
      (err as ApiError & { retryAfter?: number }).retryAfter = limiter(blocked).retryAfterSeconds(blocked);
      throw err;
    }
  }

  private fail(keys: string[]) {
    for (const k of keys)
      (k.startsWith('user:') ? this.limits.byUsername : this.limits.byAddress).recordFailure(k);
  }
}
