/**
 * End to end with a real sshd: TrustedUserCAKeys from GET /v1/access/ca-pubkeys, AuthorizedPrincipalsFile
 * with vm-{uuid}, RevokedKeys from GET /v1/access/krl; logins with the OpenSSH client and the
 * certificates POST /v1/access/request returns.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../../../lib/platform/clock.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { ACCESS, assertContract } from '../../helpers/contract.js';
import { sshLogin, startSshd, type Sshd } from '../../helpers/sshd.js';
import {
  assertOk,
  createInstance,
  issue,
  keygenList,
  makeUserKey,
  schema,
  tempDir,
  type TestInstance,
  type UserKeyFiles,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(240);

const clock = new ManualClock();
let c: TestController;
/** Same fleet principal, other policies: force-command + source-address caller; a foreign source-address. */
let forced: TestController;
let elsewhere: TestController;
let dir = '';
let cleanup = async () => {};
let sshd: Sshd | undefined;
let admin = '';
let A: TestInstance;
let B: TestInstance;
let key: UserKeyFiles;
let trustedFile = '';
let krlFile = '';
let n = 0;

async function atomicWrite(file: string, data: string | Buffer) {
  await writeFile(`${file}.tmp`, data);
  await rename(`${file}.tmp`, file);
}

/** What an agent does: TrustedUserCAKeys from ca-pubkeys (of every controller used here). */
async function syncTrustedKeys(): Promise<string[]> {
  let text = '';
  const fingerprints: string[] = [];
  for (const ctl of [c, forced, elsewhere]) {
    const r = await ctl.call('GET', '/v1/access/ca-pubkeys');
    assert.is(r.status, 200, r.text);
    text += r.body.trusted_user_ca_keys;
    if (ctl === c)
      fingerprints.push(...r.body.public_keys.map((k: { fingerprint: string }) => k.fingerprint));
  }
  await atomicWrite(trustedFile, text);
  return fingerprints;
}

/** RevokedKeys from GET /v1/access/krl. */
async function syncKrl(): Promise<void> {
  const res = await fetch(`${c.httpBase}/v1/access/krl`, { headers: { 'zt-session': admin } });
  assert.is(res.status, 200);
  await atomicWrite(krlFile, Buffer.from(await res.arrayBuffer()));
}

async function certFor(ctl: TestController, vm: TestInstance, extra: Record<string, unknown> = {}) {
  const got = await issue(ctl, await ctl.adminToken(), {
    sandbox_id: vm.serverId,
    public_key: key.pub,
    ...extra,
  });
  const certFile = join(dir, `c${n++}-cert.pub`);
  await writeFile(certFile, got.certificate + '\n');
  return { ...got, certFile };
}

const login = (certFile: string) =>
  sshLogin({ port: sshd!.port, keyFile: key.keyFile, certFile, command: 'echo logged-in' });

function assertAccepted(r: { code: number | null; stdout: string; stderr: string }, out = 'logged-in') {
  assert.is(r.code, 0, `login refused: ${r.stderr}\n--- sshd:\n${sshd?.logs.slice(-3000)}`);
  assert.is(r.stdout.trim(), out);
}

