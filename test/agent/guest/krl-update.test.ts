/**
 * The revocation fast path without a VM: the one script that installs a KRL and kills sessions, run
 * by the local /bin/sh on real files and real process trees; and the guest agent exchange it costs
 * (guest-exec with the KRL as input-data, then guest-exec-status at once) on a scripted guest agent.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
  const r = runSh(krlUpdateScript(target, krl, [], 'x1'), krl);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(target).equals(krl));
  assert.is(statSync(target).mode & 0o777, 0o644);
  assert.equal(readdirSync(dir), ['revoked_keys']);
});

test('a short or damaged copy is not installed: the old KRL stays, exit 1', () => {
  const dir = tempDir();
  const target = join(dir, 'revoked_keys');
  writeFileSync(target, 'old');
  const krl = Buffer.from('SSHKRL\n\0\0\0\x01 the new one');
  for (const received of [krl.subarray(0, 10), Buffer.concat([krl, Buffer.from('x')])]) {
    const r = runSh(krlUpdateScript(target, krl, [], 'x2'), received);
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
  assert.is(runSh(krlUpdateScript(target, krl, [], "a'b"), krl).status, 0);
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
    const r = runSh(krlUpdateScript(join(dir, 'revoked_keys'), krl, [pid, 999_999_999], 's'), krl);
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
    if (execute === 'guest-exec') return { pid: 77 } as T;
    return this.statuses.shift() as T;
  }
}

test('a push costs one guest-exec (KRL as base64 input-data to sh -c) and status polls from at once', async () => {
  const agent = new ScriptedAgent([
    { exited: false },
    { exited: true, exitcode: 0, 'out-data': '', 'err-data': '' },
  ]);
  const krl = Buffer.from([0, 1, 2, 250, 251, 252]);
  const r = await new TrustInstaller(agent).updateKrl(krl, [4242]);
  assert.is(r.roundTrips, 3);
  assert.equal(
    agent.sent.map((c) => c.execute),
    ['guest-exec', 'guest-exec-status', 'guest-exec-status'],
  );
  const exec = agent.sent[0]!.args;
  assert.is(exec.path, '/bin/sh');
  assert.is(exec.arg[0], '-c');
  assert.is(exec['capture-output'], true);
  assert.ok(Buffer.from(exec['input-data'], 'base64').equals(krl));
  const script: string = exec.arg[1];
  assert.match(script, /mv -f "\$t" '\/etc\/ssh\/vmwarden\/revoked_keys'/);
  assert.match(script, /for p in 4242; do/);
  assert.match(script, new RegExp(createHash('sha256').update(krl).digest('hex')));
  assert.equal(agent.sent[1]!.args, { pid: 77 });
});

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
