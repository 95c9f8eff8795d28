import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import {
  parseCertificate,
  signatureAlgorithm,
  signUserCertificate,
  verifyCertificateSignature,
  type UserCertificateSpec,
} from '../../../../controller/src/access/sshca/certificate.js';
import {
  generateCaKey,
  parseUserPublicKey,
  type CaKey,
} from '../../../../controller/src/access/sshca/keys.js';
import { keygen, keygenDate, makeUserKey, tempDir, type UserKeyFiles } from './fixtures.js';

let dir = '';
let cleanup = async () => {};
const cas: Record<string, CaKey> = {};
const users: Record<string, UserKeyFiles> = {};

const USER_KEYS = [
  ['ed25519', 'ed25519', undefined, 'ssh-ed25519-cert-v01@openssh.com', 'ED25519-CERT'],
  ['ecdsa-384', 'ecdsa', 384, 'ecdsa-sha2-nistp384-cert-v01@openssh.com', 'ECDSA-CERT'],
  ['rsa-2048', 'rsa', 2048, 'ssh-rsa-cert-v01@openssh.com', 'RSA-CERT'],
] as const;
const CA_TYPES = [
  ['ed25519', 'ED25519', 'ssh-ed25519'],
  ['ecdsa-p256', 'ECDSA', 'ecdsa-sha2-nistp256'],
  ['rsa', 'RSA', 'rsa-sha2-512'],
] as const;

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  for (const [t] of CA_TYPES) cas[t] = generateCaKey(t);
  for (const [name, type, bits] of USER_KEYS)
    users[name] = await makeUserKey(dir, `user-${name}`, type, bits);
});
test.after(() => cleanup());

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const after = new Date(now.getTime() - 60_000);
const before = new Date(now.getTime() + 5 * 60_000);

function spec(pub: string, extra: Partial<UserCertificateSpec> = {}): UserCertificateSpec {
  return {
    publicKey: parseUserPublicKey(pub),
    serial: 0x1234_5678_9abc_def0n,
    keyId: 'alice@vmwarden:req-1',
    principals: ['vm-11111111-2222-3333-4444-555555555555', 'alice'],
    validAfter: after,
    validBefore: before,
    criticalOptions: { 'source-address': '127.0.0.1/32,10.0.0.0/8', 'force-command': 'tmux new -A -s main' },
    extensions: ['permit-pty', 'permit-agent-forwarding'],
    comment: 'alice-cert',
    ...extra,
  };
}

for (const [caType, caLabel, sigAlg] of CA_TYPES) {
  for (const [userName, , , certType, certLabel] of USER_KEYS) {
    test(`${caType} CA signs a ${userName} user key; ssh-keygen -L reads it back`, async () => {
      const ca = cas[caType];
      const user = users[userName];
      const cert = signUserCertificate(ca, spec(user.pub));
      assert.is(cert.certType, certType);
      assert.ok(cert.line.startsWith(`${certType} AAAA`));
      assert.ok(cert.line.endsWith(' alice-cert'));
      await writeFile(user.certFile, cert.line + '\n');

      const r = await keygen(['-L', '-f', user.certFile]);
      assert.is(r.code, 0, r.stderr);
      const out = r.stdout;
      const userFp = parseUserPublicKey(user.pub).fingerprint;
      assert.ok(out.includes(`Type: ${certType} user certificate`), out);
      assert.ok(out.includes(`Public key: ${certLabel} ${userFp}`), out);
      assert.ok(out.includes(`Signing CA: ${caLabel} ${ca.fingerprint} (using ${sigAlg})`), out);
      assert.ok(out.includes('Key ID: "alice@vmwarden:req-1"'), out);
      assert.ok(out.includes(`Serial: ${0x1234_5678_9abc_def0n}`), out);
      assert.ok(out.includes(`Valid: from ${keygenDate(after)} to ${keygenDate(before)}`), out);
      assert.match(out, /Principals: \n\s+vm-11111111-2222-3333-4444-555555555555\n\s+alice\n/);
      assert.match(
        out,
        /Critical Options: \n\s+force-command tmux new -A -s main\n\s+source-address 127.0.0.1\/32,10.0.0.0\/8\n/,
      );
      assert.match(out, /Extensions: \n\s+permit-agent-forwarding\n\s+permit-pty\n/);
      assert.is(signatureAlgorithm(ca), sigAlg);
    });
  }
}

test('ECDSA P-256/P-521 user keys get their own certificate types', async () => {
  for (const bits of [256, 521]) {
    const k = await makeUserKey(dir, `user-ecdsa-${bits}`, 'ecdsa', bits);
    const cert = signUserCertificate(cas['ecdsa-p256'], spec(k.pub));
    assert.is(cert.certType, `ecdsa-sha2-nistp${bits}-cert-v01@openssh.com`);
    await writeFile(k.certFile, cert.line + '\n');
    const r = await keygen(['-L', '-f', k.certFile]);
    assert.is(r.code, 0, r.stderr);
  }
});

