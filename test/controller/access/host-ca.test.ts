/**
 * The SSH host CA through the API (public known_hosts lines, admin rotate / retire / host
 * certificates, audit, bad input), and end to end: a real `ssh` with StrictHostKeyChecking=yes and a
 * known_hosts file holding only the `@cert-authority` lines logs into a loopback sshd whose
 * HostCertificate the controller signed, and refuses one whose host key the CA did not sign.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { certLoginArgs, currentUser, run, startSshd, type Sshd } from '../../helpers/sshd.js';
import { accessFixture, assertAccessError, issue, keygenList, type AccessFixture } from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(180);

let f: AccessFixture;
let user: string;
const sshds: Sshd[] = [];
let userCert = '';
let hostKey = '';

test.before(async () => {
  f = await accessFixture('host-ca-user');
  user = f.user.token;
  const got = await issue(f.c, f.admin, { sandbox_id: f.vm.serverId, public_key: f.key.pub });
  userCert = join(f.dir, 'user-cert.pub');
  await writeFile(userCert, got.certificate + '\n');
  const k = await run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', join(f.dir, 'host_ecdsa')]);
  assert.is(k.code, 0, k.stderr);
  hostKey = (await run('cat', [join(f.dir, 'host_ecdsa.pub')])).stdout.trim();
});

test.after(async () => {
  for (const s of sshds) await s.stop();
  await f?.destroy();
});

const hostCas = async () => {
  const r = await f.c.call('GET', '/v1/access/host-ca-pubkeys');
  assert.is(r.status, 200, r.text);
  return r.body as {
    public_keys: Array<{ id: number; public_key: string; fingerprint: string; status: string }>;
    known_hosts: string;
  };
};

const signHost = (body: Record<string, unknown>, token = f.admin) =>
  f.c.call('POST', '/v1/access/host-certificate', { token, body });

async function auditRows(action: string) {
  const r = await f.c.call('GET', `/v1/audit?action=${action}&limit=100`, { token: f.admin });
  assert.is(r.status, 200, r.text);
  return r.body.entries as Array<{ object: string | null; outcome: string; status: number }>;
}

/** An sshd on loopback, its host key certified by POST /v1/access/host-certificate (or not). */
async function sshdWith(principals: string[] | undefined) {
  const sshd = await startSshd({
    trustedCaKeysFile: join(f.dir, 'user-ca.pub'),
    authorizedPrincipals: [f.vm.principal],
    ...(principals && {
      hostCertificate: async (publicKey: string) => {
        const r = await signHost({ public_key: publicKey, principals });
        assert.is(r.status, 200, r.text);
        return r.body.certificate as string;
      },
    }),
  });
  sshds.push(sshd);
  return sshd;
}

/** ssh with only the CA lines as known_hosts and StrictHostKeyChecking=yes. */
async function sshStrict(sshd: Sshd, knownHosts: string) {
  const file = join(f.dir, `known_hosts-${sshd.port}`);
  await writeFile(file, knownHosts);
  const args = certLoginArgs({
    host: '127.0.0.1',
    port: sshd.port,
    keyFile: f.key.keyFile,
    certFile: userCert,
    user: currentUser(),
    command: 'echo logged-in',
    connectTimeoutSeconds: 5,
  }).map((a) =>
    a === 'StrictHostKeyChecking=no'
      ? 'StrictHostKeyChecking=yes'
      : a === 'UserKnownHostsFile=/dev/null'
        ? `UserKnownHostsFile=${file}`
        : a,
  );
  assert.ok(args.includes('StrictHostKeyChecking=yes') && args.includes(`UserKnownHostsFile=${file}`));
  return run('ssh', ['-o', 'GlobalKnownHostsFile=/dev/null', ...args]);
}

test('host-ca-pubkeys is public: one active key and its @cert-authority line', async () => {
  const cas = await hostCas();
  assert.is(cas.public_keys.length, 1);
  const [ca] = cas.public_keys;
  assert.is(ca!.status, 'active');
  assert.match(ca!.public_key, /^ssh-ed25519 AAAA/);
  assert.is(
    cas.known_hosts,
    `@cert-authority * ${ca!.public_key.split(' ').slice(0, 2).join(' ')} vmwarden-host-ca\n`,
  );
  // Not the user CA.
  const userCas = (await f.c.call('GET', '/v1/access/ca-pubkeys')).body.public_keys;
  assert.not.equal(userCas[0].fingerprint, ca!.fingerprint);
  // ssh-keygen agrees on the fingerprint.
  const file = join(f.dir, 'host-ca.pub');
  await writeFile(file, ca!.public_key + '\n');
  assert.ok((await run('ssh-keygen', ['-l', '-f', file])).stdout.includes(ca!.fingerprint));
});

test('an admin gets a host certificate: a host certificate with the principals asked for, audited', async () => {
  const r = await signHost({
    public_key: hostKey,
    principals: ['db-1.example', '10.1.2.3'],
    ttl_seconds: 3600,
  });
  assert.is(r.status, 200, r.text);
  assert.match(r.body.certificate, /^ecdsa-sha2-nistp256-cert-v01@openssh.com /);
  assert.match(r.body.id, /^[0-9a-f-]{36}$/);
  assert.type(r.body.serial, 'number');
  const listed = await keygenList(f.dir, r.body.certificate);
  assert.match(listed, /Type: ecdsa-sha2-nistp256-cert-v01@openssh.com host certificate/);
  assert.match(listed, /Principals: \n\s+db-1.example\n\s+10.1.2.3\n/);
  assert.ok(listed.includes(`Signing CA: ED25519 ${(await hostCas()).public_keys[0]!.fingerprint}`), listed);
  const left = Date.parse(r.body.valid_before) - Date.now();
  assert.ok(left > 3000_000 && left <= 3600_000, r.body.valid_before);
  const rows = await auditRows('host-certificate.issue');
  assert.ok(
    rows.some((e) => e.object === r.body.id && e.outcome === 'success'),
    JSON.stringify(rows),
  );
});

