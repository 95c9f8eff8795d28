/**
 * A real libvirtd (qemu:///system) for enforcement tests: started here when none answers, and the
 * vmwarden hook installed so that libvirtd runs it (restarted once when the hook is new to it).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { DEFAULT_HOOK_PATH, installHook, type InstallResult } from '../../agent/src/enforce/install-hook.js';
import { sleep, waitFor } from './wait.js';

const execFileP = promisify(execFile);
export const QEMU_URI = 'qemu:///system';
/** Names of the domains the enforcement tests create (the hook checks only these). */
export const TEST_DOMAINS = 'vmw-*';

async function answers(): Promise<boolean> {
  try {
    await execFileP('virsh', ['-c', QEMU_URI, 'uri'], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

async function waitAnswering(timeoutMs = 20_000): Promise<void> {
  await waitFor(`libvirtd answering on ${QEMU_URI}`, answers, { timeoutMs, intervalMs: 200 });
}

const running = (name: string) => {
  try {
    execFileSync('pgrep', ['-x', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/**
 * Makes sure virtlogd and libvirtd run and answer on qemu:///system, with the vmwarden hook file in
 * place (pointing nowhere until installTestHook): libvirtd sees a new hook only after a restart, so
 * that restart happens here, before the test opens its connections.
 */
export async function ensureLibvirtd(): Promise<void> {
  kvmDeviceAsUdevWould();
  if (!running('virtlogd')) execFileSync('virtlogd', ['-d']);
  const hook = existsSync(DEFAULT_HOOK_PATH)
    ? undefined
    : installHook({ socket: '/nonexistent/agent.sock', state: '/nonexistent/enforcement.json' });
  if (await answers()) {
    if (hook?.restartNeeded) await restartLibvirtd();
    return;
  }
  if (!running('libvirtd')) execFileSync('libvirtd', ['-d']);
  await waitAnswering();
}

/**
 * Without udev (containers, CI) /dev/kvm stays root:root 0600. libvirtd probes QEMU as root (KVM
 * found) but checks it as the qemu user (KVM unusable), so it throws its capability cache away and
 * re-probes QEMU on nearly every call (seconds each). Debian's udev rule makes it root:kvm 0660; do
 * the same. Domains here are type 'qemu' (TCG) either way.
 */
function kvmDeviceAsUdevWould(): void {
  try {
    const st = statSync('/dev/kvm');
    const kvm = /^kvm:x:(\d+):/m.exec(readFileSync('/etc/group', 'utf8'));
    if (st.gid === 0 && kvm && process.getuid?.() === 0) {
      chownSync('/dev/kvm', 0, Number(kvm[1]));
      chmodSync('/dev/kvm', 0o660);
    }
  } catch {
    // no /dev/kvm: nothing to do
  }
}

/** Restarts libvirtd (it reads its hook set at startup). Running domains keep running. */
export async function restartLibvirtd(): Promise<void> {
  const pidFile = '/run/libvirtd.pid';
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  if (Number.isInteger(pid) && pid > 0) {
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      try {
        process.kill(pid, 0);
        await sleep(100);
      } catch {
        break;
      }
    }
  }
  if (!running('virtlogd')) execFileSync('virtlogd', ['-d']);
  execFileSync('libvirtd', ['-d']);
  await waitAnswering();
}

/**
 * Points the host's hook at a (test) agent, for the test domains only (names `vmw-*`): a libvirtd
 * shared with other tests keeps starting their domains whatever our agent's state.
 * Call ensureLibvirtd() first (no restart is needed then).
 */
export function installTestHook(socket: string, state: string): InstallResult {
  const r = installHook({ socket, state, domains: TEST_DOMAINS });
  if (r.restartNeeded) throw new Error('the hook was new to libvirtd: call ensureLibvirtd() first');
  return r;
}

export async function virsh(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP('virsh', ['-c', QEMU_URI, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    };
  }
}
