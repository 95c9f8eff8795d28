import { conflict, forbidden, notFound } from '../platform/errors.js';
import { INSTANCE_STATES } from './model.js';
/** The instances access can be requested for, and who may request it. */
export class Inventory {
    store;
    identities;
    clock;
    constructor(store, identities, clock) {
        this.store = store;
        this.identities = identities;
        this.clock = clock;
    }
    async register(input) {
        if (await this.store.get(input.serverId))
            throw conflict('INSTANCE_EXISTS', `instance ${input.serverId} already exists`);
        const now = this.clock.now().toISOString();
        const instance = { ...input, nodeId: null, source: 'manual', createdAt: now, updatedAt: now };
        await this.store.insert(instance);
        return instance;
    }
    /**
     * Makes the inventory match what a node's agent reports: new domains appear, known ones follow
     * (name, state, addresses), domains gone from the host disappear. Hand-registered instances are
     * left alone unless the agent now reports them.
     */
    async syncFromNode(nodeId, reported, loginUser) {
        const now = this.clock.now().toISOString();
        const seen = new Set();
        for (const r of reported) {
            seen.add(r.serverId);
            const state = INSTANCE_STATES.includes(r.state)
                ? r.state
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
            }
            else if (current.nodeId !== nodeId ||
                current.instanceName !== r.name ||
                current.state !== state ||
                current.ipAddress !== ipAddress) {
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
            if (!seen.has(gone.serverId) && gone.source === 'agent')
                await this.store.delete(gone.serverId);
        }
    }
    async get(serverId) {
        const instance = await this.store.get(serverId);
        if (!instance)
            throw notFound(`no instance with server_id ${serverId}`);
        return instance;
    }
    /** For a non-admin caller: the instance, only if granted (else 403). */
    async getFor(caller, serverId) {
        const instance = await this.get(serverId);
        if (caller.identity.role !== 'admin' && !(await this.store.isGranted(serverId, caller.identity.id))) {
            throw forbidden(`identity ${caller.identity.name} has no access grant for instance ${serverId}`);
        }
        return instance;
    }
    listAll() {
        return this.store.list({ limit: 1_000_000, offset: 0 });
    }
    listForNode(nodeId) {
        return this.store.listByNode(nodeId).then((rows) => ({ rows, total: rows.length }));
    }
    list(caller, limit, offset) {
        const grantedTo = caller.identity.role === 'admin' ? undefined : caller.identity.id;
        return this.store.list({ grantedTo, limit, offset });
    }
    async update(serverId, patch) {
        const current = await this.get(serverId);
        const next = { ...current, updatedAt: this.clock.now().toISOString() };
        for (const [k, v] of Object.entries(patch))
            if (v !== undefined)
                next[k] = v;
        await this.store.update(next);
        return next;
    }
    async remove(serverId) {
        if (!(await this.store.delete(serverId)))
            throw notFound(`no instance with server_id ${serverId}`);
    }
    async grant(serverId, identityId) {
        await this.get(serverId);
        if (!(await this.identities.getIdentity(identityId)))
            throw notFound(`no identity with id ${identityId}`);
        const grant = { serverId, identityId, createdAt: this.clock.now().toISOString() };
        await this.store.grant(grant);
        return grant;
    }
    async revokeGrant(serverId, identityId) {
        await this.get(serverId);
        if (!(await this.store.revokeGrant(serverId, identityId))) {
            throw notFound(`identity ${identityId} has no grant on instance ${serverId}`);
        }
    }
    async grants(serverId) {
        await this.get(serverId);
        return this.store.grants(serverId);
    }
}
//# sourceMappingURL=service.js.map