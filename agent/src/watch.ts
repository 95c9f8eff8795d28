import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'chokidar';
import cron from 'node-cron';
import type { Hypervisor } from './libvirt/hypervisor.js';
import type { SignatureService } from './signature/service.js';
import { verdictEvent } from './events.js';

/**
 * Notices tampering between starts: chokidar watches the persistent domain definitions and every
 * boot artifact of signed instances, and re-verifies the instances a change touches within seconds;
 * a cron job re-hashes everything in full (ignoring the metadata fast path) on a schedule.
 */
export class ChangeWatcher {
  private watcher?: FSWatcher;
  private job?: ReturnType<typeof cron.schedule>;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly signatures: SignatureService,
    private readonly hypervisor: Hypervisor,
    private readonly events: EventEmitter,
    private readonly opts: { xmlDir: string; rehashSchedule: string; debounceMs?: number },
  ) {}

  async start(): Promise<void> {
    this.watcher = watch(await this.paths(), { ignoreInitial: true, awaitWriteFinish: false });
    this.watcher.on('all', (_event, path) => void this.changed(path).catch(() => undefined)); // libvirtd away: the nightly job re-checks
    if (this.opts.rehashSchedule) {
      this.job = cron.schedule(this.opts.rehashSchedule, () => void this.verifyAll(true));
    }
  }

  /** Call after a baseline changed, so newly referenced artifacts are watched too. */
  async refresh(): Promise<void> {
    if (this.watcher) this.watcher.add(await this.paths());
  }

  async verifyAll(full: boolean): Promise<void> {
    for (const r of await this.signatures.list()) await this.check(r.serverId, full);
  }

  async stop(): Promise<void> {
    for (const t of this.pending.values()) clearTimeout(t);
    await this.job?.stop();
    await this.watcher?.close();
  }

  private async paths(): Promise<string[]> {
    const paths = existsSync(this.opts.xmlDir) ? [this.opts.xmlDir] : [];
    for (const r of await this.signatures.list()) paths.push(...r.manifest.boot.map((b) => b.path));
    return [...new Set(paths)];
  }

  private async changed(path: string): Promise<void> {
    const affected: string[] = [];
    if (path.startsWith(this.opts.xmlDir) && path.endsWith('.xml')) {
      const name = basename(path, '.xml');
      const dom = (await this.hypervisor.listDomains()).find((d) => d.name === name);
      if (dom) affected.push(dom.uuid);
    }
    for (const r of await this.signatures.list()) {
      if (r.manifest.boot.some((b) => b.path === path)) affected.push(r.serverId);
    }
    for (const uuid of new Set(affected)) this.debounced(uuid);
  }

  private debounced(uuid: string): void {
    clearTimeout(this.pending.get(uuid));
    this.pending.set(
      uuid,
      setTimeout(() => {
        this.pending.delete(uuid);
        void this.check(uuid, false);
      }, this.opts.debounceMs ?? 300),
    );
  }

  private async check(uuid: string, full: boolean): Promise<void> {
    try {
      this.events.emit('event', verdictEvent(await this.signatures.verify(uuid, { full })));
    } catch {
      // a domain undefined meanwhile: the next inventory report removes it
    }
  }
}
