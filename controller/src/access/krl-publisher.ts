import { EventEmitter } from 'node:events';
import type { Clock } from '../../../lib/platform/clock.js';
import { buildKrl } from './sshca/krl.js';
import type { SshAuthority } from './authority.js';
import type { AccessStore } from './store.js';

export interface PublishedKrl {
  version: number;
  blob: Buffer;
  generatedAt: Date;
  /** Serials it revokes (not yet expired), for agents ending live sessions. */
  serials: bigint[];
}

/**
 * The OpenSSH KRL every guest enforces (sshd RevokedKeys). Versioned in the store; rebuilt when the
 * version moves (revocation, CA rotation/retirement). Listeners (the agents' push channel) hear of
 * every new version.
 */
export class KrlPublisher {
  private cached?: PublishedKrl;
  readonly events = new EventEmitter();

  constructor(
    private readonly store: AccessStore,
    private readonly authority: SshAuthority,
    private readonly clock: Clock,
  ) {}

  async current(): Promise<PublishedKrl> {
    const version = await this.store.krlVersion();
    if (this.cached?.version === version) return this.cached;
    return this.rebuild(version);
  }

  /** Set by TrustSync: tells the other controllers on the store that the trust state moved. */
  announce: () => void = () => undefined;

  /** Called after the version moved here; rebuilds, tells listeners and the other controllers. */
  async changed(): Promise<PublishedKrl> {
    const krl = await this.publish();
    this.announce();
    return krl;
  }

  /** Rebuilds from the store and tells this controller's listeners (the push to its agents). */
  async publish(): Promise<PublishedKrl> {
    const krl = await this.rebuild(await this.store.krlVersion());
    this.events.emit('krl', krl);
    return krl;
  }

  /** The version last built here (0 before the first). */
  get version(): number {
    return this.cached?.version ?? 0;
  }

  storedVersion(): Promise<number> {
    return this.store.krlVersion();
  }

  private async rebuild(version: number): Promise<PublishedKrl> {
    const now = this.clock.now();
    // Certificates past valid_before are dead anyway; leaving them out keeps the KRL small.
    const revoked = await this.store.revokedSerials(now.toISOString());
    const sections = this.authority.trusted().map((ca) => ({
      caPublicBlob: ca.key.publicBlob,
      serials: revoked.filter((r) => r.caId === ca.id).map((r) => r.serial),
    }));
    const blob = buildKrl({ version: BigInt(version), generatedAt: now, comment: 'vmwarden', sections });
    this.cached = { version, blob, generatedAt: now, serials: revoked.map((r) => r.serial) };
    return this.cached;
  }
}
