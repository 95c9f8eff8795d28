#!/usr/bin/env node
// `npm start`: the controller plus a local agent in this process, on embedded defaults (SQLite in
// ./var) and libvirt's test driver, test:///default: no real guest is touched unless asked
// (`npm start -- --libvirt-uri qemu:///system`, or VMWARDEN_AGENT_LIBVIRT_URI). Every setting of both
// programs is read as they read it (config file < environment < flags); a flag both programs have
// (--listen-grpc, --data-dir) goes to the controller, --agent-<flag> to the agent. The agent enrolls
// itself on its first run with a one-time token, exactly as a remote agent would.
import { join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, SETTINGS as CONTROLLER_SETTINGS } from '../dist/controller/src/config.js';
import { startController } from '../dist/controller/src/server.js';
import { defaultAgentConfig, loadAgentConfig, SETTINGS as AGENT_SETTINGS } from '../dist/agent/src/config.js';
import { isEnrolled, saveCredentials } from '../dist/agent/src/credentials.js';
import { enroll, EnrollError } from '../dist/agent/src/enroll.js';
import { startAgent } from '../dist/agent/src/daemon.js';
import { NodeKey } from '../dist/agent/src/signature/node-key.js';
import { HypervisorConnectError } from '../dist/agent/src/libvirt/hypervisor.js';
import { ConfigError } from '../dist/lib/platform/layered-config.js';
import { ListenError } from '../dist/lib/platform/listen-error.js';
import { createLogger } from '../dist/lib/platform/logger.js';
import { InsecureFileError } from '../dist/lib/platform/private-file.js';
import { splitArgs } from '../dist/lib/platform/program-args.js';

/** The agent's settings for npm start: what was given wins; left at its default, the quickstart's. */
function localAgentConfig(given, controllerDataDir, controllerGrpc) {
  const defaults = defaultAgentConfig();
  const unset = (k) => JSON.stringify(given[k]) === JSON.stringify(defaults[k]);
  const agentDir = join(controllerDataDir, '..', 'agent');
  return {
    ...given,
    dataDir: unset('dataDir') ? agentDir : given.dataDir,
    socket: unset('socket') ? join(agentDir, 'agent.sock') : given.socket,
    controller: given.controller.length ? given.controller : [controllerGrpc],
    libvirtUri: given.libvirtUri || 'test:///default',
  };
}

async function enrollLocalAgent(controller, config) {
  let name = config.nodeName;
  if ((await controller.services.nodes.list()).some((n) => n.name === name))
    name = `${name}-${randomBytes(2).toString('hex')}`;
  const { token } = await controller.services.nodes.create(name);
  const key = NodeKey.loadOrCreate(config.dataDir);
  const creds = await enroll({
    controller: controller.endpoints.grpc,
    token,
    nodeName: name,
    nodePublicKeyPem: key.publicKeyPem,
    agentAddress: config.advertiseAddress || config.listenGrpc,
  });
  saveCredentials(config.dataDir, creds);
}

function banner({ controller, agent, config, agentConfig }) {
  const e = controller.endpoints;
  const a = agent.endpoints;
  const here = (p) => {
    const r = relative(process.cwd(), p);
    return r.startsWith('..') ? p : r || '.';
  };
  const dataDir = resolve(config.dataDir);
  const fingerprint = `SHA256:${controller.services.ca.fingerprint}`;
  const testDriver = /^test:/.test(agent.hypervisor.uri);
  const password = controller.initialAdminPassword
    ? `password ${controller.initialAdminPassword} (first run; also in ${here(join(dataDir, 'admin-password'))}, mode 0600)`
    : `password in ${here(join(dataDir, 'admin-password'))}`;
  const rest = e.https ? `https://${e.https}` : `http://${e.http}`;
  const lines = [
    '',
    'vmwarden is running: a controller and a local agent, in this process (Ctrl-C stops both)',
    '',
    `  REST API   ${[e.http && `http://${e.http}`, e.https && `https://${e.https}`].filter(Boolean).join(' and ')}`,
    ...(e.https ? [`  HTTPS CA   ${fingerprint} (${here(join(dataDir, 'pki', 'ca.crt'))})`] : []),
    `  gRPC       controller ${e.grpc}; agent ${a.grpc} (mTLS) and ${here(a.socket)}`,
    `  metrics    ${[e.http && `http://${e.http}/metrics (controller)`, a.metrics && `http://${a.metrics}/metrics (agent)`].filter(Boolean).join(', ')}`,
    `  libvirt    ${agent.hypervisor.uri}${
      testDriver
        ? " (libvirt's test driver; this host's guests: npm start -- --libvirt-uri qemu:///system)"
        : ''
    }`,
    `  data       ${here(dataDir)}, ${here(resolve(agentConfig.dataDir))}`,
    `  admin      user admin, ${password}`,
    '',
    'Next, in another terminal:',
    `  npx vmwarden login ${rest} --username admin${e.https ? ` --fingerprint ${fingerprint}` : ''}`,
    '  npx vmwarden ls               # the instances, their state, node and signature',
    '  npx vmwarden nodes list       # this host, enrolled as a node',
    '  npx vmwarden help             # every command',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main() {
  const args = splitArgs(process.argv.slice(2), CONTROLLER_SETTINGS, AGENT_SETTINGS);
  const config = loadConfig(args.first);
  const { config: agentGiven } = loadAgentConfig(['run', ...args.second]);
  const controller = await startController(config);
  let agent;
  try {
    const agentConfig = localAgentConfig(agentGiven, resolve(config.dataDir), controller.endpoints.grpc);
    if (!isEnrolled(resolve(agentConfig.dataDir))) await enrollLocalAgent(controller, agentConfig);
    const log = createLogger({ level: agentConfig.logLevel, format: agentConfig.logFormat, name: 'agent' });
    agent = await startAgent(agentConfig, {
      log: (msg, err) =>
        log.warn(err === undefined ? {} : { err: err instanceof Error ? err.message : String(err) }, msg),
    });
    banner({ controller, agent, config, agentConfig });
  } catch (err) {
    await controller.stop().catch(() => undefined);
    throw err;
  }

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
}

main().catch((err) => {
  const known = [ConfigError, ListenError, EnrollError, InsecureFileError, HypervisorConnectError].some(
    (k) => err instanceof k,
  );
  process.stderr.write(`npm start: ${known ? err.message : err.stack}\n`);
  process.exit(known ? 2 : 1);
});
