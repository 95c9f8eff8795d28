import type { DomainInfo, Hypervisor } from '../libvirt/hypervisor.js';

const tagText = (xml: string, tag: string) => new RegExp(`<${tag}>\\s*([^<]*?)\\s*</${tag}>`).exec(xml)?.[1];

/**
 * The Hypervisor the signature service sees. While the libvirt hook of a starting domain waits for
 * CheckStart, libvirtd holds that domain's lock, so any libvirt call about it would block until the
 * hook gives up (a deadlock). For a domain in `starting`, answers come from the XML the hook passed:
 * the definition being started, and the state "shut off" (QEMU is not running yet; its disks are idle).
 */
export class StartGuard implements Hypervisor {
  private readonly starting = new Map<string, { name: string; xml: string; count: number }>();

  constructor(private readonly inner: Hypervisor) {}

  get uri(): string {
    return this.inner.uri;
  }

  /** Runs `fn` while `uuid` is answered from `xml`. */
  async during<T>(uuid: string, xml: string, fn: () => Promise<T>): Promise<T> {
    const cur = this.starting.get(uuid);
    const name = tagText(xml, 'name') ?? '';
    this.starting.set(uuid, { name, xml, count: (cur?.count ?? 0) + 1 });
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
    if (s) return { uuid, name: s.name, state: 'shut off' };
    return this.inner.getDomain(uuid);
  }

  async inactiveXml(uuid: string): Promise<string> {
    const s = this.starting.get(uuid);
    return s ? s.xml : this.inner.inactiveXml(uuid);
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

/** The `<uuid>` of a domain XML (lower case), or undefined. */
export function uuidOf(xml: string): string | undefined {
  return tagText(xml, 'uuid')?.toLowerCase();
}
