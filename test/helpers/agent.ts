/**
 * A real vmwarden agent for tests: created as a node over REST, enrolled over real gRPC against the
 * test controller (CA pinning included), then run IN-PROCESS on 127.0.0.1:0 with a temp data dir
 * and a unix socket inside it. libvirt's test:///default keeps its state per connection, so the
 * agent gets a Hypervisor the test also holds, and the test defines domains through that object.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultAgentConfig, type AgentConfig } from '../../agent/src/config.js';
import { saveCredentials, type AgentCredentials } from '../../agent/src/credentials.js';
import { startAgent, type GuestTrustOptions, type RunningAgent } from '../../agent/src/daemon.js';
import { enroll } from '../../agent/src/enroll.js';
import { connectHypervisor, type Hypervisor } from '../../agent/src/libvirt/hypervisor.js';
import { NodeKey } from '../../agent/src/signature/node-key.js';
import { vmwardenServices } from '../../proto/load.js';
import { domainXml, makeVmFiles, type DomainParams, type VmFiles } from '../agent/signature/fixtures.js';
import type { TestController } from './controller.js';
import { sleep } from './wait.js';

export { domainXml, flipByte, makeVmFiles, MiB, type VmFiles } from '../agent/signature/fixtures.js';

export interface TestAgentOptions {
  /** Node name (default: a random one). */
  name?: string;
  /** Share a test:///default connection; otherwise one is opened (and closed by stop()). */
  hypervisor?: Hypervisor;
  /** Inventory report interval; long by default, tests call agent.report() when they need one. */
  reportIntervalSeconds?: number;
  /** Other agent settings (e.g. tamperPolicy); libvirtUri follows the hypervisor handed in. */
  config?: Partial<AgentConfig>;
  /**
   * SSH trust inside guests (qemu:/// only). Off by default: test agents share the host's libvirtd,
   * and one must not install its controller's trust into another test's guests.
   */
  guests?: false | GuestTrustOptions;
}

