// Benchmark of the libvirt hook (npm run bench:hook): the time the vmwarden hook adds to `virsh start`
// of an unchanged, signed instance with a 10 GiB sparse disk, validation active, on a real libvirtd
// (qemu:///system, TCG). BENCH_RUNS (default 30) starts with the hook installed and as many without,
// in pairs (alternating which goes first); each start is followed by destroy and (with the agent) the
// seal at shutdown, which are not timed. The added time is the difference of the medians of the
// `virsh start` wall time (goal < 50 ms); the median of the paired differences is printed as well. Then the breakdown of an
// allowed start without libvirt: the hook program alone (nc.openbsd, and curl as the reference in the
// same run), the agent's answer over hook.sock (a Node client), CheckStart inside the agent (its
// Server-Timing) and the signature verification inside that (the verdict's stats), and how many
// baseline signatures the agent verified (once per distinct baseline: each seal makes a new one).
// Last line: one JSON object.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectHypervisor } from '../../agent/src/libvirt/hypervisor.js';
import { DEFAULT_HOOK_PATH, installHook, type HookClient } from '../../agent/src/enforce/install-hook.js';
import type { AgentEvent } from '../../agent/src/events.js';
import { stateFilePath } from '../../agent/src/enforce/state-file.js';
import { startTestController } from '../helpers/controller.js';
import { startTestAgent } from '../helpers/agent.js';
import { ensureLibvirtd, QEMU_URI, TEST_DOMAINS, virsh } from '../helpers/libvirtd.js';
import { nodeAction, qemuVm, sealedAt } from '../agent/enforce/fixtures.js';
import { waitFor } from '../helpers/wait.js';

