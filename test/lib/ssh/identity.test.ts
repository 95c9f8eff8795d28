/** The key id and principal of a vmwarden SSH certificate: what the controller writes, the agent reads. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeKeyId, encodeKeyId, instancePrincipal } from '../../../lib/ssh/identity.js';

const id = {
  userId: 'u1',
  instanceName: 'web-vm:2',
  serverId: '58bd8e7b-aed0-41a1-bcd6-5d22b3cea30f',
  certificateId: '0de7190f-f1ef-428d-b539-3e1bbf2bf4aa',
};

test('a key id reads back as what was written', () => {
  const keyId = encodeKeyId(id);
  assert.is(
    keyId,
    'user:u1-vm:web-vm:2-sbx:58bd8e7b-aed0-41a1-bcd6-5d22b3cea30f-cert:0de7190f-f1ef-428d-b539-3e1bbf2bf4aa',
  );
  assert.equal(decodeKeyId(keyId), id);
});

test('the certificate id is read from the tail alone; a key id without one yields none', () => {
  assert.equal(decodeKeyId('k-cert:c'), { certificateId: 'c' });
  assert.equal(decodeKeyId('someone else'), { certificateId: '' });
});

test('the principal of an instance', () => {
  assert.is(instancePrincipal(id.serverId), `vm-${id.serverId}`);
});

test.run();
