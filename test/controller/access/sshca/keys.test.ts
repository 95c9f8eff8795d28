import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  generateCaKey,
  KeyRejectedError,
  loadCaKey,
  parseUserPublicKey,
  publicKeyFromBlob,
  saveCaKey,
  type CaKeyType,
} from '../../../../controller/src/access/sshca/keys.js';
import { makeUserKey, run, tempDir } from './fixtures.js';
import { offCurveEcdsa, rsaWithExponent } from '../../keys/bad-keys.js';

let dir = '';
let cleanup = async () => {};
test.before(async () => {
  ({ dir, cleanup } = await tempDir());
});
test.after(() => cleanup());

/** The fingerprint ssh-keygen -l prints for a public key file. */
async function keygenFingerprint(pubFile: string): Promise<string> {
  const r = await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', pubFile]);
  assert.is(r.code, 0, r.stderr);
  return r.stdout.split(' ')[1];
}

function rejects(text: string, code: string, messagePart: string | RegExp) {
  try {
    parseUserPublicKey(text);
  } catch (err) {
    assert.instance(err, KeyRejectedError);
    const e = err as KeyRejectedError;
    assert.is(e.code, code, e.reason);
    if (typeof messagePart === 'string') assert.ok(e.reason.includes(messagePart), e.reason);
    else assert.match(e.reason, messagePart);
    return;
  }
  assert.unreachable(`accepted: ${text.slice(0, 60)}`);
}

