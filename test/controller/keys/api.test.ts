import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { makeKey } from './keygen.js';
import { authenticatorIdOf, BASE, sshKeyRequest } from './api-helpers.js';

let c: TestController;
let admin: string;
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let aliceAuth: string;
let bobAuth: string;

test.before(async () => {
  c = await startTestController();
  admin = await c.adminToken();
  alice = await c.createUser('alice', 'user');
  bob = await c.createUser('bobby', 'user');
  aliceAuth = await authenticatorIdOf(c, alice.token, alice.id);
  bobAuth = await authenticatorIdOf(c, bob.token, bob.id);
});
test.after(async () => c.destroy());

const DATE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

test('a user adds a key and views it in the COmanage format', async () => {
  const k = makeKey('ed25519');
  const add = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Comment: 'laptop', Type: 'ssh-ed25519', Skey: k.body }),
  });
  assert.is(add.status, 201, add.text);
  assert.equal(Object.keys(add.body), ['ResponseType', 'Version', 'ObjectType', 'Id']);
  assert.is(add.body.ResponseType, 'NewObject');
  assert.is(add.body.Version, '1.0');
  assert.is(add.body.ObjectType, 'SshKey');
  assert.match(add.body.Id, /^\d+$/);

  const one = await c.call('GET', `${BASE}/ssh_keys/${add.body.Id}.json`, { token: alice.token });
  assert.is(one.status, 200);
  assert.is(one.body.ResponseType, 'SshKeys');
  assert.is(one.body.Version, '1.0');
  assert.is(one.body.SshKeys.length, 1);
  const key = one.body.SshKeys[0];
  assert.equal(key.Person, { Type: 'CO', Id: alice.id });
  assert.is(key.Version, '1.0');
  assert.is(key.Id, add.body.Id);
  assert.is(key.Comment, 'laptop');
  assert.is(key.Type, 'ssh-ed25519');
  assert.is(key.Skey, k.body);
  assert.match(key.Created, DATE);
  assert.is(key.Modified, key.Created);
  assert.is(key.Revision, '0');
  assert.is(key.Deleted, false);
  assert.is(key.SshKeyAuthenticatorId, aliceAuth);
  assert.is(key.Fingerprint, k.fingerprint);
});

test('authorized_keys lines and RFC 4716 blocks are accepted; type and comment come from them', async () => {
  const ec = makeKey('ecdsa', 384, 'alice@desk');
  const r1 = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Skey: ec.line }),
  });
  assert.is(r1.status, 201, r1.text);
  const k1 = (await c.call('GET', `${BASE}/ssh_keys/${r1.body.Id}.json`, { token: alice.token })).body
    .SshKeys[0];
  assert.is(k1.Type, 'ecdsa-sha2-nistp384');
  assert.is(k1.Skey, ec.body);
  assert.is(k1.Comment, 'alice@desk');

  const rsa = makeKey('rsa', 2048);
  const r2 = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-rsa', Skey: rsa.rfc4716, Comment: 'mine' }),
  });
  assert.is(r2.status, 201, r2.text);
  const k2 = (await c.call('GET', `${BASE}/ssh_keys/${r2.body.Id}.json`, { token: alice.token })).body
    .SshKeys[0];
  assert.is(k2.Type, 'ssh-rsa');
  assert.is(k2.Skey, rsa.body);
  assert.is(k2.Comment, 'mine', 'the request Comment wins');
  assert.is(k2.Fingerprint, rsa.fingerprint);
});

