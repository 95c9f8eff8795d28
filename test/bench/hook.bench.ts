// Benchmark of the libvirt hook (npm run bench:hook): the time the vmwarden hook adds to `virsh start`
// of an unchanged, signed instance with a 10 GiB sparse disk, validation active, on a real libvirtd
// (qemu:///system, TCG). BENCH_RUNS (default 20) starts with the hook installed and as many without,
// interleaved in one run; each start is followed by destroy and (with the agent) the seal at shutdown,
// which are not timed. Figures are medians of the `virsh start` wall time. Last line: one JSON object.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { connectHypervisor } from '../../agent/src/libvirt/hypervisor.js';
import { DEFAULT_HOOK_PATH, installHook } from '../../agent/src/enforce/install-hook.js';
import { stateFilePath } from '../../agent/src/enforce/state-file.js';
import { startTestController } from '../helpers/controller.js';
import { startTestAgent } from '../helpers/agent.js';
import { ensureLibvirtd, QEMU_URI, TEST_DOMAINS, virsh } from '../helpers/libvirtd.js';
import { nodeAction, qemuVm, sealedAt } from '../agent/enforce/fixtures.js';
import { waitFor } from '../helpers/wait.js';

const execFileP = promisify(execFile);
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 20));
const DISK = 10 * 1024 ** 3;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Math.round(x * 10) / 10;

async function main() {
  await ensureLibvirtd();
  const c = await startTestController();
  const hv = await connectHypervisor(QEMU_URI);
  const a = await startTestAgent(c, { hypervisor: hv });
  const vm = qemuVm('vmw-bench', { sparseBytes: DISK });
  const admin = await c.adminToken();
  const parkHook = () =>
    installHook({ socket: '/nonexistent/agent.sock', state: '/nonexistent/enforcement.json' });
  try {
    await vm.define();
    await a.agent.report();
    const r = await c.call('POST', '/v1/sign', { token: admin, body: { server_id: vm.uuid } });
    if (r.status !== 200) throw new Error(`sign: ${r.text}`);
    await nodeAction(c, a.nodeId, 'activate');

    const hookOn = () =>
      installHook({
        socket: a.agent.endpoints.socket,
        state: stateFilePath(a.dataDir),
        domains: TEST_DOMAINS,
      });
    const hookOff = () => rmSync(DEFAULT_HOOK_PATH, { force: true });
    const once = async (withHook: boolean) => {
      if (withHook) hookOn();
      else hookOff();
      const before = await sealedAt(a.agent.signatures, vm.uuid);
      const t0 = performance.now();
      const s = await virsh('start', vm.uuid);
      const ms = performance.now() - t0;
      if (s.code !== 0) throw new Error(`start ${withHook ? 'with' : 'without'} hook failed: ${s.stderr}`);
      await virsh('destroy', vm.uuid);
      await waitFor('seal', async () => (await sealedAt(a.agent.signatures, vm.uuid)) !== before, {
        timeoutMs: 60_000,
      });
      return ms;
    };
    // warm-up (page cache, QEMU binary, the agent's digest cache)
    await once(true);
    await once(false);
    const withHook: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // alternate which goes first so drift hits both alike
      if (i % 2) {
        without.push(await once(false));
        withHook.push(await once(true));
      } else {
        withHook.push(await once(true));
        without.push(await once(false));
      }
    }
    // sanity: every start with the hook went through CheckStart (an "allowed" audit record each)
    const ev = await c.call('GET', `/v1/sign/${vm.uuid}/events`, { token: admin });
    const allowed = (ev.body.events as Array<{ action: string }>).filter(
      (e) => e.action === 'allowed',
    ).length;
    if (allowed < RUNS + 1)
      throw new Error(`only ${allowed} allowed records for ${RUNS + 1} starts with the hook`);
    // the hook program alone, for an allowed start (no libvirt): what the added time is made of
    const hookAlone: number[] = [];
    hookOn();
    const xml = (await virsh('dumpxml', '--inactive', vm.uuid)).stdout; // as libvirt hands it to hooks
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const child = execFileP(DEFAULT_HOOK_PATH, [vm.name, 'prepare', 'begin', '-']);
      child.child.stdin!.end(xml);
      await child;
      hookAlone.push(performance.now() - t0);
    }
    const mw = median(withHook);
    const mo = median(without);
    const out = {
      bench: 'hook',
      runs: RUNS,
      disk_apparent_bytes: DISK,
      start_ms_median_with_hook: round(mw),
      start_ms_median_without_hook: round(mo),
      added_ms_median: round(mw - mo),
      added_ratio: Math.round((mw / mo) * 1000) / 1000,
      hook_program_ms_median: round(median(hookAlone)),
      start_ms_min_with_hook: round(Math.min(...withHook)),
      start_ms_min_without_hook: round(Math.min(...without)),
    };
    console.log(`virsh start, ${RUNS} runs each, 10 GiB sparse disk, validation active (QEMU TCG)`);
    console.log(
      `  with hook:    median ${out.start_ms_median_with_hook} ms (min ${out.start_ms_min_with_hook})`,
    );
    console.log(
      `  without hook: median ${out.start_ms_median_without_hook} ms (min ${out.start_ms_min_without_hook})`,
    );
    console.log(`  added by the hook: ${out.added_ms_median} ms (×${out.added_ratio})`);
    console.log(
      `  hook program alone (allowed start, CheckStart included): median ${out.hook_program_ms_median} ms`,
    );
    console.log(JSON.stringify(out));
  } finally {
    parkHook();
    await vm.remove();
    await a.stop();
    await hv.close();
    await c.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
