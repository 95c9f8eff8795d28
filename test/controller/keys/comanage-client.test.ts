/**
 * What a COmanage SshKey API client sends (seeds/ssh-key-api.md): HTTP Basic, the document's JSON
 * bodies, and the one SshKeyAuthenticatorId "instantiated for the CO" in every person's requests —
 * no per-person discovery call first. Status lines are read raw (node:http's statusMessage): the
 * document's reason phrases are part of the answer.
 */
import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { makeKey } from './keygen.js';
import { basic, BASE } from './api-helpers.js';

let c: TestController;
let alice: { id: string; password: string };
let bob: { id: string; password: string };
let adminAuth: Record<string, string>;

interface Raw {
  status: number;
  reason: string;
  body: any;
}

/** One request as the client writes it; the status line comes back as sent by the server. */
function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Raw> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const all: Record<string, string> = { accept: 'application/json', ...headers };
  if (payload !== undefined) {
    all['content-type'] = 'application/json';
    all['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = request(c.httpBase + BASE + path, { method, headers: all, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode!, reason: res.statusMessage!, body: text ? JSON.parse(text) : '' });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sshKeys = (personId: string, authenticatorId: string, key: { type: string; body: string }) => ({
  RequestType: 'SshKeys',
  Version: '1.0',
  SshKeys: [
    {
      Version: '1.0',
      Person: { Type: 'CO', Id: personId },
      Comment: 'laptop',
      Type: key.type,
      Skey: key.body,
      SshKeyAuthenticatorId: authenticatorId,
    },
  ],
});

test.before(async () => {
  c = await startTestController();
  adminAuth = basic('admin', c.adminPassword);
  const a = await c.createUser('alice-co', 'user', 'alice-password');
  const b = await c.createUser('bob-co', 'user', 'bob-password');
  alice = { id: a.id, password: a.password };
  bob = { id: b.id, password: b.password };
});
test.after(async () => c.destroy());

test('one CO authenticator id for every person: 201 Added with no per-person call first', async () => {
  const view = await call('GET', '/authenticators.json', adminAuth);
  assert.is(view.status, 200);
  assert.is(view.body.SshKeyAuthenticators.length, 1);
  const coId: string = view.body.SshKeyAuthenticators[0].Id;

  const ids: string[] = [];
  for (const [who, password] of [
    [alice, 'alice-password'],
    [bob, 'bob-password'],
  ] as const) {
    const name = who === alice ? 'alice-co' : 'bob-co';
    const added = await call(
      'POST',
      '/ssh_keys.json',
      basic(name, password),
      sshKeys(who.id, coId, makeKey('ed25519')),
    );
    assert.is(added.status, 201, JSON.stringify(added.body));
    assert.is(added.reason, 'Added');
    assert.equal(Object.keys(added.body), ['ResponseType', 'Version', 'ObjectType', 'Id']);
    ids.push(added.body.Id);
  }
  // An admin adds for someone else with the same id.
  const forBob = await call('POST', '/ssh_keys.json', adminAuth, sshKeys(bob.id, coId, makeKey('ed25519')));
  assert.is(forBob.status, 201);
  assert.is(forBob.reason, 'Added');

  const all = await call('GET', '/ssh_keys.json', adminAuth);
  assert.is(all.status, 200);
  assert.is(all.reason, 'OK');
  assert.is(all.body.SshKeys.length, 3);
  for (const k of all.body.SshKeys) assert.is(k.SshKeyAuthenticatorId, coId);
  assert.equal(
    all.body.SshKeys.map((k: any) => k.Person),
    [
      { Type: 'CO', Id: alice.id },
      { Type: 'CO', Id: bob.id },
      { Type: 'CO', Id: bob.id },
    ],
  );
  // The view lists the CO authenticator once, and each person's lock state under it.
  const after = await call('GET', '/authenticators.json', adminAuth);
  assert.equal(after.body.SshKeyAuthenticators, view.body.SshKeyAuthenticators);
  for (const s of after.body.AuthenticatorStatuses) assert.is(s.SshKeyAuthenticatorId, coId);
});

