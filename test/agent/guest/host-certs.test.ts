/**
 * The agent's host-certificate keeper against a real controller (real gRPC, mTLS, host CA) and a
 * stand-in guest channel that runs the agent's scripts with /bin/sh in a temp dir standing for the
 * guest's / (sshd -t and the reload replaced by markers): two guest round trips to install, none
 * while the certificates are fresh, renewal at 2/3 of their lifetime, a new signature when the
 * instance is renamed, sshd reloaded only when something changed. The real guest is in e2e.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControllerLink } from '../../../agent/src/controller-link.js';
import type { GuestChannel } from '../../../agent/src/guest/channel.js';
import { newGuest, type Guest } from '../../../agent/src/guest/guest.js';
import {
  HOST_CERT_DROP_IN,
  HostCertKeeper,
  installScript,
  parseHostKeys,
} from '../../../agent/src/guest/host-certs.js';
import {
  controllerClient,
  startTestAgent,
  unaryCall,
  type RawClient,
  type TestAgent,
} from '../../helpers/agent.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { keygenList, run, tempDir } from '../../controller/access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

const DAY = 86_400_000;
let c: TestController;
let agent: TestAgent;
let node: RawClient;
let link: ControllerLink;
let root = '';
let cleanup = async () => {};
const vm = { uuid: randomUUID(), name: 'certs-vm', ip: '10.9.9.9' };

/** Runs the agent's scripts with / moved to `root`; counts the round trips and reloads. */
class FakeGuest implements GuestChannel {
  readonly transport = 'guest-agent';
  calls = 0;
  reloads = 0;
  async exec(): Promise<never> {
    throw new Error('not used');
  }
  async sh(script: string): Promise<string> {
    this.calls++;
    const local = script
      .replaceAll("'/etc/ssh/", `'${root}/etc/ssh/`)
      .replace('in /etc/ssh/', `in ${root}/etc/ssh/`)
      .replace('/usr/sbin/sshd -t', 'true')
      .replace('systemctl reload-or-restart ssh.service', `echo x >> ${root}/reloads`);
    const r = await run('/bin/sh', ['-c', local]);
    if (r.code !== 0) throw new Error(`script failed: ${r.stderr}`);
    this.reloads = (await readFile(join(root, 'reloads'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean).length;
    return r.stdout.replaceAll(`${root}/etc/ssh/`, '/etc/ssh/');
  }
  async writeFile(): Promise<void> {}
  close(): void {}
}

async function report(name: string) {
  await unaryCall(node, 'reportInventory', {
    instances: [
      { serverId: vm.uuid, name, state: 'running', ipAddresses: [vm.ip], signed: false, isValid: 'unknown' },
    ],
    agentAddress: '',
    validationActive: false,
    libvirtUri: '',
  });
}

test.before(async () => {
  ({ dir: root, cleanup } = await tempDir('vmwarden-host-certs-'));
  await mkdir(join(root, 'etc/ssh/sshd_config.d'), { recursive: true });
  for (const t of ['ed25519', 'ecdsa']) {
    const r = await run('ssh-keygen', [
      '-q',
      '-t',
      t,
      '-N',
      '',
      '-f',
      join(root, `etc/ssh/ssh_host_${t}_key`),
    ]);
    assert.is(r.code, 0, r.stderr);
  }
  c = await startTestController();
  agent = await startTestAgent(c, { name: 'host-certs-node' });
  node = controllerClient(c, { cert: agent.credentials.cert, key: agent.credentials.key });
  link = new ControllerLink(agent.credentials);
  await report(vm.name);
});

test.after(async () => {
  link?.close();
  node?.close();
  await agent?.stop().catch(() => undefined);
  await c?.destroy().catch(() => undefined);
  await cleanup();
});

function setup() {
  let now = Date.now();
  const channel = new FakeGuest();
  const g: Guest = { ...newGuest('test:///default', { uuid: vm.uuid, name: vm.name }), channel };
  g.installed = 'trust installed';
  g.bootId = 'boot-1';
  const logs: string[] = [];
  const keeper = new HostCertKeeper(
    { addresses: async () => [vm.ip] },
    () => link,
    (msg, err) => logs.push(`${msg}${err ? `: ${(err as Error).message}` : ''}`),
    () => now,
  );
  return { g, channel, keeper, logs, advance: (ms: number) => (now += ms) };
}

const certOf = (t: string) => readFile(join(root, `etc/ssh/ssh_host_${t}_key-cert.pub`), 'utf8');

test('installs one certificate per host key and the drop-in, in two round trips; nothing more while fresh', async () => {
  const { g, channel, keeper, logs } = setup();
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 2, logs.join('\n'));
  assert.is(channel.reloads, 1);
  const dropIn = await readFile(join(root, HOST_CERT_DROP_IN.slice(1)), 'utf8');
  assert.match(dropIn, /^HostCertificate \/etc\/ssh\/ssh_host_ecdsa_key-cert.pub$/m);
  assert.match(dropIn, /^HostCertificate \/etc\/ssh\/ssh_host_ed25519_key-cert.pub$/m);
  const hostCa = (await c.call('GET', '/v1/access/host-ca-pubkeys')).body.public_keys[0];
  for (const t of ['ed25519', 'ecdsa']) {
    const listed = await keygenList(root, (await certOf(t)).trim());
    assert.match(listed, /host certificate/);
    assert.ok(listed.includes(hostCa.fingerprint), listed);
    assert.match(
      listed,
      new RegExp(`Principals: \\n\\s+${vm.name}\\n\\s+${vm.uuid}\\n\\s+10\\.9\\.9\\.9\\n`),
    );
  }
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 2);
});

