import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { SshTarget } from './guest/ssh-channel.js';
import { ConfigError, layerSettings, type SettingSpec } from '../../lib/platform/layered-config.js';
import { LOG_FORMATS, type LogFormat } from '../../lib/platform/logger.js';

/** Agent configuration. Precedence: flags > environment (VMWARDEN_AGENT_*) > config file > defaults. */
export interface AgentConfig {
  dataDir: string;
  /**
   * Controller gRPC addresses (HOST:PORT), tried in turn when one is unreachable. Empty = the ones
   * recorded at enrollment (to enroll: 127.0.0.1:9363).
   */
  controller: string[];
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
  /** auto (human-readable on a terminal, JSON lines otherwise), json or pretty; VMWARDEN_LOG_FORMAT too. */
  logFormat: LogFormat;
  /** Persistent domain definitions, watched for changes (qemu driver layout). */
  libvirtXmlDir: string;
  /** Cron expression of the full re-hash of every signed instance; '' disables it. */
  rehashSchedule: string;
  /** Start of an instance without a baseline while validation is active: sign it on the way, or refuse. */
  unsignedPolicy: 'sign' | 'refuse';
  /** A running instance found tampered: alert the controller only, or also destroy it (then refused until re-signed). */
  tamperPolicy: 'alert' | 'shutdown';
  /**
   * Start of an instance whose verdict is "unknown" because parts of it cannot be inspected (network
   * disks): allow it (what it checked matched), or refuse it. A difference in what was checked refuses
   * either way.
   */
  uninspectedPolicy: 'allow' | 'refuse';
  /** The libvirt hook when the agent is unreachable while validation is active: refuse (closed) or allow (open). */
  hookFailPolicy: 'closed' | 'open';
  /**
   * Guests without a qemu guest agent reached over SSH as root instead, by domain name or UUID:
   * `{ keyFile, port?, address?, hostKey? }` (config file, or JSON in the environment).
   */
  sshProvisioning: Record<string, SshTarget>;
  /** File digest of new signatures until the controller's trust bundle names the fleet's. */
  signatureDigest: 'sha256' | 'blake3';
}

const CHOICES: Partial<Record<keyof AgentConfig, readonly string[]>> = {
  logFormat: LOG_FORMATS,
  unsignedPolicy: ['sign', 'refuse'],
  signatureDigest: ['sha256', 'blake3'],
  tamperPolicy: ['alert', 'shutdown'],
  uninspectedPolicy: ['allow', 'refuse'],
  hookFailPolicy: ['closed', 'open'],
};

/** The agent's configuration errors are the shared ConfigError (exit code 2). */
export { ConfigError as AgentConfigError };

/** Every setting's environment variable and flag (also what --help lists). */
export const SETTINGS: Record<keyof AgentConfig, SettingSpec> = {
  dataDir: { kind: 'string', env: 'VMWARDEN_AGENT_DATA_DIR', flag: 'data-dir' },
  controller: {
    kind: 'list',
    env: 'VMWARDEN_AGENT_CONTROLLER',
    flag: 'controller',
    parse: (v, source) => parseControllerList(v, source),
  },
  libvirtUri: { kind: 'string', env: 'VMWARDEN_AGENT_LIBVIRT_URI', flag: 'libvirt-uri' },
  listenGrpc: { kind: 'string', env: 'VMWARDEN_AGENT_LISTEN_GRPC', flag: 'listen-grpc' },
  listenMetrics: { kind: 'string', env: 'VMWARDEN_AGENT_LISTEN_METRICS', flag: 'listen-metrics' },
  advertiseAddress: { kind: 'string', env: 'VMWARDEN_AGENT_ADVERTISE_ADDRESS', flag: 'advertise-address' },
  socket: { kind: 'string', env: 'VMWARDEN_AGENT_SOCKET', flag: 'socket' },
  nodeName: { kind: 'string', env: 'VMWARDEN_AGENT_NODE_NAME', flag: 'node-name' },
  reportIntervalSeconds: { kind: 'number', env: 'VMWARDEN_AGENT_REPORT_INTERVAL_SECONDS' },
  logLevel: { kind: 'string', env: 'VMWARDEN_AGENT_LOG_LEVEL', flag: 'log-level' },
  logFormat: { kind: 'string', env: 'VMWARDEN_AGENT_LOG_FORMAT', flag: 'log-format' },
  libvirtXmlDir: { kind: 'string', env: 'VMWARDEN_AGENT_LIBVIRT_XML_DIR' },
  rehashSchedule: { kind: 'string', env: 'VMWARDEN_AGENT_REHASH_SCHEDULE' },
  signatureDigest: { kind: 'string', env: 'VMWARDEN_AGENT_SIGNATURE_DIGEST' },
  unsignedPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_UNSIGNED_POLICY', flag: 'unsigned-policy' },
  tamperPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_TAMPER_POLICY', flag: 'tamper-policy' },
  uninspectedPolicy: {
    kind: 'string',
    env: 'VMWARDEN_AGENT_UNINSPECTED_POLICY',
    flag: 'uninspected-policy',
  },
  hookFailPolicy: { kind: 'string', env: 'VMWARDEN_AGENT_HOOK_FAIL_POLICY', flag: 'hook-fail-policy' },
  sshProvisioning: { kind: 'object', env: 'VMWARDEN_AGENT_SSH_PROVISIONING' },
};

