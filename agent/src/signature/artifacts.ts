// What a domain definition points at on disk: the boot artifacts whose content is part of the
// signature (kernel, initrd, firmware, NVRAM template, read-only images and every backing file) and
// the writable disks that are sealed while the instance is shut off. File and block disks (LVM
// volumes, /dev/…) are hashed alike; network disks (rbd, iscsi, nbd, …) and storage-pool volumes
// cannot be read here and are listed as `unsupported`, which makes every verdict "unknown".
import { execFile } from 'node:child_process';
import { dirname, isAbsolute, resolve } from 'node:path';
import { promisify } from 'node:util';
import { canonicalDomainTree, childElements, firstChild, textOf, type XmlElement } from './canonical-xml.js';
import type { DomainDefinition } from './domain-definition.js';

const execFileP = promisify(execFile);

export type BootRole = 'kernel' | 'initrd' | 'loader' | 'nvram-template' | 'readonly-disk' | 'backing-file';

export interface BootArtifact {
  role: BootRole;
  path: string;
}

export interface WritableDisk {
  /** Guest target, e.g. vda. */
  target: string;
  path: string;
  /** Image format from the definition's <driver type>, when given (qcow2 disks seal incrementally). */
  format?: string;
}

export interface DomainArtifacts {
  boot: BootArtifact[];
  disks: WritableDisk[];
  /** Parts of the definition that are not covered by content hashes, in words ("… not inspected"). */
  unsupported: string[];
}

export interface ArtifactOptions {
  /** qemu-img binary for backing chains, or false to skip them (default 'qemu-img'). */
  qemuImg?: string | false;
}

interface DiskSource {
  target: string;
  device: string;
  type: string;
  path?: string;
  readonly: boolean;
  shareable: boolean;
  format?: string;
  /** Backing files written in the definition itself (<backingStore>). */
  declaredBacking: string[];
  describe: string;
}

function sourcePath(type: string, source: XmlElement | undefined): string | undefined {
  if (!source) return undefined;
  if (type === 'file') return source.attrs.file || undefined;
  if (type === 'block') return source.attrs.dev || undefined;
  return undefined;
}

function declaredBackingChain(disk: XmlElement): string[] {
  const out: string[] = [];
  let bs = firstChild(disk, 'backingStore');
  while (bs) {
    const p = sourcePath(bs.attrs.type ?? '', firstChild(bs, 'source'));
    if (p) out.push(p);
    bs = firstChild(bs, 'backingStore');
  }
  return out;
}

function readDisks(devices: XmlElement | undefined): DiskSource[] {
  if (!devices) return [];
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

function describeSource(type: string, source: XmlElement | undefined): string {
  if (!source) return `${type} (no source)`;
  const a = source.attrs;
  if (type === 'network') return `network disk (${a.protocol ?? '?'}${a.name ? ` ${a.name}` : ''})`;
  if (type === 'volume') return `storage volume ${a.pool ?? '?'}/${a.volume ?? '?'}`;
  return `${type} disk`;
}

export interface BackingChain {
  files: string[];
  error?: string;
}

/**
 * Backing files of an image, nearest first, from `qemu-img info --backing-chain`. The format
 * from the definition is passed along so a raw image whose guest wrote an image header into it is
 * never probed as something else; raw images have no backing file and are not inspected.
 */
export async function backingChain(
  path: string,
  format: string | undefined,
  qemuImg: string = 'qemu-img',
): Promise<BackingChain> {
  if (format === 'raw') return { files: [] };
  const args = ['info', '--backing-chain', '--output=json', '-U'];
  if (format) args.push('-f', format);
  args.push(path);
  let stdout: string;
  try {
    ({ stdout } = await execFileP(qemuImg, args, { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') return { files: [], error: `${qemuImg} not available` };
    const msg = (err.stderr || err.message || String(e)).trim().split('\n').pop() ?? '';
    return { files: [], error: msg };
  }
  let chain: Array<{ filename?: string }>;
  try {
    const parsed = JSON.parse(stdout) as unknown;
    chain = (Array.isArray(parsed) ? parsed : [parsed]) as Array<{ filename?: string }>;
  } catch {
    return { files: [], error: 'unreadable qemu-img output' };
  }
  const files: string[] = [];
  let base = dirname(path);
  for (const entry of chain.slice(1)) {
    const f = entry.filename;
    if (!f) continue;
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
export async function domainArtifacts(
  domain: string | DomainDefinition,
  opts: ArtifactOptions = {},
): Promise<DomainArtifacts> {
  const qemuImg = opts.qemuImg ?? 'qemu-img';
  const root = typeof domain === 'string' ? canonicalDomainTree(domain) : domain.tree;
  const boot: BootArtifact[] = [];
  const seen = new Set<string>();
  const add = (role: BootRole, path: string | undefined) => {
    if (!path || seen.has(path)) return;
    seen.add(path);
    boot.push({ role, path });
  };
  const unsupported: string[] = [];

  const os = firstChild(root, 'os');
  add('kernel', textOf(firstChild(os, 'kernel')));
  add('initrd', textOf(firstChild(os, 'initrd')));
  add('loader', textOf(firstChild(os, 'loader')));
  add('nvram-template', firstChild(os, 'nvram')?.attrs.template);

  const disks: WritableDisk[] = [];
  const backingOf: Array<{ disk: DiskSource; path: string }> = [];
  for (const disk of readDisks(firstChild(root, 'devices'))) {
    if (disk.type !== 'file' && disk.type !== 'block') {
      // A cdrom/floppy with no medium is not a gap; anything with a source we cannot hash is.
      if (disk.describe.endsWith('(no source)')) continue;
      unsupported.push(`disk ${disk.target}: ${disk.describe} not inspected`);
      continue;
    }
    if (!disk.path) continue; // empty cdrom tray
    if (disk.type === 'block' && (disk.device === 'cdrom' || disk.device === 'floppy')) {
      // A host drive passed through: its medium changes under the guest, nothing to seal.
      unsupported.push(`disk ${disk.target}: host ${disk.device} drive ${disk.path} not inspected`);
      continue;
    }
    if (disk.readonly || disk.device === 'cdrom') add('readonly-disk', disk.path);
    else if (disk.device === 'disk' && !disk.shareable)
      disks.push({ target: disk.target, path: disk.path, ...(disk.format ? { format: disk.format } : {}) });
    else {
      unsupported.push(
        `disk ${disk.target}: writable ${disk.shareable ? 'shareable ' : ''}${disk.device} ${disk.path} not inspected (never sealed)`,
      );
    }
    backingOf.push({ disk, path: disk.path });
  }

  // Backing chains of every disk, in definition order (the qemu-img calls run in parallel).
  const chains = await Promise.all(
    backingOf.map(async ({ disk, path }) => {
      if (disk.type === 'block' && !disk.format) return { files: [] } as BackingChain;
      if (!qemuImg) return { files: [], error: 'backing chains not inspected' } as BackingChain;
      return backingChain(path, disk.format, qemuImg);
    }),
  );
  chains.forEach((chain, i) => {
    const { disk } = backingOf[i]!;
    for (const f of disk.declaredBacking) add('backing-file', f);
    for (const f of chain.files) add('backing-file', f);
    if (chain.error) {
      unsupported.push(`disk ${disk.target}: backing chain of ${disk.path} not inspected: ${chain.error}`);
    }
  });

  return { boot, disks, unsupported };
}
