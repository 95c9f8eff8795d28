import { createHash } from 'node:crypto';
import type { Hypervisor } from '../libvirt/hypervisor.js';
import type {
  GuestTrustStatusMsg,
  RefusedEntryMsg,
  SessionReportMsg,
  TrustBundleMsg,
} from '../../../proto/messages.js';
import type { GuestChannel } from './channel.js';
import { GuestAgent, NoGuestAgentError } from './guest-agent.js';
import type { HostKeyPins } from './host-keys.js';
import { SshChannel, type SshTarget } from './ssh-channel.js';
import { fingerprintOf, killSessions, TrustInstaller } from './trust.js';
import { shellQuote } from '../shell.js';
import { decodeKeyId, instancePrincipal } from '../../../lib/ssh/identity.js';

/** What the manager needs from the controller link. */
export interface TrustLink {
  getTrustBundle(): Promise<TrustBundleMsg>;
  /** Resolves with the entries the controller refused (instances it does not count as this node's). */
  reportTrust(guests: GuestTrustStatusMsg[]): Promise<RefusedEntryMsg[] | void>;
  /** Returns the session id the controller gave a start. */
  reportSession(r: SessionReportMsg): Promise<string>;
}

interface LiveSession {
  pid: number;
  sessionId: string;
  certificateId: string;
  serial: string;
  killed?: boolean;
}

interface Guest {
  serverId: string;
  name: string;
  guestAgent: GuestAgent;
  /** The way in now: the guest agent, or SSH when it has none and a provisioning key is configured. */
  channel: GuestChannel;
  installer: TrustInstaller;
  /** On SSH: when to ask the guest agent again (it may have come up). */
  agentProbeAt?: number;
  bootId?: string;
  /** Key of the trust content installed during bootId (CA keys, login user); undefined: not yet. */
  installed?: string;
  krlVersion?: string;
  cursor?: string;
  sessions: Map<number, LiveSession>;
  status: GuestTrustStatusMsg;
  queue: Promise<unknown>;
  /** No guest agent: not asked again before this time (ms). */
  retryAt?: number;
}

/** sshd (LogLevel VERBOSE) on a certificate login. */
const ACCEPTED =
  /sshd\[(\d+)\]: Accepted publickey for (\S+) from (\S+) port \d+ \S+: \S+ \S+ ID (.*) \(serial (\d+)\) CA /;

export function parseAccepted(line: string) {
  const m = ACCEPTED.exec(line);
  if (!m) return undefined;
  const { certificateId } = decodeKeyId(m[4]!);
  return { pid: Number(m[1]), user: m[2]!, sourceIp: m[3]!, keyId: m[4]!, serial: m[5]!, certificateId };
}

/**
 * Keeps the fleet's SSH trust installed in every running guest of this host (qemu guest agent),
 * applies new KRLs within a second and ends sessions of revoked certificates, and reports the
 * certificate logins and logouts it sees in the guests' sshd journal.
 */
