import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startTestController, type TestController } from '../helpers/controller.js';
import { controllerClient, grpcCode, startTestAgent, unaryCall, type TestAgent } from '../helpers/agent.js';
import { needsRotation } from '../../agent/src/rotation.js';
import { loadCredentials } from '../../agent/src/credentials.js';
import { x509 } from '../../lib/pki/x509.js';

let c: TestController;
let a: TestAgent;

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c);
});
test.after(async () => {
  await a?.stop();
  await c?.destroy();
});

const report = {
  instances: [],
  agentAddress: '127.0.0.1:1',
  validationActive: false,
  libvirtUri: 'test:///default',
};

test('needsRotation: only when less than a third of the lifetime is left', async () => {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const make = async (from: string, to: string) =>
    (
      await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: 'CN=t',
        notBefore: new Date(from),
        notAfter: new Date(to),
        keys: pair,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      })
    ).toString('pem');
  const cert = await make('2026-01-01T00:00:00Z', '2026-01-31T00:00:00Z');
  assert.is(needsRotation(cert, new Date('2026-01-10T00:00:00Z')), false);
  assert.is(needsRotation(cert, new Date('2026-01-25T00:00:00Z')), true);
});

test('rotation goes through extend/extend-verify: the new certificate works, the old one is refused', async () => {
  const before = loadCredentials(a.dataDir);
  await a.agent.rotate();
  const after = loadCredentials(a.dataDir);
  assert.is.not(after.cert, before.cert);
  assert.is.not(after.key, before.key, 'a new key, not only a new certificate');
  const oldCert = new X509Certificate(before.cert);
  const newCert = new X509Certificate(after.cert);
  assert.is(newCert.subjectAltName, oldCert.subjectAltName, 'SANs (identity + node URI) carried over');
  assert.ok(newCert.checkIssued(new X509Certificate(c.caPem)));
  assert.is(statSync(join(a.dataDir, 'agent.key')).mode & 0o777, 0o600, 'the new key is private');

  // The controller now accepts only the new certificate for agent reports.
  const oldClient = controllerClient(c, { cert: before.cert, key: before.key });
  const newClient = controllerClient(c, { cert: after.cert, key: after.key });
  try {
    assert.is(await grpcCode(unaryCall(oldClient, 'reportInventory', report)), grpc.status.PERMISSION_DENIED);
    const ack = await unaryCall(newClient, 'reportInventory', report);
    assert.is(ack.nodeId, a.nodeId);
  } finally {
    oldClient.close();
    newClient.close();
  }

  // The running agent switched too: its own report and the controller's calls into it still work.
  await a.agent.report();
  const node = await c.controller.services.nodes.get(a.nodeId);
  const info = await c.controller.services.agents.for(node).nodeInfo();
  assert.is(info.name, a.nodeName);
});

test.run();
