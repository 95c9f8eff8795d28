/**
 * End to end inside a real guest: the controller and an agent (in-process, qemu:///system) and a
 * Debian guest built by scripts/build-test-guest.sh, booted once for the whole file (TCG: slow).
 * The agent installs the fleet's trust through the qemu guest agent; users log in with the OpenSSH
 * client and the certificates POST /v1/access/request returns; sessions are observed in the guest's
 * journal; revocation ends live sessions and refuses new logins.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectHypervisor, type Hypervisor } from '../../agent/src/libvirt/hypervisor.js';
import { GuestAgent } from '../../agent/src/guest/guest-agent.js';
import { startTestController, type TestController } from '../helpers/controller.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { ensureLibvirtd, QEMU_URI } from '../helpers/libvirtd.js';
import {
  bootGuest,
  buildGuestImage,
  guestSshArgs,
  guestSshOpen,
  startBareDomain,
  type TestGuest,
} from '../helpers/guest.js';
import { run } from '../helpers/sshd.js';
import { createInstance, grant, makeUserKey, tempDir, watchdog, type UserKeyFiles } from '../access/util.js';

watchdog(1500);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let c: TestController;
let hv: Hypervisor;
let agent: TestAgent;
let guest: TestGuest;
let bare: Awaited<ReturnType<typeof startBareDomain>> | undefined;
let ga: GuestAgent;
let dir = '';
let cleanup = async () => {};
let user: { id: string; token: string };
let key: UserKeyFiles;
let n = 0;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

const sshArgs = (certFile: string, command: string) => guestSshArgs(guest.ip, key.keyFile, certFile, command);

const ssh = (certFile: string, command = 'true') =>
  run('ssh', sshArgs(certFile, command), { timeoutMs: 30_000 });

/** A login that stays open (`sleep`). */
const sshOpen = (certFile: string, seconds: number) =>
  guestSshOpen(sshArgs(certFile, `echo in; sleep ${seconds}`));

/** POST /v1/access/request as the user; the certificate written next to the key. */
async function certFor(sandboxId: string) {
  const r = await c.call('POST', '/v1/access/request', {
    token: user.token,
    body: { sandbox_id: sandboxId, public_key: key.pub, ttl_minutes: 10 },
  });
  assert.is(r.status, 200, r.text);
  const certFile = join(dir, `c${n++}-cert.pub`);
  await writeFile(certFile, r.body.certificate + '\n');
  return { id: r.body.certificate_id as string, certFile };
}

async function sessionsOf(certificateId: string) {
  const r = await c.call('GET', `/v1/access/sessions?certificate_id=${certificateId}`, {
    token: await c.adminToken(),
  });
  assert.is(r.status, 200, r.text);
  return r.body.sessions as Array<Record<string, any>>;
}

async function trust() {
  const r = await c.call('GET', `/v1/instances/${guest.uuid}/trust`, { token: await c.adminToken() });
  assert.is(r.status, 200, r.text);
  return r.body;
}

async function caFingerprints(): Promise<string[]> {
  const r = await c.call('GET', '/v1/access/ca-pubkeys');
  assert.is(r.status, 200, r.text);
  return r.body.public_keys.map((k: { fingerprint: string }) => k.fingerprint);
}

test.before(async () => {
  try {
    await setup();
  } catch (err) {
    // uvu does not show errors of hooks.
    process.stderr.write(`setup failed: ${(err as Error).stack ?? err}\n`);
    throw err;
  }
});

