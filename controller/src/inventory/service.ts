import type { Clock } from '../platform/clock.js';
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
export type InstancePatch = Partial<Omit<NewInstance, 'serverId'>>;

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
   * Makes the inventory match what a node's agent reports: new domains appear, known ones follow
   * (name, state, addresses), domains gone from the host disappear. Hand-registered instances are
   * left alone unless the agent now reports them.
   */
  async syncFromNode(
    nodeId: number,
    reported: Array<{ serverId: string; name: string; state: string; ipAddresses: string[] }>,
    loginUser: string,
  ): Promise<void> {
    const now = this.clock.now().toISOString();
    const seen = new Set<string>();
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
      } else if (
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
      if (!seen.has(gone.serverId) && gone.source === 'agent') await this.store.delete(gone.serverId);
    }
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
