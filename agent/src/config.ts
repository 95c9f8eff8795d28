import { hostname } from 'node:os';
import {
  ConfigError,
  layerSettings,
  type SettingSpec,
} from '../../controller/src/platform/layered-config.js';

/** Agent configuration. Precedence: flags > environment (VMWARDEN_AGENT_*) > config file > defaults. */
export interface AgentConfig {
  dataDir: string;
  /** Controller gRPC address (HOST:PORT). */
  controller: string;
  /** '' = qemu:///system when a libvirtd answers, else test:///default. */
  libvirtUri: string;
  listenGrpc: string;
  /** Prometheus /metrics listener; '' disables it. */
  listenMetrics: string;
  /** Address the controller dials; defaults to listenGrpc. */
  advertiseAddress: string;
  socket: string;
  nodeName: string;
  reportIntervalSeconds: number;
  logLevel: string;
  /** Persistent domain definitions, watched for changes (qemu driver layout). */
  libvirtXmlDir: string;
  /** Cron expression of the full re-hash of every signed instance; '' disables it. */
  rehashSchedule: string;
  /** Start of an instance without a baseline while validation is active: sign it on the way, or refuse. */
  unsignedPolicy: 'sign' | 'refuse';
  /** A running instance found tampered: alert the controller only, or also destroy it (then refused until re-signed). */
  tamperPolicy: 'alert' | 'shutdown';
  /** The libvirt hook when the agent is unreachable while validation is active: refuse (closed) or allow (open). */
  hookFailPolicy: 'closed' | 'open';
}

const CHOICES: Partial<Record<keyof AgentConfig, string[]>> = {
  unsignedPolicy: ['sign', 'refuse'],
  tamperPolicy: ['alert', 'shutdown'],
  hookFailPolicy: ['closed', 'open'],
};

/** The agent's configuration errors are the shared ConfigError (exit code 2). */
export { ConfigError as AgentConfigError };

const keys: Record<keyof AgentConfig, SettingSpec> = {
  dataDir: { kind: 'string', env: 'VMWARDEN_AGENT_DATA_DIR', flag: 'data-dir' },
  controller: { kind: 'string', env: 'VMWARDEN_AGENT_CONTROLLER', flag: 'controller' },
  libvirtUri: { kind: 'string', env: 'VMWARDEN_AGENT_LIBVIRT_URI', flag: 'libvirt-uri' },
  listenGrpc: { kind: 'string', env: 'VMWARDEN_AGENT_LISTEN_GRPC', flag: 'listen-grpc' },
  listenMetrics: { kind: 'string', env: 'VMWARDEN_AGENT_LISTEN_METRICS', flag: 'listen-metrics' },
  advertiseAddress: { kind: 'string', env: 'VMWARDEN_AGENT_ADVERTISE_ADDRESS', flag: 'advertise-address' },
  socket: { kind: 'string', env: 'VMWARDEN_AGENT_SOCKET', flag: 'socket' },
  nodeName: { kind: 'string', env: 'VMWARDEN_AGENT_NODE_NAME', flag: 'node-name' },
  reportIntervalSeconds: { kind: 'number', env: 'VMWARDEN_AGENT_REPORT_INTERVAL_SECONDS' },
  logLevel: { kind: 'string', env: 'VMWARDEN_AGENT_LOG_LEVEL', flag: 'log-level' },
  libvirtXmlDir: { kind: 'string', env: 'VMWARDEN_AGENT_LIBVIRT_XML_DIR' },
  rehashSchedule: { kind: 'string', env: 'VMWARDEN_AGENT_REHASH_SCHEDULE' },
  unsignedPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_UNSIGNED_POLICY', flag: 'unsigned-policy' },
  tamperPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_TAMPER_POLICY', flag: 'tamper-policy' },
  hookFailPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_HOOK_FAIL_POLICY', flag: 'hook-fail-policy' },
};

export function defaultAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const underSystemd = Boolean(env.INVOCATION_ID || env.STATE_DIRECTORY);
  return {
    dataDir: env.STATE_DIRECTORY ?? (underSystemd ? '/var/lib/vmwarden-agent' : './var/agent'),
    controller: '127.0.0.1:9363',
    libvirtUri: '',
    listenGrpc: '127.0.0.1:9364',
    listenMetrics: '127.0.0.1:9365',
    advertiseAddress: '',
    socket: underSystemd ? '/run/vmwarden/agent.sock' : './var/agent/agent.sock',
    nodeName: hostname(),
    reportIntervalSeconds: 30,
    logLevel: 'info',
    libvirtXmlDir: '/etc/libvirt/qemu',
    rehashSchedule: '0 3 * * *',
    unsignedPolicy: 'sign',
    tamperPolicy: 'alert',
    hookFailPolicy: 'closed',
  };
}

/** Parses `vmwarden-agent <command> [flags]`. Extra flags per command (e.g. --token) come back in `extra`. */
export function loadAgentConfig(
  argv: string[],
  extraFlags: string[] = [],
  env: NodeJS.ProcessEnv = process.env,
): { command: string; config: AgentConfig; extra: Record<string, string | undefined> } {
  const { config, positionals, extra } = layerSettings({
    argv,
    env,
    defaults: defaultAgentConfig(env),
    specs: keys,
    fileEnv: 'VMWARDEN_AGENT_CONFIG',
    extraFlags,
    allowPositionals: true,
  });
  for (const [k, allowed] of Object.entries(CHOICES)) {
    const value = String(config[k as keyof AgentConfig]);
    if (!allowed.includes(value)) {
      throw new ConfigError(`${k} must be one of ${allowed.join(', ')}, got '${value}'`);
    }
  }
  return { command: positionals[0] ?? '', config, extra };
}