async function setup() {
  const t0 = Date.now();
  await ensureLibvirtd();
  const image = await buildGuestImage();
  ({ dir, cleanup } = await tempDir('vmwarden-guest-e2e-'));
  key = await makeUserKey(dir, 'user', 'ed25519');
  c = await startTestController();
  hv = await connectHypervisor(QEMU_URI);
  // Only our guest: other tests' agents and guests share this libvirtd.
  agent = await startTestAgent(c, {
    hypervisor: hv,
    guests: { pollMs: 1000, only: (uuid) => uuid === guest?.uuid || uuid === bare?.uuid },
  });
  guest = await bootGuest(image);
  await guest.start();
  await guest.waitSsh();
  process.stdout.write(`  guest ${guest.name} answers SSH at ${guest.ip} after ${Date.now() - t0} ms\n`);
  ga = new GuestAgent(QEMU_URI, guest.uuid);
  await agent.agent.report();
  user = await c.createUser('guest-user');
  await grant(c, guest.uuid, user.id);
}

test.after(async () => {
  await agent?.stop().catch(() => undefined);
  await guest?.destroy().catch(() => undefined);
  await bare?.destroy().catch(() => undefined);
  await hv?.close().catch(() => undefined);
  await c?.destroy().catch(() => undefined);
  await cleanup();
});

test('the agent installs the fleet trust in the guest and reports it', async () => {
  const t = await until('trust installed', async () => {
    const t = await trust();
    return t.state === 'installed' && t;
  });
  assert.equal(t.ca_fingerprints, await caFingerprints());
  assert.is(t.login_user, 'vmwarden');
  assert.ok(t.last_success);
  assert.is(t.last_error, null);
  const config = await ga.sh(
    'sshd -T | grep -Ei "^(trustedusercakeys|revokedkeys|authorizedprincipalsfile|exposeauthinfo|loglevel) "',
  );
  assert.match(config, /trustedusercakeys \/etc\/ssh\/vmwarden\/trusted_user_ca_keys/);
  assert.match(config, /revokedkeys \/etc\/ssh\/vmwarden\/revoked_keys/);
  assert.match(config, /exposeauthinfo yes/);
  assert.match(config, /loglevel VERBOSE/);
  assert.is((await ga.sh('cat /etc/ssh/vmwarden/principals/vmwarden')).trim(), `vm-${guest.uuid}`);
  assert.is(
    (
      await ga.sh('stat -c %a /etc/ssh/vmwarden/trusted_user_ca_keys /etc/ssh/sshd_config.d/vmwarden.conf')
    ).trim(),
    '644\n644',
  );
});

test('a running instance without a guest agent is reported as such', async () => {
  bare = await startBareDomain();
  await agent.agent.report();
  const t = await until('no-guest-agent status', async () => {
    const r = await c.call('GET', `/v1/instances/${bare!.uuid}/trust`, { token: await c.adminToken() });
    return r.body.state === 'no-guest-agent' && r.body;
  });
  assert.match(t.last_error, /no guest agent/);
  assert.is(t.last_success, null);
  await bare.destroy();
  bare = undefined;
});

test('a certificate login is observed as a session, and logout ends it', async () => {
  const cert = await certFor(guest.uuid);
  const login = sshOpen(cert.certFile, 4);
  const started = await until('session start', async () => {
    const s = await sessionsOf(cert.id);
    return s.length === 1 && s[0];
  });
  assert.is(started.status, 'ACTIVE');
  assert.is(started.sandbox_id, guest.uuid);
  assert.is(started.user_id, user.id);
  assert.ok(started.source_ip);
  const exit = await login.exited;
  assert.is(exit.code, 0, login.output());
  assert.match(login.output(), /in/);
  const ended = await until('session end', async () => {
    const s = (await sessionsOf(cert.id))[0];
    return s?.status !== 'ACTIVE' && s;
  });
  assert.is(ended.end_reason, 'logout');
  assert.ok(ended.ended_at);
  assert.ok(ended.duration_seconds >= 3, `duration ${ended.duration_seconds}`);
});

test('a certificate for another instance is refused', async () => {
  const other = await createInstance(c);
  await grant(c, other.serverId, user.id);
  const cert = await certFor(other.serverId);
  const r = await ssh(cert.certFile, 'echo should-not-run');
  assert.is(r.code, 255, r.stdout + r.stderr);
  assert.match(r.stderr, /Permission denied/);
  const mine = await certFor(guest.uuid);
  const ok = await ssh(mine.certFile, 'echo fine');
  assert.is(ok.code, 0, ok.stderr);
  assert.is(ok.stdout.trim(), 'fine');
});

