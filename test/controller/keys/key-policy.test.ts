/**
 * One SSH public-key policy for the key registry and POST /v1/access/request: a key one refuses,
 * the other refuses too (each in its own error format); a key one accepts, the other accepts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  assertAccessError,
  createInstance,
  grant,
  requestAccess,
  type TestInstance,
} from '../access/util.js';
import { makeKey } from './keygen.js';
import { authenticatorIdOf, BASE, sshKeyRequest } from './api-helpers.js';
import { bodyOf, offCurveEcdsa, rsaWithExponent } from './bad-keys.js';

let c: TestController;
let alice: { id: string; token: string };
let aliceAuth: string;
let vm: TestInstance;

test.before(async () => {
  c = await startTestController();
  alice = await c.createUser('alice-policy', 'user');
  aliceAuth = await authenticatorIdOf(c, alice.token, alice.id);
  vm = await createInstance(c);
  await grant(c, vm.serverId, alice.id);
});
test.after(async () => c.destroy());

const register = (skey: string, type?: string) =>
  c.call('POST', `${BASE}/ssh_keys.json`, {
    token: alice.token,
    body: sshKeyRequest(alice.id, aliceAuth, { Skey: skey, ...(type ? { Type: type } : {}) }),
  });
const sign = (line: string) => requestAccess(c, alice.token, { sandbox_id: vm.serverId, public_key: line });

const ec256 = makeKey('ecdsa', 256);
const ec384 = makeKey('ecdsa', 384);
const rsa = makeKey('rsa', 2048);

const refused: Array<[string, string, string, RegExp]> = [
  ['ECDSA P-256 point off the curve', offCurveEcdsa(ec256.line), 'ecdsa-sha2-nistp256', /not on the curve/],
  ['ECDSA P-384 point off the curve', offCurveEcdsa(ec384.line), 'ecdsa-sha2-nistp384', /not on the curve/],
  ['RSA e=1', rsaWithExponent(rsa.line, 1n), 'ssh-rsa', /exponent 1 is refused/],
  ['RSA e=3', rsaWithExponent(rsa.line, 3n), 'ssh-rsa', /exponent 3 is refused/],
  ['RSA even e', rsaWithExponent(rsa.line, 65536n), 'ssh-rsa', /exponent 65536 is refused/],
];

for (const [name, line, type, why] of refused) {
  test(`${name}: refused by the key registry (InvalidFields.Skey) and by /v1/access/request (400)`, async () => {
    for (const r of [await register(bodyOf(line), type), await register(line)]) {
      assert.is(r.status, 400, r.text);
      assert.is(r.body.ResponseType, 'ErrorResponse');
      assert.ok(r.body.InvalidFields?.Skey, r.text);
      assert.match(r.body.InvalidFields.Skey.join(' '), why);
    }
    const s = await sign(line);
    assertAccessError(s, 400, why);
    assert.match(s.body.error, /public_key rejected/);
  });
}

test('the genuine keys are accepted by both, with the same fingerprint', async () => {
  for (const k of [ec256, ec384, rsa, makeKey('ed25519')]) {
    const r = await register(k.line);
    assert.is(r.status, 201, r.text);
    const s = await sign(k.line);
    assert.is(s.status, 200, s.text);
    const stored = await c.call('GET', `${BASE}/ssh_keys/${r.body.Id}.json`, { token: alice.token });
    assert.is(stored.body.SshKeys[0].Fingerprint, k.fingerprint);
    const cert = await c.call('GET', `/v1/access/certificate/${s.body.certificate_id}`, {
      token: alice.token,
    });
    assert.is(cert.body.public_key_fingerprint, k.fingerprint, cert.text);
    // The registered key, used by id, is signed too.
    const byId = await requestAccess(c, alice.token, { sandbox_id: vm.serverId, ssh_key_id: r.body.Id });
    assert.is(byId.status, 200, byId.text);
  }
});

test.run();
