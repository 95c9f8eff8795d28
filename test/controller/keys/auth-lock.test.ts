import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { ApiError } from '../../../controller/src/platform/errors.js';
import { makeKey } from './keygen.js';
import { authenticatorIdOf, basic, BASE, sshKeyRequest } from './api-helpers.js';

let c: TestController;
let admin: string;
let alice: { id: string; token: string; password: string };
let bob: { id: string; token: string; password: string };
let aliceAuth: string;

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
  alice = await c.createUser('alice', 'user', 'alice-password');
  bob = await c.createUser('bobby', 'user', 'bobby-password');
  aliceAuth = await authenticatorIdOf(c, alice.token, alice.id);
});
test.after(async () => c.destroy());

async function sessionCount(): Promise<number> {
  return (await c.controller.services.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM api_sessions'))!.n;
}

const addKey = (
  token: string | undefined,
  fields: Record<string, unknown>,
  headers?: Record<string, string>,
) =>
  c.call('POST', `${BASE}/ssh_keys.json`, {
    ...(token ? { token } : {}),
    ...(headers ? { headers } : {}),
    body: sshKeyRequest(alice.id, aliceAuth, fields),
  });

test('401 without credentials or with bad ones, in the COmanage format, with a Basic challenge', async () => {
  const cases: Array<Record<string, string>> = [
    {},
    { 'zt-session': 'not-a-token' },
    { authorization: 'Bearer nope' },
    basic('alice', 'wrong-password'),
    basic('nobody', 'whatever'),
    { authorization: 'Basic !!!' },
    { authorization: 'Basic' },
  ];
  for (const headers of cases) {
    for (const [method, path] of [
      ['GET', '/ssh_keys.json'],
      ['GET', '/ssh_keys/1.json'],
      ['POST', '/ssh_keys.json'],
      ['DELETE', '/ssh_keys/1.json'],
    ]) {
      const r = await c.call(method!, BASE + path!, { headers });
      assert.is(r.status, 401, `${JSON.stringify(headers)} ${method} ${path}: ${r.text}`);
      assert.is(r.body.ResponseType, 'ErrorResponse');
      assert.is(r.body.Version, '1.0');
      assert.match(r.headers['www-authenticate'] ?? '', /^Basic realm=/);
    }
  }
  const post = await c.call('POST', `${BASE}/ssh_keys.json`, { body: {} });
  assert.is(post.body.Id, 'New');
});

test('HTTP Basic works and creates no API session; every token header works', async () => {
  const before = await sessionCount();
  const k = makeKey('ed25519');
  const r = await addKey(undefined, { Type: 'ssh-ed25519', Skey: k.body }, basic('alice', 'alice-password'));
  assert.is(r.status, 201, r.text);
  for (let i = 0; i < 3; i++) {
    const list = await c.call('GET', `${BASE}/ssh_keys.json`, { headers: basic('alice', 'alice-password') });
    assert.is(list.status, 200);
    assert.equal(
      list.body.SshKeys.map((x: any) => x.Person.Id),
      [alice.id],
    );
  }
  assert.is(await sessionCount(), before);

  const tokenHeaders: Array<Record<string, string>> = [
    { 'x-auth-token': alice.token },
    { authorization: `Bearer ${alice.token}` },
    { 'zt-session': alice.token },
  ];
  for (const headers of tokenHeaders) {
    const one = await c.call('GET', `${BASE}/ssh_keys/${r.body.Id}.json`, { headers });
    assert.is(one.status, 200, JSON.stringify(headers));
  }
  // Basic as bob cannot see alice's key.
  const other = await c.call('GET', `${BASE}/ssh_keys/${r.body.Id}.json`, {
    headers: basic('bobby', 'bobby-password'),
  });
  assert.is(other.status, 403);
  assert.is(other.body.ResponseType, 'ErrorResponse');
});

test('failed Basic logins are rate limited like /authenticate', async () => {
  const limited = await startTestController({ loginMaxFailuresPerUsername: 3 });
  try {
    const u = await limited.createUser('carla', 'user', 'carla-password');
    for (let i = 0; i < 3; i++) {
      const r = await limited.call('GET', `${BASE}/ssh_keys.json`, { headers: basic('carla', 'bad') });
      assert.is(r.status, 401);
    }
    const r = await limited.call('GET', `${BASE}/ssh_keys.json`, {
      headers: basic('carla', 'carla-password'),
    });
    assert.is(r.status, 429);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.ok(Number(r.headers['retry-after']) > 0);
    // A session token still works meanwhile.
    const t = await limited.call('GET', `${BASE}/ssh_keys.json`, { token: u.token });
    assert.is(t.status, 200);
  } finally {
    await limited.destroy();
  }
});

test('authenticator discovery: the CO authenticator for all, lock states own for users, anyone for admins', async () => {
  // The CO's authenticator is one id for everyone (what every SshKey request names); each person's
  // lock is an AuthenticatorStatus (its Id is the per-person id older clients used).
  const own = await c.call('GET', `${BASE}/authenticators.json`, { token: alice.token });
  assert.is(own.status, 200);
  assert.equal(
    own.body.SshKeyAuthenticators.map((a: any) => a.Id),
    [aliceAuth],
  );
  assert.is(own.body.SshKeyAuthenticators[0].Status, 'Active');
  assert.is(own.body.AuthenticatorStatuses.length, 1);
  const aliceStatus = own.body.AuthenticatorStatuses[0];
  assert.is(aliceStatus.Locked, false);
  assert.is(aliceStatus.SshKeyAuthenticatorId, aliceAuth);
  assert.equal(aliceStatus.Person, { Type: 'CO', Id: alice.id });
  const bobs = await c.call('GET', `${BASE}/authenticators.json`, { token: bob.token });
  assert.equal(
    bobs.body.SshKeyAuthenticators.map((a: any) => a.Id),
    [aliceAuth],
  );
  assert.equal(bobs.body.AuthenticatorStatuses[0].Person, { Type: 'CO', Id: bob.id });

  const one = await c.call('GET', `${BASE}/authenticators/${aliceAuth}.json`, { token: alice.token });
  assert.is(one.status, 200);
  assert.equal(one.body.AuthenticatorStatuses[0].Person, { Type: 'CO', Id: alice.id });
  const byOldId = await c.call('GET', `${BASE}/authenticators/${aliceStatus.Id}.json`, {
    token: alice.token,
  });
  assert.is(byOldId.status, 200);
  assert.equal(byOldId.body.AuthenticatorStatuses, [aliceStatus]);
  if (aliceStatus.Id !== aliceAuth)
    assert.is(
      (await c.call('GET', `${BASE}/authenticators/${aliceStatus.Id}.json`, { token: bob.token })).status,
      403,
    );
  assert.is(
    (await c.call('GET', `${BASE}/authenticators.json?copersonid=${alice.id}`, { token: bob.token })).status,
    403,
  );
  const forAlice = await c.call('GET', `${BASE}/authenticators.json?copersonid=${alice.id}`, {
    token: admin,
  });
  assert.is(forAlice.body.SshKeyAuthenticators[0].Id, aliceAuth);
  assert.equal(forAlice.body.AuthenticatorStatuses, [aliceStatus]);
  const unknown = await c.call('GET', `${BASE}/authenticators.json?copersonid=nobody`, { token: admin });
  assert.is(unknown.status, 404);
  assert.is(unknown.body.Error, 'CO Person Unknown');
  assert.is((await c.call('GET', `${BASE}/authenticators/424242.json`, { token: admin })).status, 404);
  assert.is((await c.call('GET', `${BASE}/authenticators/1.xml`, { token: admin })).status, 415);
  const all = await c.call('GET', `${BASE}/authenticators.json`, { token: admin });
  assert.equal(
    all.body.SshKeyAuthenticators.map((a: any) => a.Id),
    [aliceAuth],
  );
  assert.ok(all.body.AuthenticatorStatuses.some((a: any) => a.Id === aliceStatus.Id));
});

test('a locked authenticator freezes its keys (add, edit, delete, use) until unlocked', async () => {
  const k = makeKey('ed25519');
  const added = await addKey(alice.token, { Type: 'ssh-ed25519', Skey: k.body });
  assert.is(added.status, 201);
  const url = `${BASE}/ssh_keys/${added.body.Id}.json`;

  const lockUrl = (action: string) => `${BASE}/authenticators/${aliceAuth}/${action}?copersonid=${alice.id}`;
  const byUser = await c.call('POST', lockUrl('lock'), { token: alice.token });
  assert.is(byUser.status, 403);
  assert.is(byUser.body.ResponseType, 'ErrorResponse');

  // The CO's authenticator without a person: locks are per person.
  const noPerson = await c.call('POST', `${BASE}/authenticators/${aliceAuth}/lock`, { token: admin });
  assert.is(noPerson.status, 400, noPerson.text);
  assert.ok(noPerson.body.InvalidFields.copersonid);
  const lock = await c.call('POST', lockUrl('lock'), { token: admin });
  assert.is(lock.status, 200, lock.text);
  assert.is(lock.body.AuthenticatorStatuses[0].Locked, true);
  assert.equal(lock.body.AuthenticatorStatuses[0].Person, { Type: 'CO', Id: alice.id });
  assert.is((await c.call('POST', lockUrl('lock'), { token: admin })).status, 200);
  // Bob is not locked by Alice's lock.
  const bobs = await c.call('GET', `${BASE}/authenticators.json?copersonid=${bob.id}`, { token: admin });
  assert.is(bobs.body.AuthenticatorStatuses[0].Locked, false);

  for (const token of [alice.token, admin]) {
    const add = await addKey(token, { Type: 'ssh-ed25519', Skey: makeKey('ed25519').body });
    assert.is(add.status, 403, add.text);
    assert.match(add.body.Error, /locked/);
    const put = await c.call('PUT', url, {
      token,
      body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: k.body, Comment: 'x' }),
    });
    assert.is(put.status, 403);
    assert.match(put.body.Error, /locked/);
    const del = await c.call('DELETE', url, { token });
    assert.is(del.status, 403);
    assert.match(del.body.Error, /locked/);
  }
  // Still viewable.
  assert.is((await c.call('GET', url, { token: alice.token })).status, 200);
  try {
    await c.controller.services.sshKeys.resolveUsableKey(alice.id, added.body.Id);
    assert.unreachable('locked key resolved');
  } catch (err) {
    assert.instance(err, ApiError);
    assert.is((err as ApiError).status, 403);
  }

  const unlock = await c.call('POST', lockUrl('unlock'), { token: admin });
  assert.is(unlock.status, 200, unlock.text);
  assert.is(unlock.body.AuthenticatorStatuses[0].Locked, false);
  const after = await c.call('GET', `${BASE}/authenticators.json?copersonid=${alice.id}`, { token: admin });
  assert.is(after.body.AuthenticatorStatuses[0].Locked, false);
  const put = await c.call('PUT', url, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: k.body, Comment: 'after' }),
  });
  assert.is(put.status, 200);
  await c.controller.services.sshKeys.resolveUsableKey(alice.id, added.body.Id);

  assert.is((await c.call('POST', `${BASE}/authenticators/999999/lock`, { token: admin })).status, 404);
  assert.is((await c.call('POST', `${BASE}/authenticators/abc/unlock`, { token: admin })).status, 400);
  assert.is((await c.call('POST', lockUrl('lock'))).status, 401);

  // The older form: a person's own authenticator id (from before the CO authenticator) still locks them.
  const bobOld = (await c.call('GET', `${BASE}/authenticators.json?copersonid=${bob.id}`, { token: admin }))
    .body.AuthenticatorStatuses[0].Id;
  assert.is.not(bobOld, aliceAuth);
  const bobLock = await c.call('POST', `${BASE}/authenticators/${bobOld}/lock`, { token: admin });
  assert.is(bobLock.status, 200, bobLock.text);
  assert.equal(bobLock.body.AuthenticatorStatuses[0].Person, { Type: 'CO', Id: bob.id });
  assert.is(bobLock.body.AuthenticatorStatuses[0].Locked, true);
  assert.is((await c.call('POST', `${BASE}/authenticators/${bobOld}/unlock`, { token: admin })).status, 200);
});