test('status lines: 200 OK (edit), 200 Deleted, 404 SshKey Unknown, 400 Invalid Fields, 400 Bad Request, 401 Unauthorized', async () => {
  const coId = (await call('GET', '/authenticators.json', basic('alice-co', 'alice-password'))).body
    .SshKeyAuthenticators[0].Id;
  const alices = basic('alice-co', 'alice-password');
  const key = makeKey('ed25519');
  const added = await call('POST', '/ssh_keys.json', alices, sshKeys(alice.id, coId, key));
  assert.is(added.status, 201);

  const edit = sshKeys(alice.id, coId, key);
  edit.SshKeys[0]!.Comment = 'desktop';
  const put = await call('PUT', `/ssh_keys/${added.body.Id}.json`, alices, edit);
  assert.is(put.status, 200, JSON.stringify(put.body));
  assert.is(put.reason, 'OK');

  const del = await call('DELETE', `/ssh_keys/${added.body.Id}.json`, alices);
  assert.is(del.status, 200);
  assert.is(del.reason, 'Deleted');
  const again = await call('DELETE', `/ssh_keys/${added.body.Id}.json`, alices);
  assert.is(again.status, 404);
  assert.is(again.reason, 'SshKey Unknown');
  assert.is(again.body.ResponseType, 'ErrorResponse');
  const unknown = await call('PUT', '/ssh_keys/987654.json', alices, edit);
  assert.is(unknown.status, 404);
  assert.is(unknown.reason, 'SshKey Unknown');

  const bad = sshKeys(alice.id, coId, { type: 'ssh-ed25519', body: 'not-a-key' });
  const invalid = await call('POST', '/ssh_keys.json', alices, bad);
  assert.is(invalid.status, 400);
  assert.is(invalid.reason, 'Invalid Fields');
  assert.ok(invalid.body.InvalidFields.Skey);
  const wrongAuthenticator = await call('POST', '/ssh_keys.json', alices, sshKeys(alice.id, '999', key));
  assert.is(wrongAuthenticator.reason, 'Invalid Fields');
  assert.match(
    wrongAuthenticator.body.InvalidFields.SshKeyAuthenticatorId[0],
    new RegExp(`which is ${coId}`),
  );

  const noBody = await call('POST', '/ssh_keys.json', alices);
  assert.is(noBody.status, 400);
  assert.is(noBody.reason, 'Bad Request');
  assert.match(noBody.body.Error, /SSH Key Request not provided in POST body/);

  for (const headers of [{}, basic('alice-co', 'wrong')]) {
    const r = await call('GET', '/ssh_keys.json', headers);
    assert.is(r.status, 401);
    assert.is(r.reason, 'Unauthorized');
  }
});

test('a lock stays per person: locking Alice leaves Bob adding keys with the same id', async () => {
  const coId = (await call('GET', '/authenticators.json', adminAuth)).body.SshKeyAuthenticators[0].Id;
  const lock = await call('POST', `/authenticators/${coId}/lock?copersonid=${alice.id}`, adminAuth);
  assert.is(lock.status, 200);
  const refused = await call(
    'POST',
    '/ssh_keys.json',
    basic('alice-co', 'alice-password'),
    sshKeys(alice.id, coId, makeKey('ed25519')),
  );
  assert.is(refused.status, 403);
  assert.match(refused.body.Error, /locked/);
  const ok = await call(
    'POST',
    '/ssh_keys.json',
    basic('bob-co', 'bob-password'),
    sshKeys(bob.id, coId, makeKey('ed25519')),
  );
  assert.is(ok.status, 201);
  assert.is(ok.reason, 'Added');
  assert.is(
    (await call('POST', `/authenticators/${coId}/unlock?copersonid=${alice.id}`, adminAuth)).status,
    200,
  );
});

test("a client still sending the person's older per-person authenticator id keeps working", async () => {
  const mine = await call('GET', '/authenticators.json', basic('bob-co', 'bob-password'));
  const olderId: string = mine.body.AuthenticatorStatuses[0].Id;
  const coId: string = mine.body.SshKeyAuthenticators[0].Id;
  assert.is.not(olderId, coId);
  const added = await call(
    'POST',
    '/ssh_keys.json',
    basic('bob-co', 'bob-password'),
    sshKeys(bob.id, olderId, makeKey('ed25519')),
  );
  assert.is(added.status, 201, JSON.stringify(added.body));
  const one = await call('GET', `/ssh_keys/${added.body.Id}.json`, basic('bob-co', 'bob-password'));
  assert.is(one.body.SshKeys[0].SshKeyAuthenticatorId, coId);
});

test.run();
