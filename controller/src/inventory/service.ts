import type { Clock } from '../../../lib/platform/clock.js';
import { conflict, forbidden, notFound } from '../platform/errors.js';
import { conflictOnDuplicate } from '../store/constraint.js';
import type { Principal } from '../identity/model.js';
import type { IdentityStore } from '../identity/store.js';
import { INSTANCE_STATES, type Grant, type Instance } from './model.js';
import type { InventoryStore } from './store.js';

export type NewInstance = Pick<
  Instance,
  'serverId' | 'instanceName' | 'ipAddress' | 'sshPort' | 'loginUser' | 'state'
>;
export type InstancePatch = Partial<Omit<NewInstance, 'serverId'>> & {
  /** Hands the instance to this node (an admin's move); null: no node hosts it. */
  nodeId?: number | null;
};

/** What an inventory report did besides plain updates. */
export interface InventorySync {
  /** Entries not applied: another node hosts the instance, or an admin registered it. */
  refused: Array<{ serverId: string; reason: string; hostNodeId: number | null }>;
  /** Instances this node took over (released by their previous node, or handed over by an admin). */
  adopted: string[];
  /** Instances this node hosted and no longer reports: now hosted by no node. */
  released: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why `nodeId` may not speak for `current`, or null when it may (it hosts it, or may adopt it). */
function refusalFor(current: Instance, nodeId: number): string | null {
  if (current.nodeId === nodeId) return null;
  if (current.nodeId !== null)
    return `instance ${current.serverId} is hosted by node ${current.nodeId}: it moves once that node reports it gone, or when an admin sets its node_id`;
  if (current.source === 'manual')
    return `instance ${current.serverId} was registered by an admin: an admin hands it to a node by setting its node_id`;
  return null;
}

/** The instances access can be requested for, and who may request it. */
export class Inventory {
  constructor(
    private readonly store: InventoryStore,
    private readonly identities: IdentityStore,
    private readonly clock: Clock,
  ) {}

  async register(input: NewInstance): Promise<Instance> {
    const duplicate = () => conflict('INSTANCE_EXISTS', `instance ${input.serverId} already exists`);
    if (await this.store.get(input.serverId)) throw duplicate();
    const now = this.clock.now().toISOString();
    const instance: Instance = { ...input, nodeId: null, source: 'manual', createdAt: now, updatedAt: now };
    await conflictOnDuplicate(() => this.store.insert(instance), duplicate, 'instances');
    return instance;
  }

  /**
   * Makes the inventory match what a node's agent reports, for the instances that node may speak for:
   *  - one it hosts (node_id = this node): name, state and address follow the report;
   *  - one nobody hosts that an agent reported before (source 'agent', node_id NULL: released by
   *    its previous node) or one the controller does not know: this node now hosts it;
   *  - one another node hosts, or one an admin registered and has not handed over (source 'manual',
   *    node_id NULL): refused, nothing about it changes.
   * An instance this node hosts that the report omits is released (node_id NULL, state unknown,
   * grants kept): its node said it no longer has it, so another node may report it next (a move).
   * Silence from a node is never such a statement: only this node's own report releases.
   */
  async syncFromNode(
    nodeId: number,
    reported: Array<{ serverId: string; name: string; state: string; ipAddresses: string[] }>,
    loginUser: string,
  ): Promise<InventorySync> {
    const now = this.clock.now().toISOString();
    const seen = new Set<string>();
    const result: InventorySync = { refused: [], adopted: [], released: [] };
    for (const r of reported) {
      seen.add(r.serverId);
      const state = (INSTANCE_STATES as string[]).includes(r.state)
        ? (r.state as Instance['state'])
        : 'unknown';
      const current = await this.store.get(r.serverId);
      const ipAddress = r.ipAddresses[0] ?? current?.ipAddress ?? '';
      if (!current) {
        await this.store.insert({
          serverId: r.serverId,
          instanceName: r.name,
          nodeId,
          ipAddress,
          sshPort: 22,
          loginUser,
          state,
          source: 'agent',
          createdAt: now,
          updatedAt: now,
        });
        continue;
      }
      const refusal = refusalFor(current, nodeId);
      if (refusal) {
        result.refused.push({ serverId: r.serverId, reason: refusal, hostNodeId: current.nodeId });
        continue;
      }
      if (current.nodeId !== nodeId) result.adopted.push(r.serverId);
      if (
        current.nodeId !== nodeId ||
        current.instanceName !== r.name ||
        current.state !== state ||
        current.ipAddress !== ipAddress
      ) {
        await this.store.update({
          ...current,
          nodeId,
          instanceName: r.name,
          state,
          ipAddress,
          updatedAt: now,
        });
      }
    }
    for (const gone of await this.store.listByNode(nodeId)) {
      if (seen.has(gone.serverId)) continue;
      await this.store.update({ ...gone, nodeId: null, state: 'unknown', updatedAt: now });
      result.released.push(gone.serverId);
    }
    return result;
  }

