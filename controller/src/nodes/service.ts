import { hostname as localHostname } from 'node:os';
import type { Clock } from '../../../lib/platform/clock.js';
import { ApiError, badRequest, conflict, notFound } from '../platform/errors.js';
import { conflictOnDuplicate } from '../store/constraint.js';
import { hashToken, newToken } from '../platform/secrets.js';
import { parsePositiveId } from '../platform/ids.js';
import { nodeUri } from '../../../lib/pki/san-uris.js';
import type { Identities } from '../identity/identities.js';
import type { Inventory, InventorySync } from '../inventory/service.js';
import type { EnrollRequestMsg, InventoryReportMsg } from '../../../proto/messages.js';
import type { Node } from './model.js';
import type { NodeStore } from './store.js';

const ENROLLMENT_TOKEN_TTL_MS = 24 * 3600_000;

export class EnrollmentError extends Error {}

/** Compute nodes: created by an admin, enrolled by their agent with a one-time token. */
export class Nodes {
  constructor(
    private readonly store: NodeStore,
    private readonly identities: Identities,
    private readonly inventory: Inventory,
    private readonly clock: Clock,
    private readonly defaultLoginUser: string,
    private readonly caFingerprint: string,
  ) {}

  async create(name: string): Promise<{ node: Node; token: string }> {
    const duplicate = () => conflict('NODE_EXISTS', `a node named '${name}' already exists`);
    if (await this.store.byName(name)) throw duplicate();
    // `<secret>.<CA fingerprint>`: the agent pins our CA from the token before it trusts the connection.
    const token = `${newToken()}.${this.caFingerprint}`;
    const now = this.clock.now();
    const expires = new Date(now.getTime() + ENROLLMENT_TOKEN_TTL_MS).toISOString();
    const node = await conflictOnDuplicate(
      () => this.store.create(name, hashToken(token), expires, now.toISOString()),
      duplicate,
      'nodes',
    );
    return { node, token };
  }

  async get(id: number): Promise<Node> {
    const node = await this.store.get(id);
    if (!node) throw notFound(`no node with id ${id}`);
    return node;
  }

  list(): Promise<Node[]> {
    return this.store.list();
  }

  /** The node an agent's identity belongs to (from its mTLS certificate). */
  async forIdentity(identityId: string): Promise<Node | undefined> {
    return this.store.byIdentity(identityId);
  }

  /**
   * Exchanges a one-time token and a CSR for the agent's certificate. The agent becomes an identity
   * (role agent) with a cert authenticator, so it rotates that certificate like any identity.
   */
  async enroll(req: EnrollRequestMsg): Promise<{ node: Node; certPem: string; identityId: string }> {
    const hash = hashToken(req.token ?? '');
    const node = await this.store.byTokenHash(hash);
    const now = this.clock.now().toISOString();
    if (!node || !node.tokenExpiresAt || node.tokenExpiresAt <= now) {
      throw new EnrollmentError('enrollment token is unknown, used or expired');
    }
    if (!req.nodePublicKeyPem?.includes('PUBLIC KEY'))
      throw new EnrollmentError('node_public_key_pem is missing');
    const identityName = `node-${node.name}`.slice(0, 100);
    const identity =
      (await this.identities.findByName(identityName)) ??
      (await this.identities.create({ name: identityName, role: 'agent' }));
    let certPem: string;
    try {
      certPem = (
        await this.identities.issueCertificate(identity.id, req.csrPem, {
          sans: [{ type: 'url', value: nodeUri(node.id) }],
          serverAuth: true,
        })
      ).certPem;
    } catch (err) {
      throw new EnrollmentError(err instanceof ApiError ? err.message : 'could not issue a certificate');
    }
    const claimed = await this.store.completeEnrollment(node.id, hash, {
      identityId: identity.id,
      publicKeyPem: req.nodePublicKeyPem,
      agentAddress: req.agentAddress,
      hostname: req.hostname || localHostname(),
      at: now,
    });
    if (!claimed) throw new EnrollmentError('enrollment token is unknown, used or expired');
    return { node: (await this.store.get(node.id))!, certPem, identityId: identity.id };
  }

  /** A node's inventory report: see Inventory.syncFromNode for what it may change. */
  async reportInventory(node: Node, report: InventoryReportMsg): Promise<InventorySync> {
    await this.store.seen(node.id, {
      agentAddress: report.agentAddress || node.agentAddress || '',
      validationActive: report.validationActive,
      libvirtUri: report.libvirtUri,
      at: this.clock.now().toISOString(),
    });
    return this.inventory.syncFromNode(node.id, report.instances, this.defaultLoginUser);
  }

  async setValidation(id: number, active: boolean): Promise<void> {
    await this.store.setValidation(id, active);
  }

  static parseId(raw: string): number {
    const id = parsePositiveId(raw);
    // Node ids travel as uint32 in the gRPC messages.
    if (id === undefined || id > 0xffff_ffff)
      throw badRequest('INVALID_NODE_ID', `node id must be a positive integer, got '${raw.slice(0, 64)}'`);
    return id;
  }
}