export class GuestTrustManager {
  private bundle?: TrustBundleMsg;
  private readonly guests = new Map<string, Guest>();
  private timer?: NodeJS.Timeout;
  private polling = false;
  private stopped = false;
  private lastReport = '';
  private lastReportAt = 0;
  private lastPull = 0;

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly link: () => TrustLink,
    private readonly opts: {
      pollMs?: number;
      only?: (uuid: string) => boolean;
      agentProbeMs?: number;
      /** The SSH fallback of an instance (by UUID or domain name), if it has one. */
      sshTarget?: (uuid: string, name: string) => SshTarget | undefined;
      hostKeyPins?: HostKeyPins;
      log?: (msg: string, err?: unknown) => void;
    } = {},
  ) {}

  async start(): Promise<void> {
    await this.pull().catch((err) => this.opts.log?.('trust bundle pull failed', err));
    this.timer = setInterval(() => void this.tick(), this.opts.pollMs ?? 1500);
    this.timer.unref();
    void this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all([...this.guests.values()].map((g) => g.queue.catch(() => undefined)));
    for (const g of this.guests.values()) g.channel.close();
  }

  /** Trust status of every guest seen. */
  statuses(): GuestTrustStatusMsg[] {
    return [...this.guests.values()].map((g) => ({ ...g.status }));
  }

  async pull(): Promise<void> {
    this.bundle = await this.link().getTrustBundle();
    this.lastPull = Date.now();
  }

  /** A push may have been missed (agent or controller down): the bundle is pulled again now and then. */
  private async refresh(): Promise<void> {
    if (this.bundle && Date.now() - this.lastPull < RESYNC_MS) return;
    const before = this.bundle;
    const b = await this.link().getTrustBundle();
    this.lastPull = Date.now();
    if (!before) {
      this.bundle = b;
      return;
    }
    const same =
      String(b.krlVersion) === String(before.krlVersion) &&
      JSON.stringify(b.trustedCaKeys) === JSON.stringify(before.trustedCaKeys) &&
      b.loginUser === before.loginUser;
    if (!same) await this.update(b);
  }

  /** A bundle pushed by the controller: the KRL (and CA keys) go into every guest now. */
  async update(bundle: TrustBundleMsg): Promise<{ guests: number; sessionsEnded: number }> {
    this.bundle = bundle;
    const revoked = new Set(bundle.revokedSerials.map(String));
    let sessionsEnded = 0;
    const work = [...this.guests.values()]
      .filter((g) => g.installed !== undefined)
      .map(async (g) => {
        const kill = [...g.sessions.values()].filter((s) => revoked.has(s.serial) && !s.killed);
        const pids = kill.map((s) => s.pid);
        try {
          if (g.installed === this.contentKey(g, bundle)) {
            // Fast path, not queued behind a poll: the KRL renamed into place, then the kills.
            await g.installer.updateKrl(Buffer.from(bundle.krl), pids);
            this.installedOk(g, bundle);
            // An install already under way may write an older KRL after us: checked once it is done.
            void this.serial(g, async () => {
              const b = this.bundle!;
              if (g.installed === undefined || g.krlVersion === String(b.krlVersion)) return;
              await g.installer.updateKrl(Buffer.from(b.krl));
              this.installedOk(g, b);
            }).catch((err) => this.failed(g, err));
          } else {
            await this.serial(g, async () => {
              await this.installFull(g);
              if (pids.length) await g.channel.sh(killSessions(pids));
            });
          }
          for (const s of kill) {
            s.killed = true;
            sessionsEnded++;
            // Reported after answering the push (the controller ended it already on revocation).
            void this.endSession(g, s, 'revoked');
          }
        } catch (err) {
          this.failed(g, err);
        }
      });
    await Promise.all(work);
    void this.reportTrust();
    return { guests: work.length, sessionsEnded };
  }

  private contentKey(g: Guest, b: TrustBundleMsg = this.bundle!): string {
    return createHash('sha256')
      .update(JSON.stringify([b.trustedCaKeys, b.loginUser, g.serverId]))
      .digest('hex');
  }

  private serial<T>(g: Guest, fn: () => Promise<T>): Promise<T> {
    const next = g.queue.then(fn, fn);
    g.queue = next.catch(() => undefined);
    return next;
  }

  private async tick(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      await this.refresh().catch((err) => {
        if (!this.bundle) throw err;
        this.opts.log?.('trust bundle pull failed', err);
      });
      const domains = (await this.hypervisor.listDomains()).filter(
        (d) => !this.opts.only || this.opts.only(d.uuid),
      );
      const running = new Set(domains.filter((d) => d.state === 'running').map((d) => d.uuid));
      for (const d of domains) {
        if (!running.has(d.uuid) || this.guests.has(d.uuid)) continue;
        const agent = new GuestAgent(this.hypervisor.uri, d.uuid);
        this.guests.set(d.uuid, {
          serverId: d.uuid,
          name: d.name,
          guestAgent: agent,
          channel: agent,
          installer: new TrustInstaller(agent),
          sessions: new Map(),
          status: {
            serverId: d.uuid,
            state: 'pending',
            caFingerprints: [],
            krlVersion: '0',
            lastSuccess: '',
            lastError: '',
            loginUser: '',
            transport: 'guest-agent',
          },
          queue: Promise.resolve(),
        });
      }
      for (const g of [...this.guests.values()]) {
        if (!running.has(g.serverId)) {
          // Shut off: its sessions are over and trust must be installed again at the next boot.
          await this.serial(g, () => this.lost(g, 'instance stopped'));
          if (g.channel !== g.guestAgent) this.useChannel(g, g.guestAgent);
          g.status.state = 'pending';
          g.status.lastError = 'instance is not running';
          continue;
        }
        if (g.retryAt && Date.now() < g.retryAt) continue;
        if (g.channel !== g.guestAgent && Date.now() >= (g.agentProbeAt ?? 0)) await this.probeGuestAgent(g);
        await this.serial(g, () => this.poll(g)).catch((err) => this.failed(g, err));
      }
      await this.reportTrust();
    } catch (err) {
      this.opts.log?.('guest trust tick failed', err);
    } finally {
      this.polling = false;
    }
  }

  /** One look into the guest: boot id, new sshd journal lines, which session processes still live. */
  private async poll(g: Guest): Promise<void> {
    const pids = [...g.sessions.keys()];
    const journal = g.cursor ? `--after-cursor=${shellQuote(g.cursor)}` : '-b';
    const out = await g.channel.sh(
      `cat /proc/sys/kernel/random/boot_id; echo ---; ` +
        `journalctl -u ssh.service -o short-unix --no-pager --show-cursor ${journal} 2>/dev/null || true; echo ---; ` +
        `for p in ${pids.join(' ')}; do [ -d /proc/$p ] && echo $p; done; true`,
    );
    const [bootPart = '', journalPart = '', alivePart = ''] = out.split(/^---$/m);
    const bootId = bootPart.trim();
    if (g.bootId !== bootId) {
      if (g.bootId !== undefined) await this.lost(g, 'reboot');
      g.bootId = bootId;
      g.cursor = undefined;
      g.installed = undefined;
      // The journal of this boot is read from its start at the next poll.
      await this.installFull(g);
      return;
    }
    if (g.installed !== this.contentKey(g)) await this.installFull(g);
    const alive = new Set(alivePart.split('\n').filter(Boolean).map(Number));
    for (const line of journalPart.split('\n')) {
      const cursor = /^-- cursor: (.*)$/.exec(line);
      if (cursor) {
        g.cursor = cursor[1]!;
        continue;
      }
      const a = parseAccepted(line);
      if (!a || g.sessions.has(a.pid) || !a.certificateId) continue;
      alive.add(a.pid);
      const sessionId = await this.link()
        .reportSession({
          serverId: g.serverId,
          event: 'start',
          certificateId: a.certificateId,
          serial: a.serial,
          sourceIp: a.sourceIp,
          sessionId: '',
          reason: '',
        })
        .catch((err) => {
          this.opts.log?.('session start report failed', err);
          return '';
        });
      g.sessions.set(a.pid, { pid: a.pid, sessionId, certificateId: a.certificateId, serial: a.serial });
    }
    for (const s of [...g.sessions.values()]) {
      if (!pids.includes(s.pid) || alive.has(s.pid)) continue;
      await this.endSession(g, s, s.killed ? 'revoked' : 'logout');
    }
  }

  private async endSession(g: Guest, s: LiveSession, reason: string): Promise<void> {
    if (!g.sessions.delete(s.pid)) return;
    if (!s.sessionId) return;
    await this.link()
      .reportSession({
        serverId: g.serverId,
        event: 'end',
        certificateId: s.certificateId,
        serial: s.serial,
        sourceIp: '',
        sessionId: s.sessionId,
        reason,
      })
      .catch((err) => this.opts.log?.('session end report failed', err));
  }

  private async lost(g: Guest, reason: string): Promise<void> {
    for (const s of [...g.sessions.values()]) await this.endSession(g, s, reason);
    g.bootId = undefined;
    g.installed = undefined;
    g.cursor = undefined;
  }

  private async installFull(g: Guest): Promise<void> {
    const b = this.bundle;
    if (!b) return;
    try {
      await g.installer.install({
        caKeys: b.trustedCaKeys,
        krl: Buffer.from(b.krl),
        loginUser: b.loginUser,
        principal: instancePrincipal(g.serverId),
      });
      g.installed = this.contentKey(g, b);
      this.installedOk(g, b);
    } catch (err) {
      this.failed(g, err);
    }
  }

  private installedOk(g: Guest, b: TrustBundleMsg): void {
    if (g.status.state !== 'installed')
      this.opts.log?.(`guest ${g.name}: trust installed through ${g.channel.transport}`);
    g.retryAt = undefined;
    g.krlVersion = String(b.krlVersion);
    g.status = {
      serverId: g.serverId,
      state: 'installed',
      caFingerprints: b.trustedCaKeys.map(fingerprintOf),
      krlVersion: String(b.krlVersion),
      lastSuccess: new Date().toISOString(),
      lastError: '',
      loginUser: b.loginUser,
      transport: g.channel.transport,
    };
  }

  /** Switches the way into a guest; what was installed through the other one is checked again. */
  private useChannel(g: Guest, channel: GuestChannel): void {
    if (g.channel !== g.guestAgent) g.channel.close();
    g.channel = channel;
    g.installer = new TrustInstaller(channel);
    g.installed = undefined;
    g.retryAt = undefined;
    g.agentProbeAt = this.nextAgentProbe();
    g.status = { ...g.status, transport: channel.transport };
    this.opts.log?.(`guest ${g.name} (${g.serverId}): reached through ${channel.transport} from now on`);
  }

  private nextAgentProbe(): number {
    return Date.now() + (this.opts.agentProbeMs ?? AGENT_PROBE_MS);
  }

  /** A guest reached over SSH whose guest agent answers again goes back to the guest agent. */
  private async probeGuestAgent(g: Guest): Promise<void> {
    g.agentProbeAt = this.nextAgentProbe();
    const back = await g.guestAgent.ping().then(
      () => true,
      () => false,
    );
    if (back) await this.serial(g, async () => this.useChannel(g, g.guestAgent));
  }

  private failed(g: Guest, err: unknown): void {
    const noAgent = err instanceof NoGuestAgentError;
    const target = noAgent && g.channel === g.guestAgent && this.opts.sshTarget?.(g.serverId, g.name);
    if (target && this.opts.hostKeyPins) {
      const pins = this.opts.hostKeyPins;
      this.useChannel(
        g,
        new SshChannel(g.serverId, target, () => this.hypervisor.addresses(g.serverId), pins),
      );
      g.status = {
        ...g.status,
        state: 'pending',
        lastError: `no guest agent (${(err as Error).message}): using SSH`,
      };
      return;
    }
    const lastError = noAgent
      ? `no guest agent: ${(err as Error).message}`
      : String((err as Error)?.message ?? err);
    if (lastError !== g.status.lastError)
      this.opts.log?.(`guest ${g.name} (${g.serverId})`, new Error(lastError));
    g.status = { ...g.status, state: noAgent ? 'no-guest-agent' : 'failed', lastError };
    if (g.channel !== g.guestAgent) {
      // SSH down (guest booting, sshd restarting, network): tried again shortly. The boot id tells
      // at the next poll whether the guest rebooted meanwhile; the install is checked again anyway.
      g.retryAt = Date.now() + 3_000;
      g.installed = undefined;
    } else if (noAgent) {
      // Booting guests answer within a minute; domains without the channel are asked rarely.
      g.retryAt = Date.now() + (/not configured/i.test((err as Error).message) ? 30_000 : 3_000);
      g.installed = undefined;
    }
  }

  private async reportTrust(): Promise<void> {
    const statuses = this.statuses();
    const key = JSON.stringify(statuses.map((s) => ({ ...s, lastSuccess: '' })));
    // Unchanged statuses are sent again now and then: a restarted controller learns them (and us).
    if (key === this.lastReport && Date.now() - this.lastReportAt < RESYNC_MS) return;
    await this.link()
      .reportTrust(statuses)
      .then((refused) => {
        this.lastReport = key;
        // Entries refused (an instance not yet in this node's inventory) are sent again soon.
        this.lastReportAt = refused?.length ? Date.now() - RESYNC_MS + REFUSED_RETRY_MS : Date.now();
      })
      .catch((err) => this.opts.log?.('trust report failed', err));
  }
}

const RESYNC_MS = 60_000;
const REFUSED_RETRY_MS = 10_000;
const AGENT_PROBE_MS = 30_000;