test('revocation ends the live session and refuses new logins within 2 s', async () => {
  const cert = await certFor(guest.uuid);
  const login = sshOpen(cert.certFile, 120);
  await until('session start', async () => (await sessionsOf(cert.id)).length === 1);
  const pushes = c.controller.services.guestTrust.pushes;
  const t0 = Date.now();
  const del = await c.call('DELETE', `/v1/access/certificate/${cert.id}`, { token: await c.adminToken() });
  assert.is(del.status, 200, del.text);
  // (a) the KRL is in the guest (and the session killed) when the agent answers the push.
  const push = await until('push done', async () => {
    const p = pushes.get(agent.nodeId);
    return p && p.doneAt > t0 && p;
  });
  assert.is(push.error, undefined);
  assert.is(push.sessionsEnded, 1);
  const appliedMs = push.doneAt - t0;
  // (b) a login attempted from then on is refused by sshd.
  const attempt = await ssh(cert.certFile, 'echo should-not-run');
  const refusedMs = Date.now() - t0;
  assert.is(attempt.code, 255, attempt.stdout + attempt.stderr);
  // (c) the live session's client sees its connection closed.
  const exit = await Promise.race([login.exited, sleep(30_000).then(() => undefined)]);
  if (!exit) login.child.kill();
  const endedMs = exit ? exit.at - t0 : -1;
  process.stdout.write(
    `  revocation: KRL applied + session killed in the guest after ${appliedMs} ms; ` +
      `a login attempted then refused by ${refusedMs} ms (ssh round trip included); ` +
      `live ssh client disconnected after ${endedMs} ms\n`,
  );
  assert.ok(exit, 'the live session was not ended within 30 s');
  assert.ok(appliedMs < 2000, `KRL applied after ${appliedMs} ms`);
  assert.ok(endedMs < 2000, `session ended after ${endedMs} ms`);
  const s = (await sessionsOf(cert.id))[0]!;
  assert.is.not(s.status, 'ACTIVE');
});

test('CA rotation: the new key is installed and its certificates work', async () => {
  const r = await c.call('POST', '/v1/access/ca/rotate', { token: await c.adminToken(), body: {} });
  assert.ok(r.status === 200 || r.status === 201, r.text);
  const expected = await caFingerprints();
  assert.is(expected.length, 2);
  await until(
    'new CA installed',
    async () => {
      const t = await trust();
      return JSON.stringify(t.ca_fingerprints) === JSON.stringify(expected);
    },
    30_000,
  );
  const cert = await certFor(guest.uuid);
  const ok = await ssh(cert.certFile, 'echo rotated');
  assert.is(ok.code, 0, ok.stderr);
  assert.is(ok.stdout.trim(), 'rotated');
});

test('after a guest reboot the trust is installed again', async () => {
  const before = (await trust()).last_success as string;
  // As if the guest came back from a pristine image: our files are gone.
  await ga.sh('rm -rf /etc/ssh/vmwarden /etc/ssh/sshd_config.d/vmwarden.conf; sync');
  const t0 = Date.now();
  await guest.reboot();
  await until(
    'trust reinstalled after reboot',
    async () => {
      const t = await trust();
      return t.state === 'installed' && t.last_success > before && Date.parse(t.last_success) > t0 && t;
    },
    240_000,
  );
  await guest.waitSsh();
  const cert = await certFor(guest.uuid);
  const ok = await until('login after reboot', async () => {
    const r = await ssh(cert.certFile, 'echo back');
    return r.code === 0 && r;
  });
  assert.is(ok.stdout.trim(), 'back');
  process.stdout.write(`  reboot: trust reinstalled and login ok after ${Date.now() - t0} ms\n`);
});

test.run();
