import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';
import { hashToken, newToken } from '../platform/secrets.js';
import type { ApiSession, Authenticator, Identity, Principal } from './model.js';
import type { IdentityStore, SessionStore } from './store.js';

interface Cached {
  session: ApiSession;
  identity: Identity;
  persistedActivity: number;
  /** When the entry was last read from the store (ms). */
  readAt: number;
  /** The method of the session's authenticator, once looked up (an authenticator never changes method). */
  authMethod?: Authenticator['method'];
}

/** How stale the stored lastActivityAt may get before a request writes it (the cached value is exact). */
const PERSIST_EVERY_MS = 5_000;

/**
 * API sessions with a sliding idle timeout. The hot path (resolving a token on every request) is a
 * map lookup: lastActivityAt moves in memory and reaches the store at most every few seconds, and on
 * stop. A crash can only make a session look idle a few seconds earlier than it was — the safe side.
 */
export class ApiSessions {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly sessions: SessionStore,
    private readonly identities: IdentityStore,
    private readonly clock: Clock,
    readonly idleMs: number,
    /**
     * How long a cached session is trusted without re-reading the store. Infinite when this controller
     * is the store's only writer; short when others share it (a logout or a disable there must end
     * the session here too), and their activity keeps the session alive here.
     */
    private readonly revalidateMs = Infinity,
  ) {}

  /** API sessions in the store (the /metrics gauge). */
  count(): Promise<number> {
    return this.sessions.count();
  }

  async create(identity: Identity, authenticatorId: string, ipAddress: string): Promise<Principal> {
    const token = newToken();
    const now = this.clock.now().toISOString();
    const session: ApiSession = {
      id: randomUUID(),
      tokenHash: hashToken(token),
      identityId: identity.id,
      authenticatorId,
      ipAddress,
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
    };
    await this.sessions.insert(session);
    this.cache.set(session.tokenHash, {
      session,
      identity,
      persistedActivity: Date.parse(now),
      readAt: this.clock.now().getTime(),
    });
    return { identity, session, token };
  }

  /** The principal for a token, or null when unknown, idle too long, or its identity is disabled. */
  async resolve(token: string): Promise<Principal | null> {
    const hash = hashToken(token);
    const now = this.clock.now().getTime();
    let entry = this.cache.get(hash);
    if (entry && now - entry.readAt >= this.revalidateMs) {
      this.cache.delete(hash);
      const stale = entry;
      entry = await this.read(hash, now);
      if (!entry) return null;
      if (Date.parse(stale.session.lastActivityAt) > Date.parse(entry.session.lastActivityAt)) {
        entry.session.lastActivityAt = stale.session.lastActivityAt;
        entry.persistedActivity = stale.persistedActivity;
      }
      entry.authMethod = stale.authMethod;
    } else if (!entry) {
      entry = await this.read(hash, now);
      if (!entry) return null;
    }
    if (now >= Date.parse(entry.session.lastActivityAt) + this.idleMs || entry.identity.disabled) {
      await this.end(entry.session);
      return null;
    }
    entry.session.lastActivityAt = new Date(now).toISOString();
    if (now - entry.persistedActivity >= PERSIST_EVERY_MS) {
      entry.persistedActivity = now;
      await this.sessions.touch(entry.session.id, entry.session.lastActivityAt);
    }
    return { identity: entry.identity, session: entry.session, token };
  }

  private async read(hash: string, now: number): Promise<Cached | undefined> {
    const session = await this.sessions.findByTokenHash(hash);
    const identity = session && (await this.identities.getIdentity(session.identityId));
    if (!session || !identity) return undefined;
    const entry = { session, identity, persistedActivity: Date.parse(session.lastActivityAt), readAt: now };
    this.cache.set(hash, entry);
    return entry;
  }

  /**
   * The method (updb/cert) of the authenticator the session was made with. Kept with the cached
   * session, so GET /current-api-session does not cost a store read on every call.
   */
  async authenticatorMethod(session: ApiSession): Promise<Authenticator['method'] | undefined> {
    const entry = this.cache.get(session.tokenHash);
    if (entry?.authMethod) return entry.authMethod;
    const method = (await this.identities.getAuthenticator(session.authenticatorId))?.method;
    if (entry && method) entry.authMethod = method;
    return method;
  }

  expiresAt(session: ApiSession): Date {
    return new Date(Date.parse(session.lastActivityAt) + this.idleMs);
  }

  /** The lastActivityAt the store holds (OpenZiti calls it cachedLastActivityAt). */
  persistedActivityAt(session: ApiSession): string {
    const entry = this.cache.get(session.tokenHash);
    return entry ? new Date(entry.persistedActivity).toISOString() : session.lastActivityAt;
  }

  async end(session: ApiSession): Promise<void> {
    this.cache.delete(session.tokenHash);
    await this.sessions.delete(session.id);
  }

  /** Called when an identity is disabled, deleted or changes role: its sessions end. */
  async endAllFor(identityId: string): Promise<void> {
    for (const [hash, entry] of this.cache) if (entry.identity.id === identityId) this.cache.delete(hash);
    await this.sessions.deleteForIdentity(identityId);
  }

  /** Refreshes the cached identity (e.g. after a rename) without ending its sessions. */
  refreshIdentity(identity: Identity): void {
    for (const entry of this.cache.values()) if (entry.identity.id === identity.id) entry.identity = identity;
  }

  /** Deletes idle sessions; run by the cron job, once per tick across the cluster. Returns how many were removed. */
  async sweep(): Promise<number> {
    const cutoff = await this.forgetIdle();
    return this.sessions.deleteIdleSince(cutoff.toISOString());
  }

  /**
   * The part of sweep() every controller does for itself (the store's delete runs on one controller
   * per tick): writes moved activity and drops idle sessions from the cache. Returns the idle cutoff.
   */
  async forgetIdle(): Promise<Date> {
    await this.flush();
    const cutoff = new Date(this.clock.now().getTime() - this.idleMs);
    for (const [hash, entry] of this.cache) {
      if (Date.parse(entry.session.lastActivityAt) <= cutoff.getTime()) this.cache.delete(hash);
    }
    return cutoff;
  }

  /** Writes every in-memory lastActivityAt that moved since it was stored. */
  async flush(): Promise<void> {
    for (const entry of this.cache.values()) {
      const at = Date.parse(entry.session.lastActivityAt);
      if (at > entry.persistedActivity) {
        entry.persistedActivity = at;
        await this.sessions.touch(entry.session.id, entry.session.lastActivityAt);
      }
    }
  }
}