export function defaultAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const underSystemd = Boolean(env.INVOCATION_ID || env.STATE_DIRECTORY);
  return {
    dataDir: env.STATE_DIRECTORY ?? (underSystemd ? '/var/lib/vmwarden-agent' : './var/agent'),
    controller: [],
    libvirtUri: '',
    listenGrpc: '127.0.0.1:9364',
    listenMetrics: '127.0.0.1:9365',
    advertiseAddress: '',
    socket: underSystemd ? '/run/vmwarden/agent.sock' : './var/agent/agent.sock',
    nodeName: hostname(),
    reportIntervalSeconds: 30,
    logLevel: 'info',
    // One variable for both programs (npm start runs them in one process); VMWARDEN_AGENT_LOG_FORMAT wins.
    logFormat: (env.VMWARDEN_LOG_FORMAT as LogFormat | undefined) ?? 'auto',
    libvirtXmlDir: '/etc/libvirt/qemu',
    rehashSchedule: '0 3 * * *',
    unsignedPolicy: 'sign',
    tamperPolicy: 'alert',
    uninspectedPolicy: 'allow',
    hookFailPolicy: 'closed',
    sshProvisioning: {},
    signatureDigest: 'sha256',
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
    specs: SETTINGS,
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
  config.sshProvisioning = parseSshProvisioning(config.sshProvisioning);
  return { command: positionals[0] ?? '', config, extra };
}

/** Where `enroll` goes when no controller is configured. */
export const DEFAULT_CONTROLLER = '127.0.0.1:9363';

/**
 * `a:9363,b:9363` (flag, environment, config file) or a list (config file): HOST:PORT entries, each
 * with a host and a non-zero port, none empty, none twice.
 */
export function parseControllerList(value: unknown, source = 'controller'): string[] {
  const what = `${source}: controller`;
  let entries: unknown[];
  if (Array.isArray(value)) entries = value;
  else if (typeof value === 'string') entries = value.split(',');
  else throw new ConfigError(`${what} must be HOST:PORT, a comma-separated list of them, or a list`);
  if (entries.length === 0) throw new ConfigError(`${what} must name at least one HOST:PORT`);
  const out: string[] = [];
  for (const [i, raw] of entries.entries()) {
    if (typeof raw !== 'string') throw new ConfigError(`${what}: entry ${i + 1} is not a string`);
    const entry = raw.trim();
    if (!entry) throw new ConfigError(`${what}: entry ${i + 1} is empty (expected HOST:PORT[,HOST:PORT…])`);
    const port = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(entry)?.[1];
    if (!port || Number(port) < 1 || Number(port) > 65535) {
      throw new ConfigError(
        `${what}: entry ${i + 1} '${entry}' is not HOST:PORT (a host name or IP, port 1-65535)`,
      );
    }
    if (out.includes(entry)) throw new ConfigError(`${what}: '${entry}' is listed twice`);
    out.push(entry);
  }
  return out;
}

const ENTRY_KEYS = ['keyFile', 'port', 'address', 'hostKey'];

/** Checks every sshProvisioning entry; the key files themselves are read (and their modes checked) on use. */
export function parseSshProvisioning(raw: object): Record<string, SshTarget> {
  const out: Record<string, SshTarget> = {};
  for (const [instance, value] of Object.entries(raw)) {
    const where = `sshProvisioning.${instance}`;
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new ConfigError(`${where} must be an object`);
    const e = value as Record<string, unknown>;
    const unknown = Object.keys(e).filter((k) => !ENTRY_KEYS.includes(k));
    if (unknown.length)
      throw new ConfigError(`${where}: unknown ${unknown.join(', ')}; known: ${ENTRY_KEYS.join(', ')}`);
    if (typeof e.keyFile !== 'string' || !e.keyFile.startsWith('/')) {
      throw new ConfigError(`${where}.keyFile must be an absolute path to the private key`);
    }
    const port = e.port ?? 22;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      throw new ConfigError(`${where}.port must be a port number (1-65535), got '${String(port)}'`);
    }
    if (e.address !== undefined && (typeof e.address !== 'string' || !isIP(e.address))) {
      throw new ConfigError(`${where}.address must be an IP address, got '${String(e.address)}'`);
    }
    if (
      e.hostKey !== undefined &&
      (typeof e.hostKey !== 'string' || !/^SHA256:[A-Za-z0-9+/]{43}$/.test(e.hostKey))
    ) {
      throw new ConfigError(`${where}.hostKey must be an OpenSSH SHA256 fingerprint (SHA256:…43 characters)`);
    }
    out[instance] = {
      keyFile: e.keyFile,
      port: port as number,
      ...(e.address ? { address: e.address as string } : {}),
      ...(e.hostKey ? { hostKey: e.hostKey as string } : {}),
    };
  }
  return out;
}
