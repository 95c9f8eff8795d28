import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyMaterialError, parseKeyMaterial } from '../../../controller/src/keys/key-material.js';
import { makeKey } from './keygen.js';

const ed = makeKey('ed25519', undefined, 'alice@laptop');
const ec256 = makeKey('ecdsa', 256);
const ec384 = makeKey('ecdsa', 384);
const ec521 = makeKey('ecdsa', 521);
const rsa = makeKey('rsa', 3072);

function refused(skey: string, type: string | undefined, field: 'Type' | 'Skey', re: RegExp) {
  try {
    parseKeyMaterial(skey, type);
  } catch (err) {
    assert.instance(err, KeyMaterialError);
    assert.is((err as KeyMaterialError).field, field, (err as Error).message);
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`accepted ${skey.slice(0, 40)}`);
}

test('bare base64 bodies of every supported type parse, with ssh-keygen fingerprints', () => {
  for (const k of [ed, ec256, ec384, ec521, rsa]) {
    const p = parseKeyMaterial(k.body, k.type);
    assert.is(p.type, k.type);
    assert.is(p.skey, k.body);
    assert.is(p.fingerprint, k.fingerprint);
    assert.is(p.comment, undefined);
  }
  assert.is(parseKeyMaterial(rsa.body, 'ssh-rsa').bits, 3072);
});

test('a whole OpenSSH line gives type and comment', () => {
  const p = parseKeyMaterial(ed.line, undefined);
  assert.is(p.type, 'ssh-ed25519');
  assert.is(p.skey, ed.body);
  assert.is(p.comment, 'alice@laptop');
  assert.is(parseKeyMaterial(`  ${ec384.line}  \n`, 'ecdsa-sha2-nistp384').fingerprint, ec384.fingerprint);
});

test('an RFC 4716 block gives the key and its Comment header', () => {
  const p = parseKeyMaterial(ed.rfc4716, undefined);
  assert.is(p.skey, ed.body);
  assert.is(p.fingerprint, ed.fingerprint);
  assert.match(p.comment ?? '', /256-bit ED25519/);
  // Continued header lines and an unquoted comment.
  const wrapped = [
    '---- BEGIN SSH2 PUBLIC KEY ----',
    'Subject: alice',
    'Comment: a very long \\',
    'comment',
    ...rsa.body.match(/.{1,70}/g)!,
    '---- END SSH2 PUBLIC KEY ----',
  ].join('\r\n');
  const q = parseKeyMaterial(wrapped, 'ssh-rsa');
  assert.is(q.skey, rsa.body);
  assert.is(q.comment, 'a very long comment');
});

test('private keys are refused, whatever their wrapping', () => {
  refused(ed.privatePem, 'ssh-ed25519', 'Skey', /private key/);
  refused(rsa.privatePem, undefined, 'Skey', /private key/);
  const inner = ed.privatePem
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
  refused(inner, 'ssh-ed25519', 'Skey', /private key/);
  refused(
    '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----',
    'ssh-rsa',
    'Skey',
    /private key/,
  );
});

test('DSA, rsa1 and short RSA keys are refused', () => {
  const dsa = makeKey('dsa');
  refused(dsa.body, 'ssh-dss', 'Type', /insecure/);
  refused(dsa.body, 'ssh-rsa', 'Type', /ssh-dss.*insecure/);
  refused(dsa.line, undefined, 'Type', /insecure/);
  refused('2048 65537 1234567890 old@host', 'ssh-rsa1', 'Type', /insecure/);
  refused('2048 65537 1234567890 old@host', undefined, 'Type', /ssh-rsa1.*insecure/);
  const short = makeKey('rsa', 1024);
  refused(short.body, 'ssh-rsa', 'Skey', /at least 2048 bits; this one has 1024/);
});

test('the key must really be of the declared type', () => {
  refused(ed.body, 'ssh-rsa', 'Type', /Type is ssh-rsa but Skey holds an ssh-ed25519 key/);
  refused(ec256.body, 'ecdsa-sha2-nistp384', 'Type', /nistp256/);
  refused(`ssh-rsa ${ed.body}`, undefined, 'Skey', /says ssh-rsa but the key inside is ssh-ed25519/);
  refused(ed.body, 'ssh-foo', 'Type', /Unknown key type/);
});

test('garbage, truncated and trailing data are refused', () => {
  refused('not base64!', 'ssh-ed25519', 'Skey', /base64/);
  refused('AAAA', 'ssh-ed25519', 'Skey', /not an SSH public key/);
  refused(ed.body.slice(0, 40), 'ssh-ed25519', 'Skey', /./);
  const extra = Buffer.concat([Buffer.from(ed.body, 'base64'), Buffer.from([0, 0, 0, 1, 7])]).toString(
    'base64',
  );
  refused(extra, 'ssh-ed25519', 'Skey', /not a valid ssh-ed25519/);
  // An ECDSA point that is not on the curve.
  const blob = Buffer.from(ec256.body, 'base64');
  blob[blob.length - 1] ^= 0xff;
  refused(blob.toString('base64'), 'ecdsa-sha2-nistp256', 'Skey', /not a valid/);
  refused(`from="10.0.0.1" ${ed.line}`, undefined, 'Skey', /options/);
  refused(`${ed.line}\n${ec256.line}`, undefined, 'Skey', /one key/);
  refused('', 'ssh-ed25519', 'Skey', /empty/);
  refused('A'.repeat(16 * 1024 + 4), 'ssh-ed25519', 'Skey', /longer than/);
});

test.run();
