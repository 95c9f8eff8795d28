// What a domain definition points at on disk: the boot artifacts whose content is part of the
// signature (kernel, initrd, firmware, NVRAM template, read-only images and every backing file) and
// the writable disks that are sealed while the instance is shut off.
import { execFile } from 'node:child_process';
import { dirname, isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { canonicalDomainTree, childElements, firstChild, textOf } from './canonical-xml.js';
const execFileP = promisify(execFile);
function sourcePath(type, source) {
    if (!source)
        return undefined;
    if (type === 'file')
        return source.attrs.file || undefined;
    if (type === 'block')
        return source.attrs.dev || undefined;
    return undefined;
}
function declaredBackingChain(disk) {
    const out = [];
    let bs = firstChild(disk, 'backingStore');
    while (bs) {
        const p = sourcePath(bs.attrs.type ?? '', firstChild(bs, 'source'));
        if (p)
            out.push(p);
        bs = firstChild(bs, 'backingStore');
    }
    return out;
}
function readDisks(devices) {
    if (!devices)
        return [];
    return childElements(devices, 'disk').map((disk, i) => {
        const type = disk.attrs.type ?? 'file';
        const device = disk.attrs.device ?? 'disk';
        const target = firstChild(disk, 'target')?.attrs.dev ?? `disk${i}`;
        const source = firstChild(disk, 'source');
        return {
            target,
            device,
            type,
            path: sourcePath(type, source),
            readonly: firstChild(disk, 'readonly') !== undefined,
            shareable: firstChild(disk, 'shareable') !== undefined,
            format: firstChild(disk, 'driver')?.attrs.type,
            declaredBacking: declaredBackingChain(disk),
            describe: describeSource(type, source),
        };
    });
}
function describeSource(type, source) {
    if (!source)
        return `${type} (no source)`;
    const a = source.attrs;
    if (type === 'network')
        return `network source (protocol ${a.protocol ?? '?'}, name ${a.name ?? '?'})`;
    if (type === 'volume')
        return `storage volume ${a.pool ?? '?'}/${a.volume ?? '?'}`;
    return `${type} source`;
}
/**
 * Backing files of an image, nearest first, from `qemu-img info --backing-chain`. The format
 * from the definition is passed along so a raw image whose guest wrote an image header into it is
 * never probed as something else; raw images have no backing file and are not inspected.
 */
export async function backingChain(path, format, qemuImg = 'qemu-img') {
    if (format === 'raw')
        return { files: [] };
    const args = ['info', '--backing-chain', '--output=json', '-U'];
    if (format)
        args.push('-f', format);
    args.push(path);
    let stdout;
    try {
        ({ stdout } = await execFileP(qemuImg, args, { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }));
    }
    catch (e) {
        const err = e;
        if (err.code === 'ENOENT')
            return { files: [], error: `${qemuImg} not available` };
        const msg = (err.stderr || err.message || String(e)).trim().split('\n').pop() ?? '';
        return { files: [], error: msg };
    }
    let chain;
    try {
        const parsed = JSON.parse(stdout);
        chain = (Array.isArray(parsed) ? parsed : [parsed]);
    }
    catch {
        return { files: [], error: 'unreadable qemu-img output' };
    }
    const files = [];
    let base = dirname(path);
    for (const entry of chain.slice(1)) {
        const f = entry.filename;
        if (!f)
            continue;
        if (/^[a-z][a-z0-9+.-]*:/i.test(f) && !isAbsolute(f)) {
            return { files, error: `backing file ${f} is not a local file` };
        }
        const abs = isAbsolute(f) ? f : resolve(base, f);
        files.push(abs);
        base = dirname(abs);
    }
    return { files };
}
/** Boot artifacts and writable disks of a domain definition (inactive XML). */
export async function domainArtifacts(xml, opts = {}) {
    const qemuImg = opts.qemuImg ?? 'qemu-img';
    const root = canonicalDomainTree(xml);
    const boot = [];
    const seen = new Set();
    const add = (role, path) => {
        if (!path || seen.has(path))
            return;
        seen.add(path);
        boot.push({ role, path });
    };
    const unsupported = [];
    const os = firstChild(root, 'os');
    add('kernel', textOf(firstChild(os, 'kernel')));
    add('initrd', textOf(firstChild(os, 'initrd')));
    add('loader', textOf(firstChild(os, 'loader')));
    add('nvram-template', firstChild(os, 'nvram')?.attrs.template);
    const disks = [];
    const backingOf = [];
    for (const disk of readDisks(firstChild(root, 'devices'))) {
        if (disk.type !== 'file' && disk.type !== 'block') {
            // A cdrom/floppy with no medium is not a gap; anything with a source we cannot hash is.
            if (disk.describe.endsWith('(no source)'))
                continue;
            unsupported.push(`disk ${disk.target}: ${disk.describe} is not covered by the signature`);
            continue;
        }
        if (!disk.path)
            continue; // empty cdrom tray
        if (disk.readonly || disk.device === 'cdrom')
            add('readonly-disk', disk.path);
        else if (disk.device === 'disk' && !disk.shareable)
            disks.push({ target: disk.target, path: disk.path });
        else {
            unsupported.push(`disk ${disk.target}: writable ${disk.shareable ? 'shareable ' : ''}${disk.device} ${disk.path} is not sealed`);
        }
        backingOf.push({ disk, path: disk.path });
    }
    // Backing chains of every disk, in definition order (the qemu-img calls run in parallel).
    const chains = await Promise.all(backingOf.map(async ({ disk, path }) => {
        if (disk.type === 'block' && !disk.format)
            return { files: [] };
        if (!qemuImg)
            return { files: [], error: 'backing chains not inspected' };
        return backingChain(path, disk.format, qemuImg);
    }));
    chains.forEach((chain, i) => {
        const { disk } = backingOf[i];
        for (const f of disk.declaredBacking)
            add('backing-file', f);
        for (const f of chain.files)
            add('backing-file', f);
        if (chain.error) {
            unsupported.push(`disk ${disk.target}: backing chain of ${disk.path} not inspected: ${chain.error}`);
        }
    });
    return { boot, disks, unsupported };
}
//# sourceMappingURL=artifacts.js.map