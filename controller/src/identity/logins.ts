import { unauthorized } from '../platform/errors.js';
import { hashPassword, verifyPassword } from '../platform/secrets.js';
import type { LoginThrottle } from './login-throttle.js';
import type { Identity, Principal } from './model.js';
import type { ApiSessions } from './sessions.js';
import type { IdentityStore } from './store.js';

export interface PeerCertificate {
  /** TLS verified the chain against the internal CA. */
  authorized: boolean;
  fingerprint: string;
}

const invalidAuth = () => unauthorized('INVALID_AUTH', 'The authentication request failed');

/** POST /authenticate: password and certificate logins, throttled by LoginThrottle (see there). */
export class Logins {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly identities: IdentityStore,
    private readonly sessions: ApiSessions,
    private readonly throttle: LoginThrottle,
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
    const found = await this.throttle.password(username, ip, async () => {
      const authenticator = await this.identities.findUpdbByUsername(username);
      // Unknown users cost the same scrypt as known ones, so timing does not reveal which names exist.
      const hash = authenticator?.passwordHash ?? (await (this.dummyHash ??= hashPassword('not-a-password')));
      const ok = (await verifyPassword(password, hash)) && authenticator !== undefined;
      const identity = ok ? await this.identities.getIdentity(authenticator.identityId) : undefined;
      return identity && !identity.disabled ? { identity, authenticatorId: authenticator!.id } : undefined;
    });
    if (!found) throw invalidAuth();
    return found;
  }

  async withCertificate(peer: PeerCertificate | undefined, ip: string): Promise<Principal> {
    const found = await this.throttle.certificate(ip, async () => {
      const authenticator = peer?.authorized
        ? await this.identities.findCertByFingerprint(peer.fingerprint)
        : undefined;
      const identity = authenticator && (await this.identities.getIdentity(authenticator.identityId));
      return identity && !identity.disabled ? { identity, authenticatorId: authenticator!.id } : undefined;
    });
    if (!found) throw invalidAuth();
    return this.sessions.create(found.identity, found.authenticatorId, ip);
  }
}
