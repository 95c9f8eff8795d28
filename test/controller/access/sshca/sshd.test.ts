/** End-to-end: certificates and KRLs against a real sshd and the OpenSSH client. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { signUserCertificate } from '../../../../controller/src/access/sshca/certificate.js';
import {
  generateCaKey,
  parseUserPublicKey,
  type CaKey,
} from '../../../../controller/src/access/sshca/keys.js';
import { buildKrl } from '../../../../controller/src/access/sshca/krl.js';
import { sshLogin, startSshd, type Sshd } from '../../../helpers/sshd.js';
import { makeUserKey, tempDir, type UserKeyFiles } from './fixtures.js';

const VM_A = `vm-${randomUUID()}`;
const VM_B = `vm-${randomUUID()}`;

let dir = '';
let cleanup = async () => {};
let sshd: Sshd | undefined;
let caOld: CaKey;
let caNew: CaKey;
let caEc: CaKey;
let user: UserKeyFiles;
let krlFile = '';
let n = 0;
let serial = 1000n;

async function writeKrl(revoked: { ca: CaKey; serials: bigint[] }[], version: bigint): Promise<void> {
  const krl = buildKrl({
    version,
    generatedAt: new Date(),
    sections: revoked.map((r) => ({ caPublicBlob: r.ca.publicBlob, serials: r.serials })),
  });
  // Atomic replace, as the agent does inside guests.
  const tmp = `${krlFile}.tmp`;
  await writeFile(tmp, krl);
  await rename(tmp, krlFile);
}

/** Issues a certificate for `principal`, writes it next to the key, returns [certFile, serial]. */
async function issue(
  ca: CaKey,
  principal: string,
  validity: { from: number; to: number } = { from: -60, to: 300 },
): Promise<[string, bigint]> {
  const s = serial++;
  const now = Date.now();
  const cert = signUserCertificate(ca, {
    publicKey: parseUserPublicKey(user.pub),
    serial: s,
    keyId: `test-${s}`,
    principals: [principal],
    validAfter: new Date(now + validity.from * 1000),
    validBefore: new Date(now + validity.to * 1000),
    extensions: ['permit-pty'],
  });
  const certFile = join(dir, `c${n++}-cert.pub`);
  await writeFile(certFile, cert.line + '\n');
  return [certFile, s];
}

const login = (certFile: string) =>
  sshLogin({ port: sshd!.port, keyFile: user.keyFile, certFile, command: 'echo logged-in' });

function assertAccepted(r: { code: number | null; stdout: string; stderr: string }) {
  assert.is(r.code, 0, `login refused: ${r.stderr}\n--- sshd:\n${sshd?.logs.slice(-3000)}`);
  assert.is(r.stdout.trim(), 'logged-in');
}

function assertRefused(r: { code: number | null; stdout: string; stderr: string }) {
  assert.is(r.code, 255, `expected refusal, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /Permission denied/);
}

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-sshd-test-'));
  caOld = generateCaKey('ed25519', undefined, 'ca-old');
  caNew = generateCaKey('rsa', 3072, 'ca-new');
  caEc = generateCaKey('ecdsa-p256', undefined, 'ca-ec');
  user = await makeUserKey(dir, 'id_user', 'ed25519');
  const trusted = join(dir, 'trusted_ca.pub');
  await writeFile(trusted, [caOld, caNew, caEc].map((c) => c.openssh + '\n').join(''));
  krlFile = join(dir, 'revoked.krl');
  await writeKrl([], 1n);
  sshd = await startSshd({
    trustedCaKeysFile: trusted,
    authorizedPrincipals: [VM_A],
    revokedKeysFile: krlFile,
  });
});

test.after(async () => {
  if (process.env.SSHD_LOGS) console.log(sshd?.logs);
  await sshd?.stop();
  await cleanup();
});

test('a certificate for this instance opens it; sshd logs its serial', async () => {
  const [certFile, s] = await issue(caOld, VM_A);
  assertAccepted(await login(certFile));
  assert.ok(sshd!.logs.includes(`serial ${s}`), sshd!.logs.slice(-2000));
});

test('a certificate for another instance is refused', async () => {
  const [certFile] = await issue(caOld, VM_B);
  const mark = sshd!.logs.length;
  assertRefused(await login(certFile));
  assert.match(await sshd!.logsSince(mark), /Certificate does not contain an authorized principal/);
});

test('sshd trusting old and new CA keys accepts certificates from each', async () => {
  for (const ca of [caOld, caNew, caEc]) {
    const [certFile] = await issue(ca, VM_A);
    assertAccepted(await login(certFile));
  }
});

test('a revoked serial is refused once it is in the KRL; others still work', async () => {
  const [revokedCert, revokedSerial] = await issue(caOld, VM_A);
  const [keptCert] = await issue(caOld, VM_A);
  const [sameSerialOtherCa] = await issue(caNew, VM_A);
  assertAccepted(await login(revokedCert));

  await writeKrl([{ ca: caOld, serials: [revokedSerial] }], 2n);
  const mark = sshd!.logs.length;
  assertRefused(await login(revokedCert));
  assert.match(await sshd!.logsSince(mark), /revoked by file/);
  assertAccepted(await login(keptCert));
  assertAccepted(await login(sameSerialOtherCa));

  await writeKrl([], 3n);
  assertAccepted(await login(revokedCert));
});

test('an expired certificate is refused, as is one not yet valid', async () => {
  const [expired] = await issue(caOld, VM_A, { from: -3600, to: -1800 });
  let mark = sshd!.logs.length;
  assertRefused(await login(expired));
  assert.match(await sshd!.logsSince(mark), /expired/);
  const [future] = await issue(caOld, VM_A, { from: 1800, to: 3600 });
  mark = sshd!.logs.length;
  assertRefused(await login(future));
  assert.match(await sshd!.logsSince(mark), /not yet valid/);
});

test('sshd keeps serving after all of the above', async () => {
  const [certFile] = await issue(caEc, VM_A);
  assertAccepted(await login(certFile));
});

test.run();
