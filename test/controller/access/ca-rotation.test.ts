/** The SSH CA through the API: ca-pubkey(s), rotate, retire, and what the KRL covers. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestController } from '../../helpers/controller.js';
import { ACCESS, assertContract } from '../../helpers/contract.js';
import {
  assertAccessError,
  issue,
  keygenList,
  run,
  schema,
  type TestInstance,
  type UserKeyFiles,
  accessFixture,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let dir = '';
let admin = '';
let user: { id: string; token: string };
let vm: TestInstance;
let key: UserKeyFiles;
let destroy = async () => {};

test.before(async () => {
  ({ c, dir, admin, user, vm, key, destroy } = await accessFixture('ca-user'));
});

test.after(() => destroy());

const cas = async () => {
  const r = await c.call('GET', '/v1/access/ca-pubkeys');
  assert.is(r.status, 200, r.text);
  return r.body as {
    public_keys: Array<{ id: number; public_key: string; fingerprint: string; status: string }>;
    trusted_user_ca_keys: string;
  };
};
const newCert = () => issue(c, admin, { sandbox_id: vm.serverId, public_key: key.pub });

test('ca-pubkey and ca-pubkeys are public; one active ed25519 key at first', async () => {
  const one = await c.call('GET', '/v1/access/ca-pubkey');
  assert.is(one.status, 200);
  assertContract(ACCESS, schema('caPublicKeyResponse'), one.body);
  assert.match(one.body.public_key, /^ssh-ed25519 AAAA/);
  assert.match(one.body.usage, /TrustedUserCAKeys/);
  const all = await cas();
  assert.is(all.public_keys.length, 1);
  assert.is(all.public_keys[0]!.status, 'active');
  assert.is(all.public_keys[0]!.public_key, one.body.public_key);
  assert.is(all.trusted_user_ca_keys, `${one.body.public_key}\n`);
  // ssh-keygen agrees on the fingerprint.
  const f = join(dir, 'ca.pub');
  await writeFile(f, all.trusted_user_ca_keys);
  const r = await run('ssh-keygen', ['-l', '-f', f]);
  assert.ok(r.stdout.includes(all.public_keys[0]!.fingerprint), r.stdout);
});

test('rotate and retire are admin-only; no token → 401', async () => {
  assertAccessError(await c.call('POST', '/v1/access/ca/rotate', { token: user.token }), 403);
  assertAccessError(await c.call('POST', '/v1/access/ca/rotate'), 401);
  const id = (await cas()).public_keys[0]!.id;
  assertAccessError(await c.call('POST', `/v1/access/ca/${id}/retire`, { token: user.token }), 403);
});

test('rotate: new key signs, old stays trusted; KRL moves; retire old; the active key cannot be retired', async () => {
  const oldCert = await newCert();
  const before = await cas();
  const oldKey = before.public_keys[0]!;
  const krl0 = (await c.call('GET', '/v1/access/krl', { token: admin })).headers['x-krl-version'];

  for (const [type, prefix, label] of [
    ['rsa', 'ssh-rsa', 'RSA'],
    ['ecdsa-p256', 'ecdsa-sha2-nistp256', 'ECDSA'],
    [undefined, 'ssh-ed25519', 'ED25519'],
  ] as const) {
    const r = await c.call('POST', '/v1/access/ca/rotate', {
      token: admin,
      body: type ? { key_type: type } : undefined,
    });
    assert.is(r.status, 200, r.text);
    assert.ok(r.body.public_key.startsWith(`${prefix} AAAA`), r.body.public_key);
    assert.is(r.body.status, 'active');
    const now = await cas();
    assert.is(now.public_keys[0]!.id, r.body.id);
    assert.equal(
      now.public_keys.slice(1).map((k) => k.status),
      now.public_keys.slice(1).map(() => 'trusted'),
    );
    assert.is((await c.call('GET', '/v1/access/ca-pubkey')).body.public_key, r.body.public_key);
    const cert = await newCert();
    assert.ok(
      (await keygenList(dir, cert.certificate)).includes(`Signing CA: ${label} ${r.body.fingerprint} `),
    );
  }
  const krl1 = (await c.call('GET', '/v1/access/krl', { token: admin })).headers['x-krl-version'];
  assert.ok(Number(krl1) > Number(krl0));

  const active = (await cas()).public_keys[0]!;
  assertAccessError(
    await c.call('POST', `/v1/access/ca/${active.id}/retire`, { token: admin }),
    409,
    /rotate first/,
  );
  const ret = await c.call('POST', `/v1/access/ca/${oldKey.id}/retire`, { token: admin });
  assert.is(ret.status, 200, ret.text);
  const after = await cas();
  assert.not.ok(after.public_keys.some((k) => k.id === oldKey.id));
  assert.not.ok(after.trusted_user_ca_keys.includes(oldKey.public_key));
  assert.is(after.trusted_user_ca_keys.trim().split('\n').length, 3);
  assertAccessError(await c.call('POST', `/v1/access/ca/${oldKey.id}/retire`, { token: admin }), 404);
  assertAccessError(await c.call('POST', '/v1/access/ca/99999/retire', { token: admin }), 404);
  // Certificates of the retired key still exist as records; revoking one still works.
  const del = await c.call('DELETE', `/v1/access/certificate/${oldCert.id}`, { token: admin });
  assert.is(del.status, 200, del.text);
});

test('the KRL covers revoked certificates of every trusted key', async () => {
  const a = await newCert();
  const r = await c.call('POST', '/v1/access/ca/rotate', { token: admin, body: { key_type: 'ecdsa-p256' } });
  assert.is(r.status, 200);
  const b = await newCert();
  for (const cert of [a, b]) {
    const d = await c.call('DELETE', `/v1/access/certificate/${cert.id}`, { token: admin });
    assert.is(d.status, 200);
  }
  const res = await fetch(`${c.httpBase}/v1/access/krl`, { headers: { 'zt-session': admin } });
  const krl = join(dir, 'all.krl');
  await writeFile(krl, Buffer.from(await res.arrayBuffer()));
  for (const cert of [a, b]) {
    const f = join(dir, `${cert.id}-cert.pub`);
    await writeFile(f, cert.certificate + '\n');
    const q = await run('ssh-keygen', ['-Q', '-f', krl, f]);
    assert.match(q.stdout, /REVOKED/, q.stdout + q.stderr);
  }
});

test.run();