for (const [type, sshType, bits] of [
  ['ed25519', 'ssh-ed25519', 256],
  ['ecdsa-p256', 'ecdsa-sha2-nistp256', 256],
  ['rsa', 'ssh-rsa', 3072],
] as const) {
  test(`CA ${type}: OpenSSH line and fingerprint agree with ssh-keygen`, async () => {
    const ca = generateCaKey(type as CaKeyType);
    assert.is(ca.sshType, sshType);
    assert.is(ca.bits, bits);
    assert.ok(ca.openssh.startsWith(`${sshType} AAAA`));
    assert.ok(ca.openssh.endsWith(' vmwarden-ca'));
    const pubFile = join(dir, `ca-${type}.pub`);
    await writeFile(pubFile, ca.openssh + '\n');
    assert.is(await keygenFingerprint(pubFile), ca.fingerprint);
    assert.match(ca.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.is(publicKeyFromBlob(ca.publicBlob).sshType, sshType);
  });
}

test('RSA CA keys below 3072 bits are refused', () => {
  assert.throws(() => generateCaKey('rsa', 2048), /3072/);
});

test('saved CA key is 0600 even with a permissive umask, and loads back', async () => {
  const ca = generateCaKey('ed25519');
  const path = join(dir, 'ca-saved.pem');
  const old = process.umask(0);
  try {
    await saveCaKey(ca, path);
  } finally {
    process.umask(old);
  }
  assert.is((await stat(path)).mode & 0o777, 0o600);
  assert.match(await readFile(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  assert.not.ok(
    (await readdir(dir)).some((f) => f.endsWith('.tmp')),
    'no temp file left behind',
  );
  const loaded = await loadCaKey(path);
  assert.is(loaded.fingerprint, ca.fingerprint);
  await saveCaKey(generateCaKey('ecdsa-p256'), path);
  assert.is((await loadCaKey(path)).type, 'ecdsa-p256', 'save replaces an existing file');
  assert.is((await stat(path)).mode & 0o777, 0o600);
});

test('loadCaKey refuses group/other-accessible files, naming the path and mode', async () => {
  const path = join(dir, 'ca-perm.pem');
  await saveCaKey(generateCaKey('ed25519'), path);
  for (const mode of [0o640, 0o644, 0o604, 0o660]) {
    await chmod(path, mode);
    try {
      await loadCaKey(path);
      assert.unreachable(`accepted mode ${mode.toString(8)}`);
    } catch (err) {
      const msg = (err as Error).message;
      assert.ok(msg.includes(path), msg);
      assert.ok(msg.includes('0' + mode.toString(8)), msg);
    }
  }
  await chmod(path, 0o600);
  assert.is((await loadCaKey(path)).type, 'ed25519');
  await chmod(path, 0o400);
  assert.is((await loadCaKey(path)).type, 'ed25519');
});

test('loadCaKey refuses a weak RSA key', async () => {
  const path = join(dir, 'ca-rsa2048.pem');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await writeFile(path, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  try {
    await loadCaKey(path);
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /2048 bits/);
  }
});

for (const [type, bits, sshType] of [
  ['ed25519', undefined, 'ssh-ed25519'],
  ['ecdsa', 256, 'ecdsa-sha2-nistp256'],
  ['ecdsa', 384, 'ecdsa-sha2-nistp384'],
  ['ecdsa', 521, 'ecdsa-sha2-nistp521'],
  ['rsa', 2048, 'ssh-rsa'],
  ['rsa', 4096, 'ssh-rsa'],
] as const) {
  test(`user key ${sshType}${bits ? ` ${bits}` : ''} is accepted`, async () => {
    const k = await makeUserKey(dir, `user-${type}-${bits ?? 0}`, type, bits);
    const parsed = parseUserPublicKey(k.pub);
    assert.is(parsed.type, sshType);
    assert.is(parsed.bits, bits ?? 256);
    assert.is(parsed.comment, `user-${type}-${bits ?? 0}@test`);
    assert.is(parsed.openssh, k.pub.trim());
    assert.is(parsed.fingerprint, await keygenFingerprint(k.pubFile));
    assert.is(parsed.blob.toString('base64'), k.pub.split(' ')[1]);
  });
}

test('authorized_keys line with options, and a key without comment', async () => {
  const k = await makeUserKey(dir, 'opts', 'ed25519');
  const [t, b64] = k.pub.trim().split(' ');
  const withOpts = parseUserPublicKey(`command="echo a b",no-pty,from="10.0.0.1" ${t} ${b64} me@host`);
  assert.is(withOpts.openssh, `${t} ${b64} me@host`);
  const bare = parseUserPublicKey(`  ${t} ${b64}\n`);
  assert.is(bare.comment, '');
  assert.is(bare.openssh, `${t} ${b64}`);
});

test('DSA keys are refused as insecure', async () => {
  let pub: string;
  const probe = await run('ssh-keygen', ['-q', '-t', 'dsa', '-N', '', '-f', join(dir, 'dsa')]);
  if (probe.code === 0) {
    pub = await readFile(join(dir, 'dsa.pub'), 'utf8');
  } else {
    // ssh-keygen without DSA support: build an ssh-dss blob from a node DSA key.
    const { publicKey } = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 });
    const sshpk = (await import('sshpk')).default;
    pub = sshpk.parseKey(publicKey.export({ format: 'pem', type: 'spki' }), 'pem').toString('ssh');
  }
  assert.ok(pub.startsWith('ssh-dss '));
  rejects(pub, 'dsa_insecure', 'DSA keys are insecure');
});

test('RSA below 2048 bits is refused, naming the size', async () => {
  const k = await makeUserKey(dir, 'rsa1024', 'rsa', 1024);
  rejects(k.pub, 'rsa_too_small', 'RSA key is 1024 bits');
});

test('private keys are refused', async () => {
  const k = await makeUserKey(dir, 'priv', 'ed25519');
  rejects(await readFile(k.keyFile, 'utf8'), 'private_key', 'this is a private key; send the public key');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  rejects(privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 'private_key', 'private key');
  rejects(privateKey.export({ format: 'pem', type: 'sec1' }) as string, 'private_key', 'private key');
});

test('garbage, truncated keys, certificates and several lines are refused', async () => {
  const k = await makeUserKey(dir, 'g', 'ed25519');
  const [t, b64] = k.pub.trim().split(' ');
  rejects('hello world', 'not_openssh', 'not an OpenSSH public key');
  rejects('ssh-ed25519 !!!notbase64', 'not_openssh', 'not an OpenSSH public key');
  rejects(`${t} ${b64.slice(0, 40)}`, 'not_openssh', 'not an OpenSSH public key');
  rejects(`ssh-rsa ${b64}`, 'not_openssh', 'not an OpenSSH public key');
  rejects('', 'empty', 'no public key');
  rejects(`${k.pub}${k.pub}`, 'not_openssh', 'one public key');
  rejects(`ssh-ed25519-cert-v01@openssh.com ${b64}`, 'certificate', 'certificate');
  const sk = Buffer.concat([Buffer.from([0, 0, 0, 26]), Buffer.from('sk-ssh-ed25519@openssh.com')]).toString(
    'base64',
  );
  rejects(`sk-ssh-ed25519@openssh.com ${sk}`, 'unsupported_type', 'unsupported key type');
});

test('the key policy: ECDSA points off the curve are refused, for every curve', async () => {
  for (const bits of [256, 384, 521]) {
    const k = await makeUserKey(dir, `offcurve-${bits}`, 'ecdsa', bits);
    rejects(offCurveEcdsa(k.pub), 'invalid_key', 'the point is not on the curve');
    // The genuine key still passes.
    assert.is(parseUserPublicKey(k.pub).type, `ecdsa-sha2-nistp${bits}`);
  }
});

test('the key policy: RSA exponents must be odd and at least 65537', async () => {
  const k = await makeUserKey(dir, 'rsa-e', 'rsa', 2048);
  for (const e of [0n, 1n, 3n, 35n, 65535n, 65536n, 65538n, 1n << 256n])
    rejects(rsaWithExponent(k.pub, e), 'rsa_exponent', 'RSA public exponent');
  // 65537 is what ssh-keygen uses; another large odd exponent is fine too.
  assert.is(
    parseUserPublicKey(rsaWithExponent(k.pub, 65537n)).openssh,
    k.pub.trim().replace(/ \S+$/, ' bad@test'),
  );
  assert.is(parseUserPublicKey(rsaWithExponent(k.pub, 65539n)).bits, 2048);
});

test('the key policy: one canonical encoding (no padded mpint, no trailing data)', async () => {
  const k = await makeUserKey(dir, 'canon', 'rsa', 2048);
  const blob = Buffer.from(k.pub.split(' ')[1]!, 'base64');
  // e = 65537 written with a superfluous leading zero byte.
  const typeLen = blob.readUInt32BE(0);
  const eAt = 4 + typeLen;
  const eLen = blob.readUInt32BE(eAt);
  const padded = Buffer.concat([
    blob.subarray(0, eAt),
    Buffer.from([0, 0, 0, eLen + 1, 0]),
    blob.subarray(eAt + 4, eAt + 4 + eLen),
    blob.subarray(eAt + 4 + eLen),
  ]);
  rejects(`ssh-rsa ${padded.toString('base64')}`, 'invalid_key', 'canonical');
  const trailing = Buffer.concat([blob, Buffer.from([0, 0, 0, 0])]);
  rejects(`ssh-rsa ${trailing.toString('base64')}`, 'not_openssh', 'not an OpenSSH public key');
});

test.run();
