// Enrollment (one-time token, CA pinning, expiry) and mutual TLS on both gRPC services.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enroll, EnrollError } from '../../../agent/src/enroll.js';
import { NodeKey } from '../../../agent/src/signature/node-key.js';
import { ManualClock, systemClock } from '../../../lib/platform/clock.js';
import { InternalCa } from '../../../controller/src/pki/internal-ca.js';
import { newKeyAndCsr } from '../../../lib/pki/x509.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import {
  agentSocketClient,
  agentTcpClient,
  controllerClient,
  createNode,
  grpcCode,
  startTestAgent,
  unaryCall,
  type TestAgent,
} from '../../helpers/agent.js';

let c: TestController;
let a: TestAgent;
let keyDir: string;
let nodeKey: NodeKey;
let foreign: { cert: string; key: string };
const cleanup: Array<() => Promise<unknown> | unknown> = [];

test.before(async () => {
  c = await startTestController();
  a = await startTestAgent(c, { name: 'mtls-node' });
  keyDir = mkdtempSync(join(tmpdir(), 'vmwarden-enroll-'));
  nodeKey = NodeKey.loadOrCreate(keyDir);
  // A client certificate from some other CA (same kind of key, same SAN as a real agent).
  const otherCa = await InternalCa.generate(systemClock);
  const { keyPem, csrPem } = await newKeyAndCsr('CN=vmwarden agent mtls-node');
  const issued = await otherCa.issueClientCert(csrPem, {
    days: 1,
    sans: [{ type: 'url', value: `urn:vmwarden:node:${a.nodeId}` }],
    serverAuth: true,
  });
  foreign = { cert: issued.pem, key: keyPem };
});

test.after(async () => {
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  await a?.stop();
  await c?.destroy();
  rmSync(keyDir, { recursive: true, force: true });
});

const enrollWith = (ctl: TestController, token: string, nodeName = 'x') =>
  enroll({
    controller: ctl.controller.endpoints.grpc!,
    token,
    nodeName,
    nodePublicKeyPem: nodeKey.publicKeyPem,
    agentAddress: '127.0.0.1:1',
  });

async function refused(p: Promise<unknown>, match: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, EnrollError);
    assert.match((err as Error).message, match);
    return;
  }
  assert.unreachable('enrollment should have been refused');
}

/** A raw Enroll call, to see the gRPC status code. */
async function rawEnroll(ctl: TestController, token: string) {
  const { csrPem } = await newKeyAndCsr('CN=raw');
  const client = controllerClient(ctl);
  try {
    return await grpcCode(
      unaryCall(client, 'enroll', {
        token,
        csrPem,
        nodePublicKeyPem: nodeKey.publicKeyPem,
        agentAddress: '127.0.0.1:1',
        hostname: 'h',
      }),
    );
  } finally {
    client.close();
  }
}

test('the enrollment token is one-time: a second enroll with it is refused (UNAUTHENTICATED)', async () => {
  await refused(enrollWith(c, a.token), /enrollment refused: .*unknown, used or expired/);
  assert.is(await rawEnroll(c, a.token), grpc.status.UNAUTHENTICATED);
  // and a token nobody issued
  assert.is(await rawEnroll(c, `nope.${a.token.split('.').pop()}`), grpc.status.UNAUTHENTICATED);
});

test('a wrong CA fingerprint in the token: the agent refuses to enroll (and sends nothing)', async () => {
  const { nodeId, token } = await createNode(c, 'pinned-node');
  const secret = token.slice(0, token.lastIndexOf('.'));
  const wrong = `${secret}.${'ab'.repeat(32)}`;
  await refused(enrollWith(c, wrong, 'pinned-node'), /no CA certificate matching the enrollment token/);
  await refused(enrollWith(c, secret + 'x'), /malformed|no CA certificate/);
  // the real token was never presented, so it still works
  const creds = await enrollWith(c, token, 'pinned-node');
  assert.is(creds.enrollment.nodeId, nodeId);
  assert.is(creds.ca, c.caPem);
  const node = (await c.call('GET', `/v1/nodes/${nodeId}`, { token: await c.adminToken() })).body.node;
  assert.is(node.enrolled, true);
  assert.is(node.public_key_pem, nodeKey.publicKeyPem);
});

test('an expired enrollment token is refused', async () => {
  const clock = new ManualClock();
  const ctl = await startTestController({}, clock);
  cleanup.push(() => ctl.destroy());
  const { token } = await createNode(ctl, 'late-node');
  const fresh = await createNode(ctl, 'early-node');
  clock.advance(24 * 3600_000 + 1000);
  await refused(enrollWith(ctl, token, 'late-node'), /unknown, used or expired/);
  assert.is(await rawEnroll(ctl, fresh.token), grpc.status.UNAUTHENTICATED);
});

