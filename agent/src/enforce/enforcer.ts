// Enforcement of signatures on this host: the start check the libvirt hook asks for, sealing of
// writable disks when an instance shuts off, and the tamper policy for running instances.
import type { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckStartResponseMsg } from '../../../proto/messages.js';
import type { AgentConfig } from '../config.js';
import type { AgentEvent } from '../events.js';
import type { Hypervisor } from '../libvirt/hypervisor.js';
import type { DomainDefinition } from '../signature/domain-definition.js';
import { AlreadySignedError } from '../signature/errors.js';
import type { Difference, SignatureService, Verdict } from '../signature/service.js';
import { LifecycleEvents, type LifecycleEvent } from './lifecycle.js';
import type { StartGuard } from './start-guard.js';
import { stateFilePath, writeEnforcementState } from './state-file.js';

export interface EnforcerDeps {
  signatures: SignatureService;
  guard: StartGuard;
  /** The plain hypervisor (destroy, states of running domains). */
  hypervisor: Hypervisor;
  events: EventEmitter;
  config: Pick<AgentConfig, 'unsignedPolicy' | 'tamperPolicy' | 'hookFailPolicy'> &
    Partial<Pick<AgentConfig, 'uninspectedPolicy'>>;
  dataDir: string;
  socket: string;
}

const short = (d: string | undefined) =>
  d ? d.replace(/^(sha256:)?([0-9a-f]{12})[0-9a-f]+$/, '$1$2…') : '?';

/** One difference in a few words: what a refusal reason and an audit detail say. */
export function describeDifference(d: Difference): string {
  const where = [d.role ?? d.target, d.path].filter(Boolean).join(' ');
  if (d.component === 'baseline') return `baseline ${d.reason ?? 'does not verify'}`;
  if (d.component === 'config')
    return `definition changed (config ${short(d.expected)} → ${short(d.actual)})`;
  const what = `${d.component === 'boot' ? 'boot artifact' : 'disk'} ${where}`;
  if (d.reason && !d.actual) return `${what} ${d.reason}`;
  const chunks = d.chunks?.length
    ? ` in chunk${d.chunks.length > 1 ? 's' : ''} ${d.chunks.slice(0, 8).join(', ')}${d.chunks.length > 8 ? ', …' : ''}`
    : '';
  return `${what} changed${chunks}${d.reason ? ` (${d.reason})` : ''}`;
}

export const describeVerdict = (v: Verdict) => v.differences.map(describeDifference).join('; ');

/** "unknown" is never "valid": it says what was not inspected. */
const verdictWords = (v: Verdict) =>
  v.uninspected?.length
    ? `verdict ${v.isValid}: not inspected: ${v.uninspected.join('; ')}`
    : `verdict ${v.isValid}`;

const SEAL_WAIT_MS = 10_000;

export class Enforcer {
  private readonly blockedFile: string;
  private readonly blocked: Map<string, string>;
  private readonly lifecycle: LifecycleEvents;
  private readonly seals = new Map<string, Promise<void>>();
  /** Lifecycle handlers and tamper checks in flight: stop() waits for them (they use the store). */
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;
  private readonly onEvent = (e: AgentEvent) => this.track(() => this.tamperCheck(e));

  constructor(private readonly d: EnforcerDeps) {
    this.blockedFile = join(d.dataDir, 'blocked.json');
    this.blocked = new Map(Object.entries(this.readBlocked()));
    this.lifecycle = new LifecycleEvents(
      d.hypervisor.uri,
      (e) => this.track(() => this.lifecycleEvent(e)),
      // events may have been missed: no run seen so far is known to have been watched whole
      () => d.signatures.guest.newEpoch(),
    );
  }

  async start(): Promise<void> {
    await this.writeState();
    this.d.events.on('event', this.onEvent);
    this.lifecycle.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.lifecycle.stop();
    this.d.events.off('event', this.onEvent);
    await Promise.allSettled([...this.inFlight, ...this.seals.values()]);
  }

