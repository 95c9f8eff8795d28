import type { DomainInfo, Hypervisor } from '../libvirt/hypervisor.js';
import { DomainDefinition } from '../signature/domain-definition.js';
import type { DefinitionSource } from '../signature/service.js';

/**
 * The Hypervisor the signature service sees. While the libvirt hook of a starting domain waits for
 * CheckStart, libvirtd holds that domain's lock, so any libvirt call about it would block until the
 * hook gives up (a deadlock). For a domain in `starting`, answers come from the XML the hook passed:
 * the definition being started (parsed once, by the hook), and the state "shut off" (QEMU is not
 * running yet; its disks are idle).
 */
export class StartGuard implements DefinitionSource {
  private readonly starting = new Map<string, { domain: DomainDefinition; count: number }>();

  constructor(private readonly inner: Hypervisor) {}

  get uri(): string {
    return this.inner.uri;
  }

  /** Runs `fn` while `uuid` is answered from `domain`. */
  async during<T>(uuid: string, domain: DomainDefinition, fn: () => Promise<T>): Promise<T> {
    const cur = this.starting.get(uuid);
    this.starting.set(uuid, { domain, count: (cur?.count ?? 0) + 1 });
    try {
      return await fn();
    } finally {
      const e = this.starting.get(uuid)!;
      if (--e.count === 0) this.starting.delete(uuid);
    }
  }

  isStarting(uuid: string): boolean {
    return this.starting.has(uuid);
  }

  listDomains(): Promise<DomainInfo[]> {
    return this.inner.listDomains();
  }

  async getDomain(uuid: string): Promise<DomainInfo | undefined> {
    const s = this.starting.get(uuid);
    if (s) return { uuid, name: s.domain.name ?? '', state: 'shut off' };
    return this.inner.getDomain(uuid);
  }

  async inactiveXml(uuid: string): Promise<string> {
    const s = this.starting.get(uuid);
    return s ? s.domain.xml : this.inner.inactiveXml(uuid);
  }

  async inactiveDefinition(uuid: string): Promise<DomainDefinition> {
    const s = this.starting.get(uuid);
    return s ? s.domain : new DomainDefinition(await this.inner.inactiveXml(uuid));
  }

  defineXml(xml: string): Promise<DomainInfo> {
    return this.inner.defineXml(xml);
  }

  start(uuid: string): Promise<void> {
    return this.inner.start(uuid);
  }

  destroy(uuid: string): Promise<void> {
    return this.inner.destroy(uuid);
  }

  addresses(uuid: string): Promise<string[]> {
    return this.inner.addresses(uuid);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
