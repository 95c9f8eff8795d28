import { ApiError, unauthorized } from '../platform/errors.js';
import { hashPassword, verifyPassword } from '../platform/secrets.js';
const invalidAuth = () => unauthorized('INVALID_AUTH', 'The authentication request failed');
/** POST /authenticate: password and certificate logins, rate-limited per username and per address. */
export class Logins {
    identities;
    sessions;
    limits;
    dummyHash;
    constructor(identities, sessions, limits) {
        this.identities = identities;
        this.sessions = sessions;
        this.limits = limits;
    }
    async withPassword(username, password, ip) {
        const { identity, authenticatorId } = await this.checkPassword(username, password, ip);
        return this.sessions.create(identity, authenticatorId, ip);
    }
    /**
     * Checks username:password (HTTP Basic on the SSH key registry) with the same rate limits as
     * withPassword, without creating an API session.
     */
    async verifyPassword(username, password, ip) {
        return (await this.checkPassword(username, password, ip)).identity;
    }
    async checkPassword(username, password, ip) {
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
        return { identity, authenticatorId: authenticator.id };
    }
    async withCertificate(peer, ip) {
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
        return this.sessions.create(identity, authenticator.id, ip);
    }
    refuseIfLimited(keys) {
        const limiter = (k) => (k.startsWith('user:') ? this.limits.byUsername : this.limits.byAddress);
        const blocked = keys.find((k) => limiter(k).isBlocked(k));
        if (blocked) {
            const err = new ApiError(429, 'RATE_LIMITED', 'Too many failed login attempts; try again later');
            err.retryAfter = limiter(blocked).retryAfterSeconds(blocked);
            throw err;
        }
    }
    fail(keys) {
        for (const k of keys)
            (k.startsWith('user:') ? this.limits.byUsername : this.limits.byAddress).recordFailure(k);
    }
}
//# sourceMappingURL=logins.js.map