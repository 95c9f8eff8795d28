/**
 * An agent given several controller addresses fails over. First the connection alone, against two
 * real gRPC servers of the Controller service that are stopped and started under it; then a real
 * agent whose list starts with a dead address and a controller of another CA: it enrolls and
 * reports through the real controller, over the same mTLS verification as with one address.
 */
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControllerConnection } from '../../agent/src/controller-connection.js';
import { defaultAgentConfig, type AgentConfig } from '../../agent/src/config.js';
import { saveCredentials } from '../../agent/src/credentials.js';
import { startAgent, type RunningAgent } from '../../agent/src/daemon.js';
import { enroll, EnrollError } from '../../agent/src/enroll.js';
import { connectHypervisor, type Hypervisor } from '../../agent/src/libvirt/hypervisor.js';
import { NodeKey } from '../../agent/src/signature/node-key.js';
import { vmwardenServices } from '../../proto/load.js';
import { createNode, defineTestDomain, type TestDomain } from '../helpers/agent.js';
import { startTestController, type TestController } from '../helpers/controller.js';
import { watchdog } from '../helpers/wait.js';

watchdog(180);

const cleanups: Array<() => unknown> = [];
test.after(async () => {
  for (const f of cleanups.reverse())
    await Promise.resolve()
      .then(f)
      .catch(() => undefined);
});

/** A loopback port nothing listens on (bound, then closed). */
async function deadAddress(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return `127.0.0.1:${port}`;
}

/**
 * A plain-text server of the Controller service whose ReportSession answers with its name, or
 * with `failWith`, or never (`hang`). `start(port)` binds again on the same port after a stop.
 */
class FakeController {
  server?: grpc.Server;
  port = 0;
  calls = 0;
  failWith?: grpc.status;
  hang = false;
  constructor(readonly name: string) {}

