/** POST /authenticate: password and certificate logins, their error paths, and cert issuance. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import {
  assertError,
  certLogin,
  issueCert,
  newCsr,
  randomUuid,
  selfSignedCert,
  type ClientCert,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(90);

let c: TestController;
let alice: { id: string; token: string; password: string };
let aliceCert: ClientCert;

test.before(async () => {
  c = await startTestController();
  alice = await c.createUser('alice', 'user', 'alice-password');
  aliceCert = await issueCert(c, alice.id, '/CN=alice-laptop');
});
test.after(async () => c.destroy());

test('password login: 200, session in the contract shape, token also in the zt-session header', async () => {
  const r = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'alice', password: 'alice-password' },
  });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'currentApiSessionDetailEnvelope', r.body);
  const s = r.body.data;
  assert.ok(typeof s.token === 'string' && s.token.length >= 32);
  assert.is(r.headers['zt-session'], s.token);
  assert.is(s.identityId, alice.id);
  assert.is(s.identity.id, alice.id);
  assert.is(s.identity.name, 'alice');
  assert.is(s.isCertExtendable, false);
  // the default idle timeout is 30 min
  assert.ok(s.expirationSeconds > 1790 && s.expirationSeconds <= 1800, String(s.expirationSeconds));
  assert.is(Date.parse(s.expiresAt) - Date.parse(s.lastActivityAt), 1800_000);
  // the token works
  const me = await c.call('GET', '/current-api-session', { token: s.token });
  assert.is(me.status, 200);
  assert.is(me.body.data.id, s.id);
});

test('each login is a new session with a new token', async () => {
  const a = await c.login('alice', 'alice-password');
  const b = await c.login('alice', 'alice-password');
  assert.is.not(a, b);
  const ra = await c.call('GET', '/current-api-session', { token: a });
  const rb = await c.call('GET', '/current-api-session', { token: b });
  assert.is.not(ra.body.data.id, rb.body.data.id);
});

test('wrong password and unknown user: 401 INVALID_AUTH, indistinguishable', async () => {
  const wrong = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'alice', password: 'not-her-password' },
  });
  assertError(wrong, 401, 'INVALID_AUTH');
  assert.not.ok(wrong.headers['zt-session']);
  const unknown = await c.call('POST', '/authenticate?method=password', {
    body: { username: 'nobody-here', password: 'whatever1' },
  });
  assertError(unknown, 401, 'INVALID_AUTH');
  assert.is(unknown.body.error.message, wrong.body.error.message);
});

test('password login: missing username/password → 400', async () => {
  assertError(await c.call('POST', '/authenticate?method=password', { body: { username: 'alice' } }), 400);
  assertError(
    await c.call('POST', '/authenticate?method=password', { body: { password: 'alice-password' } }),
    400,
  );
  assertError(await c.call('POST', '/authenticate?method=password'), 400);
});

test('missing or unsupported method → 400', async () => {
  const body = { username: 'alice', password: 'alice-password' };
  const missing = await c.call('POST', '/authenticate', { body });
  assertError(missing, 400);
  assert.is(missing.body.error.code, 'COULD_NOT_VALIDATE');
  const jwt = await c.call('POST', '/authenticate?method=ext-jwt', { body });
  assertError(jwt, 400);
  assert.not.ok(jwt.headers['zt-session']);
  assertError(await c.call('POST', '/authenticate?method=kerberos', { body }), 400);
  assertError(await c.call('POST', '/authenticate?method=', { body }), 400);
});

test('GET /authenticate is not a login route', async () => {
  const r = await c.call('GET', '/authenticate?method=password');
  assert.ok(r.status === 404 || r.status === 405, String(r.status));
  assertError(r, r.status);
});

test('admin issues a certificate from an openssl CSR: 201 with certificate, CA and authenticator id', async () => {
  const { csr } = newCsr('/CN=alice-desktop');
  const r = await c.call('POST', `/identities/${alice.id}/certificate`, {
    token: await c.adminToken(),
    body: { csr },
  });
  assert.is(r.status, 201, r.text);
  assert.match(r.body.data.certificate, /^-----BEGIN CERTIFICATE-----/);
  assert.is(r.body.data.ca.trim(), c.caPem.trim());
  const a = await c.call('GET', `/current-identity/authenticators/${r.body.data.authenticatorId}`, {
    token: alice.token,
  });
  assert.is(a.status, 200, a.text);
  assert.is(a.body.data.method, 'cert');
});

test('certificate issuance: bad CSR → 400 COULD_NOT_PROCESS_CSR; unknown identity → 404; non-admin → 403', async () => {
  const admin = await c.adminToken();
  assertError(
    await c.call('POST', `/identities/${alice.id}/certificate`, {
      token: admin,
      body: { csr: 'not a csr' },
    }),
    400,
    'COULD_NOT_PROCESS_CSR',
  );
  // a CSR whose signature was tampered with
  const { csr } = newCsr('/CN=tampered');
  const b64 = csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(b64, 'base64');
  der[der.length - 5] ^= 0xff;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const t = await c.call('POST', `/identities/${alice.id}/certificate`, {
    token: admin,
    body: { csr: tampered },
  });
  assertError(t, 400, 'COULD_NOT_PROCESS_CSR');
  assertError(
    await c.call('POST', `/identities/${randomUuid()}/certificate`, {
      token: admin,
      body: { csr: newCsr().csr },
    }),
    404,
  );
  assertError(
    await c.call('POST', `/identities/${alice.id}/certificate`, {
      token: alice.token,
      body: { csr: newCsr().csr },
    }),
    403,
  );
});

test('cert login over HTTPS with a controller-issued certificate', async () => {
  const r = await certLogin(c, aliceCert);
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'currentApiSessionDetailEnvelope', r.body);
  assert.is(r.headers['zt-session'], r.body.data.token);
  assert.is(r.body.data.identityId, alice.id);
  assert.is(r.body.data.authenticatorId, aliceCert.authenticatorId);
  assert.is(r.body.data.isCertExtendable, true);
  // the token from a cert login works on both listeners
  const plain = await c.call('GET', '/current-identity', { token: r.body.data.token });
  assert.is(plain.status, 200);
  assert.is(plain.body.data.name, 'alice');
});

test('cert login without a certificate → 401 (HTTPS and plain HTTP)', async () => {
  assertError(await certLogin(c), 401, 'INVALID_AUTH');
  assertError(await c.call('POST', '/authenticate?method=cert', { body: {} }), 401, 'INVALID_AUTH');
});

test('cert login with a self-signed certificate not from our CA → 401', async () => {
  const r = await certLogin(c, selfSignedCert('/CN=alice'));
  assertError(r, 401, 'INVALID_AUTH');
  assert.not.ok(r.headers['zt-session']);
});

test('cert login with a certificate whose key does not match cannot even complete TLS', async () => {
  const other = newCsr('/CN=other');
  let failed = false;
  try {
    const r = await certLogin(c, { cert: aliceCert.cert, key: other.key });
    failed = r.status !== 200;
  } catch {
    failed = true;
  }
  assert.ok(failed);
});

test('password login also works over HTTPS, and without a client certificate', async () => {
  const r = await c.callTls('POST', '/authenticate?method=password', {
    body: { username: 'alice', password: 'alice-password' },
  });
  assert.is(r.status, 200, r.text);
  assert.is(r.body.data.identityId, alice.id);
});

test.run();