  private track(fn: () => Promise<void>): void {
    if (this.stopped) return;
    const p = fn().catch(() => undefined); // libvirt or the controller away: nothing to do now
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** The state file the hook falls back to when the agent does not answer. */
  async writeState(): Promise<void> {
    const v = await this.d.signatures.validation();
    writeEnforcementState(stateFilePath(this.d.dataDir), {
      active: v.active,
      failOpen: this.d.config.hookFailPolicy === 'open',
      socket: this.d.socket,
      updatedAt: new Date().toISOString(),
    });
  }

  /** A new baseline lifts the block a tamper shutdown put on an instance. */
  signed(serverId: string): void {
    if (this.blocked.delete(serverId.toLowerCase())) this.saveBlocked();
  }

  /** May this instance start? Answers the libvirt hook (prepare begin). */
  async checkStart(serverId: string, domain: DomainDefinition): Promise<CheckStartResponseMsg> {
    const uuid = (serverId || domain.uuid || '').toLowerCase();
    if (!uuid) return { allowed: false, reason: 'vmwarden: no domain uuid in the start request' };
    if (!(await this.d.signatures.validation()).active) {
      return { allowed: true, reason: 'validation is not active on this node' };
    }
    const name = domain.name ?? uuid;
    return this.d.guard.during(uuid, domain, async () => {
      const block = this.blocked.get(uuid);
      if (block) {
        return this.refuse(uuid, name, `destroyed after tampering (${block}); re-sign it to start it`);
      }
      if (!(await this.d.signatures.get(uuid))) {
        if (this.d.config.unsignedPolicy === 'refuse')
          return this.refuse(uuid, name, 'instance is not signed');
        try {
          await this.d.signatures.sign(uuid, { replace: false, queue: false });
          this.emit({
            kind: 'verdict',
            serverId: uuid,
            instanceName: name,
            action: 'signed',
            detail: 'signed at start',
          });
          await this.verifiedStart(uuid);
          return { allowed: true, reason: 'signed at start' };
        } catch (e) {
          if (!(e instanceof AlreadySignedError)) {
            return this.refuse(uuid, name, `cannot be signed: ${(e as Error).message}`);
          }
        }
      }
      // A seal of this instance (shut off just now) finishes first, within bounds: one caught in a
      // libvirt call when this start took the domain's lock would otherwise wait for us forever.
      const seal = this.seals.get(uuid);
      if (seal) await Promise.race([seal, new Promise((r) => setTimeout(r, SEAL_WAIT_MS).unref())]);
      const v = await this.d.signatures.verify(uuid, { queue: false });
      if (v.isValid === 'false') {
        const why = describeVerdict(v);
        // one event: the refusal carries the verdict (the controller records both from it)
        return this.refuse(uuid, name, `signature check failed: ${why}`, v);
      }
      // "unknown" (parts not inspected, e.g. a network disk): what was inspected matched; the policy
      // decides (default allow, as before such parts made the verdict unknown).
      if (v.isValid === 'unknown' && this.d.config.uninspectedPolicy === 'refuse') {
        return this.refuse(uuid, name, `signature ${verdictWords(v)} (uninspectedPolicy refuse)`, v);
      }
      this.emit({
        kind: 'verdict',
        serverId: uuid,
        instanceName: name,
        action: 'allowed',
        detail: verdictWords(v),
        verdict: v,
      });
      await this.verifiedStart(uuid);
      return { allowed: true, reason: `signature ${verdictWords(v)}` };
    });
  }

  /** Opens the window in which the qcow2 disks' dirty bitmaps record what this run writes. */
  private async verifiedStart(uuid: string): Promise<void> {
    await this.d.signatures.guest.verifiedStart(uuid).catch(() => undefined); // next seal: a full one
  }

  private refuse(uuid: string, name: string, why: string, v?: Verdict): CheckStartResponseMsg {
    const reason = `vmwarden: start of '${name}' refused: ${why}`;
    this.emit({
      kind: 'refusal',
      serverId: uuid,
      instanceName: name,
      action: 'refused',
      detail: why,
      verdict: v,
    });
    return { allowed: false, reason };
  }

  private emit(e: {
    kind: AgentEvent['kind'];
    serverId: string;
    instanceName: string;
    action: string;
    detail: string;
    verdict?: Verdict;
  }) {
    this.d.events.emit('event', {
      time: new Date().toISOString(),
      kind: e.kind,
      serverId: e.serverId,
      instanceName: e.instanceName,
      detail: e.detail,
      verdict: e.verdict ?? null,
      state: '',
      action: e.action,
    } satisfies AgentEvent);
  }

  /**
   * Started → the run of a verified start is being watched (incremental seals); shut off → seal its
   * writable disks, so the next start compares them with what was left. Public for tests.
   */
  async lifecycleEvent(e: LifecycleEvent): Promise<void> {
    const rec = (await this.d.signatures.list()).find((r) => r.instanceName === e.name);
    this.d.events.emit('event', {
      time: new Date().toISOString(),
      kind: 'lifecycle',
      serverId: rec?.serverId ?? '',
      instanceName: e.name,
      detail: `${e.event} ${e.detail}`.trim(),
      verdict: null,
      state: e.event === 'Stopped' ? 'shut off' : e.event === 'Started' ? 'running' : '',
    } satisfies AgentEvent);
    if (e.event === 'Started' && rec) await this.d.signatures.guest.started(rec.serverId);
    if (e.event !== 'Stopped' || !rec || !rec.manifest.disks.length) return;
    const seal = this.d.signatures.sealDisks(rec.serverId).then(
      () => undefined,
      () => undefined, // restarted meanwhile, or a disk vanished: the next start check tells
    );
    this.seals.set(rec.serverId, seal);
    await seal;
    if (this.seals.get(rec.serverId) === seal) this.seals.delete(rec.serverId);
  }

  /** Tamper policy for a running instance found "false" (file watcher, nightly re-hash, controller). */
  private async tamperCheck(e: AgentEvent): Promise<void> {
    if (e.kind !== 'verdict' || e.verdict?.isValid !== 'false' || (e.action && e.action !== 'alert')) return;
    if (this.d.config.tamperPolicy !== 'shutdown' || this.d.guard.isStarting(e.serverId)) return;
    const dom = await this.d.hypervisor.getDomain(e.serverId).catch(() => undefined);
    if (!dom || dom.state === 'shut off') return;
    const why = describeVerdict(e.verdict);
    this.blocked.set(e.serverId, why || 'signature check failed');
    this.saveBlocked();
    try {
      await this.d.hypervisor.destroy(e.serverId);
    } catch (err) {
      if ((await this.d.hypervisor.getDomain(e.serverId))?.state !== 'shut off') throw err;
    }
    this.emit({
      kind: 'destroyed',
      serverId: e.serverId,
      instanceName: dom.name,
      action: 'destroyed',
      detail: `destroyed by tamper policy: ${why}`,
    });
  }

  private readBlocked(): Record<string, string> {
    try {
      return JSON.parse(readFileSync(this.blockedFile, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  private saveBlocked(): void {
    writeFileSync(this.blockedFile, JSON.stringify(Object.fromEntries(this.blocked)), { mode: 0o600 });
  }
}
