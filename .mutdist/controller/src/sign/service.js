import * as grpc from '@grpc/grpc-js';
import { ApiError, conflict, notFound } from '../platform/errors.js';
import { AgentUnavailableError } from '../nodes/agent-clients.js';
const validity = (v) => (v === 'true' || v === 'false' ? v : 'unknown');
/** The controller's signature catalogue: the agents compute and sign, the controller keeps the record. */
export class SignService {
    store;
    nodes;
    inventory;
    agents;
    clock;
    constructor(store, nodes, inventory, agents, clock) {
        this.store = store;
        this.nodes = nodes;
        this.inventory = inventory;
        this.agents = agents;
        this.clock = clock;
    }
    /** One signature with a fresh verdict from its agent; "unknown" when the agent cannot be reached. */
    async get(serverId) {
        const record = await this.store.get(serverId);
        if (!record)
            throw notFound(`no signature for server ${serverId}`);
        try {
            const verdict = await this.verdictOf(record);
            const at = this.clock.now().toISOString();
            await this.store.setVerdict(serverId, validity(verdict.isValid), at);
            return { ...record, isValid: validity(verdict.isValid), checkedAt: at };
        }
        catch (err) {
            if (err instanceof AgentUnavailableError)
                return { ...record, isValid: 'unknown' };
            throw err;
        }
    }
    list(offset, limit) {
        return this.store.list(offset, limit);
    }
    /** POST /v1/sign: the first baseline. */
    async create(serverId) {
        const node = await this.nodeOf(serverId);
        if (await this.store.get(serverId))
            throw conflict('SIGNATURE_EXISTS', `server ${serverId} is already signed`);
        const sig = await this.call(() => this.agents.for(node).sign(serverId, false));
        return this.store.insert(this.fromAgent(sig, node, null));
    }
    /** PUT /v1/sign: accept the instance's current state as its baseline. */
    async update(serverId) {
        const existing = await this.store.get(serverId);
        if (!existing)
            throw notFound(`no signature for server ${serverId}; create one with POST`);
        const node = await this.nodeOf(serverId);
        const sig = await this.call(() => this.agents.for(node).sign(serverId, true));
        const record = {
            ...this.fromAgent(sig, node, this.clock.now().toISOString()),
            id: existing.id,
            createdAt: existing.createdAt,
        };
        await this.store.replaceBaseline(record);
        return record;
    }
    /** The signed manifest, and what differs from it now. */
    async manifest(serverId) {
        const record = await this.store.get(serverId);
        if (!record)
            throw notFound(`no signature for server ${serverId}`);
        const node = await this.nodes.get(record.nodeId);
        const verdict = await this.verdictOf(record).catch((err) => {
            if (err instanceof AgentUnavailableError)
                return null;
            throw err;
        });
        return { record, verdict, nodePublicKey: node.publicKeyPem ?? '' };
    }
    /** A verdict an agent pushed (file watcher, nightly re-hash, start check). */
    async recordEvent(node, event) {
        if (event.kind !== 'verdict' || !event.verdict)
            return;
        const record = await this.store.get(event.serverId);
        if (!record || record.nodeId !== node.id)
            return;
        await this.store.setVerdict(event.serverId, validity(event.verdict.isValid), this.clock.now().toISOString());
    }
    /** What the activate/deactivate tasks do. */
    taskWork(action) {
        return async (task, progress) => {
            const node = await this.nodes.get(task.nodeId);
            const active = action === 'activate';
            await this.call(() => this.agents.for(node).setValidation(active, (p) => {
                if (p.total > 0)
                    void progress((90 * p.done) / p.total);
            }));
            await this.nodes.setValidation(node.id, active);
            if (active)
                await this.importBaselines(node);
        };
    }
    /** After activation the agent holds a baseline for every instance; the catalogue records each. */
    async importBaselines(node) {
        const { rows } = await this.inventory.listForNode(node.id);
        for (const instance of rows) {
            if (await this.store.get(instance.serverId))
                continue;
            const sig = await this.call(() => this.agents.for(node).getSignature(instance.serverId)).catch(() => null);
            if (sig)
                await this.store.insert(this.fromAgent(sig, node, null));
        }
    }
    async verdictOf(record) {
        const node = await this.nodes.get(record.nodeId);
        return this.call(() => this.agents.for(node).verify(record.serverId));
    }
    async nodeOf(serverId) {
        const instance = await this.inventory.get(serverId);
        if (instance.nodeId === null) {
            throw conflict('NOT_AGENT_MANAGED', `server ${serverId} is not managed by an agent, so it cannot be signed`);
        }
        return this.nodes.get(instance.nodeId);
    }
    fromAgent(sig, node, updatedAt) {
        const now = this.clock.now().toISOString();
        return {
            serverId: sig.serverId,
            instanceName: sig.instanceName,
            nodeId: node.id,
            isValid: validity(sig.isValid),
            manifest: sig.manifestJson,
            signature: sig.signature,
            createdAt: now,
            updatedAt,
            checkedAt: now,
        };
    }
    /** Agent answers become API errors; an unreachable agent is a 503, not a 500. */
    async call(fn) {
        try {
            return await fn();
        }
        catch (err) {
            if (err instanceof AgentUnavailableError)
                throw new ApiError(503, 'AGENT_UNAVAILABLE', err.message);
            const e = err;
            if (e.code === grpc.status.NOT_FOUND)
                throw notFound(e.details);
            if (e.code === grpc.status.ALREADY_EXISTS)
                throw conflict('SIGNATURE_EXISTS', e.details);
            if (e.code === grpc.status.FAILED_PRECONDITION)
                throw conflict('PRECONDITION', e.details);
            throw err;
        }
    }
}
//# sourceMappingURL=service.js.map