function assertRefused(r: { code: number | null; stdout: string; stderr: string }) {
  assert.is(r.code, 255, `expected refusal, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /Permission denied/);
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-access-sshd-'));
  key = await makeUserKey(dir, 'id_user', 'ed25519');
  c = await startTestController({ sessionIdleSeconds: 86_400 }, clock);
  forced = await startTestController({
    certForceCommand: 'echo forced-command',
    certSourceAddress: 'caller',
  });
  elsewhere = await startTestController({ certSourceAddress: '192.0.2.0/24' });
  admin = await c.adminToken();
  A = await createInstance(c);
  B = await createInstance(c);
  for (const ctl of [forced, elsewhere]) {
    const r = await ctl.call('POST', '/v1/instances', {
      token: await ctl.adminToken(),
      body: { server_id: A.serverId, instance_name: A.name, login_user: 'debian', state: 'running' },
    });
    assert.is(r.status, 201, r.text);
  }
  trustedFile = join(dir, 'trusted_user_ca_keys');
  krlFile = join(dir, 'revoked.krl');
  await syncTrustedKeys();
  await syncKrl();
  sshd = await startSshd({
    trustedCaKeysFile: trustedFile,
    authorizedPrincipals: [A.principal],
    revokedKeysFile: krlFile,
  });
});

test.after(async () => {
  if (process.env.SSHD_LOGS) console.log(sshd?.logs);
  await sshd?.stop();
  for (const ctl of [c, forced, elsewhere]) await ctl?.destroy();
  await cleanup();
});

test('our certificate for this instance opens it; sshd logs its serial and key id', async () => {
  const cert = await certFor(c, A);
  assertAccepted(await login(cert.certFile));
  assert.ok(sshd!.logs.includes(`serial ${cert.serial}`), sshd!.logs.slice(-2000));
  assert.ok(sshd!.logs.includes(`ID ${cert.record.body.identity}`), sshd!.logs.slice(-2000));
});

test('a certificate for another instance is refused', async () => {
  const cert = await certFor(c, B);
  const mark = sshd!.logs.length;
  assertRefused(await login(cert.certFile));
  assert.match(await sshd!.logsSince(mark), /Certificate does not contain an authorized principal/);
});

test('revoked through the API → refused once the KRL is fetched; others still open', async () => {
  const revoked = await certFor(c, A);
  const kept = await certFor(c, A);
  assertAccepted(await login(revoked.certFile));
  assertOk(await c.call('DELETE', `/v1/access/certificate/${revoked.id}`, { token: admin }));
  await syncKrl();
  const mark = sshd!.logs.length;
  assertRefused(await login(revoked.certFile));
  assert.match(await sshd!.logsSince(mark), /revoked/);
  assertAccepted(await login(kept.certFile));
});

test('expired (issued with the clock in the past) → refused', async () => {
  clock.advance(-2 * 3600_000);
  const expired = await certFor(c, A, { ttl_minutes: 10 });
  clock.advance(2 * 3600_000);
  const rec = await c.call('GET', `/v1/access/certificate/${expired.id}`, { token: admin });
  assert.is(rec.body.status, 'EXPIRED');
  assert.is(rec.body.is_expired, true);
  const mark = sshd!.logs.length;
  assertRefused(await login(expired.certFile));
  assert.match(await sshd!.logsSince(mark), /expired/);
});

test('policy: force-command runs instead of the requested command; source-address is enforced', async () => {
  const f = await certFor(forced, A);
  assertAccepted(await login(f.certFile), 'forced-command');
  const e = await certFor(elsewhere, A);
  const mark = sshd!.logs.length;
  assertRefused(await login(e.certFile));
  const logs = await sshd!.logsSince(mark);
  assert.match(logs, /not from a permitted source address/, logs);
});

test('CA rotation: both keys trusted → old and new certificates open; old key retired → old refused', async () => {
  const before = await certFor(c, A);
  const rot = await c.call('POST', '/v1/access/ca/rotate', {
    token: admin,
    body: { key_type: 'ecdsa-p256' },
  });
  assert.is(rot.status, 200, rot.text);
  const fingerprints = await syncTrustedKeys();
  assert.is(fingerprints.length, 2);
  assert.is(fingerprints[0], rot.body.fingerprint);
  const after = await certFor(c, A);
  assert.ok(
    (await keygenList(dir, after.certificate)).includes(`Signing CA: ECDSA ${rot.body.fingerprint} `),
  );
  assert.ok((await keygenList(dir, before.certificate)).includes(`Signing CA: ED25519 ${fingerprints[1]} `));
  assertAccepted(await login(before.certFile));
  assertAccepted(await login(after.certFile));

  const list = await c.call('GET', '/v1/access/ca-pubkeys');
  const oldId = list.body.public_keys.find((k: { status: string }) => k.status === 'trusted').id;
  const retire = await c.call('POST', `/v1/access/ca/${oldId}/retire`, { token: admin });
  assert.is(retire.status, 200, retire.text);
  assert.equal(await syncTrustedKeys(), [rot.body.fingerprint]);
  await syncKrl();
  const mark = sshd!.logs.length;
  assertRefused(await login(before.certFile));
  const logs = await sshd!.logsSince(mark);
  assert.ok(logs.includes(`Failed publickey`) && logs.includes(`CA ED25519 ${fingerprints[1]}`), logs);
  assertAccepted(await login(after.certFile));
  const fresh = await certFor(c, A);
  assertAccepted(await login(fresh.certFile));
  assertContract(ACCESS, schema('caPublicKeyResponse'), (await c.call('GET', '/v1/access/ca-pubkey')).body);
});

test('a revoked certificate of the new key is refused; KRL from after the rotation', async () => {
  const cert = await certFor(c, A);
  assertAccepted(await login(cert.certFile));
  assertOk(await c.call('DELETE', `/v1/access/certificate/${cert.id}`, { token: admin }));
  await syncKrl();
  assertRefused(await login(cert.certFile));
});

test('sshd still serves after all of the above', async () => {
  const cert = await certFor(c, A, { ttl_minutes: 1 });
  assertAccepted(await login(cert.certFile));
});

test.run();