  /**
   * Whether a node may report about this instance (sessions, trust): only if it hosts it. `unknown`
   * also allows instances that no node hosts and no admin registered, including ones the controller
   * does not know yet (signature events can precede the node's next inventory report). Returns the
   * reason it may not, or null.
   */
  async refusalFor(
    nodeId: number,
    serverId: string,
    opts: { unknown?: boolean } = {},
  ): Promise<string | null> {
    const current = await this.store.get(serverId);
    if (!current)
      return opts.unknown ? null : `instance ${serverId} is not in the inventory of node ${nodeId}`;
    if (current.nodeId === nodeId) return null;
    if (opts.unknown) return refusalFor(current, nodeId);
    return refusalFor(current, nodeId) ?? `instance ${serverId} is not hosted by node ${nodeId}`;
  }

  /**
   * An instance by server_id (UUID) or libvirt name, for every route that takes a sandbox id. Names
   * are not unique in the store (two nodes may each host a domain "web"): a name resolves only when
   * exactly one instance has it, else 409 AMBIGUOUS_SANDBOX; none → 404.
   */
  async resolve(ref: string): Promise<Instance> {
    const found = await this.lookup(ref);
    if (!found) throw notFound(`no instance with server_id or name ${ref}`);
    return found;
  }

  /** A listing filter's sandbox id as a server_id: a name is resolved; an unknown one stays (no match). */
  async resolveFilter(ref: string): Promise<string> {
    return (await this.lookup(ref))?.serverId ?? ref;
  }

  private async lookup(ref: string): Promise<Instance | undefined> {
    const byId =
      (await this.store.get(ref)) ?? (UUID.test(ref) ? await this.store.get(ref.toLowerCase()) : undefined);
    if (byId) return byId;
    const named = await this.store.findByName(ref, 2);
    if (named.length > 1)
      throw conflict(
        'AMBIGUOUS_SANDBOX',
        `more than one instance is named ${ref}: use its server_id (UUID) instead`,
      );
    return named[0];
  }

  async get(serverId: string): Promise<Instance> {
    const instance = await this.store.get(serverId);
    if (!instance) throw notFound(`no instance with server_id ${serverId}`);
    return instance;
  }

  /** For a non-admin caller: the instance, only if granted (else 403). */
  async getFor(caller: Principal, serverId: string): Promise<Instance> {
    const instance = await this.get(serverId);
    if (caller.identity.role !== 'admin' && !(await this.store.isGranted(serverId, caller.identity.id))) {
      throw forbidden(`identity ${caller.identity.name} has no access grant for instance ${serverId}`);
    }
    return instance;
  }

  listAll() {
    return this.store.list({ limit: 1_000_000, offset: 0 });
  }

  listForNode(nodeId: number) {
    return this.store.listByNode(nodeId).then((rows) => ({ rows, total: rows.length }));
  }

  list(caller: Principal, limit: number, offset: number) {
    const grantedTo = caller.identity.role === 'admin' ? undefined : caller.identity.id;
    return this.store.list({ grantedTo, limit, offset });
  }

  async update(serverId: string, patch: InstancePatch): Promise<Instance> {
    const current = await this.get(serverId);
    const next: Instance = { ...current, updatedAt: this.clock.now().toISOString() };
    for (const [k, v] of Object.entries(patch))
      if (v !== undefined) (next as unknown as Record<string, unknown>)[k] = v;
    await this.store.update(next);
    return next;
  }

  async remove(serverId: string): Promise<void> {
    if (!(await this.store.delete(serverId))) throw notFound(`no instance with server_id ${serverId}`);
  }

  async grant(serverId: string, identityId: string): Promise<Grant> {
    await this.get(serverId);
    if (!(await this.identities.getIdentity(identityId))) throw notFound(`no identity with id ${identityId}`);
    const grant = { serverId, identityId, createdAt: this.clock.now().toISOString() };
    await this.store.grant(grant);
    return grant;
  }

  async revokeGrant(serverId: string, identityId: string): Promise<void> {
    await this.get(serverId);
    if (!(await this.store.revokeGrant(serverId, identityId))) {
      throw notFound(`identity ${identityId} has no grant on instance ${serverId}`);
    }
  }

  async grants(serverId: string): Promise<Grant[]> {
    await this.get(serverId);
    return this.store.grants(serverId);
  }
}