  async start(port = 0): Promise<this> {
    const server = new grpc.Server();
    server.addService(vmwardenServices().Controller.service, {
      reportSession: (_call: unknown, cb: grpc.sendUnaryData<{ sessionId: string }>) => {
        this.calls++;
        if (this.hang) return;
        if (this.failWith !== undefined) return cb({ code: this.failWith, details: 'no' }, null);
        cb(null, { sessionId: this.name });
      },
    });
    this.port = await new Promise<number>((res, rej) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
    this.server = server;
    return this;
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  stop() {
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

const ask = (conn: ControllerConnection, timeoutMs?: number) =>
  conn
    .call<{ sessionId: string }>('reportSession', { serverId: 'x', event: 'start' }, timeoutMs)
    .then((r) => r.sessionId);

test('the connection moves to the next address when one stops answering, and stays there', async () => {
  const a = await new FakeController('a').start();
  const b = await new FakeController('b').start();
  cleanups.push(
    () => a.stop(),
    () => b.stop(),
  );
  const lines: string[] = [];
  const conn = new ControllerConnection([a.address, b.address], grpc.credentials.createInsecure(), {
    log: (m) => lines.push(m),
  });
  cleanups.push(() => conn.close());

  assert.is(await ask(conn), 'a');
  assert.is(await ask(conn), 'a');
  assert.equal(lines, []);

  a.stop();
  assert.is(await ask(conn), 'b', 'a stopped: the same call is answered by b');
  assert.is(conn.address, b.address);
  assert.is(lines.length, 1);
  assert.match(lines[0], `controller ${a.address} unreachable (UNAVAILABLE), failing over to ${b.address}`);

  await a.start(a.port);
  const before = a.calls;
  assert.is(await ask(conn), 'b', 'sticky: the last good address is asked first');
  assert.is(a.calls, before);

  b.stop();
  assert.is(await ask(conn), 'a', 'round robin: from the last address back to the first');
  assert.is(lines.length, 2);

  a.stop();
  const err = (await ask(conn).catch((e) => e)) as grpc.ServiceError;
  assert.is(err.code, grpc.status.UNAVAILABLE, 'none answers: the call fails as with one address');
});

test('a deadline is a failover; a refusal is not (it is the answer)', async () => {
  const a = await new FakeController('a').start();
  const b = await new FakeController('b').start();
  cleanups.push(
    () => a.stop(),
    () => b.stop(),
  );
  const conn = new ControllerConnection([a.address, b.address], grpc.credentials.createInsecure());
  cleanups.push(() => conn.close());

  a.hang = true;
  assert.is(await ask(conn, 500), 'b');
  assert.is(a.calls, 1);

  b.failWith = grpc.status.PERMISSION_DENIED;
  a.hang = false;
  const err = (await ask(conn).catch((e) => e)) as grpc.ServiceError;
  assert.is(err.code, grpc.status.PERMISSION_DENIED);
  assert.is(a.calls, 1, 'a refusal from b is not retried on a');
  assert.is(conn.address, b.address);
});

test('a single address behaves as before: its error, no failover line', async () => {
  const dead = await deadAddress();
  const lines: string[] = [];
  const conn = new ControllerConnection([dead], grpc.credentials.createInsecure(), {
    log: (m) => lines.push(m),
  });
  cleanups.push(() => conn.close());
  const err = (await ask(conn).catch((e) => e)) as grpc.ServiceError;
  assert.is(err.code, grpc.status.UNAVAILABLE);
  assert.equal(lines, []);
});

// ---- a real agent and real controllers -----------------------------------------------------------

let c: TestController;
let other: TestController;
let hv: Hypervisor;

test('enrolls through the second address when the first is dead', async () => {
  c = await startTestController();
  cleanups.push(() => c.destroy());
  const dead = await deadAddress();
  const { token } = await createNode(c, 'failover-enroll');
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const lines: string[] = [];
  const creds = await enroll({
    controller: [dead, c.controller.endpoints.grpc!],
    token,
    nodeName: 'failover-enroll',
    nodePublicKeyPem: NodeKey.loadOrCreate(dataDir).publicKeyPem,
    agentAddress: '127.0.0.1:1',
    log: (m) => lines.push(m),
  });
  assert.is(creds.enrollment.controller, c.controller.endpoints.grpc);
  assert.equal(creds.enrollment.controllers, [dead, c.controller.endpoints.grpc]);
  assert.is(lines.length, 1);
  assert.match(lines[0], `cannot reach controller ${dead}`);
  assert.match(lines[0], `trying ${c.controller.endpoints.grpc}`);
  assert.not.match(lines.join('\n'), token.split('.')[0], 'the token is not logged');

  const { token: t2 } = await createNode(c, 'failover-nowhere');
  const err = await enroll({
    controller: [dead, await deadAddress()],
    token: t2,
    nodeName: 'failover-nowhere',
    nodePublicKeyPem: NodeKey.loadOrCreate(dataDir).publicKeyPem,
    agentAddress: '127.0.0.1:1',
  }).catch((e) => e);
  assert.instance(err, EnrollError);
  assert.match(
    err.message,
    /^cannot reach any controller: cannot reach controller 127\.0\.0\.1:\d+: .*; cannot reach/,
  );
});

test('an agent listing a dead address and a controller of another CA reports through the right one', async () => {
  other = await startTestController();
  cleanups.push(() => other.destroy());
  hv = await connectHypervisor('test:///default');
  cleanups.push(() => hv.close());
  const dead = await deadAddress();
  const real = c.controller.endpoints.grpc!;
  const { nodeId, token } = await createNode(c, 'failover-run');
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  // enrolled through the real controller alone; the list given at run time is used from then on
  saveCredentials(
    dataDir,
    await enroll({
      controller: real,
      token,
      nodeName: 'failover-run',
      nodePublicKeyPem: NodeKey.loadOrCreate(dataDir).publicKeyPem,
      agentAddress: '127.0.0.1:1',
    }),
  );
  const vm: TestDomain = await defineTestDomain(hv, 'failover-vm');
  cleanups.push(() => vm.remove());
  const config: AgentConfig = {
    ...defaultAgentConfig({}),
    dataDir,
    controller: [dead, other.controller.endpoints.grpc!, real],
    libvirtUri: hv.uri,
    listenGrpc: '127.0.0.1:0',
    listenMetrics: '',
    socket: join(dataDir, 'agent.sock'),
    nodeName: 'failover-run',
    reportIntervalSeconds: 3600,
  };
  const lines: string[] = [];
  const agent: RunningAgent = await startAgent(config, {
    hypervisor: hv,
    guests: false,
    log: (m) => lines.push(m),
  });
  cleanups.push(() => agent.stop());

  // the first report ran at start: dead → other (its certificate is not from our CA) → real
  const admin = await c.adminToken();
  const node = await c.call('GET', `/v1/nodes/${nodeId}`, { token: admin });
  assert.is(node.status, 200, node.text);
  assert.is(node.body.node.agent_address, agent.endpoints.grpc, 'the report reached the real controller');
  assert.equal(lines, [
    `controller ${dead} unreachable (UNAVAILABLE), failing over to ${other.controller.endpoints.grpc}`,
    `controller ${other.controller.endpoints.grpc} unreachable (UNAVAILABLE), failing over to ${real}`,
  ]);
  const otherNodes = await other.call('GET', '/v1/nodes', { token: await other.adminToken() });
  assert.equal(otherNodes.body.nodes, [], 'the other CA’s controller got nothing');

  await agent.report();
  assert.is(lines.length, 2, 'sticky: the next report goes straight to the real controller');
  const inst = await c.call('GET', `/v1/instances/${vm.uuid}`, { token: admin });
  assert.is(inst.status, 200, inst.text);
  assert.is(inst.body.node_id, nodeId);

  await agent.rotate();
  await agent.report();
  assert.is(lines.length, 2, 'a certificate rotation keeps the address that answered');
});

test.run();