test('renewed at 2/3 of the lifetime; again at the next boot', async () => {
  const { g, channel, keeper, advance } = setup();
  await keeper.keep(g, vm.name);
  const first = await certOf('ed25519');
  advance(19 * DAY);
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 2, 'not yet');
  advance(2 * DAY);
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 4);
  assert.is.not(await certOf('ed25519'), first);
  g.bootId = 'boot-2';
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 6);
});

test('a renamed instance gets certificates for its new name (checked once a minute)', async () => {
  const { g, channel, keeper, advance } = setup();
  await keeper.keep(g, vm.name);
  await report('renamed-vm');
  await keeper.keep(g, 'renamed-vm');
  assert.is(channel.calls, 2, 'not before a minute');
  advance(61_000);
  await keeper.keep(g, 'renamed-vm');
  assert.is(channel.calls, 4);
  assert.match(await keygenList(root, (await certOf('ecdsa')).trim()), /\n\s+renamed-vm\n/);
  advance(61_000);
  await keeper.keep(g, 'renamed-vm');
  assert.is(channel.calls, 4);
});

test('the install script reloads sshd only when a file changed', async () => {
  const channel = new FakeGuest();
  const files = [{ path: '/etc/ssh/sshd_config.d/test.conf', lines: ['# x', 'HostCertificate /etc/ssh/a'] }];
  assert.match(await channel.sh(installScript(files)), /reloaded/);
  const reloads = channel.reloads;
  assert.not.match(await channel.sh(installScript(files)), /reloaded/);
  assert.is(channel.reloads, reloads);
  files[0]!.lines.push('HostCertificate /etc/ssh/b');
  assert.match(await channel.sh(installScript(files)), /reloaded/);
  assert.is(channel.reloads, reloads + 1);
});

test('key lines or paths a shell would interpret are ignored', () => {
  const out = [
    '/etc/ssh/ssh_host_ed25519_key.pub',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx root@guest',
    "/etc/ssh/ssh_host_x'$(reboot)'_key.pub",
    'ssh-ed25519 AAAA',
    '/etc/ssh/ssh_host_rsa_key.pub',
    "ssh-rsa AAAA'$(reboot)'",
  ].join('\n');
  assert.equal(parseHostKeys(out), [
    { path: '/etc/ssh/ssh_host_ed25519_key.pub', line: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx' },
  ]);
});

test('a failure is logged and retried 15 s later, not at every poll', async () => {
  const { g, channel, keeper, logs, advance } = setup();
  g.serverId = randomUUID(); // not hosted by this node: the controller refuses
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 1);
  assert.match(logs.join('\n'), /host certificates not installed: .*not hosted by node/);
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 1);
  advance(16_000);
  await keeper.keep(g, vm.name);
  assert.is(channel.calls, 2);
});

test.run();
