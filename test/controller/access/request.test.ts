/** POST /v1/access/request: who may ask for what, TTL rules, key checks, and malformed input. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  createInstance,
  grant,
  issue,
  makeUserKey,
  requestAccess,
  tempDir,
  type TestInstance,
  type UserKeyFiles,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let dir = '';
let cleanup = async () => {};
let admin = '';
let alice: { id: string; token: string };
let bob: { id: string; token: string };
let vm: TestInstance;
let stopped: TestInstance;
let ed: UserKeyFiles;
let dsa: UserKeyFiles;
let rsa1024: UserKeyFiles;

test.before(async () => {
  ({ dir, cleanup } = await tempDir());
  c = await startTestController();
  admin = await c.adminToken();
  alice = await c.createUser('alice');
  bob = await c.createUser('bobby');
  vm = await createInstance(c);
  stopped = await createInstance(c, { state: 'shut off' });
  await grant(c, vm.serverId, alice.id);
  await grant(c, stopped.serverId, alice.id);
  ed = await makeUserKey(dir, 'id_ed', 'ed25519');
  dsa = await makeUserKey(dir, 'id_dsa', 'dsa');
  rsa1024 = await makeUserKey(dir, 'id_rsa1024', 'rsa', 1024);
});

test.after(async () => {
  await c.destroy();
  await cleanup();
});

const body = (extra: Record<string, unknown> = {}) => ({
  sandbox_id: vm.serverId,
  public_key: ed.pub,
  ...extra,
});

test('unknown sandbox → 404, for admins and users', async () => {
  for (const token of [admin, alice.token]) {
    const r = await requestAccess(c, token, body({ sandbox_id: randomUUID() }));
    assertAccessError(r, 404, /no instance/);
  }
  assertAccessError(await requestAccess(c, admin, body({ sandbox_id: 'not-a-uuid' })), 404);
});

test('instance not running → 409', async () => {
  for (const token of [admin, alice.token]) {
    const r = await requestAccess(c, token, body({ sandbox_id: stopped.serverId }));
    assertAccessError(r, 409, /shut off, not running/);
  }
});

test('user without a grant → 403; with a grant → 200; grant removed → 403 again', async () => {
  assertAccessError(await requestAccess(c, bob.token, body()), 403, /no access grant/);
  await grant(c, vm.serverId, bob.id);
  const ok = await issue(c, bob.token, body());
  assert.is(ok.record.body.user_id, bob.id);
  const del = await c.call('DELETE', `/v1/instances/${vm.serverId}/grants/${bob.id}`, { token: admin });
  assert.is(del.status, 200, del.text);
  assertAccessError(await requestAccess(c, bob.token, body()), 403);
});

test('a user asking for another user_id → 403; for their own id → 200', async () => {
  assertAccessError(await requestAccess(c, alice.token, body({ user_id: bob.id })), 403, /on behalf/);
  assertAccessError(await requestAccess(c, alice.token, body({ user_id: 'admin' })), 403);
  const own = await issue(c, alice.token, body({ user_id: alice.id }));
  assert.is(own.record.body.user_id, alice.id);
});

test('an admin on behalf of a user → 200 with that user id (by id or by name); unknown user → 404', async () => {
  const byId = await issue(c, admin, body({ user_id: alice.id }));
  assert.is(byId.record.body.user_id, alice.id);
  assert.ok(byId.record.body.identity.startsWith(`user:${alice.id}-`));
  const byName = await issue(c, admin, body({ user_id: 'alice' }));
  assert.is(byName.record.body.user_id, alice.id);
  // Alice sees it as hers.
  const mine = await c.call('GET', `/v1/access/certificate/${byId.id}`, { token: alice.token });
  assert.is(mine.status, 200, mine.text);
  assertAccessError(await requestAccess(c, admin, body({ user_id: randomUUID() })), 404);
});

test('ttl 0 / 11 / 2.5 / "x" / -1 → 400 naming the allowed range, never capped', async () => {
  for (const ttl of [0, 11, 2.5, 'x', -1, 1e9, '5', true]) {
    const r = await requestAccess(c, alice.token, body({ ttl_minutes: ttl }));
    assertAccessError(r, 400, /ttl_minutes/);
    assert.match(r.body.error, /between 1 and 10/, `ttl ${JSON.stringify(ttl)}: ${r.text}`);
  }
  // Bounds themselves are fine, and the default is 5.
  for (const [ttl, minutes] of [
    [1, 1],
    [10, 10],
    [undefined, 5],
  ] as const) {
    const got = await issue(c, alice.token, body(ttl === undefined ? {} : { ttl_minutes: ttl }));
    const rec = got.record.body;
    assert.is(Date.parse(rec.valid_before) - Date.parse(rec.issued_at), minutes * 60_000);
  }
});

test('DSA, RSA-1024, a private key, a certificate, garbage → 400 saying which', async () => {
  const privateKey = await readFile(ed.keyFile, 'utf8');
  const cases: Array<[string, RegExp]> = [
    [dsa.pub, /DSA/],
    [rsa1024.pub, /RSA key is 1024 bits; at least 2048/],
    [privateKey, /private key/],
    ['hello world', /not an OpenSSH public key/],
    ['ssh-ed25519 AAAAnotbase64!!', /not an OpenSSH public key/],
    ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==', /not an OpenSSH public key/],
  ];
  const issued = await issue(c, alice.token, body());
  cases.push([issued.certificate, /certificate/]);
  for (const [key, why] of cases) {
    const r = await requestAccess(c, alice.token, body({ public_key: key }));
    assertAccessError(r, 400, why);
    assert.match(r.body.error, /public_key/);
  }
});

test('both or neither of public_key and ssh_key_id → 400', async () => {
  assertAccessError(
    await requestAccess(c, alice.token, body({ ssh_key_id: '1' })),
    400,
    /exactly one of public_key or ssh_key_id/,
  );
  assertAccessError(
    await requestAccess(c, alice.token, { sandbox_id: vm.serverId }),
    400,
    /exactly one of public_key or ssh_key_id/,
  );
});

test("ssh_key_id: a key registered in the SSH key registry can be used by id; others' or unknown → 4xx", async () => {
  const auth = await c.call('GET', `/ssh_key_authenticator/authenticators.json?copersonid=${alice.id}`, {
    token: alice.token,
  });
  assert.is(auth.status, 200, auth.text);
  const [type, skey] = ed.pub.trim().split(/\s+/);
  const add = await c.call('POST', '/ssh_key_authenticator/ssh_keys.json', {
    token: alice.token,
    body: {
      RequestType: 'SshKeys',
      Version: '1.0',
      SshKeys: [
        {
          Version: '1.0',
          Person: { Type: 'CO', Id: alice.id },
          Type: type,
          Skey: skey,
          SshKeyAuthenticatorId: auth.body.SshKeyAuthenticators[0].Id,
        },
      ],
    },
  });
  assert.is(add.status, 201, add.text);
  const keyId = add.body.Id;
  for (const id of [keyId, Number(keyId)]) {
    const got = await issue(c, alice.token, { sandbox_id: vm.serverId, ssh_key_id: id });
    assert.is(got.record.body.user_id, alice.id);
  }
  // Bob (granted) cannot use Alice's key.
  await grant(c, vm.serverId, bob.id);
  const r = await requestAccess(c, bob.token, { sandbox_id: vm.serverId, ssh_key_id: keyId });
  assert.ok(r.status >= 400 && r.status < 500, r.text);
  assertAccessError(r, r.status);
  await c.call('DELETE', `/v1/instances/${vm.serverId}/grants/${bob.id}`, { token: admin });
  const unknown = await requestAccess(c, alice.token, { sandbox_id: vm.serverId, ssh_key_id: '999999' });
  assert.ok(unknown.status === 400 || unknown.status === 404, unknown.text);
  assertAccessError(unknown, unknown.status);
});

test('no token → 401 in {error, code}; bad token → 401', async () => {
  const none = await c.call('POST', '/v1/access/request', { body: body() });
  assertAccessError(none, 401, /no API session/);
  const bad = await c.call('POST', '/v1/access/request', { token: 'nope', body: body() });
  assertAccessError(bad, 401, /invalid or has expired/);
  for (const path of ['/v1/access/certificates', '/v1/access/sessions', '/v1/access/krl', '/v1/instances']) {
    assertAccessError(await c.call('GET', path), 401);
  }
});

test('malformed JSON, wrong types, missing fields, oversized bodies → 4xx in {error, code}, never 500', async () => {
  const post = (raw: string | Buffer, contentType = 'application/json') =>
    c.call('POST', '/v1/access/request', {
      token: alice.token,
      raw,
      headers: { 'content-type': contentType },
    });
  const cases: Array<[string | Buffer, string?]> = [
    ['{'],
    ['{"sandbox_id": }'],
    ['null'],
    ['[]'],
    ['"text"'],
    ['42'],
    [''],
    [JSON.stringify({ sandbox_id: 123, public_key: ed.pub })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: 42 })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: ['a'] })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: ed.pub, user_id: {} })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: ed.pub, ssh_key_id: null })],
    [JSON.stringify({ public_key: ed.pub })],
    [JSON.stringify({ sandbox_id: '', public_key: ed.pub })],
    [JSON.stringify({ sandbox_id: 'x'.repeat(65), public_key: ed.pub })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: 'a'.repeat(20000) })],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: ed.pub }), 'text/plain'],
    ['sandbox_id=x', 'application/x-www-form-urlencoded'],
    [Buffer.alloc(1024 * 1024 + 10, 0x20)],
    [JSON.stringify({ sandbox_id: vm.serverId, public_key: ed.pub, pad: 'x'.repeat(2 * 1024 * 1024) })],
  ];
  for (const [raw, type] of cases) {
    const r = await post(raw, type);
    assert.ok(r.status >= 400 && r.status < 500, `${String(raw).slice(0, 60)} → ${r.status} ${r.text}`);
    assertAccessError(r, r.status);
  }
  const big = await post(Buffer.alloc(1024 * 1024 + 10, 0x20));
  assertAccessError(big, 413);
  const bad = await post('{');
  assertAccessError(bad, 400);
  const typed = await post(JSON.stringify({ sandbox_id: 123, public_key: ed.pub }));
  assertAccessError(typed, 400, /sandbox_id/);
});

test('other endpoints: malformed bodies and queries → 4xx in {error, code}', async () => {
  const calls: Array<[string, string, string | undefined]> = [
    ['POST', '/v1/access/session/start', '{'],
    ['POST', '/v1/access/session/start', '{}'],
    ['POST', '/v1/access/session/start', '{"certificate_id": 5}'],
    ['POST', '/v1/access/session/end', '[]'],
    ['POST', '/v1/access/session/end', '{"session_id": ""}'],
    ['DELETE', `/v1/access/certificate/${randomUUID()}`, '{"reason": 5}'],
    ['POST', '/v1/access/ca/rotate', '{"key_type": "dsa"}'],
    ['POST', '/v1/access/ca/abc/retire', undefined],
    ['POST', '/v1/access/ca/0/retire', undefined],
    ['GET', '/v1/access/certificates?limit=0', undefined],
    ['GET', '/v1/access/certificates?limit=abc', undefined],
    ['GET', '/v1/access/certificates?limit=100000', undefined],
    ['GET', '/v1/access/certificates?offset=-1', undefined],
    ['GET', '/v1/access/certificates?status=BOGUS', undefined],
    ['GET', '/v1/access/certificates?active_only=maybe', undefined],
    ['GET', '/v1/access/sessions?limit=-5', undefined],
    ['GET', '/v1/access/sessions?active_only=perhaps', undefined],
    ['GET', '/v1/access/nope', undefined],
  ];
  for (const [method, path, raw] of calls) {
    const r = await c.call(method, path, {
      token: admin,
      raw,
      headers: raw !== undefined ? { 'content-type': 'application/json' } : {},
    });
    assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} ${raw} → ${r.status} ${r.text}`);
    assertAccessError(r, r.status);
  }
});

test.run();
