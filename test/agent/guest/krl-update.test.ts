/**
 * The scripts of a revocation without a VM, run by the local /bin/sh on real files and real process
 * trees: the slow path that installs a KRL given on stdin, and the kills. The guest agent exchange
 * (staging file, swap) runs against a real qemu-ga in krl-staging.test.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestAgent } from '../../../agent/src/guest/guest-agent.js';
import { killSessions, krlUpdateScript } from '../../../agent/src/guest/krl-update.js';
import { TrustInstaller } from '../../../agent/src/guest/trust.js';
import { waitFor } from '../../helpers/wait.js';

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'vmwarden-krl-'));
  dirs.push(d);
  return d;
};
test.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const runSh = (script: string, input: Buffer) =>
  spawnSync('/bin/sh', ['-c', script], { input, encoding: 'utf8', timeout: 10_000 });

test('installs the KRL atomically: checked copy renamed over the old one, mode 0644, no leftover', () => {
  const dir = tempDir();
  const target = join(dir, 'revoked_keys');
  writeFileSync(target, 'old', { mode: 0o600 });
  const krl = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
  const r = runSh(krlUpdateScript(target, join(dir, 'next'), krl, [], 'x1'), krl);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(target).equals(krl));
  assert.is(statSync(target).mode & 0o777, 0o644);
  assert.equal(readdirSync(dir).sort(), ['next', 'revoked_keys']);
  assert.is(statSync(join(dir, 'next')).size, 0, 'an empty staging file is left for the next update');
  assert.is(statSync(join(dir, 'next')).mode & 0o777, 0o644);
});

test('a short or damaged copy is not installed: the old KRL stays, exit 1', () => {
  const dir = tempDir();
  const target = join(dir, 'revoked_keys');
  writeFileSync(target, 'old');
  const krl = Buffer.from('SSHKRL\n\0\0\0\x01 the new one');
  for (const received of [krl.subarray(0, 10), Buffer.concat([krl, Buffer.from('x')])]) {
    const r = runSh(krlUpdateScript(target, join(dir, 'next'), krl, [], 'x2'), received);
    assert.is(r.status, 1);
    assert.match(r.stderr, /KRL not installed/);
    assert.is(readFileSync(target, 'utf8'), 'old');
    assert.equal(readdirSync(dir), ['revoked_keys']);
  }
});

test('a path with quotes is one word; pids are integers', () => {
  const dir = tempDir();
  const target = join(dir, "it's revoked");
  const krl = Buffer.from('k');
  assert.is(runSh(krlUpdateScript(target, join(dir, "n'x"), krl, [], "a'b"), krl).status, 0);
  assert.is(readFileSync(target, 'utf8'), 'k');
  assert.not.match(killSessions([12.7, -3, 1]), /-3|12\.7|\b1\b/);
  assert.is(killSessions([]), 'true');
});

const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
const childrenOf = (pid: number) =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);

test('kills a session: the logged pid, its children and theirs, in the same script as the KRL', async () => {
  // Like sshd: a monitor, its child holding the connection, and the session's command below it.
  const monitor = spawn('/bin/sh', ['-c', 'sh -c "sleep 300; true" & sleep 300 & wait'], { stdio: 'ignore' });
  const bystander = spawn('sleep', ['300'], { stdio: 'ignore' });
  try {
    const pid = monitor.pid!;
    const kids = await waitFor('the session tree', async () => {
      const k = childrenOf(pid);
      const grand = k.flatMap(childrenOf);
      return k.length === 2 && grand.length === 1 && [...k, ...grand];
    });
    const dir = tempDir();
    const krl = Buffer.from('krl');
    const r = runSh(
      krlUpdateScript(join(dir, 'revoked_keys'), join(dir, 'next'), krl, [pid, 999_999_999], 's'),
      krl,
    );
    assert.is(r.status, 0, r.stderr);
    await waitFor('monitor gone', async () => !alive(pid));
    for (const k of kids) await waitFor(`process ${k} gone`, async () => !alive(k));
    assert.ok(alive(bystander.pid!), 'other processes live on');
  } finally {
    monitor.kill('SIGKILL');
    bystander.kill('SIGKILL');
  }
});

/** A guest agent whose answers are scripted: the commands it received are recorded. */
class ScriptedAgent extends GuestAgent {
  readonly sent: Array<{ execute: string; args?: any }> = [];
  constructor(private readonly statuses: Array<Record<string, unknown>>) {
    super('test:///default', 'guest');
  }
  override async command<T>(execute: string, args?: object): Promise<T> {
    this.roundTrips++;
    this.sent.push({ execute, args });
    if (execute === 'guest-file-open') throw new Error("failed to open file 'x' (mode: 'r+'): No such file");
    if (execute === 'guest-exec') return { pid: 77 } as T;
    return this.statuses.shift() as T;
  }
}

test('a failing script is an error carrying its stderr', async () => {
  const agent = new ScriptedAgent([
    { exited: true, exitcode: 1, 'err-data': Buffer.from('KRL not installed: no space').toString('base64') },
  ]);
  try {
    await new TrustInstaller(agent).updateKrl(Buffer.from('k'));
    assert.unreachable();
  } catch (err) {
    assert.match(String(err), /KRL update failed in the guest: KRL not installed: no space/);
  }
});

test.run();
