import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../lib/platform/clock.js';
import { badRequest, conflict, forbidden, notFound } from '../platform/errors.js';
import type { Principal } from '../identity/model.js';
import type { Inventory } from '../inventory/service.js';
import type { AccessSession, SessionQuery } from './model.js';
import type { AccessStore } from './store.js';
import type { IdentityStore } from '../identity/store.js';
import { resolveFilters } from './service.js';

const newSessionId = () => `SESS-${randomBytes(4).toString('hex').toUpperCase()}`;

/** SSH sessions opened with our certificates, as reported by agents (or other trusted reporters). */
export class AccessSessions {
  constructor(
    private readonly store: AccessStore,
    private readonly inventory: Inventory,
    private readonly identities: IdentityStore,
    private readonly clock: Clock,
  ) {}

  /** Sessions reported as started and not yet ended (the /metrics gauge). */
  countActive(): Promise<number> {
    return this.store.countActiveSessions();
  }

  /**
   * `serverId`: the instance the login was seen in (agent reports): the certificate must have been
   * issued for it.
   */
  async start(
    reporter: Principal,
    certificateId: string,
    sourceIp: string,
    serverId?: string,
  ): Promise<AccessSession> {
    requireReporter(reporter);
    const now = this.clock.now().toISOString();
    const cert = await this.store.getCertificate(certificateId, now);
    if (!cert) throw notFound(`no certificate with id ${certificateId}`);
    if (serverId !== undefined && cert.sandboxId.toLowerCase() !== serverId.toLowerCase())
      throw forbidden(`certificate ${certificateId} was not issued for instance ${serverId}`);
    if (cert.status !== 'ACTIVE') {
      throw conflict(
        'CERTIFICATE_NOT_ACTIVE',
        `certificate ${certificateId} is ${cert.status.toLowerCase()}`,
      );
    }
    const instance = await this.inventory.get(cert.sandboxId).catch(() => undefined);
    const session: AccessSession = {
      id: newSessionId(),
      certificateId,
      sandboxId: cert.sandboxId,
      userId: cert.userId,
      vmName: cert.vmName,
      vmIpAddress: instance?.ipAddress ?? '',
      sourceIp,
      startedAt: now,
      endedAt: null,
      status: 'ACTIVE',
      endReason: null,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.store.insertSession(session);
        return session;
      } catch (err) {
        // 32-bit ids can collide; try a fresh one a few times.
        if (attempt >= 3 || !/UNIQUE/.test(String(err))) throw err;
        session.id = newSessionId();
      }
    }
  }

  /** `serverId`: the instance the logout was seen in (agent reports): the session must be in it. */
  async end(
    reporter: Principal,
    sessionId: string,
    reason: string,
    serverId?: string,
  ): Promise<AccessSession> {
    requireReporter(reporter);
    const session = await this.store.getSession(sessionId);
    if (!session) throw notFound(`no session with id ${sessionId}`);
    if (serverId !== undefined && session.sandboxId.toLowerCase() !== serverId.toLowerCase())
      throw forbidden(`session ${sessionId} is not in instance ${serverId}`);
    if (
      session.status !== 'ACTIVE' ||
      !(await this.store.endSession(sessionId, reason, this.clock.now().toISOString()))
    ) {
      throw badRequest('SESSION_ALREADY_ENDED', `session ${sessionId} has already ended`);
    }
    return (await this.store.getSession(sessionId))!;
  }

  async list(caller: Principal, query: SessionQuery) {
    query = await resolveFilters(this.inventory, this.identities, query);
    if (caller.identity.role === 'user') {
      if (query.userId !== undefined && query.userId !== caller.identity.id) {
        throw forbidden('only admins can list sessions of other identities');
      }
      query = { ...query, userId: caller.identity.id };
    }
    return this.store.listSessions(query);
  }
}

/** Sessions are reported by agents and admins (or another service running as one), not by users. */
function requireReporter(p: Principal) {
  if (p.identity.role === 'user') throw forbidden('only agents and admins report sessions');
}
