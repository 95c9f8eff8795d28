/**
 * A real Debian guest for end-to-end tests: built (once, cached) by scripts/build-test-guest.sh,
 * booted under qemu:///system with direct kernel boot, a guest agent channel and a NIC on libvirt's
 * `default` NAT network. TCG when /dev/kvm does not work.
 */
import { certLoginArgs } from './sshd.js';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { QEMU_URI, virsh } from './libvirtd.js';
import { GuestAgent } from '../../agent/src/guest/guest-agent.js';
import { waitFor } from './wait.js';

const execFileP = promisify(execFile);
const root = fileURLToPath(
  new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url),
);

export interface GuestImage {
  disk: string;
  kernel: string;
  initrd: string;
}

/** Builds (or finds in the cache) the guest image; minutes the first time. */
export async function buildGuestImage(): Promise<GuestImage> {
  const { stdout } = await execFileP('bash', [join(root, 'scripts/build-test-guest.sh')], {
    timeout: 30 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as GuestImage;
}

/** /dev/kvm exists on nested hosts without working; KVM only when asked (VMWARDEN_TEST_KVM=1). */
const kvmUsable = () => process.env.VMWARDEN_TEST_KVM === '1' && existsSync('/dev/kvm');

export interface TestGuest {
  uuid: string;
  name: string;
  dir: string;
  /** The guest's address on the default network (found by waiting for SSH). */
  ip: string;
  start(): Promise<void>;
  /** Waits until sshd answers on port 22; returns the address. */
  waitSsh(timeoutMs?: number): Promise<string>;
  reboot(): Promise<void>;
  destroy(): Promise<void>;
}

export async function ensureDefaultNetwork(): Promise<void> {
  const info = await virsh('net-info', 'default');
  if (/Active:\s+yes/.test(info.stdout)) return;
  const r = await virsh('net-start', 'default');
  if (r.code !== 0 && !/already active/.test(r.stderr)) throw new Error(`net-start default: ${r.stderr}`);
}

function sshAnswers(ip: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: ip, port: 22, timeout: 1500 });
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('SSH-'));
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Defines and boots a guest on a sparse copy of the image. */
export async function bootGuest(image: GuestImage, opts: { memoryMiB?: number } = {}): Promise<TestGuest> {
  await ensureDefaultNetwork();
  const uuid = randomUUID();
  const name = `vmwarden-e2e-${uuid.slice(0, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-guest-'));
  const disk = join(dir, 'disk.raw');
  // QEMU runs as another user: the copies live in a directory it can read (~/.cache may not be).
  chmodSync(dir, 0o755);
  execFileSync('cp', ['--sparse=always', image.disk, disk]);
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  copyFileSync(image.kernel, kernel);
  copyFileSync(image.initrd, initrd);
  const mac = `52:54:00:${uuid.slice(0, 2)}:${uuid.slice(2, 4)}:${uuid.slice(4, 6)}`;
  const xml = `<domain type='${kvmUsable() ? 'kvm' : 'qemu'}'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>${opts.memoryMiB ?? 512}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${kernel}</kernel>
    <initrd>${initrd}</initrd>
    <cmdline>root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet</cmdline>
  </os>
  <on_reboot>restart</on_reboot>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <mac address='${mac}'/>
      <model type='virtio'/>
    </interface>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <serial type='file'><source path='${join(dir, 'console.log')}'/></serial>
    <console type='file'><source path='${join(dir, 'console.log')}'/><target type='serial'/></console>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>`;
  const xmlFile = join(dir, 'domain.xml');
  writeFileSync(xmlFile, xml);
  const def = await virsh('define', xmlFile);
  if (def.code !== 0) throw new Error(`virsh define: ${def.stderr}`);

  const guest: TestGuest = {
    uuid,
    name,
    dir,
    ip: '',
    async start() {
      const r = await virsh('start', uuid);
      if (r.code !== 0) throw new Error(`virsh start: ${r.stderr}`);
    },
    async waitSsh(timeoutMs = 180_000) {
      const answering = async () => {
        const leases = await virsh('net-dhcp-leases', 'default', '--mac', mac);
        const ips = [...leases.stdout.matchAll(/(\d+\.\d+\.\d+\.\d+)\/\d+/g)].map((m) => m[1]!);
        for (const ip of ips.reverse()) if (await sshAnswers(ip)) return ip;
        return undefined;
      };
      guest.ip = await waitFor(`guest ${name}: sshd answering`, answering, { timeoutMs, intervalMs: 1000 });
      return guest.ip;
    },
    async reboot() {
      // `virsh reboot --mode agent` needs logind in the guest (shutdown -r +0); systemctl does not.
      await new GuestAgent(QEMU_URI, uuid).command('guest-exec', { path: '/bin/systemctl', arg: ['reboot'] });
    },
    async destroy() {
      await virsh('destroy', uuid);
      await virsh('undefine', uuid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return guest;
}

export { QEMU_URI };

/** OpenSSH client arguments for a certificate login as `user` on the guest (never prompts). */
export function guestSshArgs(
  ip: string,
  keyFile: string,
  certFile: string,
  command: string,
  user = 'vmwarden',
) {
  return certLoginArgs({
    host: ip,
    keyFile,
    certFile,
    user,
    command,
    connectTimeoutSeconds: 10,
    quiet: true,
  });
}

/** A login that stays open; `exited` resolves (with the time) when the client ends. */
export function guestSshOpen(args: string[]) {
  const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.on('exit', (code) => resolve({ code, at: Date.now() })),
  );
  return { child, exited, output: () => out };
}

/** A running domain with no disk and no guest agent channel (SeaBIOS idles: cheap under TCG). */
export async function startBareDomain(): Promise<{ uuid: string; name: string; destroy(): Promise<void> }> {
  const uuid = randomUUID();
  const name = `vmwarden-bare-${uuid.slice(0, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-bare-'));
  const xmlFile = join(dir, 'domain.xml');
  writeFileSync(
    xmlFile,
    `<domain type='qemu'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
      `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
  );
  const def = await virsh('define', xmlFile);
  if (def.code !== 0) throw new Error(`virsh define: ${def.stderr}`);
  const r = await virsh('start', uuid);
  if (r.code !== 0) throw new Error(`virsh start: ${r.stderr}`);
  return {
    uuid,
    name,
    async destroy() {
      await virsh('destroy', uuid);
      await virsh('undefine', uuid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
