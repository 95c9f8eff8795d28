// The agent's view of libvirt: a small adapter over the @unraid/libvirt N-API binding. Calls the
// binding lacks (interface addresses) go through `virsh`, libvirt's own client.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  DomainGetXMLDescFlags,
  DomainState,
  Hypervisor as NativeHypervisor,
  type Domain,
} from '@unraid/libvirt';

const execFileP = promisify(execFile);

export type DomainStateName = 'running' | 'shut off' | 'paused' | 'crashed' | 'unknown';

export interface DomainInfo {
  uuid: string;
  name: string;
  state: DomainStateName;
}

export interface Hypervisor {
  readonly uri: string;
  /** Every defined or running domain. */
  listDomains(): Promise<DomainInfo[]>;
  /** undefined when no domain has this UUID. */
  getDomain(uuid: string): Promise<DomainInfo | undefined>;
  /** The persistent definition (VIR_DOMAIN_XML_INACTIVE, without SECURE: no secrets). */
  inactiveXml(uuid: string): Promise<string>;
  defineXml(xml: string): Promise<DomainInfo>;
  start(uuid: string): Promise<void>;
  destroy(uuid: string): Promise<void>;
  /** IP addresses of a running domain (libvirt's lease source); [] for test:/// URIs. */
  addresses(uuid: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Thrown by operations on a UUID that names no domain. */
export class DomainNotFoundError extends Error {
  readonly code = 'DOMAIN_NOT_FOUND';
  constructor(readonly uuid: string) {
    super(`no domain with uuid ${uuid}`);
  }
}

export function stateName(state: number): DomainStateName {
  switch (state) {
    case DomainState.RUNNING:
    case DomainState.BLOCKED:
    case DomainState.SHUTDOWN: // shutting down: still running, its disks still in use
      return 'running';
    case DomainState.PAUSED:
    case DomainState.PMSUSPENDED:
      return 'paused';
    case DomainState.SHUTOFF:
      return 'shut off';
    case DomainState.CRASHED:
      return 'crashed';
    default:
      return 'unknown';
  }
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function isNotFound(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /domain not found|no domain with matching|invalid uuid/i.test(msg);
}

/** The connection to libvirtd is gone (libvirtd restarted or stopped): worth one reconnection. */
export function isConnectionLost(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /client socket is closed|end of file while reading|cannot recv data|cannot write data|broken pipe|connection reset|not connected|no connection driver|failed to connect socket/i.test(
    msg,
  );
}

class LibvirtHypervisor implements Hypervisor {
  private closed = false;
  private reconnecting?: Promise<void>;

  constructor(
    readonly uri: string,
    private native: NativeHypervisor,
  ) {}

  /**
   * Runs one operation; if libvirtd went away since the last one (restarted), opens a new connection
   * and runs it again, once. Operations look their domains up inside fn: handles of the old
   * connection mean nothing to the new one. (test:/// is private to its connection: never reopened.)
   */
  private async call<T>(fn: (native: NativeHypervisor) => Promise<T>): Promise<T> {
    const native = this.native;
    try {
      return await fn(native);
    } catch (e) {
      if (this.closed || this.uri.startsWith('test:') || !isConnectionLost(e)) throw e;
      await this.reconnect(native);
      return fn(this.native);
    }
  }

  private async reconnect(broken: NativeHypervisor): Promise<void> {
    if (this.native !== broken) return;
    this.reconnecting ??= (async () => {
      const fresh = new NativeHypervisor({ uri: this.uri });
      try {
        await fresh.connectOpen();
      } catch (e) {
        throw new Error(`libvirt at ${this.uri} is unreachable: ${(e as Error).message}`);
      }
      this.native = fresh;
      await broken.connectClose().catch(() => undefined);
    })().finally(() => (this.reconnecting = undefined));
    await this.reconnecting;
  }

  private async describe(native: NativeHypervisor, dom: Domain): Promise<DomainInfo> {
    const [uuid, name, info] = await Promise.all([
      native.domainGetUUIDString(dom),
      native.domainGetName(dom),
      native.domainGetInfo(dom),
    ]);
    return { uuid, name, state: stateName(info.state) };
  }

  private async lookup(native: NativeHypervisor, uuid: string): Promise<Domain | undefined> {
    if (!UUID_RE.test(uuid)) return undefined;
    try {
      return await native.domainLookupByUUIDString(uuid);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  private async mustLookup(native: NativeHypervisor, uuid: string): Promise<Domain> {
    const dom = await this.lookup(native, uuid);
    if (!dom) throw new DomainNotFoundError(uuid);
    return dom;
  }

  listDomains(): Promise<DomainInfo[]> {
    return this.call(async (native) => {
      const doms = await native.connectListAllDomains();
      const out: DomainInfo[] = [];
      for (const dom of doms) {
        try {
          out.push(await this.describe(native, dom));
        } catch (e) {
          if (!isNotFound(e)) throw e; // undefined between listing and describing
        }
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  getDomain(uuid: string): Promise<DomainInfo | undefined> {
    return this.call(async (native) => {
      const dom = await this.lookup(native, uuid);
      if (!dom) return undefined;
      try {
        return await this.describe(native, dom);
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    });
  }

  inactiveXml(uuid: string): Promise<string> {
    return this.call(async (native) =>
      native.domainGetXMLDesc(await this.mustLookup(native, uuid), DomainGetXMLDescFlags.INACTIVE),
    );
  }

  defineXml(xml: string): Promise<DomainInfo> {
    return this.call(async (native) => this.describe(native, await native.domainDefineXML(xml)));
  }

  start(uuid: string): Promise<void> {
    return this.call(async (native) => native.domainCreate(await this.mustLookup(native, uuid)));
  }

  destroy(uuid: string): Promise<void> {
    return this.call(async (native) => native.domainDestroy(await this.mustLookup(native, uuid)));
  }

  async addresses(uuid: string): Promise<string[]> {
    if (this.uri.startsWith('test:')) return [];
    await this.call((native) => this.mustLookup(native, uuid));
    try {
      const { stdout } = await execFileP('virsh', ['-q', '-c', this.uri, 'domifaddr', uuid], {
        timeout: 10_000,
      });
      return parseDomifaddr(stdout);
    } catch {
      return [];
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.native.connectClose();
  }
}

/** Addresses (without prefix length) from `virsh domifaddr` output. */
export function parseDomifaddr(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /\b(ipv4|ipv6)\s+(\S+)/.exec(line);
    if (m) out.push(m[2]!.replace(/\/\d+$/, ''));
  }
  return out;
}

/** libvirt refused the connection (no libvirtd, no permission, a URI it does not know). */
export class HypervisorConnectError extends Error {}

export async function connectHypervisor(uri: string): Promise<Hypervisor> {
  const native = new NativeHypervisor({ uri });
  try {
    await native.connectOpen();
  } catch (err) {
    const why = (err as Error).message.replace(/^LibvirtError: /, '');
    throw new HypervisorConnectError(`cannot connect to libvirt at ${uri}: ${why} (libvirtUri)`);
  }
  return new LibvirtHypervisor(uri, native);
}

/** 'qemu:///system' when libvirtd answers there within 2 s, else libvirt's built-in test driver. */
export async function pickDefaultUri(): Promise<string> {
  try {
    await execFileP('virsh', ['-c', 'qemu:///system', 'uri'], { timeout: 2000 });
    return 'qemu:///system';
  } catch {
    return 'test:///default';
  }
}