const execFileP = promisify(execFile);
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 30));
const DISK = 10 * 1024 ** 3;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** POST /check-start as the hook does; resolves with the wall time and the agent's Server-Timing. */
function askAgent(sock: string, name: string, xml: string): Promise<{ ms: number; checkMs: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: sock, method: 'POST', path: `/check-start?name=${encodeURIComponent(name)}` },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          if (body !== 'allow\n') return reject(new Error(`not allowed: ${body}`));
          const m = /check;dur=([\d.]+)/.exec(String(res.headers['server-timing'] ?? ''));
          resolve({ ms: performance.now() - t0, checkMs: m ? Number(m[1]) : NaN });
        });
      },
    );
    req.on('error', reject);
    req.end(xml);
  });
}

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

    const hookOn = (client?: HookClient, path?: string) =>
      installHook({
        socket: a.agent.endpoints.socket,
        state: stateFilePath(a.dataDir),
        domains: TEST_DOMAINS,
        client,
        path,
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
    // The verdicts of the allowed start checks, taken per phase below. During the timed starts each
    // check comes right after the seal of the run before: a stat and a compare when the seal's
    // digests are trusted (quick), else the files are hashed again.
    const checks: Array<{ ms: number; quick: boolean }> = [];
    const onCheck = (e: AgentEvent) => {
      if (e.serverId !== vm.uuid || e.action !== 'allowed' || !e.verdict?.stats) return;
      checks.push({ ms: e.verdict.stats.ms, quick: e.verdict.stats.quick === true });
    };
    a.agent.events.on('event', onCheck);
    const quickOf = (xs: typeof checks) => `${xs.filter((x) => x.quick).length}/${xs.length}`;
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
    const timedChecks = checks.splice(0);
    // sanity: every start with the hook went through CheckStart (an "allowed" audit record each)
    const ev = await c.call('GET', `/v1/sign/${vm.uuid}/events`, { token: admin });
    const allowed = (ev.body.events as Array<{ action: string }>).filter(
      (e) => e.action === 'allowed',
    ).length;
    if (allowed < RUNS + 1)
      throw new Error(`only ${allowed} allowed records for ${RUNS + 1} starts with the hook`);
    // the hook program alone, for an allowed start (no libvirt): what the added time is made of
    const hookAlone: number[] = [];
    const curlAlone: number[] = [];
    const curlHook = join(mkdtempSync(join(tmpdir(), 'vmwarden-bench-')), 'vmwarden');
    hookOn('curl', curlHook);
    const client = readFileSync(hookOn().path, 'utf8').includes('nc.openbsd -U') ? 'nc.openbsd' : 'curl';
    const verifiedBefore = a.agent.signatures.baselineVerifications;
    const xml = (await virsh('dumpxml', '--inactive', vm.uuid)).stdout; // as libvirt hands it to hooks
    const runHook = async (path: string) => {
      const t0 = performance.now();
      const child = execFileP(path, [vm.name, 'prepare', 'begin', '-']);
      child.child.stdin!.end(xml);
      await child;
      return performance.now() - t0;
    };
    for (let i = 0; i < RUNS; i++) {
      hookAlone.push(await runHook(DEFAULT_HOOK_PATH));
      curlAlone.push(await runHook(curlHook));
    }
    checks.length = 0;
    const roundTrip: number[] = [];
    const checkMs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await askAgent(a.agent.endpoints.hook, vm.name, xml);
      roundTrip.push(r.ms);
      checkMs.push(r.checkMs);
    }
    a.agent.events.off('event', onCheck);
    const agentChecks = checks.splice(0);
    const unchangedVerifications = a.agent.signatures.baselineVerifications - verifiedBefore;
    rmSync(curlHook, { force: true });
    const mw = median(withHook);
    const mo = median(without);
    // Each start with the hook next to one without: the median of these differences, for reference
    // (a QEMU start under TCG varies by ±100 ms from one to the next, so neither figure is exact).
    const paired = median(withHook.map((w, i) => w - without[i]!));
    const out = {
      bench: 'hook',
      runs: RUNS,
      disk_apparent_bytes: DISK,
      start_ms_median_with_hook: round(mw),
      start_ms_median_without_hook: round(mo),
      added_ms_median: round(mw - mo),
      added_ms_paired_median: round(paired),
      goal_added_ms: 50,
      meets_goal: mw - mo < 50 && median(hookAlone) < 25,
      added_ratio: Math.round((mw / mo) * 1000) / 1000,
      hook_program_ms_median: round(median(hookAlone)),
      hook_client: client,
      hook_program_curl_ms_median: round(median(curlAlone)),
      agent_roundtrip_ms_median: round2(median(roundTrip)),
      agent_check_ms_median: round2(median(checkMs)),
      verification_ms_median: round2(median(agentChecks.map((x) => x.ms))),
      verification_quick: quickOf(agentChecks),
      start_checks_after_seal_quick: quickOf(timedChecks),
      hook_client_and_shell_ms_median: round(median(hookAlone) - median(roundTrip)),
      baseline_signature_verifications: a.agent.signatures.baselineVerifications,
      seals: 2 * RUNS + 2,
      unchanged_checks: 3 * RUNS,
      unchanged_checks_signature_verifications: unchangedVerifications,
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
    console.log(
      `  added by the hook: ${out.added_ms_median} ms (×${out.added_ratio}); median of the ${RUNS} paired differences ${out.added_ms_paired_median} ms`,
    );
    console.log(
      `  hook program alone (allowed start, CheckStart included): median ${out.hook_program_ms_median} ms (${out.hook_client}; curl: ${out.hook_program_curl_ms_median} ms)`,
    );
    console.log(
      `  agent over hook.sock: ${out.agent_roundtrip_ms_median} ms, CheckStart ${out.agent_check_ms_median} ms, verification ${out.verification_ms_median} ms (quick ${out.verification_quick}; during the timed starts, each after a seal: ${out.start_checks_after_seal_quick})`,
    );
    console.log(
      `  baseline signatures verified: ${out.baseline_signature_verifications} in all (${out.seals} seals, each a new baseline); ${out.unchanged_checks_signature_verifications} in ${out.unchanged_checks} checks of an unchanged baseline`,
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