test('lists: admins see everything, users their own; copersonid narrows to one person', async () => {
  const bk = makeKey('ed25519');
  const add = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: admin,
    body: sshKeyRequest(bob.id, bobAuth, { Type: 'ssh-ed25519', Skey: bk.body }),
  });
  assert.is(add.status, 201, add.text);

  const all = await c.call('GET', `${BASE}/ssh_keys.json`, { token: admin });
  assert.is(all.status, 200);
  const owners = new Set(all.body.SshKeys.map((k: any) => k.Person.Id));
  assert.ok(owners.has(alice.id) && owners.has(bob.id));

  const mine = await c.call('GET', `${BASE}/ssh_keys.json`, { token: bob.token });
  assert.is(mine.status, 200);
  assert.equal(
    mine.body.SshKeys.map((k: any) => k.Id),
    [add.body.Id],
  );

  const perPerson = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=${alice.id}`, { token: admin });
  assert.is(perPerson.status, 200);
  assert.ok(perPerson.body.SshKeys.length >= 3);
  assert.ok(perPerson.body.SshKeys.every((k: any) => k.Person.Id === alice.id));

  const own = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=${alice.id}`, { token: alice.token });
  assert.is(own.status, 200);

  const other = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=${alice.id}`, { token: bob.token });
  assert.is(other.status, 403);
  assert.is(other.body.ResponseType, 'ErrorResponse');

  const unknown = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=no-such-person`, { token: admin });
  assert.is(unknown.status, 404);
  assert.is(unknown.body.ResponseType, 'ErrorResponse');
  assert.is(unknown.body.Error, 'CO Person Unknown');

  const carol = await c.createUser('carol-user', 'user');
  const none = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=${carol.id}`, { token: admin });
  assert.is(none.status, 204);
  assert.is(none.text, '');

  const noKeys = await c.call('GET', `${BASE}/ssh_keys.json`, { token: carol.token });
  assert.is(noKeys.status, 200);
  assert.equal(noKeys.body.SshKeys, []);
});

test('PUT edits and bumps Revision; DELETE is a soft delete', async () => {
  const k = makeKey('ed25519');
  const add = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: bob.token,
    body: sshKeyRequest(bob.id, bobAuth, { Type: 'ssh-ed25519', Skey: k.body, Comment: 'v0' }),
  });
  const id = add.body.Id;
  const url = `${BASE}/ssh_keys/${id}.json`;

  const put = await c.call('PUT', url, {
    token: bob.token,
    body: sshKeyRequest(bob.id, bobAuth, { Type: 'ssh-ed25519', Skey: k.body, Comment: 'v1' }),
  });
  assert.is(put.status, 200, put.text);
  assert.is(put.text, '');
  let key = (await c.call('GET', url, { token: bob.token })).body.SshKeys[0];
  assert.is(key.Revision, '1');
  assert.is(key.Comment, 'v1');

  // Replace the key material itself; echoing GET's read-only fields is fine.
  const k2 = makeKey('ecdsa', 256);
  const put2 = await c.call('PUT', url, {
    token: admin,
    body: sshKeyRequest(bob.id, bobAuth, { ...key, Type: undefined, Skey: k2.line, Comment: undefined }),
  });
  assert.is(put2.status, 200, put2.text);
  key = (await c.call('GET', url, { token: bob.token })).body.SshKeys[0];
  assert.is(key.Revision, '2');
  assert.is(key.Type, 'ecdsa-sha2-nistp256');
  assert.is(key.Fingerprint, k2.fingerprint);
  assert.is(key.Comment, k2.comment);

  const del = await c.call('DELETE', url, { token: bob.token });
  assert.is(del.status, 200, del.text);
  assert.is(del.text, '');
  const gone = await c.call('GET', url, { token: bob.token });
  assert.is(gone.status, 200);
  assert.is(gone.body.SshKeys[0].Deleted, true);
  assert.is(gone.body.SshKeys[0].Revision, '3');
  const list = await c.call('GET', `${BASE}/ssh_keys.json`, { token: bob.token });
  assert.not.ok(list.body.SshKeys.some((x: any) => x.Id === id));

  // A deleted key cannot be edited or deleted again, and its material may be registered anew.
  assert.is((await c.call('DELETE', url, { token: bob.token })).status, 404);
  const again = await c.call('PUT', url, {
    token: bob.token,
    body: sshKeyRequest(bob.id, bobAuth, { Type: 'ssh-ed25519', Skey: k.body }),
  });
  assert.is(again.status, 404);
  const readd = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: bob.token,
    body: sshKeyRequest(bob.id, bobAuth, { Skey: k2.line }),
  });
  assert.is(readd.status, 201, readd.text);
});

test("someone else's key: 403 for users, allowed for admins; unknown ids 404", async () => {
  const k = makeKey('ed25519');
  const add = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: k.body }),
  });
  const url = `${BASE}/ssh_keys/${add.body.Id}.json`;
  for (const method of ['GET', 'DELETE']) {
    const r = await c.call(method, url, { token: bob.token });
    assert.is(r.status, 403, method);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.is(r.body.Id, add.body.Id);
  }
  const put = await c.call('PUT', url, {
    token: bob.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: k.body }),
  });
  assert.is(put.status, 403);

  // Adding a key for someone else.
  const forAlice = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: bob.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: makeKey('ed25519').body }),
  });
  assert.is(forAlice.status, 403);
  assert.is(forAlice.body.Id, 'New');

  assert.is((await c.call('GET', url, { token: admin })).status, 200);

  for (const path of ['/ssh_keys/999999.json', '/ssh_keys/99999999999999999999999.json']) {
    const r = await c.call('GET', BASE + path, { token: admin });
    assert.is(r.status, 404, path);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.is(r.body.Error, 'SshKey Unknown');
    assert.is(r.headers['content-type']?.split(';')[0], 'application/json');
  }
  const d = await c.call('DELETE', `${BASE}/ssh_keys/999999.json`, { token: admin });
  assert.is(d.status, 404);

  const nonNumeric = await c.call('GET', `${BASE}/ssh_keys/abc.json`, { token: admin });
  assert.is(nonNumeric.status, 400);
  assert.ok(nonNumeric.body.InvalidFields.Id);
  const empty = await c.call('DELETE', `${BASE}/ssh_keys/.json`, { token: admin });
  assert.is(empty.status, 400);
});

test('only JSON: other suffixes, or none, are refused with a clear message', async () => {
  for (const [method, path] of [
    ['GET', '/ssh_keys.xml'],
    ['GET', '/ssh_keys'],
    ['POST', '/ssh_keys.xml'],
    ['GET', '/ssh_keys/1.xml'],
    ['GET', '/ssh_keys/1'],
    ['PUT', '/ssh_keys/1.xml'],
    ['DELETE', '/ssh_keys/1'],
  ] as const) {
    const r = await c.call(method, BASE + path, { token: admin });
    assert.is(r.status, 415, `${method} ${path}`);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.match(r.body.Error, /only JSON is supported/);
  }
  const unknownPath = await c.call('GET', `${BASE}/nothing-here.json`, { token: admin });
  assert.is(unknownPath.status, 404);
  assert.is(unknownPath.body.ResponseType, 'ErrorResponse');
});

test('400 InvalidFields for bad requests, never 500', async () => {
  const k = makeKey('ed25519');
  const good = () => sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: k.body });
  const post = (body: unknown) => c.call('POST', `${BASE}/ssh_keys.json`, { token: alice.token, body });
  const invalid = async (body: unknown, field: string, re?: RegExp) => {
    const r = await post(body);
    assert.is(r.status, 400, `${field}: ${r.text}`);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.is(r.body.Version, '1.0');
    assert.is(r.body.Id, 'New');
    assert.ok(r.body.InvalidFields?.[field], `${field} in ${r.text}`);
    if (re) assert.match(r.body.InvalidFields[field].join(' '), re);
    return r;
  };

  const v = await invalid({ ...good(), Version: '2.0' }, 'Version');
  assert.equal(v.body.InvalidFields, { Version: ['Unknown version'] });
  const item = (extra: Record<string, unknown>) => ({
    ...good(),
    SshKeys: [{ ...good().SshKeys[0], ...extra }],
  });
  await invalid(item({ Version: '0.9' }), 'Version', /Unknown version/);
  await invalid({ ...good(), RequestType: 'Keys' }, 'RequestType');
  await invalid({ ...good(), SshKeys: [] }, 'SshKeys');
  await invalid({ ...good(), SshKeys: [good().SshKeys[0], good().SshKeys[0]] }, 'SshKeys');
  await invalid({ ...good(), SshKeys: 'x' }, 'SshKeys');
  await invalid({ ...good(), SshKeys: [42] }, 'SshKeys');
  await invalid(item({ Person: 'me' }), 'Person');
  await invalid(item({ Person: { Type: 'Org', Id: alice.id } }), 'Person');
  await invalid(item({ Type: 'ssh-foo' }), 'Type', /Unknown key type/);
  await invalid(item({ Type: 42 }), 'Type');
  await invalid(item({ Skey: 42 }), 'Skey');
  await invalid(item({ Skey: undefined }), 'Skey');
  await invalid(item({ Type: 'ssh-rsa' }), 'Type', /ssh-ed25519/);
  await invalid(item({ Type: undefined }), 'Type', /required/);
  await invalid(item({ Comment: 'x'.repeat(257) }), 'Comment', /256/);
  await invalid(item({ Comment: '<script>' }), 'Comment', /< or >/);
  await invalid(item({ Comment: ['a'] }), 'Comment');
  await invalid(item({ Skey: 'A'.repeat(16 * 1024 + 1) }), 'Skey', /16384/);
  await invalid(item({ SshKeyAuthenticatorId: undefined }), 'SshKeyAuthenticatorId');
  await invalid(item({ SshKeyAuthenticatorId: 'abc' }), 'SshKeyAuthenticatorId');
  // Only the CO's authenticator, or (ids from before there was one) the person's own per-person id.
  await invalid(
    item({ SshKeyAuthenticatorId: '999' }),
    'SshKeyAuthenticatorId',
    /CO's SSH key authenticator, which is 1/,
  );
  const bobLegacy = (
    await c.call('GET', `${BASE}/authenticators.json?copersonid=${bob.id}`, { token: admin })
  ).body.AuthenticatorStatuses[0].Id;
  await invalid(item({ SshKeyAuthenticatorId: bobLegacy }), 'SshKeyAuthenticatorId', /which is 1/);
  await invalid(item({ Colour: 'blue' }), 'Colour', /Unknown field/);
  await invalid({ ...good(), Extra: 1 }, 'Extra');
  await invalid([good()], 'SshKeys');

  // The admin adds a key for an identity that does not exist.
  const ghost = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: admin,
    body: sshKeyRequest('00000000-0000-0000-0000-000000000000', '1', { Type: 'ssh-ed25519', Skey: k.body }),
  });
  assert.is(ghost.status, 400);
  assert.equal(ghost.body.InvalidFields.Person, ['CO Person Unknown']);

  // Several problems are reported together.
  const many = await post(item({ Type: 'ssh-foo', Comment: '<b>', Version: '3' }));
  assert.is(many.status, 400);
  assert.ok(
    many.body.InvalidFields.Type && many.body.InvalidFields.Comment && many.body.InvalidFields.Version,
  );

  for (const [raw, type] of [
    ['{"RequestType":', 'application/json'],
    ['', 'application/json'],
    ['null', 'application/json'],
    ['"text"', 'application/json'],
  ] as const) {
    const r = await c.call('POST', `${BASE}/ssh_keys.json`, {
      token: alice.token,
      raw,
      headers: { 'content-type': type },
    });
    assert.is(r.status, 400, `${raw}: ${r.text}`);
    assert.is(r.body.ResponseType, 'ErrorResponse');
    assert.ok(r.body.InvalidFields);
  }
  const noBody = await c.call('POST', `${BASE}/ssh_keys.json`, { token: alice.token });
  assert.is(noBody.status, 400, noBody.text);
  assert.match(noBody.body.InvalidFields.SshKeys[0], /not provided/);

  const xml = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    raw: '<SshKeys/>',
    headers: { 'content-type': 'application/xml' },
  });
  assert.is(xml.status, 415);
  assert.is(xml.body.ResponseType, 'ErrorResponse');

  const huge = await c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: item({ Comment: 'x'.repeat(200 * 1024) }),
  });
  assert.is(huge.status, 413);
  assert.is(huge.body.ResponseType, 'ErrorResponse');

  const badPut = await c.call('PUT', `${BASE}/ssh_keys/1.json`, {
    token: admin,
    raw: '{',
    headers: { 'content-type': 'application/json' },
  });
  assert.is(badPut.status, 400);
  assert.is(badPut.body.Id, '1');

  const badQuery = await c.call('GET', `${BASE}/ssh_keys.json?copersonid=a&copersonid=b`, { token: admin });
  assert.is(badQuery.status, 400);
  const unknownQuery = await c.call('GET', `${BASE}/ssh_keys.json?person=a`, { token: admin });
  assert.is(unknownQuery.status, 400);
});

test('refused key material: DSA, rsa1, short RSA, private keys, duplicates', async () => {
  const post = (fields: Record<string, unknown>, person = alice.id, auth = aliceAuth, token = alice.token) =>
    c.call('POST', `${BASE}/ssh_keys.json`, { token, body: sshKeyRequest(person, auth, fields) });
  const dsa = makeKey('dsa');
  let r = await post({ Type: 'ssh-dss', Skey: dsa.body });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Type[0], /insecure/);
  r = await post({ Skey: dsa.line });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Type[0], /insecure/);
  r = await post({ Type: 'ssh-rsa1', Skey: '2048 65537 12345678901234567890 old@host' });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Type[0], /ssh-rsa1.*insecure/);

  const short = makeKey('rsa', 1024);
  r = await post({ Type: 'ssh-rsa', Skey: short.body });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Skey[0], /2048/);

  const priv = makeKey('ed25519');
  r = await post({ Type: 'ssh-ed25519', Skey: priv.privatePem });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Skey[0], /private key/);

  const dup = makeKey('ed25519');
  assert.is((await post({ Type: 'ssh-ed25519', Skey: dup.body })).status, 201);
  r = await post({ Skey: dup.line });
  assert.is(r.status, 400);
  assert.match(r.body.InvalidFields.Skey[0], /already registered/);
  // Concurrent duplicates: exactly one wins.
  const race = makeKey('ed25519');
  const results = await Promise.all(
    Array.from({ length: 5 }, () => post({ Type: 'ssh-ed25519', Skey: race.body })),
  );
  assert.equal(results.map((x) => x.status).sort(), [201, 400, 400, 400, 400]);
  // Another person may register the same key.
  assert.is((await post({ Type: 'ssh-ed25519', Skey: dup.body }, bob.id, bobAuth, bob.token)).status, 201);

  // An edit that would duplicate another live key of the same person.
  const other = await post({ Type: 'ssh-ed25519', Skey: makeKey('ed25519').body });
  const put = await c.call('PUT', `${BASE}/ssh_keys/${other.body.Id}.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Type: 'ssh-ed25519', Skey: dup.body }),
  });
  assert.is(put.status, 400);
  assert.is(put.body.Id, other.body.Id);
  assert.match(put.body.InvalidFields.Skey[0], /already registered/);
  // Moving a key to another person is refused.
  const move = await c.call('PUT', `${BASE}/ssh_keys/${other.body.Id}.json`, {
    token: admin,
    body: sshKeyRequest(bob.id, bobAuth, { Type: 'ssh-ed25519', Skey: makeKey('ed25519').body }),
  });
  assert.is(move.status, 400);
  assert.ok(move.body.InvalidFields.Person);
  // Id in the body must match the URL.
  const idMismatch = await c.call('PUT', `${BASE}/ssh_keys/${other.body.Id}.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Id: '1', Type: 'ssh-ed25519', Skey: makeKey('ed25519').body }),
  });
  assert.is(idMismatch.status, 400);
  assert.ok(idMismatch.body.InvalidFields.Id);
});

test('keys survive a controller restart', async () => {
  const before = await c.call('GET', `${BASE}/ssh_keys.json`, { token: admin });
  await c.restart();
  admin = await c.adminToken();
  const after = await c.call('GET', `${BASE}/ssh_keys.json`, { token: admin });
  assert.equal(after.body, before.body);
});

test.run();