test('controller ReportInventory without a client certificate is refused', async () => {
  const client = controllerClient(c);
  try {
    const code = await grpcCode(
      unaryCall(client, 'reportInventory', { instances: [], agentAddress: 'evil:1', libvirtUri: 'x' }),
    );
    assert.is(code, grpc.status.UNAUTHENTICATED);
  } finally {
    client.close();
  }
});

test('controller ReportInventory with a certificate from another CA is refused', async () => {
  const client = controllerClient(c, foreign);
  try {
    const code = await grpcCode(
      unaryCall(client, 'reportInventory', { instances: [], agentAddress: 'evil:1', libvirtUri: 'x' }),
    );
    assert.ok(
      code === grpc.status.UNAUTHENTICATED || code === grpc.status.UNAVAILABLE,
      `code ${grpc.status[code]}`,
    );
  } finally {
    client.close();
  }
  // nothing changed on the node
  const node = (await c.call('GET', `/v1/nodes/${a.nodeId}`, { token: await c.adminToken() })).body.node;
  assert.is(node.agent_address, a.agent.endpoints.grpc);
});

test("controller ReportInventory with a CA-issued certificate that is no agent's: PERMISSION_DENIED", async () => {
  const pki = join(c.dataDir, 'pki');
  const client = controllerClient(c, {
    cert: readFileSync(join(pki, 'controller-client.crt'), 'utf8'),
    key: readFileSync(join(pki, 'controller-client.key'), 'utf8'),
  });
  try {
    const code = await grpcCode(
      unaryCall(client, 'reportInventory', { instances: [], agentAddress: 'evil:1', libvirtUri: 'x' }),
    );
    assert.is(code, grpc.status.PERMISSION_DENIED);
  } finally {
    client.close();
  }
});

test("controller ReportInventory with the agent's own certificate works", async () => {
  const client = controllerClient(c, { cert: a.credentials.cert, key: a.credentials.key });
  try {
    const r = await unaryCall(client, 'reportInventory', {
      instances: [],
      agentAddress: a.agent.endpoints.grpc,
      libvirtUri: 'test:///default',
    });
    assert.is(r.nodeId, a.nodeId);
  } finally {
    client.close();
  }
  await a.agent.report(); // put the real inventory back
});

test("agent TCP gRPC: the controller's certificate is accepted", async () => {
  const pki = join(c.dataDir, 'pki');
  const client = agentTcpClient(a.agent.endpoints.grpc, c.caPem, {
    cert: readFileSync(join(pki, 'controller-client.crt'), 'utf8'),
    key: readFileSync(join(pki, 'controller-client.key'), 'utf8'),
  });
  try {
    const info = await unaryCall(client, 'getNodeInfo', {});
    assert.is(info.name, 'mtls-node');
    assert.is(info.publicKeyPem, a.agent.signatures.publicKeyPem);
  } finally {
    client.close();
  }
});

test("agent TCP gRPC with a certificate that is not the controller's (the agent's own): PERMISSION_DENIED", async () => {
  const client = agentTcpClient(a.agent.endpoints.grpc, c.caPem, {
    cert: a.credentials.cert,
    key: a.credentials.key,
  });
  try {
    assert.is(await grpcCode(unaryCall(client, 'getNodeInfo', {})), grpc.status.PERMISSION_DENIED);
    assert.is(
      await grpcCode(unaryCall(client, 'signInstance', { serverId: 'x', replace: true })),
      grpc.status.PERMISSION_DENIED,
    );
    // the streaming call is guarded too
    const code = await new Promise<number>((resolve) => {
      const stream = client.setValidation({ active: false }, { deadline: Date.now() + 10_000 });
      stream.on('data', () => undefined);
      stream.on('error', (e: grpc.ServiceError) => resolve(e.code));
      stream.on('end', () => resolve(-1));
    });
    assert.is(code, grpc.status.PERMISSION_DENIED);
  } finally {
    client.close();
  }
});

test('agent TCP gRPC without a client certificate, or with one from another CA, is refused', async () => {
  for (const cert of [undefined, foreign]) {
    const client = agentTcpClient(a.agent.endpoints.grpc, c.caPem, cert);
    try {
      const code = await grpcCode(unaryCall(client, 'getNodeInfo', {}));
      assert.ok(
        code === grpc.status.UNAVAILABLE || code === grpc.status.PERMISSION_DENIED,
        `code ${grpc.status[code]}`,
      );
    } finally {
      client.close();
    }
  }
});

test("the agent's unix socket works without TLS", async () => {
  const client = agentSocketClient(a.agent.endpoints.socket);
  try {
    const info = await unaryCall(client, 'getNodeInfo', {});
    assert.is(info.name, 'mtls-node');
    assert.is(info.libvirtUri, 'test:///default');
    const list = await unaryCall(client, 'listInstances', {});
    assert.ok(list.instances.some((i: any) => i.name === 'test'));
  } finally {
    client.close();
  }
});

test.run();
