/**
 * Certificate rotation: POST …/authenticators/{id}/extend over mTLS with the current certificate,
 * then …/extend-verify. The old certificate works until verify; afterwards only the new one does.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as x509 from '@peculiar/x509';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { assertContract, ZITI } from '../../helpers/contract.js';
import {
  assertError,
  certLogin,
  certText,
  csrForKey,
  issueCert,
  newCsr,
  selfSignedCert,
  type ClientCert,
} from './util.js';
import { watchdog } from '../../helpers/wait.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);
watchdog(90);

let c: TestController;
let gina: { id: string; token: string; password: string };
let old: ClientCert;
let other: ClientCert;
let certToken: string;
let updbId: string;
let renewed: { key: string; cert: string };

const ext = (id: string) => `/current-identity/authenticators/${id}/extend`;
const verify = (id: string) => `/current-identity/authenticators/${id}/extend-verify`;

test.before(async () => {
  c = await startTestController();
  gina = await c.createUser('gina', 'user', 'gina-password');
  old = await issueCert(c, gina.id, '/CN=gina-old/O=vmwarden-tests');
  other = await issueCert(c, gina.id, '/CN=gina-other');
  const list = await c.call(
    'GET',
    '/current-identity/authenticators?filter=' + encodeURIComponent('method = "updb"'),
    {
      token: gina.token,
    },
  );
  updbId = list.body.data[0].id;
});
test.after(async () => c.destroy());

test('login by certificate over HTTPS', async () => {
  const r = await certLogin(c, old);
  assert.is(r.status, 200, r.text);
  assert.is(r.body.data.authenticatorId, old.authenticatorId);
  assert.is(r.body.data.isCertExtendable, true);
  certToken = r.body.data.token;
});

test('extend without presenting the current certificate → 401', async () => {
  const { csr } = newCsr('/CN=gina-new');
  // plain HTTP: no TLS at all
  assertError(
    await c.call('POST', ext(old.authenticatorId), { token: certToken, body: { clientCertCsr: csr } }),
    401,
  );
  // HTTPS without a client certificate
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), { token: certToken, body: { clientCertCsr: csr } }),
    401,
  );
  // HTTPS presenting another (valid) certificate of the same identity
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), {
      token: certToken,
      body: { clientCertCsr: csr },
      cert: other.cert,
      key: other.key,
    }),
    401,
  );
  // HTTPS presenting a self-signed certificate
  const rogue = selfSignedCert('/CN=gina-old/O=vmwarden-tests');
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), {
      token: certToken,
      body: { clientCertCsr: csr },
      cert: rogue.cert,
      key: rogue.key,
    }),
    401,
  );
  // the certificate alone is not a session
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), {
      body: { clientCertCsr: csr },
      cert: old.cert,
      key: old.key,
    }),
    401,
    'UNAUTHORIZED',
  );
  const a = await c.call('GET', `/current-identity/authenticators/${old.authenticatorId}`, {
    token: certToken,
  });
  assert.is(a.body.data.isExtendRequested, false);
});

test('extend with a bad CSR → 400 COULD_NOT_PROCESS_CSR', async () => {
  for (const bad of [
    'garbage',
    '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
    old.cert,
  ]) {
    const r = await c.callTls('POST', ext(old.authenticatorId), {
      token: certToken,
      body: { clientCertCsr: bad },
      cert: old.cert,
      key: old.key,
    });
    assertError(r, 400, 'COULD_NOT_PROCESS_CSR');
  }
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), {
      token: certToken,
      body: {},
      cert: old.cert,
      key: old.key,
    }),
    400,
  );
});

test('extend on a updb authenticator → 409; on another identity’s → 404', async () => {
  const { csr } = newCsr('/CN=x');
  assertError(
    await c.callTls('POST', ext(updbId), {
      token: certToken,
      body: { clientCertCsr: csr },
      cert: old.cert,
      key: old.key,
    }),
    409,
    'CAN_NOT_UPDATE_AUTHENTICATOR',
  );
  const admin = await c.adminToken();
  assertError(
    await c.callTls('POST', ext(old.authenticatorId), {
      token: admin,
      body: { clientCertCsr: csr },
      cert: old.cert,
      key: old.key,
    }),
    404,
  );
});

test('extend over mTLS with the current certificate → {clientCert, ca}: subject from the CSR, SANs from the old cert', async () => {
  const next = newCsr('/CN=gina-renewed/O=vmwarden-tests');
  const r = await c.callTls('POST', ext(old.authenticatorId), {
    token: certToken,
    body: { clientCertCsr: next.csr },
    cert: old.cert,
    key: old.key,
  });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'identityExtendEnrollmentEnvelope', r.body);
  assert.is(r.body.data.ca.trim(), c.caPem.trim());
  renewed = { key: next.key, cert: r.body.data.clientCert };

  const oldX = new x509.X509Certificate(old.cert);
  const newX = new x509.X509Certificate(renewed.cert);
  const ca = new x509.X509Certificate(c.caPem);
  assert.is(newX.subject, 'CN=gina-renewed, O=vmwarden-tests');
  assert.is(newX.issuer, ca.subject);
  assert.ok(await newX.verify({ publicKey: ca.publicKey, signatureOnly: true }));
  assert.is.not(newX.serialNumber, oldX.serialNumber);
  const sans = (cert: x509.X509Certificate) =>
    cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
  assert.equal(sans(newX), sans(oldX));
  assert.equal(sans(newX), [{ type: 'url', value: `urn:vmwarden:identity:${gina.id}` }]);
  // the new certificate carries the CSR's key, not the old one
  const newKeyDer = Buffer.from(await newX.publicKey.rawData);
  const csrKeyDer = Buffer.from(new x509.Pkcs10CertificateRequest(next.csr).publicKey.rawData);
  assert.ok(newKeyDer.equals(csrKeyDer));
  // and openssl reads it the same way
  const text = certText(renewed.cert);
  assert.match(text, /Subject: CN\s?=\s?gina-renewed, O\s?=\s?vmwarden-tests/);
  assert.match(text, new RegExp(`URI:urn:vmwarden:identity:${gina.id}`));
  assert.match(text, /TLS Web Client Authentication/);

  const a = await c.call('GET', `/current-identity/authenticators/${old.authenticatorId}`, {
    token: certToken,
  });
  assert.is(a.body.data.isExtendRequested, true);
  assert.type(a.body.data.extendRequestedAt, 'string');
  assert.is(a.body.data.lastExtendRolledKeys, true);
  assertContract(ZITI, 'detailAuthenticatorEnvelope', a.body);
});

test('before extend-verify: the old certificate still logs in, the new one does not yet', async () => {
  const oldLogin = await certLogin(c, old);
  assert.is(oldLogin.status, 200, oldLogin.text);
  assertError(await certLogin(c, renewed), 401, 'INVALID_AUTH');
});

test('extend-verify with a mismatching certificate → 400 INVALID_CLIENT_CERT', async () => {
  for (const wrong of [old.cert, other.cert, selfSignedCert().cert, 'not a certificate']) {
    const r = await c.call('POST', verify(old.authenticatorId), {
      token: certToken,
      body: { clientCert: wrong },
    });
    assertError(r, 400, 'INVALID_CLIENT_CERT');
  }
  assertError(await c.call('POST', verify(old.authenticatorId), { token: certToken, body: {} }), 400);
  // a failed verify changes nothing
  assert.is((await certLogin(c, old)).status, 200);
});

test('extend-verify with the issued certificate → 200; then the old certificate is refused, the new one logs in', async () => {
  const r = await c.call('POST', verify(old.authenticatorId), {
    token: certToken,
    body: { clientCert: renewed.cert },
  });
  assert.is(r.status, 200, r.text);
  assertContract(ZITI, 'empty', r.body);

  assertError(await certLogin(c, old), 401, 'INVALID_AUTH');
  const n = await certLogin(c, renewed);
  assert.is(n.status, 200, n.text);
  assert.is(n.body.data.authenticatorId, old.authenticatorId);
  assert.is(n.body.data.identityId, gina.id);

  const a = await c.call('GET', `/current-identity/authenticators/${old.authenticatorId}`, {
    token: certToken,
  });
  assert.is(a.body.data.isExtendRequested, false);
  assert.is(a.body.data.certPem.trim(), renewed.cert.trim());
  // the session made with the old certificate survives the rotation
  assert.is((await c.call('GET', '/current-api-session', { token: certToken })).status, 200);
});

test('extend-verify again with nothing pending → 400 INVALID_CLIENT_CERT', async () => {
  assertError(
    await c.call('POST', verify(old.authenticatorId), {
      token: certToken,
      body: { clientCert: renewed.cert },
    }),
    400,
    'INVALID_CLIENT_CERT',
  );
});

test('extend again with the same key (no key roll), verify through /edge/management/v1', async () => {
  const csr = csrForKey(renewed.key, '/CN=gina-third');
  const r = await c.callTls('POST', `/edge/management/v1${ext(old.authenticatorId)}`, {
    token: certToken,
    body: { clientCertCsr: csr },
    cert: renewed.cert,
    key: renewed.key,
  });
  assert.is(r.status, 200, r.text);
  const a = await c.call('GET', `/current-identity/authenticators/${old.authenticatorId}`, {
    token: certToken,
  });
  assert.is(a.body.data.lastExtendRolledKeys, false);
  const v = await c.call('POST', `/edge/management/v1${verify(old.authenticatorId)}`, {
    token: certToken,
    body: { clientCert: r.body.data.clientCert },
  });
  assert.is(v.status, 200, v.text);
  const third = { key: renewed.key, cert: r.body.data.clientCert };
  assert.is((await certLogin(c, third)).status, 200);
  assertError(await certLogin(c, renewed), 401);
});

test.run();
