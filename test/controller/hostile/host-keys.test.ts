/**
 * SignHostKeys, the gRPC call through which agents get their guests' sshd host keys signed by the
 * host CA, from two enrolled agents over real mTLS: a node gets certificates only for an instance it
 * hosts, with the controller's principals (the instance's name, UUID and address); another node
 * asking for it, or for an unknown or admin-registered instance, gets PERMISSION_DENIED (audited);
 * bad input is INVALID_ARGUMENT; no agent certificate, UNAUTHENTICATED.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  controllerClient,
  grpcCode,
  startTestAgent,
  unaryCall,
  type RawClient,
  type TestAgent,
} from '../../helpers/agent.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { createInstance, keygenList, run, tempDir } from '../access/util.js';
import { watchdog } from '../../helpers/wait.js';

watchdog(120);

let c: TestController;
let a1: TestAgent;
let a2: TestAgent;
let n1: RawClient;
let n2: RawClient;
let admin = '';
let dir = '';
let cleanup = async () => {};
const hostKeys: string[] = [];
const vm = { uuid: randomUUID(), name: 'web-host-1', ip: '10.7.7.7' };

test.before(async () => {
  ({ dir, cleanup } = await tempDir('vmwarden-host-keys-'));
  for (const t of ['ed25519', 'ecdsa', 'rsa']) {
    const file = join(dir, `ssh_host_${t}_key`);
    const r = await run('ssh-keygen', ['-q', '-t', t, '-N', '', '-f', file]);
    assert.is(r.code, 0, r.stderr);
    hostKeys.push(await readFile(`${file}.pub`, 'utf8'));
  }
  c = await startTestController();
  admin = await c.adminToken();
  a1 = await startTestAgent(c, { name: 'host-keys-one' });
  a2 = await startTestAgent(c, { name: 'host-keys-two' });
  n1 = controllerClient(c, { cert: a1.credentials.cert, key: a1.credentials.key });
  n2 = controllerClient(c, { cert: a2.credentials.cert, key: a2.credentials.key });
  await unaryCall(n1, 'reportInventory', {
    instances: [
      {
        serverId: vm.uuid,
        name: vm.name,
        state: 'running',
        ipAddresses: [vm.ip],
        signed: false,
        isValid: 'unknown',
      },
    ],
    agentAddress: '',
    validationActive: false,
    libvirtUri: '',
  });
  const r = await c.call('GET', `/v1/instances/${vm.uuid}`, { token: admin });
  assert.is(r.body.node_id, a1.nodeId, r.text);
});

test.after(async () => {
  n1?.close();
  n2?.close();
  await a1?.stop().catch(() => undefined);
  await a2?.stop().catch(() => undefined);
  await c?.destroy().catch(() => undefined);
  await cleanup();
});

const sign = (client: RawClient, instanceUuid: string, publicKeys = hostKeys) =>
  unaryCall(client, 'signHostKeys', { instanceUuid, publicKeys });

async function refusalAudited(object: string, status: number) {
  const r = await c.call('GET', `/v1/audit?action=agent.host-keys&limit=100`, { token: admin });
  assert.is(r.status, 200, r.text);
  const rows = r.body.entries.filter(
    (e: { object: string; outcome: string; actorName: string }) =>
      e.object === object && e.outcome === 'failure' && e.actorName === `node-${a2.nodeName}`,
  );
  assert.ok(rows.length > 0, `no audit row for ${object}`);
  assert.is(rows[0].status, status);
}

test('the hosting node gets one host certificate per key, principals chosen by the controller', async () => {
  const r = await sign(n1, vm.uuid.toUpperCase());
  assert.is(r.certificates.length, 3);
  assert.equal(r.principals, [vm.name, vm.uuid, vm.ip]);
  const left = Date.parse(r.validBefore) - Date.now();
  assert.ok(left > 29 * 86_400_000 && left <= 30 * 86_400_000, r.validBefore);
  const hostCa = (await c.call('GET', '/v1/access/host-ca-pubkeys')).body.public_keys[0];
  for (const [i, cert] of r.certificates.entries()) {
    const listed = await keygenList(dir, cert);
    assert.match(listed, /host certificate/);
    assert.ok(listed.includes(`Signing CA: ED25519 ${hostCa.fingerprint}`), listed);
    assert.match(
      listed,
      new RegExp(`Principals: \\n\\s+${vm.name}\\n\\s+${vm.uuid}\\n\\s+${vm.ip.replace(/\./g, '\\.')}\\n`),
    );
    // The certificate is for the key sent in the same position.
    assert.is(cert.split(' ')[0], `${hostKeys[i]!.split(' ')[0]}-cert-v01@openssh.com`);
  }
});

test('another node asking for that instance gets PERMISSION_DENIED, audited', async () => {
  assert.is(await grpcCode(sign(n2, vm.uuid)), grpc.status.PERMISSION_DENIED);
  await refusalAudited(vm.uuid, 403);
});

test('an unknown or admin-registered instance is PERMISSION_DENIED too', async () => {
  const unknown = randomUUID();
  assert.is(await grpcCode(sign(n2, unknown)), grpc.status.PERMISSION_DENIED);
  await refusalAudited(unknown, 403);
  const manual = await createInstance(c, { instance_name: 'admin-registered-host' });
  assert.is(await grpcCode(sign(n2, manual.serverId)), grpc.status.PERMISSION_DENIED);
  assert.is(await grpcCode(sign(n1, manual.serverId)), grpc.status.PERMISSION_DENIED);
});

test('bad input is INVALID_ARGUMENT; without an agent certificate, UNAUTHENTICATED', async () => {
  assert.is(await grpcCode(sign(n1, 'not-a-uuid')), grpc.status.INVALID_ARGUMENT);
  assert.is(await grpcCode(sign(n1, vm.uuid, [])), grpc.status.INVALID_ARGUMENT);
  assert.is(await grpcCode(sign(n1, vm.uuid, ['ssh-ed25519 AAAAbroken'])), grpc.status.INVALID_ARGUMENT);
  assert.is(await grpcCode(sign(n1, vm.uuid, Array(17).fill(hostKeys[0]))), grpc.status.INVALID_ARGUMENT);
  assert.is(
    await grpcCode(sign(n1, vm.uuid, ['-----BEGIN OPENSSH PRIVATE KEY-----'])),
    grpc.status.INVALID_ARGUMENT,
  );
  const anonymous = controllerClient(c);
  try {
    assert.is(await grpcCode(sign(anonymous, vm.uuid)), grpc.status.UNAUTHENTICATED);
  } finally {
    anonymous.close();
  }
});

test.run();