test('resolveUsableKey: an OpenSSH line and fingerprint for the owner; 404 otherwise', async () => {
  const keys = c.controller.services.sshKeys;
  const k = makeKey('ecdsa', 521);
  const added = await addKey(alice.token, { Skey: k.line });
  assert.is(added.status, 201);
  const usable = await keys.resolveUsableKey(alice.id, added.body.Id);
  assert.is(usable.publicKey, `${k.type} ${k.body}`);
  assert.is(usable.fingerprint, k.fingerprint);
  assert.is(usable.type, 'ecdsa-sha2-nistp521');
  assert.is(usable.id, added.body.Id);
  // ssh-keygen reads the line back.
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-usable-'));
  try {
    writeFileSync(join(dir, 'k.pub'), usable.publicKey + '\n');
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'k.pub')], {
      encoding: 'utf8',
    });
    assert.is(out.split(' ')[1], k.fingerprint);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const expect404 = async (identityId: string, keyId: string) => {
    try {
      await keys.resolveUsableKey(identityId, keyId);
      assert.unreachable(`${identityId}/${keyId} resolved`);
    } catch (err) {
      assert.instance(err, ApiError);
      assert.is((err as ApiError).status, 404, `${keyId}: ${(err as Error).message}`);
    }
  };
  await expect404(bob.id, added.body.Id);
  await expect404(alice.id, '999999');
  await expect404(alice.id, 'abc');
  await expect404(alice.id, '-1');
  await expect404(alice.id, '1e3');
  assert.is(
    (await c.call('DELETE', `${BASE}/ssh_keys/${added.body.Id}.json`, { token: alice.token })).status,
    200,
  );
  await expect404(alice.id, added.body.Id);
});

test('agents have no SSH keys', async () => {
  const agent = await c.createUser('agent-one', 'agent', 'agent-password');
  assert.is((await c.call('GET', `${BASE}/ssh_keys.json`, { token: agent.token })).status, 403);
  const add = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: admin,
    body: sshKeyRequest(agent.id, '1', { Type: 'ssh-ed25519', Skey: makeKey('ed25519').body }),
  });
  assert.is(add.status, 400);
  assert.ok(add.body.InvalidFields.Person);
});

test.run();
