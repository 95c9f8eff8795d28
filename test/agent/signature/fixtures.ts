// Fixtures for the signature tests: temp files a `<domain type='test'>` definition points at.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 1024 * 1024;

export interface VmFiles {
  dir: string;
  kernel: string;
  initrd: string;
  base: string;
  overlay: string;
  data: string;
  seed: string;
  remove(): void;
}

/** Kernel, initrd, a raw base image with a qcow2 overlay (vda), a raw data disk (vdb), a seed ISO. */
export function makeVmFiles(prefix = 'vmwarden-sig-'): VmFiles {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const f = (n: string) => join(dir, n);
  writeFileSync(f('vmlinuz'), randomBytes(MiB + 4096));
  writeFileSync(f('initrd.img'), randomBytes(300 * 1024));
  writeFileSync(f('base.raw'), randomBytes(2 * MiB));
  execFileSync('qemu-img', [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    f('base.raw'),
    '-F',
    'raw',
    f('overlay.qcow2'),
  ]);
  writeFileSync(f('data.raw'), randomBytes(5 * MiB));
  writeFileSync(f('seed.iso'), randomBytes(64 * 1024));
  return {
    dir,
    kernel: f('vmlinuz'),
    initrd: f('initrd.img'),
    base: f('base.raw'),
    overlay: f('overlay.qcow2'),
    data: f('data.raw'),
    seed: f('seed.iso'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface DomainParams {
  name: string;
  uuid?: string;
  memoryKiB?: number;
  cmdline?: string;
  extraDevices?: string;
}

export function domainXml(files: VmFiles, p: DomainParams): string {
  const uuid = p.uuid ?? randomUUID();
  return `<domain type='test'>
  <name>${p.name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='KiB'>${p.memoryKiB ?? 1048576}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>${files.kernel}</kernel>
    <initrd>${files.initrd}</initrd>
    <cmdline>${p.cmdline ?? 'console=ttyS0 root=/dev/vda'}</cmdline>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${files.overlay}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${files.data}'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${files.seed}'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <target dev='vnet7'/>
    </interface>${p.extraDevices ?? ''}
  </devices>
</domain>
`;
}

/** Flips one byte of a file in place (xor 0xff) at `offset`. */
export function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}
