import { EventEmitter } from 'node:events';
import { buildKrl } from './sshca/krl.js';
/**
 * The OpenSSH KRL every guest enforces (sshd RevokedKeys). Versioned in the store; rebuilt when the
 * version moves (revocation, CA rotation/retirement). Listeners (the agents' push channel) hear of
 * every new version.
 */
export class KrlPublisher {
    store;
    authority;
    clock;
    cached;
    events = new EventEmitter();
    constructor(store, authority, clock) {
        this.store = store;
        this.authority = authority;
        this.clock = clock;
    }
    async current() {
        const version = await this.store.krlVersion();
        if (this.cached?.version === version)
            return this.cached;
        return this.rebuild(version);
    }
    /** Called after the version moved; rebuilds and tells listeners. */
    async changed() {
        const krl = await this.rebuild(await this.store.krlVersion());
        this.events.emit('krl', krl);
        return krl;
    }
    async rebuild(version) {
        const now = this.clock.now();
        // Certificates past valid_before are dead anyway; leaving them out keeps the KRL small.
        const revoked = await this.store.revokedSerials(now.toISOString());
        const sections = this.authority.trusted().map((ca) => ({
            caPublicBlob: ca.key.publicBlob,
            serials: revoked.filter((r) => r.caId === ca.id).map((r) => r.serial),
        }));
        const blob = buildKrl({ version: BigInt(version), generatedAt: now, comment: 'vmwarden', sections });
        this.cached = { version, blob, generatedAt: now };
        return this.cached;
    }
}
//# sourceMappingURL=krl-publisher.js.map