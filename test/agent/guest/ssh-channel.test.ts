/**
 * The SSH fallback into guests (ssh2), against a real OpenSSH server on loopback: commands with
 * stdin, exit codes and signals, exact file contents, one reused connection reopened after a drop,
 * host keys pinned per instance, and the refusals (key file readable by others, wrong key, no address).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SshChannel, SshUnreachableError, type SshTarget } from '../../../agent/src/guest/ssh-channel.js';
import { HostKeyMismatchError, HostKeyPins } from '../../../agent/src/guest/host-keys.js';
import { sshFingerprint } from '../../../lib/ssh/fingerprint.js';
import { startSshd, type Sshd } from '../../helpers/sshd.js';
import { makeUserKey, tempDir, type UserKeyFiles } from '../../controller/access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const ID = '7b0c2a52-1d53-4c77-9d0e-5b1f1f0c0a01';
let dir = '';
let cleanup = async () => {};
let sshd: Sshd;
let other: Sshd;
let key: UserKeyFiles;
let stranger: UserKeyFiles;
const channels: SshChannel[] = [];

async function startServer(): Promise<Sshd> {
  return startSshd({
    trustedCaKeysFile: join(dir, 'no-cas'),
    authorizedPrincipals: [],
    authorizedKeysFile: join(dir, 'authorized_keys'),
  });
}

function channel(target: Partial<SshTarget> & { port: number }, opts: { id?: string; pins?: string } = {}) {
  const ch = new SshChannel(
    opts.id ?? ID,
    { keyFile: key.keyFile, address: '127.0.0.1', ...target },
    async () => [],
    new HostKeyPins(join(dir, opts.pins ?? 'pins.json')),
    3000,
  );
  channels.push(ch);
  return ch;
}

const logins = (s: Sshd) => (s.logs.match(/Accepted publickey for root/g) ?? []).length;
const hostKeyFingerprint = (s: Sshd) =>
  sshFingerprint(Buffer.from(readFileSync(join(s.dir, 'host_ed25519.pub'), 'utf8').split(' ')[1]!, 'base64'));

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-ssh-channel-'));
  writeFileSync(join(dir, 'no-cas'), '');
  key = await makeUserKey(dir, 'provisioning', 'ed25519');
  stranger = await makeUserKey(dir, 'stranger', 'ed25519');
  writeFileSync(join(dir, 'authorized_keys'), key.pub + '\n');
  sshd = await startServer();
  other = await startServer();
});

test.after(async () => {
  for (const ch of channels) ch.close();
  await sshd?.stop();
  await other?.stop();
  await cleanup();
});

test('runs commands as root with stdin, and reports exit codes and signals', async () => {
  const ch = channel({ port: sshd.port });
  assert.is(ch.transport, 'ssh');
  const who = await ch.exec('/usr/bin/id', ['-u']);
  assert.equal(who, { exitCode: 0, stdout: '0\n', stderr: '' });
  const echo = await ch.exec('/bin/sh', ['-c', 'tr a-z A-Z; echo oops >&2; exit 3'], {
    input: Buffer.from('hello'),
  });
  assert.equal(echo, { exitCode: 3, stdout: 'HELLO', stderr: 'oops\n' });
  // Arguments reach the program unchanged, whatever they contain.
  const args = await ch.exec('/usr/bin/printf', ['%s|', "it's", 'a b', '$HOME', '"q"']);
  assert.is(args.stdout, `it's|a b|$HOME|"q"|`);
  const killed = await ch.exec('/bin/sh', ['-c', 'kill -TERM $$']);
  assert.is(killed.exitCode, 128 + 15);
  assert.is(await ch.sh('echo fine'), 'fine\n');
  try {
    await ch.sh('echo broken >&2; exit 4');
    assert.unreachable('a failing script must throw');
  } catch (err) {
    assert.match((err as Error).message, /guest command failed \(4\): broken/);
  }
});

test('writes files byte for byte', async () => {
  const ch = channel({ port: sshd.port });
  const bytes = Buffer.alloc(300_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  const file = join(dir, 'written.bin');
  await ch.writeFile(file, bytes);
  assert.ok(readFileSync(file).equals(bytes));
  await ch.writeFile(file, Buffer.alloc(0));
  assert.is(readFileSync(file).length, 0);
  try {
    await ch.writeFile(join(dir, 'no/such/dir/f'), Buffer.from('x'));
    assert.unreachable('writing into a missing directory must throw');
  } catch (err) {
    assert.match((err as Error).message, /writing .*no\/such\/dir\/f over ssh failed/);
  }
});

test('one connection serves every command, and a dropped one is opened again', async () => {
  const ch = channel({ port: sshd.port });
  const before = logins(sshd);
  await Promise.all([1, 2, 3, 4, 5].map((i) => ch.sh(`echo ${i}`)));
  await ch.sh('true');
  assert.is(logins(sshd) - before, 1);
  // Kill our own connection's sshd: this command never completes normally.
  const dropped = await ch.exec('/bin/sh', ['-c', 'kill -KILL $PPID; sleep 5']).then(
    (r) => r,
    (err: Error) => err,
  );
  if (dropped instanceof Error) assert.instance(dropped, SshUnreachableError);
  else assert.is.not(dropped.exitCode, 0);
  assert.is(await ch.sh('echo again'), 'again\n');
  assert.is(logins(sshd) - before, 2);
});

test('host keys: pinned at first use, a different key refused; a configured key wins', async () => {
  const pins = 'tofu.json';
  await channel({ port: sshd.port }, { pins }).sh('true');
  const pinned = JSON.parse(readFileSync(join(dir, pins), 'utf8'));
  assert.equal(pinned, { [ID]: hostKeyFingerprint(sshd) });
  // Same instance answering with another host key (a different sshd): refused, pin kept.
  try {
    await channel({ port: other.port }, { pins }).sh('true');
    assert.unreachable('a changed host key must be refused');
  } catch (err) {
    assert.instance(err, HostKeyMismatchError);
    assert.ok((err as Error).message.includes(`instance ${ID} is ${hostKeyFingerprint(other)}`), String(err));
    assert.match((err as Error).message, /expected .* \(pinned in/);
  }
  assert.equal(JSON.parse(readFileSync(join(dir, pins), 'utf8')), pinned);
  // Another instance is pinned separately.
  await channel({ port: other.port }, { pins, id: 'another' }).sh('true');
  // A configured fingerprint is the only one accepted.
  await channel({ port: other.port, hostKey: hostKeyFingerprint(other) }, { pins: 'none.json' }).sh('true');
  try {
    await channel({ port: sshd.port, hostKey: hostKeyFingerprint(other) }, { pins: 'none.json' }).sh('true');
    assert.unreachable('a host key other than the configured one must be refused');
  } catch (err) {
    assert.instance(err, HostKeyMismatchError);
    assert.match((err as Error).message, /\(configured hostKey\)/);
  }
});

test('refusals: a key file others can read, a key root does not accept, no address, a hung command', async () => {
  const loose = join(dir, 'loose');
  writeFileSync(loose, readFileSync(key.keyFile));
  chmodSync(loose, 0o644);
  try {
    await channel({ port: sshd.port, keyFile: loose }).sh('true');
    assert.unreachable('a world-readable key must be refused');
  } catch (err) {
    assert.match((err as Error).message, /refusing private key .*loose: mode 0644/);
  }
  try {
    await channel({ port: sshd.port, keyFile: stranger.keyFile }).sh('true');
    assert.unreachable('an unknown key must not log in');
  } catch (err) {
    assert.instance(err, SshUnreachableError);
    assert.match(
      (err as Error).message,
      /ssh root@127\.0\.0\.1 port \d+: All configured authentication methods failed/,
    );
  }
  try {
    await channel({ port: sshd.port, address: undefined }).sh('true');
    assert.unreachable('no address must be refused');
  } catch (err) {
    assert.instance(err, SshUnreachableError);
    assert.match((err as Error).message, /no address known for instance .*: set address/);
  }
  const ch = channel({ port: sshd.port });
  const t0 = Date.now();
  try {
    await ch.exec('/bin/sleep', ['60'], { timeoutMs: 300 });
    assert.unreachable('a command past its timeout must fail');
  } catch (err) {
    assert.match((err as Error).message, /\/bin\/sleep did not finish in the guest/);
  }
  // A timeout that does not work waits the full 60 s; the bound leaves room for a slow machine.
  assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
  assert.is(await ch.sh('echo still usable'), 'still usable\n');
});

test.run();
