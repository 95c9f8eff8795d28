/** The agent's readers of guest output: sshd's certificate login line, fingerprints, the sshd drop-in. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAccepted } from '../../../agent/src/guest/sessions.js';
import { fingerprintOf, sshdDropIn } from '../../../agent/src/guest/trust.js';

test('parses the certificate login line of sshd (LogLevel VERBOSE)', () => {
  const line =
    '1795347027.335895 vmwarden-guest sshd[318]: Accepted publickey for vmwarden from 192.168.122.1 port 60906 ssh2: ' +
    'ED25519-CERT SHA256:QYggG/0FoEDUst+BppzFY7c13KQZgmfxyfBvXx3n1Ug ID user:u1-vm:web-sbx:58bd8e7b-aed0-41a1-bcd6-5d22b3cea30f-cert:0de7190f-f1ef-428d-b539-3e1bbf2bf4aa ' +
    '(serial 13031468013696696904) CA ED25519 SHA256:fsPPqS0UpEqdOZb+DY+9qHt8V6m0DVDXI7nIwsGO5Uo';
  assert.equal(parseAccepted(line), {
    pid: 318,
    user: 'vmwarden',
    sourceIp: '192.168.122.1',
    keyId:
      'user:u1-vm:web-sbx:58bd8e7b-aed0-41a1-bcd6-5d22b3cea30f-cert:0de7190f-f1ef-428d-b539-3e1bbf2bf4aa',
    serial: '13031468013696696904',
    certificateId: '0de7190f-f1ef-428d-b539-3e1bbf2bf4aa',
  });
  // Plain keys, failures and the "Accepted certificate ID" line are not logins with a certificate.
  assert.is(
    parseAccepted(
      'x sshd[1]: Accepted publickey for root from 10.0.0.1 port 2 ssh2: ED25519 SHA256:QYggG/0FoEDUst+BppzFY7c13KQZgmfxyfBvXx3n1Ug',
    ),
    undefined,
  );
  assert.is(
    parseAccepted(
      'x sshd[558]: Failed publickey for vmwarden from 192.168.122.1 port 59870 ssh2: ED25519-CERT SHA256:m ID k (serial 1) CA ED25519 SHA256:f',
    ),
    undefined,
  );
  assert.is(
    parseAccepted(
      'x sshd[318]: Accepted certificate ID "k-cert:c" (serial 42) signed by ED25519 CA SHA256:f via /f',
    ),
    undefined,
  );
});

test('fingerprints match ssh-keygen -l', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-fp-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
    const pub = readFileSync(join(dir, 'k.pub'), 'utf8');
    const expected = execFileSync('ssh-keygen', ['-lf', join(dir, 'k.pub')], { encoding: 'utf8' }).split(
      ' ',
    )[1];
    assert.is(fingerprintOf(pub), expected);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the sshd drop-in', () => {
  const conf = sshdDropIn();
  for (const line of [
    'TrustedUserCAKeys /etc/ssh/vmwarden/trusted_user_ca_keys',
    'RevokedKeys /etc/ssh/vmwarden/revoked_keys',
    'AuthorizedPrincipalsFile /etc/ssh/vmwarden/principals/%u',
    'ExposeAuthInfo yes',
    'LogLevel VERBOSE',
  ]) {
    assert.ok(conf.split('\n').includes(line), line);
  }
});

test.run();
