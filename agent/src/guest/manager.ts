import type { Hypervisor } from '../libvirt/hypervisor.js';
import type { GuestTrustStatusMsg, TrustBundleMsg } from '../../../proto/messages.js';
import { failed, probeGuestAgent, useChannel } from './failover.js';
import {
  newGuest,
  serial,
  type Guest,
  type GuestTrustContext,
  type GuestTrustOptions,
  type TrustLink,
} from './guest.js';
import { HostCertKeeper } from './host-certs.js';
import { pushBundle } from './install.js';
import { poll } from './poller.js';
import { lost } from './sessions.js';

/**
 * Keeps the fleet's SSH trust installed in every running guest of this host (qemu guest agent),
 * applies new KRLs within a second and ends sessions of revoked certificates, and reports the
 * certificate logins and logouts it sees in the guests' sshd journal.
 */
export class GuestTrustManager {
  private bundle?: TrustBundleMsg;
  private readonly guests = new Map<string, Guest>();
  private readonly ctx: GuestTrustContext;
  private timer?: NodeJS.Timeout;
  private polling = false;
  private stopped = false;
  private lastReport = '';
  private lastReportAt = 0;
  private lastPull = 0;
  private readonly hostCerts?: HostCertKeeper;

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly link: () => TrustLink,
    private readonly opts: GuestTrustOptions = {},
  ) {
    this.ctx = { hypervisor, link, opts, bundle: () => this.bundle };
    if (opts.hostCertificates !== false) this.hostCerts = new HostCertKeeper(hypervisor, link, opts.log);
  }

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
  async update(
    bundle: TrustBundleMsg,
  ): Promise<{ guests: number; sessionsEnded: number; guestRoundTrips: number }> {
    this.bundle = bundle;
    const revoked = new Set(bundle.revokedSerials.map(String));
    let sessionsEnded = 0;
    let guestRoundTrips = 0;
    const work = [...this.guests.values()]
      .filter((g) => g.installed !== undefined)
      .map(async (g) => {
        try {
          const r = await pushBundle(this.ctx, g, bundle, revoked);
          sessionsEnded += r.sessionsEnded;
          guestRoundTrips += r.roundTrips;
        } catch (err) {
          failed(this.ctx, g, err);
        }
      });
    await Promise.all(work);
    void this.reportTrust();
    return { guests: work.length, sessionsEnded, guestRoundTrips };
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
        this.guests.set(d.uuid, newGuest(this.hypervisor.uri, d));
      }
      for (const g of [...this.guests.values()]) {
        if (!running.has(g.serverId)) {
          // Shut off: its sessions are over and trust must be installed again at the next boot.
          await serial(g, () => lost(this.ctx, g, 'instance stopped'));
          if (g.channel !== g.guestAgent) useChannel(this.ctx, g, g.guestAgent);
          g.status.state = 'pending';
          g.status.lastError = 'instance is not running';
          continue;
        }
        if (g.retryAt && Date.now() < g.retryAt) continue;
        if (g.channel !== g.guestAgent && Date.now() >= (g.agentProbeAt ?? 0))
          await probeGuestAgent(this.ctx, g);
        await serial(g, () => poll(this.ctx, g)).catch((err) => failed(this.ctx, g, err));
        const name = domains.find((d) => d.uuid === g.serverId)?.name ?? g.name;
        if (this.hostCerts) await serial(g, () => this.hostCerts!.keep(g, name));
      }
      await this.reportTrust();
    } catch (err) {
      this.opts.log?.('guest trust tick failed', err);
    } finally {
      this.polling = false;
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