for (const [caType] of CA_TYPES) {
  test(`${caType}: parseCertificate decodes every field and the signature verifies with node:crypto`, () => {
    const ca = cas[caType];
    const pub = parseUserPublicKey(users['ed25519'].pub);
    const nonce = Buffer.alloc(32, 7);
    const cert = signUserCertificate(ca, spec(users['ed25519'].pub, { nonce }));
    const p = parseCertificate(cert.line);
    assert.is(p.certType, 'ssh-ed25519-cert-v01@openssh.com');
    assert.is(p.keyType, 'ssh-ed25519');
    assert.ok(p.nonce.equals(nonce));
    assert.ok(p.publicKeyBlob.equals(pub.blob));
    assert.is(p.serial, 0x1234_5678_9abc_def0n);
    assert.is(p.certKind, 1);
    assert.is(p.keyId, 'alice@vmwarden:req-1');
    assert.equal(p.principals, ['vm-11111111-2222-3333-4444-555555555555', 'alice']);
    assert.is(p.validAfter, BigInt(after.getTime() / 1000));
    assert.is(p.validBefore, BigInt(before.getTime() / 1000));
    assert.equal(Object.keys(p.criticalOptions), ['force-command', 'source-address']);
    assert.is(p.criticalOptions['force-command'], 'tmux new -A -s main');
    assert.equal(p.extensions, { 'permit-agent-forwarding': '', 'permit-pty': '' });
    assert.ok(p.signatureKey.equals(ca.publicBlob));
    assert.is(p.signatureAlgorithm, signatureAlgorithm(ca));
    assert.is(p.comment, 'alice-cert');
    assert.ok(p.blob.equals(cert.blob));
    assert.ok(verifyCertificateSignature(p));
    assert.ok(verifyCertificateSignature(parseCertificate(cert.blob)));

    // Any change to the signed bytes breaks the signature.
    const tampered = Buffer.from(cert.blob);
    tampered[tampered.indexOf('alice@vmwarden')] ^= 1;
    assert.not.ok(verifyCertificateSignature(parseCertificate(tampered)));
    // A different CA key in the certificate does not verify either.
    const other = generateCaKey(caType);
    assert.not.ok(verifyCertificateSignature({ ...p, signatureKey: other.publicBlob }));
  });
}

test('ssh-keygen rejects a certificate whose signature was altered', async () => {
  const user = users['ed25519'];
  const cert = signUserCertificate(cas['ed25519'], spec(user.pub));
  const bad = Buffer.from(cert.blob);
  bad[bad.length - 1] ^= 1;
  await writeFile(user.certFile, `${cert.certType} ${bad.toString('base64')}\n`);
  const r = await keygen(['-L', '-f', user.certFile]);
  assert.is.not(r.code, 0);
});

test('options and extensions are written sorted by name, whatever the input order', () => {
  const cert = signUserCertificate(
    cas['ed25519'],
    spec(users['ed25519'].pub, {
      criticalOptions: { 'source-address': '10.0.0.1', 'force-command': 'true', 'verify-required': '' },
      extensions: { 'permit-pty': '', 'permit-X11-forwarding': '', 'permit-agent-forwarding': '' },
    }),
  );
  const p = parseCertificate(cert.line);
  assert.equal(Object.keys(p.criticalOptions), ['force-command', 'source-address', 'verify-required']);
  assert.is(p.criticalOptions['verify-required'], '');
  assert.equal(Object.keys(p.extensions), ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-pty']);
});

test('no options, no extensions, max serial', async () => {
  const user = users['rsa-2048'];
  const cert = signUserCertificate(cas['rsa'], {
    publicKey: parseUserPublicKey(user.pub),
    serial: 0xffff_ffff_ffff_ffffn,
    keyId: '',
    principals: ['root'],
    validAfter: after,
    validBefore: before,
  });
  assert.not.ok(cert.line.endsWith(' '));
  await writeFile(user.certFile, cert.line + '\n');
  const r = await keygen(['-L', '-f', user.certFile]);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes('Serial: 18446744073709551615'), r.stdout);
  assert.match(r.stdout, /Critical Options: \(none\)/);
  assert.match(r.stdout, /Extensions: \(none\)/);
});

test('invalid requests are refused', () => {
  const pub = users['ed25519'].pub;
  assert.throws(() => signUserCertificate(cas['ed25519'], spec(pub, { serial: 0n })), /serial/);
  assert.throws(() => signUserCertificate(cas['ed25519'], spec(pub, { serial: 1n << 64n })), /serial/);
  assert.throws(() => signUserCertificate(cas['ed25519'], spec(pub, { principals: [] })), /principal/);
  assert.throws(() => signUserCertificate(cas['ed25519'], spec(pub, { validBefore: after })), /validAfter/);
  const dss = Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-dss')]);
  assert.throws(() => signUserCertificate(cas['ed25519'], { ...spec(pub), publicKey: dss }), /ssh-dss/);
});

test.run();
