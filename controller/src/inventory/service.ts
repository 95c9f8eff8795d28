import type { Clock } from '../platform/clock.js';
import { conflict, forbidden, notFound } from '../platform/errors.js';
import type { Principal } from '../identity/model.js';
import type { IdentityStore } from '../identity/store.js';
import type { Grant, Instance } from './model.js';
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
    if (await this.store.get(input.serverId))
      throw conflict('INSTANCE_EXISTS', `instance ${input.serverId} already exists`);
    const now = this.clock.now().toISOString();
    const instance: Instance = { ...input, nodeId: null, source: 'manual', createdAt: now, updatedAt: now };
    await this.store.insert(instance);
    return instance;
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
