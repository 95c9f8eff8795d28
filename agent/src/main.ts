#!/usr/bin/env node
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  AgentConfigError,
  DEFAULT_CONTROLLER,
  loadAgentConfig,
  SETTINGS,
  type AgentConfig,
} from './config.js';
import { isEnrolled, saveCredentials } from './credentials.js';
import { enroll, EnrollError } from './enroll.js';
import { startAgent } from './daemon.js';
import { installHook } from './enforce/install-hook.js';
import { stateFilePath } from './enforce/state-file.js';
import { NodeKey } from './signature/node-key.js';
import { InsecureFileError } from '../../lib/platform/private-file.js';
import { ListenError } from '../../lib/platform/listen-error.js';
import { HypervisorConnectError } from './libvirt/hypervisor.js';
import { createLogger, lifecycleLog } from '../../lib/platform/logger.js';
import { settingsUsage } from '../../lib/platform/settings-usage.js';
import { VERSION } from '../../lib/platform/version.js';

const USAGE = `usage: vmwarden-agent <command> [flags]
  enroll --controller HOST:PORT[,HOST:PORT…] --token TOKEN [--data-dir DIR] [--node-name NAME] [--advertise-address HOST:PORT]
  install-hook [--socket PATH] [--data-dir DIR] [--hook-path PATH] [--domains GLOB]
  run    [--controller HOST:PORT[,HOST:PORT…]] [--token TOKEN (enrolls first when not enrolled)] [--data-dir DIR]
         [--libvirt-uri URI] [--listen-grpc HOST:PORT] [--socket PATH] [--config FILE]
--controller (VMWARDEN_AGENT_CONTROLLER, config key controller: a list or a comma string): the controllers,
  tried in turn when one is unreachable; the last that answered is used first. enroll goes through the
  first that answers (default ${DEFAULT_CONTROLLER}) and records them all; run uses the listed ones, else
  those recorded at enrollment.
enroll/run only: --token TOKEN; install-hook only: --hook-path PATH, --domains GLOB
${settingsUsage(SETTINGS, 'VMWARDEN_AGENT_CONFIG')}`;

/** The agent's log: warnings through pino at the configured level, lifecycle lines always. */
function agentLog(config: AgentConfig) {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  return {
    line: lifecycleLog(config.logFormat),
    warn: (msg: string, err?: unknown) =>
      logger.warn(err === undefined ? {} : { err: err instanceof Error ? err.message : String(err) }, msg),
  };
}

async function enrollWith(config: AgentConfig, token: string | undefined) {
  if (!token) throw new AgentConfigError('--token is required to enroll');
  const log = agentLog(config);
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = NodeKey.loadOrCreate(dataDir);
  const creds = await enroll({
    controller: config.controller.length ? config.controller : [DEFAULT_CONTROLLER],
    token,
    nodeName: config.nodeName,
    nodePublicKeyPem: key.publicKeyPem,
    agentAddress: config.advertiseAddress || config.listenGrpc,
    log: (msg) => log.warn(msg),
  });
  saveCredentials(dataDir, creds);
  log.line('enrolled', {
    nodeId: creds.enrollment.nodeId,
    node: creds.enrollment.nodeName,
    controller: creds.enrollment.controller,
  });
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv.includes('--version')) return void process.stdout.write(`vmwarden-agent ${VERSION}\n`);
  if (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const { command, config, extra } = loadAgentConfig(argv, ['token', 'hook-path', 'domains']);
  if (command === 'enroll') return enrollWith(config, extra.token);
  if (command === 'install-hook') {
    const r = installHook({
      socket: resolve(config.socket),
      state: stateFilePath(resolve(config.dataDir)),
      path: extra['hook-path'],
      domains: extra.domains,
    });
    process.stdout.write(`${r.message}\n`);
    return;
  }
  if (command !== 'run')
    throw new AgentConfigError(
      command ? `unknown command '${command}'\n${USAGE.trimEnd()}` : USAGE.trimEnd(),
    );

  if (!isEnrolled(resolve(config.dataDir))) await enrollWith(config, extra.token);
  const log = agentLog(config);
  const agent = await startAgent(config, { log: log.warn });
  log.line('vmwarden agent running', { endpoints: agent.endpoints, libvirt: agent.hypervisor.uri });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.line('stopping', { signal });
    setTimeout(() => process.exit(1), 10_000).unref();
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  const known =
    err instanceof AgentConfigError ||
    err instanceof EnrollError ||
    err instanceof InsecureFileError ||
    err instanceof ListenError ||
    err instanceof HypervisorConnectError;
  process.stderr.write(`vmwarden-agent: ${known ? err.message : (err as Error).stack}\n`);
  process.exit(known ? 2 : 1);
});
