#!/usr/bin/env node
// `npm start`: the controller plus a local agent on embedded defaults (SQLite in ./var, libvirt
// qemu:///system when a libvirtd answers, else test:///default). The agent enrolls itself on the
// first run with a one-time token, exactly as a remote agent would. Controller flags pass through.
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../dist/controller/src/config.js';
import { startController } from '../dist/controller/src/server.js';
import { defaultAgentConfig } from '../dist/agent/src/config.js';
import { isEnrolled, saveCredentials } from '../dist/agent/src/credentials.js';
import { enroll } from '../dist/agent/src/enroll.js';
import { startAgent } from '../dist/agent/src/daemon.js';
import { NodeKey } from '../dist/agent/src/signature/node-key.js';

const config = loadConfig(process.argv.slice(2));
const controller = await startController(config);
const dataDir = resolve(config.dataDir);
const agentConfig = {
  ...defaultAgentConfig(),
  dataDir: join(dataDir, '..', 'agent'),
  socket: join(dataDir, '..', 'agent', 'agent.sock'),
  controller: [controller.endpoints.grpc],
  listenGrpc: process.env.VMWARDEN_AGENT_LISTEN_GRPC ?? '127.0.0.1:9364',
};

if (!isEnrolled(agentConfig.dataDir)) {
  let name = hostname();
  if ((await controller.services.nodes.list()).some((n) => n.name === name))
    name = `${name}-${randomBytes(2).toString('hex')}`;
  const { token } = await controller.services.nodes.create(name);
  const key = NodeKey.loadOrCreate(agentConfig.dataDir);
  const creds = await enroll({
    controller: controller.endpoints.grpc,
    token,
    nodeName: name,
    nodePublicKeyPem: key.publicKeyPem,
    agentAddress: agentConfig.listenGrpc,
  });
  saveCredentials(agentConfig.dataDir, creds);
}
const agent = await startAgent(agentConfig);

const e = controller.endpoints;
console.log(`
vmwarden is running
  REST (HTTP)   http://${e.http}      e.g. curl http://${e.http}/version
  REST (HTTPS)  https://${e.https}
  gRPC          ${e.grpc} (controller), ${agent.endpoints.grpc} (agent, mTLS), ${agent.endpoints.socket}
  libvirt       ${agent.hypervisor.uri}
  data          ${dataDir} and ${agentConfig.dataDir}
  admin         user "admin", password in ${join(dataDir, 'admin-password')}${
    controller.initialAdminPassword ? ` (first run: ${controller.initialAdminPassword})` : ''
  }
Ctrl-C stops both.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 10_000).unref();
  await agent.stop().catch(() => undefined);
  await controller.stop().catch(() => undefined);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