export interface TestAgent {
  /** The running agent (replaced by restartAgent()). */
  agent: RunningAgent;
  hypervisor: Hypervisor;
  nodeId: number;
  nodeName: string;
  dataDir: string;
  config: AgentConfig;
  credentials: AgentCredentials;
  /** The enrollment token that was used (already consumed). */
  token: string;
  /** Stops the agent only (data dir and hypervisor kept): the controller sees it unreachable. */
  stopAgent(): Promise<void>;
  /** Starts the agent again on the same data dir (same port unless `newPort`; `config` changes settings). */
  restartAgent(opts?: { newPort?: boolean; config?: Partial<AgentConfig> }): Promise<RunningAgent>;
  /** Everything: agent, own hypervisor, data dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** POST /v1/nodes as admin: the node id and its one-time enrollment token. */
export async function createNode(
  c: TestController,
  name: string,
): Promise<{ nodeId: number; token: string }> {
  const r = await c.call('POST', '/v1/nodes', { token: await c.adminToken(), body: { name } });
  if (r.status !== 201) throw new Error(`create node ${name} failed: ${r.status} ${r.text}`);
  return { nodeId: r.body.node_id, token: r.body.enrollment_token };
}

export async function startTestAgent(c: TestController, opts: TestAgentOptions = {}): Promise<TestAgent> {
  const nodeName = opts.name ?? `node-${randomUUID().slice(0, 8)}`;
  const { nodeId, token } = await createNode(c, nodeName);
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-agent-'));
  const ownHypervisor = !opts.hypervisor;
  const hypervisor = opts.hypervisor ?? (await connectHypervisor('test:///default'));
  const key = NodeKey.loadOrCreate(dataDir);
  const credentials = await enroll({
    controller: c.controller.endpoints.grpc!,
    token,
    nodeName,
    nodePublicKeyPem: key.publicKeyPem,
    // The real port is known only once the agent listens; its first inventory report updates it.
    agentAddress: '127.0.0.1:0',
  });
  saveCredentials(dataDir, credentials);
  const config: AgentConfig = {
    ...defaultAgentConfig({}),
    dataDir,
    controller: [c.controller.endpoints.grpc!],
    libvirtUri: hypervisor.uri,
    listenGrpc: '127.0.0.1:0',
    listenMetrics: '127.0.0.1:0',
    advertiseAddress: '',
    socket: join(dataDir, 'agent.sock'),
    nodeName,
    reportIntervalSeconds: opts.reportIntervalSeconds ?? 3600,
    logLevel: 'silent',
    ...opts.config,
  };
  let running: RunningAgent | undefined = await startAgent(config, {
    hypervisor,
    guests: opts.guests ?? false,
  });
  let stopped = false;

  const t: TestAgent = {
    agent: running,
    hypervisor,
    nodeId,
    nodeName,
    dataDir,
    config,
    credentials,
    token,
    async stopAgent() {
      const r = running;
      running = undefined;
      await r?.stop();
    },
    async restartAgent(o = {}) {
      await t.stopAgent();
      const listenGrpc = o.newPort ? '127.0.0.1:0' : t.agent.endpoints.grpc;
      Object.assign(config, o.config ?? {});
      running = await startAgent({ ...config, listenGrpc }, { hypervisor, guests: opts.guests ?? false });
      t.agent = running;
      return running;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await t.stopAgent().catch(() => undefined);
      if (ownHypervisor) await hypervisor.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export interface TestDomain {
  uuid: string;
  name: string;
  files: VmFiles;
  /** The XML as first defined. */
  xml: string;
  /** Redefines the domain (same uuid and name) with other parameters. */
  redefine(p?: Partial<DomainParams>): Promise<void>;
  remove(): void;
}

/**
 * Defines a shut-off domain on `hv` whose kernel, initrd, qcow2 overlay (over a raw backing file),
 * raw data disk and read-only seed image are temp files (see test/agent/signature/fixtures.ts).
 */
export async function defineTestDomain(
  hv: Hypervisor,
  name: string,
  p: Partial<DomainParams> = {},
): Promise<TestDomain> {
  const files = makeVmFiles('vmwarden-vm-');
  const uuid = p.uuid ?? randomUUID();
  const xml = domainXml(files, { ...p, name, uuid });
  await hv.defineXml(xml);
  await sleep(120); // files written just now would be "racy" for the agent's fast re-check
  return {
    uuid,
    name,
    files,
    xml,
    redefine: async (q = {}) => void (await hv.defineXml(domainXml(files, { ...p, ...q, name, uuid }))),
    remove: () => files.remove(),
  };
}

// ---- raw gRPC clients --------------------------------------------------------------------------

export type RawClient = Record<string, any> & grpc.Client;

/** Promise wrapper for a unary call; rejects with the grpc.ServiceError. */
export function unaryCall<T = any>(
  client: RawClient,
  method: string,
  req: object,
  metadata = new grpc.Metadata(),
): Promise<T> {
  return new Promise((resolve, reject) =>
    client[method](req, metadata, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, r: T) =>
      err ? reject(err) : resolve(r),
    ),
  );
}

/** The gRPC status code a promise rejects with (fails the test if it resolves). */
export async function grpcCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    const code = (err as grpc.ServiceError).code;
    if (typeof code !== 'number') throw err;
    return code;
  }
  throw new Error('expected the call to fail');
}

/** A client of the controller's gRPC service (TLS; optional client certificate). */
export function controllerClient(c: TestController, client?: { cert: string; key: string }): RawClient {
  const { Controller } = vmwardenServices();
  const creds = grpc.credentials.createSsl(
    Buffer.from(c.caPem),
    client ? Buffer.from(client.key) : null,
    client ? Buffer.from(client.cert) : null,
  );
  return new Controller(c.controller.endpoints.grpc!, creds, {
    'grpc.ssl_target_name_override': 'localhost',
  }) as RawClient;
}

/** A client of an agent's TCP gRPC service, presenting `client` (the server name is not checked). */
export function agentTcpClient(
  address: string,
  caPem: string,
  client?: { cert: string; key: string },
): RawClient {
  const { Agent } = vmwardenServices();
  const creds = grpc.credentials.createSsl(
    Buffer.from(caPem),
    client ? Buffer.from(client.key) : null,
    client ? Buffer.from(client.cert) : null,
    { checkServerIdentity: () => undefined },
  );
  return new Agent(address, creds) as RawClient;
}

/** A client of an agent's local unix socket (no TLS). */
export function agentSocketClient(socket: string): RawClient {
  const { Agent } = vmwardenServices();
  return new Agent(`unix://${socket}`, grpc.credentials.createInsecure()) as RawClient;
}

/** What the libvirt hook sends: POST /check-start?name=NAME with the domain XML; the agent's whole answer. */
export function postCheckStart(a: TestAgent, name: string, xml: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: a.agent.endpoints.hook, path: `/check-start?name=${name}`, method: 'POST' },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end(xml);
  });
}
