/** DELETE /v1/access/certificate/{id} and GET /v1/access/krl, checked with `ssh-keygen -Q`. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  assertOk,
  issue,
  run,
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
  ({ c, dir, admin, user, vm, key, destroy } = await accessFixture('revoker', { grant: true }));
});

test.after(() => destroy());

const newCert = () => issue(c, user.token, { sandbox_id: vm.serverId, public_key: key.pub });
const revoke = (id: string, token = admin, body?: unknown) =>
  c.call('DELETE', `/v1/access/certificate/${id}`, { token, body });

async function fetchKrl(etag?: string) {
  return c.call('GET', '/v1/access/krl', {
    token: admin,
    headers: etag ? { 'if-none-match': etag } : {},
  });
}

async function krlVersion(): Promise<number> {
  const r = await fetchKrl();
  assert.is(r.status, 200);
  assert.is(r.headers['etag'], `"${r.headers['x-krl-version']}"`);
  return Number(r.headers['x-krl-version']);
}

/** `ssh-keygen -Q -f krl cert` → true when it says REVOKED. */
async function isRevoked(krlFile: string, certificate: string): Promise<boolean> {
  const certFile = join(dir, `q-${randomUUID()}-cert.pub`);
  await writeFile(certFile, certificate + '\n');
  const r = await run('ssh-keygen', ['-Q', '-f', krlFile, certFile]);
  const out = r.stdout + r.stderr;
  assert.match(out, /REVOKED|ok/, out);
  const revoked = /REVOKED/.test(out);
  assert.is(r.code, revoked ? 1 : 0, out);
  return revoked;
}

test('DELETE → {message, id}; the record shows REVOKED with reason; twice → 400; unknown → 404', async () => {
  const cert = await newCert();
  const r = await revoke(cert.id, admin, { reason: 'laptop stolen' });
  assertOk(r);
  // The contract: a map of strings.
  for (const v of Object.values(r.body)) assert.type(v, 'string');
  assert.equal(Object.keys(r.body).sort(), ['id', 'message']);
  assert.is(r.body.id, cert.id);
  assert.type(r.body.message, 'string');
  const rec = await c.call('GET', `/v1/access/certificate/${cert.id}`, { token: admin });
  assertOk(rec, 'certificateResponse');
  assert.is(rec.body.status, 'REVOKED');
  assert.is(rec.body.revoke_reason, 'laptop stolen');
  assert.type(rec.body.revoked_at, 'string');

  assertAccessError(await revoke(cert.id), 400, /already revoked/);
  assertAccessError(await revoke(randomUUID()), 404);
  // The owner may revoke their own certificate, without a body.
  const own = await newCert();
  assertOk(await revoke(own.id, user.token));
  assertAccessError(await revoke(own.id, user.token), 400);
});

test("revocation ends the certificate's live sessions as REVOKED; other sessions untouched", async () => {
  const cert = await newCert();
  const other = await newCert();
  const start = async (id: string) => {
    const r = await c.call('POST', '/v1/access/session/start', {
      token: admin,
      body: { certificate_id: id },
    });
    assertOk(r, 'sessionStartResponse');
    return r.body.session_id as string;
  };
  const live1 = await start(cert.id);
  const live2 = await start(cert.id);
  const ended = await start(cert.id);
  const untouched = await start(other.id);
  assertOk(await c.call('POST', '/v1/access/session/end', { token: admin, body: { session_id: ended } }));
  assertOk(await revoke(cert.id));
  const list = await c.call('GET', `/v1/access/sessions?certificate_id=${cert.id}`, { token: admin });
  assertOk(list, 'listSessionsResponse');
  const status = Object.fromEntries(list.body.sessions.map((s: any) => [s.id, s.status]));
  assert.equal(status, { [live1]: 'REVOKED', [live2]: 'REVOKED', [ended]: 'ENDED' });
  for (const s of list.body.sessions) assert.ok(s.ended_at, JSON.stringify(s));
  const active = await c.call('GET', '/v1/access/sessions?active_only=true', { token: admin });
  assert.equal(
    active.body.sessions.map((s: any) => s.id),
    [untouched],
  );
  // No new session on a revoked certificate.
  const r = await c.call('POST', '/v1/access/session/start', {
    token: admin,
    body: { certificate_id: cert.id },
  });
  assertAccessError(r, 409);
});

test('KRL: version (ETag) increases with each revocation; If-None-Match current → 304, old → 200', async () => {
  const v0 = await krlVersion();
  const first = await fetchKrl();
  assert.is(first.headers['content-type'], 'application/octet-stream');
  const etag0 = first.headers['etag']!;
  const not = await fetchKrl(etag0);
  assert.is(not.status, 304);
  assert.is(not.text, '');
  assert.is(not.headers['etag'], etag0);

  const cert = await newCert();
  // Issuing does not move the KRL.
  assert.is(await krlVersion(), v0);
  assertOk(await revoke(cert.id));
  const v1 = await krlVersion();
  assert.ok(v1 > v0, `${v1} > ${v0}`);
  const changed = await fetchKrl(etag0);
  assert.is(changed.status, 200);
  assert.is(changed.headers['etag'], `"${v1}"`);
  assert.is((await fetchKrl(`"${v1}"`)).status, 304);
  // A failed revocation (already revoked) does not move it.
  await revoke(cert.id);
  assert.is(await krlVersion(), v1);
  const again = await newCert();
  assertOk(await revoke(again.id));
  assert.ok((await krlVersion()) > v1);
});

test('ssh-keygen -Q says REVOKED exactly for the revoked serials (2 of 4)', async () => {
  const four = [await newCert(), await newCert(), await newCert(), await newCert()];
  const krlBefore = join(dir, 'before.krl');
  await writeFile(
    krlBefore,
    Buffer.from(
      await (await fetch(c.httpBase + '/v1/access/krl', { headers: { 'zt-session': admin } })).arrayBuffer(),
    ),
  );
  for (const cert of four) assert.is(await isRevoked(krlBefore, cert.certificate), false);

  assertOk(await revoke(four[1]!.id));
  assertOk(await revoke(four[3]!.id));
  const res = await fetch(c.httpBase + '/v1/access/krl', { headers: { 'zt-session': admin } });
  assert.is(res.status, 200);
  const krlFile = join(dir, 'after.krl');
  await writeFile(krlFile, Buffer.from(await res.arrayBuffer()));
  const got = [];
  for (const cert of four) got.push(await isRevoked(krlFile, cert.certificate));
  assert.equal(got, [false, true, false, true]);

  // The KRL names the serials the API reported.
  const dump = await run('ssh-keygen', ['-Q', '-l', '-f', krlFile]);
  for (const cert of [four[1]!, four[3]!]) assert.ok(dump.stdout.includes(cert.serial), dump.stdout);
  for (const cert of [four[0]!, four[2]!]) assert.not.ok(dump.stdout.includes(cert.serial), dump.stdout);
});

test('a user cannot fetch the KRL without a session; agents and users with one can', async () => {
  assertAccessError(await c.call('GET', '/v1/access/krl'), 401);
  const r = await c.call('GET', '/v1/access/krl', { token: user.token });
  assert.is(r.status, 200);
});

test.run();
