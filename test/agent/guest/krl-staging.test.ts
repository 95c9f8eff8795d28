/**
 * A KRL update as the guest agent carries it, against the real qemu-ga (Debian's, on a host socket:
 * test/helpers/qemu-ga.ts) on temporary files: the first update goes through the checked stdin copy
 * and leaves the staging file, the next ones write the staging file in place (no program) and run
 * one shell that renames it; the staging file is never created by the guest agent (it would be
 * world-writable); concurrent updates end with the last KRL.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrustInstaller } from '../../../agent/src/guest/trust.js';
import { startHostQemuGa, type HostQemuGa } from '../../helpers/qemu-ga.js';
import { waitFor } from '../../helpers/wait.js';

let qga: HostQemuGa;
test.before(async () => {
  qga = await startHostQemuGa();
});
test.after(async () => qga?.stop());

const krlOf = (n: number, size = 300) =>
  Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + n) % 256));

test('first update through stdin leaves a 0644 staging file; the next ones write it in place and rename it', async () => {
  const paths = { krl: join(qga.dir, 'revoked_keys'), staging: join(qga.dir, 'revoked_keys.next') };
  const installer = new TrustInstaller(qga.agent, paths);
  const first = await installer.updateKrl(krlOf(1));
  assert.is(first.staged, false);
  assert.ok(readFileSync(paths.krl).equals(krlOf(1)));
  assert.is(statSync(paths.staging).size, 0);
  assert.is(statSync(paths.staging).mode & 0o777, 0o644);
  // Several guest-file-write calls (48 KiB each) for a large KRL.
  for (const krl of [krlOf(2), krlOf(3, 150_000), krlOf(4, 10)]) {
    const r = await installer.updateKrl(krl);
    assert.is(r.staged, true);
    assert.ok(readFileSync(paths.krl).equals(krl));
    assert.is(statSync(paths.krl).mode & 0o777, 0o644, 'the KRL keeps the staging file mode, not 0666');
    assert.is(statSync(paths.staging).size, 0);
    // open, write(s), seek, close, then guest-exec and at least one guest-exec-status.
    assert.ok(r.roundTrips >= 4 + Math.ceil(krl.length / (48 * 1024)) + 1, String(r.roundTrips));
  }
});

test('the guest agent never creates the staging file, and stale longer content is not installed', async () => {
  const missing = join(qga.dir, 'missing.next');
  assert.equal(await qga.agent.overwriteFile(missing, Buffer.from('krl')), { written: false, roundTrips: 1 });
  assert.not.ok(existsSync(missing));
  const stale = join(qga.dir, 'stale.next');
  writeFileSync(stale, 'an older, longer content', { mode: 0o644 });
  const r = await qga.agent.overwriteFile(stale, Buffer.from('krl'));
  assert.is(r.written, false);
  // The update then falls back to the checked stdin copy and truncates the staging file.
  const paths = { krl: join(qga.dir, 'stale_krl'), staging: stale };
  const u = await new TrustInstaller(qga.agent, paths).updateKrl(Buffer.from('krl'));
  assert.is(u.staged, false);
  assert.is(readFileSync(paths.krl, 'utf8'), 'krl');
  assert.is(statSync(stale).size, 0);
});

test('concurrent updates are taken one at a time and end with the last KRL', async () => {
  const paths = { krl: join(qga.dir, 'c_krl'), staging: join(qga.dir, 'c_krl.next') };
  const installer = new TrustInstaller(qga.agent, paths);
  await installer.updateKrl(krlOf(0));
  const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => installer.updateKrl(krlOf(n, 200 + n))));
  assert.ok(results.every((r) => r.staged));
  assert.ok(readFileSync(paths.krl).equals(krlOf(6, 206)));
  assert.is(statSync(paths.staging).size, 0);
});

test('the staged swap kills the given sessions (pid, children, grandchildren) and installs the KRL', async () => {
  const paths = { krl: join(qga.dir, 'k_krl'), staging: join(qga.dir, 'k_krl.next') };
  const installer = new TrustInstaller(qga.agent, paths);
  await installer.updateKrl(krlOf(0));
  const monitor = spawn('/bin/sh', ['-c', 'sh -c "sleep 300; true" & sleep 300 & wait'], { stdio: 'ignore' });
  const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
  const exited = (p: ReturnType<typeof spawn>) => p.exitCode !== null || p.signalCode !== null;
  try {
    await waitFor('the session tree', () => {
      const kids = readFileSync(`/proc/${monitor.pid}/task/${monitor.pid}/children`, 'utf8')
        .trim()
        .split(/\s+/);
      return kids.length === 2;
    });
    const r = await installer.updateKrl(krlOf(9), [monitor.pid!]);
    assert.is(r.staged, true);
    assert.ok(readFileSync(paths.krl).equals(krlOf(9)));
    await waitFor('session killed', () => exited(monitor));
    assert.is(monitor.signalCode, 'SIGKILL');
    assert.not.ok(exited(bystander), 'other processes live on');
  } finally {
    monitor.kill('SIGKILL');
    bystander.kill('SIGKILL');
  }
});

test.run();
