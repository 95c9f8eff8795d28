// Tiny QEMU (TCG) domains for the enforcement tests: no guest OS, QEMU sits in SeaBIOS. Files live in
// a world-traversable temp dir, since libvirtd runs QEMU as its own user (dynamic ownership).
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { startTestAgent, type TestAgent } from '../../helpers/agent.js';
import type { SignatureService } from '../../../agent/src/signature/service.js';
import type { AgentConfig } from '../../../agent/src/config.js';
import { stateFilePath } from '../../../agent/src/enforce/state-file.js';
import { connectHypervisor, type Hypervisor } from '../../../agent/src/libvirt/hypervisor.js';
import { ensureLibvirtd, installTestHook, QEMU_URI, virsh } from '../../helpers/libvirtd.js';
import { sleep } from '../../helpers/wait.js';
import { waitTask } from '../../controller/sign/util.js';

export const MiB = 1024 * 1024;

export interface QemuVm {
  name: string;
  uuid: string;
  dir: string;
  disk: string;
  loader?: string;
  xml(p?: { memoryMiB?: number }): string;
  /** virsh define with the given parameters. */
  define(p?: { memoryMiB?: number }): Promise<void>;
  /** destroy (if running) + undefine + remove files. */
  remove(): Promise<void>;
}

const SEABIOS = ['/usr/share/seabios/bios-256k.bin', '/usr/share/seabios/bios.bin'];

/**
 * A domain with one disk and optionally its own SeaBIOS copy as <loader>. The disk is raw (random
 * bytes, or sparse of `sparseBytes`), or with `qcow2` a qcow2 image of `diskMiB` whose first half
 * qemu-io fills with a pattern.
 */
export function qemuVm(
  prefix: string,
  opts: { loader?: boolean; diskMiB?: number; sparseBytes?: number; qcow2?: boolean } = {},
): QemuVm {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-enf-'));
  chmodSync(dir, 0o755);
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  const uuid = randomUUID();
  const format = opts.qcow2 ? 'qcow2' : 'raw';
  const disk = join(dir, `disk.${format}`);
  if (opts.qcow2) {
    const mib = opts.diskMiB ?? 64;
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, `${mib}M`]);
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x41 0 ${mib / 2}M`, disk], { stdio: 'ignore' });
  } else if (opts.sparseBytes) {
    writeFileSync(disk, '');
    truncateSync(disk, opts.sparseBytes); // sparse: only its length is set
  } else writeFileSync(disk, randomBytes((opts.diskMiB ?? 4) * MiB));
  let loader: string | undefined;
  if (opts.loader) {
    loader = join(dir, 'bios.bin');
    copyFileSync(
      SEABIOS.find((p) => existsSync(p))!,
      loader,
    );
  }
  const xml = (p: { memoryMiB?: number } = {}) => `<domain type='qemu'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>${p.memoryMiB ?? 64}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>${loader ? `\n    <loader type='rom'>${loader}</loader>` : ''}
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='${format}'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/>
  </devices>
</domain>
`;
  const vm: QemuVm = {
    name,
    uuid,
    dir,
    disk,
    loader,
    xml,
    async define(p = {}) {
      const file = join(dir, 'domain.xml');
      writeFileSync(file, xml(p));
      const r = await virsh('define', file);
      if (r.code !== 0) throw new Error(`virsh define: ${r.stderr}`);
      await sleep(120); // files written just now are "racy" for the fast re-check
    },
    async remove() {
      await virsh('destroy', uuid);
      await virsh('undefine', uuid, '--nvram');
      await virsh('undefine', uuid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return vm;
}

/** Domain state as virsh sees it. */
export async function domState(uuid: string): Promise<string> {
  return (await virsh('domstate', uuid)).stdout.trim();
}

/** Sealed-at of the first disk in the agent's baseline. */
export async function sealedAt(s: SignatureService, uuid: string): Promise<string | undefined> {
  const d = (await s.get(uuid))?.manifest.disks[0] as { sealedAt?: string } | undefined;
  return d?.sealedAt;
}

/** POST /v1/sign/node/{id}/action and wait for the task. */
export async function nodeAction(c: TestController, nodeId: number, action: 'activate' | 'deactivate') {
  const token = await c.adminToken();
  const r = await c.call('POST', `/v1/sign/node/${nodeId}/action`, { token, body: { action } });
  if (r.status !== 200) throw new Error(`${action}: ${r.status} ${r.text}`);
  const { final } = await waitTask(c, token, r.body.task_id, 20_000);
  if (final.state === 'FAILURE') throw new Error(`${action} failed: ${JSON.stringify(final)}`);
}

export interface EnforcedVm {
  c: TestController;
  admin: string;
  hv: Hypervisor;
  a: TestAgent;
  vm: QemuVm;
  /** Removes the domain, stops the agent, the connection and the controller. */
  destroy(): Promise<void>;
}

/**
 * What the enforcement tests start from: a real libvirtd whose hook points at an in-process agent,
 * one QEMU domain defined, signed and reported, and validation active on the node.
 */
export async function enforcedVm(
  prefix: string,
  opts: { vm?: Parameters<typeof qemuVm>[1]; agent?: Partial<AgentConfig> } = {},
): Promise<EnforcedVm> {
  await ensureLibvirtd();
  const c = await startTestController();
  let hv: Hypervisor | undefined;
  let a: TestAgent | undefined;
  let vm: QemuVm | undefined;
  const destroy = async () => {
    await vm?.remove();
    await a?.stop();
    await hv?.close();
    await c.destroy();
  };
  try {
    const admin = await c.adminToken();
    hv = await connectHypervisor(QEMU_URI);
    a = await startTestAgent(c, { hypervisor: hv, config: opts.agent });
    installTestHook(a.agent.endpoints.socket, stateFilePath(a.dataDir));
    vm = qemuVm(prefix, opts.vm);
    await vm.define();
    await a.agent.report();
    const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
    if (r.status !== 200) throw new Error(`sign ${vm.name}: ${r.status} ${r.text}`);
    await nodeAction(c, a.nodeId, 'activate');
    return { c, admin, hv, a, vm, destroy };
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }
}
