// The agent's view of libvirt: a small adapter over the @unraid/libvirt N-API binding. Calls the
// binding lacks (interface addresses) go through `virsh`, libvirt's own client.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { DomainGetXMLDescFlags, DomainState, Hypervisor as NativeHypervisor, } from '@unraid/libvirt';
const execFileP = promisify(execFile);
/** Thrown by operations on a UUID that names no domain. */
export class DomainNotFoundError extends Error {
    uuid;
    code = 'DOMAIN_NOT_FOUND';
    constructor(uuid) {
        super(`no domain with uuid ${uuid}`);
        this.uuid = uuid;
    }
}
export function stateName(state) {
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
function isNotFound(e) {
    const msg = e instanceof Error ? e.message : String(e);
    return /domain not found|no domain with matching|invalid uuid/i.test(msg);
}
class LibvirtHypervisor {
    uri;
    native;
    closed = false;
    constructor(uri, native) {
        this.uri = uri;
        this.native = native;
    }
    async describe(dom) {
        const [uuid, name, info] = await Promise.all([
            this.native.domainGetUUIDString(dom),
            this.native.domainGetName(dom),
            this.native.domainGetInfo(dom),
        ]);
        return { uuid, name, state: stateName(info.state) };
    }
    async lookup(uuid) {
        if (!UUID_RE.test(uuid))
            return undefined;
        try {
            return await this.native.domainLookupByUUIDString(uuid);
        }
        catch (e) {
            if (isNotFound(e))
                return undefined;
            throw e;
        }
    }
    async mustLookup(uuid) {
        const dom = await this.lookup(uuid);
        if (!dom)
            throw new DomainNotFoundError(uuid);
        return dom;
    }
    async listDomains() {
        const doms = await this.native.connectListAllDomains();
        const out = [];
        for (const dom of doms) {
            try {
                out.push(await this.describe(dom));
            }
            catch (e) {
                if (!isNotFound(e))
                    throw e; // undefined between listing and describing
            }
        }
        return out.sort((a, b) => a.name.localeCompare(b.name));
    }
    async getDomain(uuid) {
        const dom = await this.lookup(uuid);
        if (!dom)
            return undefined;
        try {
            return await this.describe(dom);
        }
        catch (e) {
            if (isNotFound(e))
                return undefined;
            throw e;
        }
    }
    async inactiveXml(uuid) {
        const dom = await this.mustLookup(uuid);
        return this.native.domainGetXMLDesc(dom, DomainGetXMLDescFlags.INACTIVE);
    }
    async defineXml(xml) {
        const dom = await this.native.domainDefineXML(xml);
        return this.describe(dom);
    }
    async start(uuid) {
        await this.native.domainCreate(await this.mustLookup(uuid));
    }
    async destroy(uuid) {
        await this.native.domainDestroy(await this.mustLookup(uuid));
    }
    async addresses(uuid) {
        if (this.uri.startsWith('test:'))
            return [];
        await this.mustLookup(uuid);
        try {
            const { stdout } = await execFileP('virsh', ['-q', '-c', this.uri, 'domifaddr', uuid], {
                timeout: 10_000,
            });
            return parseDomifaddr(stdout);
        }
        catch {
            return [];
        }
    }
    async close() {
        if (this.closed)
            return;
        this.closed = true;
        await this.native.connectClose();
    }
}
/** Addresses (without prefix length) from `virsh domifaddr` output. */
export function parseDomifaddr(stdout) {
    const out = [];
    for (const line of stdout.split('\n')) {
        const m = /\b(ipv4|ipv6)\s+(\S+)/.exec(line);
        if (m)
            out.push(m[2].replace(/\/\d+$/, ''));
    }
    return out;
}
export async function connectHypervisor(uri) {
    const native = new NativeHypervisor({ uri });
    await native.connectOpen();
    return new LibvirtHypervisor(uri, native);
}
/** 'qemu:///system' when libvirtd answers there within 2 s, else libvirt's built-in test driver. */
export async function pickDefaultUri() {
    try {
        await execFileP('virsh', ['-c', 'qemu:///system', 'uri'], { timeout: 2000 });
        return 'qemu:///system';
    }
    catch {
        return 'test:///default';
    }
}
//# sourceMappingURL=hypervisor.js.map