test('host certificates: admin only, bad input is 400 in the access error format', async () => {
  assertAccessError(
    await f.c.call('POST', '/v1/access/host-certificate', {
      body: { public_key: hostKey, principals: ['a'] },
    }),
    401,
  );
  assertAccessError(await signHost({ public_key: hostKey, principals: ['a'] }, user), 403);
  assertAccessError(await signHost({ public_key: hostKey, principals: [] }), 400);
  assertAccessError(await signHost({ public_key: hostKey, principals: ['*.example'] }), 400);
  assertAccessError(await signHost({ public_key: hostKey, principals: ['a b'] }), 400);
  assertAccessError(await signHost({ public_key: hostKey }), 400);
  assertAccessError(
    await signHost({ public_key: 'ssh-ed25519 AAAAnot-a-key', principals: ['a'] }),
    400,
    /public_key/,
  );
  assertAccessError(
    await signHost({ public_key: '-----BEGIN OPENSSH PRIVATE KEY-----', principals: ['a'] }),
    400,
  );
  assertAccessError(await signHost({ public_key: hostKey, principals: ['a'], ttl_seconds: 10 }), 400);
  assertAccessError(await signHost({ public_key: hostKey, principals: ['a'], ttl_seconds: 1e9 }), 400);
  assertAccessError(await signHost({ public_key: hostKey, principals: ['a'], extra: 1 }), 400);
  for (const path of ['/v1/access/host-ca/rotate', '/v1/access/host-ca/1/retire']) {
    assertAccessError(await f.c.call('POST', path), 401);
    assertAccessError(await f.c.call('POST', path, { token: user }), 403);
  }
  assertAccessError(await f.c.call('POST', '/v1/access/host-ca/abc/retire', { token: f.admin }), 400);
});

test('ssh with only the @cert-authority line logs into the sshd whose host key the controller signed', async () => {
  await writeFile(
    join(f.dir, 'user-ca.pub'),
    (await f.c.call('GET', '/v1/access/ca-pubkeys')).body.trusted_user_ca_keys,
  );
  const sshd = await sshdWith(['127.0.0.1']);
  // sshd offers the certificate in its key exchange (what the guest e2e waits for).
  const scan = await run('ssh-keyscan', ['-c', '-T', '5', '-p', String(sshd.port), '127.0.0.1']);
  assert.match(scan.stdout, /ssh-ed25519-cert-v01@openssh.com AAAA/, scan.stdout + scan.stderr);
  const r = await sshStrict(sshd, (await hostCas()).known_hosts);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim(), 'logged-in');
});

test('a host key the CA did not sign, or signed for another name, is refused', async () => {
  const knownHosts = (await hostCas()).known_hosts;
  for (const sshd of [await sshdWith(undefined), await sshdWith(['other.example'])]) {
    const r = await sshStrict(sshd, knownHosts);
    assert.is(r.code, 255, r.stderr);
    assert.match(r.stderr, /Host key verification failed/);
    assert.not.match(r.stdout, /logged-in/);
  }
});

test('rotate keeps the old key trusted until it is retired (audited); the active one cannot be retired', async () => {
  const signed = sshds[0]!;
  const before = (await hostCas()).public_keys[0]!;
  const rotated = await f.c.call('POST', '/v1/access/host-ca/rotate', {
    token: f.admin,
    body: { key_type: 'ecdsa-p256' },
  });
  assert.is(rotated.status, 200, rotated.text);
  assert.is(rotated.body.status, 'active');
  assert.match(rotated.body.public_key, /^ecdsa-sha2-nistp256 /);
  const cas = await hostCas();
  assert.equal(
    cas.public_keys.map((k) => [k.id, k.status]),
    [
      [rotated.body.id, 'active'],
      [before.id, 'trusted'],
    ],
  );
  assert.is(cas.known_hosts.split('\n').filter(Boolean).length, 2);
  // New host certificates come from the new key; the old certificate still opens.
  const fresh = await signHost({ public_key: hostKey, principals: ['x'] });
  assert.ok(
    (await keygenList(f.dir, fresh.body.certificate)).includes(
      `Signing CA: ECDSA ${rotated.body.fingerprint}`,
    ),
  );
  assert.is((await sshStrict(signed, cas.known_hosts)).code, 0);

  assertAccessError(
    await f.c.call('POST', `/v1/access/host-ca/${rotated.body.id}/retire`, { token: f.admin }),
    409,
  );
  const retired = await f.c.call('POST', `/v1/access/host-ca/${before.id}/retire`, { token: f.admin });
  assert.is(retired.status, 200, retired.text);
  assertAccessError(
    await f.c.call('POST', `/v1/access/host-ca/${before.id}/retire`, { token: f.admin }),
    404,
  );
  const after = await hostCas();
  assert.equal(
    after.public_keys.map((k) => k.id),
    [rotated.body.id],
  );
  const r = await sshStrict(signed, after.known_hosts);
  assert.is(r.code, 255);
  assert.match(r.stderr, /Host key verification failed/);
  // The user CA did not move.
  assert.is((await f.c.call('GET', '/v1/access/ca-pubkeys')).body.public_keys.length, 1);
  assert.ok((await auditRows('host-ca.rotate')).some((e) => e.object === String(rotated.body.id)));
  assert.ok((await auditRows('host-ca.retire')).some((e) => e.object === String(before.id)));
});

test.run();
