import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../lib/platform/clock.js';
import { ApiError, conflict, forbidden, notFound } from '../platform/errors.js';
import type { Inventory } from '../inventory/service.js';
import type { Nodes } from '../nodes/service.js';
import type { Node } from '../nodes/model.js';
import { AgentUnavailableError, type AgentClients } from '../nodes/agent-clients.js';
import type { EventMsg, SignatureMsg, VerdictMsg } from '../../../proto/messages.js';
import type { AuditAction, SignEvent, SignRecord, Task, Validity } from './model.js';
import type { SignStore } from './store.js';
import type { TaskWork } from './tasks.js';

const validity = (v: string): Validity => (v === 'true' || v === 'false' ? v : 'unknown');

/** The parts a signed manifest says were not inspected (its `unsupported` list). */
export function manifestGaps(manifestJson: string): string[] {
  try {
    const gaps = (JSON.parse(manifestJson) as { unsupported?: unknown }).unsupported;
    return Array.isArray(gaps) ? gaps.filter((g): g is string => typeof g === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * A verdict with what was not inspected: "true" only when nothing was left out. An agent from before
 * this rule answers "true" for a manifest with gaps; the catalogue never records that as valid.
 */
export function judged(
  isValid: string,
  manifestJson: string,
  uninspected: string[] = [],
): { isValid: Validity; uninspected: string[] } {
  const v = validity(isValid);
  const gaps = [...new Set([...manifestGaps(manifestJson), ...uninspected])];
  if (v === 'true' && gaps.length) return { isValid: 'unknown', uninspected: gaps };
  return { isValid: v, uninspected: v === 'unknown' ? gaps : [] };
}

const withGaps = (r: SignRecord, j: { isValid: Validity; uninspected: string[] }): SignRecord => {
  const out: SignRecord = { ...r, isValid: j.isValid };
  if (j.uninspected.length) out.uninspected = j.uninspected;
  return out;
};

/** The agent could not be asked (call() turns AgentUnavailableError into a 503 AGENT_UNAVAILABLE). */
const unreachable = (err: unknown) =>
  err instanceof AgentUnavailableError || (err instanceof ApiError && err.code === 'AGENT_UNAVAILABLE');

/** The controller's signature catalogue: the agents compute and sign, the controller keeps the record. */
export class SignService {
  constructor(
    private readonly store: SignStore,
    private readonly nodes: Nodes,
    private readonly inventory: Inventory,
    private readonly agents: AgentClients,
    private readonly clock: Clock,
  ) {}

  /** Signatures by verdict (is_valid: 'true', 'false', 'unknown'): the /metrics gauge. */
  countByVerdict(): Promise<Array<{ verdict: string; count: number }>> {
    return this.store.countByVerdict();
  }

  /** One signature with a fresh verdict from its agent; "unknown" when the agent cannot be reached. */
  async get(serverId: string): Promise<SignRecord> {
    const record = await this.store.get(serverId);
    if (!record) throw notFound(`no signature for server ${serverId}`);
    try {
      const verdict = await this.verdictOf(record);
      const at = this.clock.now().toISOString();
      const j = judged(verdict.isValid, record.manifest, verdict.uninspected);
      await this.store.setVerdict(serverId, j.isValid, at);
      return withGaps({ ...record, checkedAt: at }, j);
    } catch (err) {
      if (unreachable(err)) return { ...record, isValid: 'unknown' };
      throw err;
    }
  }

  list(offset: number, limit: number): Promise<SignRecord[]> {
    return this.store.list(offset, limit);
  }

  /** POST /v1/sign: the first baseline. */
  async create(serverId: string): Promise<SignRecord> {
    const node = await this.nodeOf(serverId);
    if (await this.store.get(serverId))
      throw conflict('SIGNATURE_EXISTS', `server ${serverId} is already signed`);
    const sig = await this.call(() => this.agents.for(node).sign(serverId, false)).catch(async (err) => {
      // The agent already holds a baseline the catalogue lacks (signed at activation before its
      // inventory report, or a catalogue restored from backup): adopt it rather than answer 409 while
      // GET and PUT answer 404. Re-signing instead would accept whatever changed since.
      if (err instanceof ApiError && err.code === 'SIGNATURE_EXISTS')
        return this.call(() => this.agents.for(node).getSignature(serverId));
      throw err;
    });
    const record = await this.store.insert(this.fromAgent(sig, node, null)).catch((err) => {
      // a concurrent POST for the same server recorded it first
      if (/UNIQUE/.test(String((err as Error).message)))
        throw conflict('SIGNATURE_EXISTS', `server ${serverId} is already signed`);
      throw err;
    });
    return withGaps(record, judged(record.isValid, record.manifest));
  }

  /** PUT /v1/sign: accept the instance's current state as its baseline. */
  async update(serverId: string): Promise<SignRecord> {
    const existing = await this.store.get(serverId);
    if (!existing) throw notFound(`no signature for server ${serverId}; create one with POST`);
    const node = await this.nodeOf(serverId);
    const sig = await this.call(() => this.agents.for(node).sign(serverId, true));
    const record = {
      ...this.fromAgent(sig, node, this.clock.now().toISOString()),
      id: existing.id,
      createdAt: existing.createdAt,
    };
    await this.store.replaceBaseline(record);
    return withGaps(record, judged(record.isValid, record.manifest));
  }

  /** The signed manifest, and what differs from it now. */
  async manifest(
    serverId: string,
  ): Promise<{ record: SignRecord; verdict: VerdictMsg | null; nodePublicKey: string }> {
    const record = await this.store.get(serverId);
    if (!record) throw notFound(`no signature for server ${serverId}`);
    const node = await this.nodes.get(record.nodeId);
    const verdict = await this.verdictOf(record).catch((err) => {
      if (unreachable(err)) return null;
      throw err;
    });
    if (!verdict) return { record, verdict, nodePublicKey: node.publicKeyPem ?? '' };
    const j = judged(verdict.isValid, record.manifest, verdict.uninspected);
    return {
      record,
      verdict: { ...verdict, isValid: j.isValid, uninspected: j.uninspected },
      nodePublicKey: node.publicKeyPem ?? '',
    };
  }

  /** A verdict an agent pushed (file watcher, nightly re-hash, start check), refusal or tamper shutdown. */
  async recordEvent(node: Node, event: EventMsg): Promise<void> {
    if (!['verdict', 'refusal', 'destroyed'].includes(event.kind) || !event.serverId) return;
    // Only for an instance this node hosts, or one no node hosts and no admin registered (a domain
    // the node's next inventory report will add: a start can be checked before that report).
    const refusal = await this.inventory.refusalFor(node.id, event.serverId, { unknown: true });
    if (refusal) throw forbidden(refusal);
    const record = await this.store.get(event.serverId);
    if (record && record.nodeId !== node.id) return; // a node speaks only for its own instances
    await this.store.insertEvents(auditRecords(node, event, this.clock.now().toISOString()));
    if (!event.verdict || !record) return;
    const j = judged(event.verdict.isValid, record.manifest, event.verdict.uninspected);
    await this.store.setVerdict(event.serverId, j.isValid, this.clock.now().toISOString());
  }

  /** GET /v1/sign/{server_id}/events: the audit trail, oldest first. */
  async events(serverId: string): Promise<SignEvent[]> {
    const events = await this.store.events(serverId);
    if (!events.length && !(await this.store.get(serverId))) {
      throw notFound(`no signature or enforcement events for server ${serverId}`);
    }
    return events;
  }

  /** What the activate/deactivate tasks do. */
  taskWork(action: 'activate' | 'deactivate'): TaskWork {
    return async (task: Task, progress) => {
      const node = await this.nodes.get(task.nodeId);
      const active = action === 'activate';
      await this.call(() =>
        this.agents.for(node).setValidation(active, (p) => {
          if (p.total > 0) void progress((90 * p.done) / p.total);
        }),
      );
      await this.nodes.setValidation(node.id, active);
      if (active) await this.importBaselines(node);
    };
  }

  /** After activation the agent holds a baseline for every instance; the catalogue records each. */
  private async importBaselines(node: Node): Promise<void> {
    const { rows } = await this.inventory.listForNode(node.id);
    for (const instance of rows) {
      if (await this.store.get(instance.serverId)) continue;
      const sig = await this.call(() => this.agents.for(node).getSignature(instance.serverId)).catch(
        () => null,
      );
      if (sig) await this.store.insert(this.fromAgent(sig, node, null));
    }
  }

  private async verdictOf(record: SignRecord): Promise<VerdictMsg> {
    const node = await this.nodes.get(record.nodeId);
    return this.call(() => this.agents.for(node).verify(record.serverId));
  }

  private async nodeOf(serverId: string): Promise<Node> {
    const instance = await this.inventory.get(serverId);
    if (instance.nodeId === null) {
      throw conflict(
        'NOT_AGENT_MANAGED',
        `server ${serverId} is not managed by an agent, so it cannot be signed`,
      );
    }
    return this.nodes.get(instance.nodeId);
  }

  private fromAgent(sig: SignatureMsg, node: Node, updatedAt: string | null): Omit<SignRecord, 'id'> {
    const now = this.clock.now().toISOString();
    return {
      serverId: sig.serverId,
      instanceName: sig.instanceName,
      nodeId: node.id,
      isValid: judged(sig.isValid, sig.manifestJson).isValid,
      manifest: sig.manifestJson,
      signature: sig.signature,
      createdAt: now,
      updatedAt,
      checkedAt: now,
    };
  }

  /** Agent answers become API errors; an unreachable agent is a 503, not a 500. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AgentUnavailableError) throw new ApiError(503, 'AGENT_UNAVAILABLE', err.message);
      const e = err as grpc.ServiceError;
      if (e.code === grpc.status.NOT_FOUND) throw notFound(e.details);
      if (e.code === grpc.status.ALREADY_EXISTS) throw conflict('SIGNATURE_EXISTS', e.details);
      if (e.code === grpc.status.FAILED_PRECONDITION) throw conflict('PRECONDITION', e.details);
      throw err;
    }
  }
}

const ACTIONS: AuditAction[] = ['alert', 'refused', 'destroyed', 'allowed', 'signed'];

/** One audit row per difference (at least one per event). */
export function auditRecords(node: Node, e: EventMsg, now: string): Array<Omit<SignEvent, 'id'>> {
  let action: AuditAction;
  if (e.action && ACTIONS.includes(e.action as AuditAction)) action = e.action as AuditAction;
  else if (e.kind === 'refusal') action = 'refused';
  else if (e.kind === 'destroyed') action = 'destroyed';
  else action = e.verdict?.isValid === 'false' ? 'alert' : 'allowed';
  const time = e.time && !Number.isNaN(Date.parse(e.time)) ? e.time : now;
  const detail = e.detail || (e.verdict ? `verdict ${e.verdict.isValid}` : e.kind);
  const base = { serverId: e.serverId, nodeId: node.id, time, action, detail };
  const diffs = (e.verdict?.differences ?? []).slice(0, 50);
  if (!diffs.length) return [{ ...base, component: null, oldDigest: null, newDigest: null }];
  return diffs.map((d) => ({
    ...base,
    component: d.component || null,
    oldDigest: d.expected || null,
    newDigest: d.actual || null,
  }));
}
