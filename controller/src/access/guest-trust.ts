import type { Clock } from '../../../lib/platform/clock.js';
import type { Identity, Principal } from '../identity/model.js';
import type { IdentityStore } from '../identity/store.js';
import type { Node } from '../nodes/model.js';
import type { AgentClients } from '../nodes/agent-clients.js';
import { ApiError, badRequest, forbidden, notFound } from '../platform/errors.js';
import type { Inventory } from '../inventory/service.js';
import type {
  GuestTrustStatusMsg,
  RefusedEntryMsg,
  SessionReportMsg,
  TrustBundleMsg,
} from '../../../proto/messages.js';
import type { SshAuthority } from './authority.js';
import type { KrlPublisher, PublishedKrl } from './krl-publisher.js';
import type { AccessSessions } from './sessions.js';
import type { GuestTrustStore } from './guest-trust-store.js';
import type { GuestTrustStatus } from './model.js';

/**
 * The controller's side of trust inside guests: the bundle agents install (trusted CA keys + KRL),
 * pushed to every known agent when the KRL version moves (revocation, CA rotation or retirement);
 * the per-instance installation status agents report; the sessions they observe.
 */
export class GuestTrust {
  private readonly nodes = new Map<number, Node>();

  constructor(
    private readonly krl: KrlPublisher,
    private readonly authority: SshAuthority,
    private readonly agents: AgentClients,
    private readonly sessions: AccessSessions,
    private readonly identities: IdentityStore,
    private readonly inventory: Inventory,
    private readonly statuses: GuestTrustStore,
    private readonly clock: Clock,
    private readonly loginUser: string,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
    /** The fleet's file digest for new signatures (config signatureDigest), carried by the bundle. */
    private readonly signatureDigest = 'sha256',
  ) {
    this.krl.events.on('krl', (k: PublishedKrl) => void this.push(k));
  }

  async bundle(k?: PublishedKrl): Promise<TrustBundleMsg> {
    const krl = k ?? (await this.krl.current());
    return {
      trustedCaKeys: this.authority.trusted().map((ca) => ca.key.openssh),
      krl: krl.blob,
      krlVersion: String(krl.version),
      revokedSerials: krl.serials.map(String),
      loginUser: this.loginUser,
      signatureDigest: this.signatureDigest,
    };
  }

  /** An agent that talked to us: it gets the pushes from now on. */
  remember(node: Node): void {
    this.nodes.set(node.id, node);
  }

  /** Sends the current bundle to every known agent, in parallel. */
  async push(k?: PublishedKrl): Promise<void> {
    const bundle = await this.bundle(k);
    await Promise.all(
      [...this.nodes.values()].map(async (node) => {
        try {
          await this.agents.for(node).updateTrust(bundle);
        } catch (err) {
          this.log(`trust push to node ${node.name} failed`, err);
        }
      }),
    );
  }

  /** Trust statuses of a node's guests; entries for instances it does not host are refused. */
  async report(node: Node, guests: GuestTrustStatusMsg[]): Promise<RefusedEntryMsg[]> {
    this.remember(node);
    const now = this.clock.now().toISOString();
    const refused: RefusedEntryMsg[] = [];
    const accepted: GuestTrustStatus[] = [];
    for (const g of guests) {
      const reason = await this.inventory.refusalFor(node.id, g.serverId);
      if (reason) {
        refused.push({ serverId: g.serverId, reason });
        continue;
      }
      accepted.push({
        serverId: g.serverId.toLowerCase(),
        nodeId: node.id,
        state: g.state,
        caFingerprints: g.caFingerprints,
        krlVersion: Number(g.krlVersion),
        lastSuccess: g.lastSuccess || null,
        lastError: g.lastError || null,
        loginUser: g.loginUser,
        transport: g.transport,
        reportedAt: now,
      });
    }
    await this.statuses.save(accepted);
    return refused;
  }

  /**
   * What the agent last reported for this instance; "unknown" when nothing was reported, or when it
   * was reported by a node that no longer hosts the instance (`hostNodeId`, when given).
   */
  async status(serverId: string, hostNodeId?: number | null): Promise<GuestTrustStatus> {
    const id = serverId.toLowerCase();
    const known = await this.statuses.get(id);
    return (
      (known && (hostNodeId === undefined || known.nodeId === hostNodeId) ? known : undefined) ?? {
        serverId: id,
        nodeId: 0,
        state: 'unknown',
        caFingerprints: [],
        krlVersion: 0,
        lastSuccess: null,
        lastError: 'no trust report from an agent for this instance',
        loginUser: '',
        transport: '',
        reportedAt: '',
      }
    );
  }

  /** A login/logout an agent saw inside a guest, recorded like POST /v1/access/session/start|end. */
  async session(node: Node, r: SessionReportMsg): Promise<string> {
    this.remember(node);
    // A node reports logins only in instances it hosts, with certificates issued for that instance.
    const refusal = await this.inventory.refusalFor(node.id, r.serverId);
    if (refusal) throw forbidden(refusal);
    const identity = node.identityId ? await this.identities.getIdentity(node.identityId) : undefined;
    if (!identity) throw notFound(`no identity for node ${node.name}`);
    const reporter = { identity: identity as Identity } as Principal;
    if (r.event === 'start') {
      const s = await this.sessions.start(reporter, r.certificateId, r.sourceIp, r.serverId);
      return s.id;
    }
    if (r.event === 'end') {
      try {
        return (await this.sessions.end(reporter, r.sessionId, r.reason || 'logout', r.serverId)).id;
      } catch (err) {
        // Agents report the end of a session killed on revocation, which the controller ended
        // already: nothing left to do (the REST endpoint still refuses a second end with 400).
        if (err instanceof ApiError && err.code === 'SESSION_ALREADY_ENDED') return r.sessionId;
        throw err;
      }
    }
    throw badRequest('INVALID_EVENT', `unknown session event ${r.event}`);
  }
}
