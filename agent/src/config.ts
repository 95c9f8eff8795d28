import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

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

export class AgentConfigError extends Error {}

const keys: Record<keyof AgentConfig, { env: string; flag?: string; number?: boolean }> = {
  dataDir: { env: 'VMWARDEN_AGENT_DATA_DIR', flag: 'data-dir' },
  controller: { env: 'VMWARDEN_AGENT_CONTROLLER', flag: 'controller' },
  libvirtUri: { env: 'VMWARDEN_AGENT_LIBVIRT_URI', flag: 'libvirt-uri' },
  listenGrpc: { env: 'VMWARDEN_AGENT_LISTEN_GRPC', flag: 'listen-grpc' },
  listenMetrics: { env: 'VMWARDEN_AGENT_LISTEN_METRICS', flag: 'listen-metrics' },
  advertiseAddress: { env: 'VMWARDEN_AGENT_ADVERTISE_ADDRESS', flag: 'advertise-address' },
  socket: { env: 'VMWARDEN_AGENT_SOCKET', flag: 'socket' },
  nodeName: { env: 'VMWARDEN_AGENT_NODE_NAME', flag: 'node-name' },
  reportIntervalSeconds: { env: 'VMWARDEN_AGENT_REPORT_INTERVAL_SECONDS', number: true },
  logLevel: { env: 'VMWARDEN_AGENT_LOG_LEVEL', flag: 'log-level' },
  libvirtXmlDir: { env: 'VMWARDEN_AGENT_LIBVIRT_XML_DIR' },
  rehashSchedule: { env: 'VMWARDEN_AGENT_REHASH_SCHEDULE' },
  unsignedPolicy: { env: 'VMWARDEN_AGENT_UNSIGNED_POLICY', flag: 'unsigned-policy' },
  tamperPolicy: { env: 'VMWARDEN_AGENT_TAMPER_POLICY', flag: 'tamper-policy' },
  hookFailPolicy: { env: 'VMWARDEN_AGENT_HOOK_FAIL_POLICY', flag: 'hook-fail-policy' },
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
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const spec of Object.values(keys)) if (spec.flag) options[spec.flag] = { type: 'string' };
  for (const f of extraFlags) options[f] = { type: 'string' };
  let parsed: { values: Record<string, string | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (err) {
    throw new AgentConfigError((err as Error).message);
  }
  const config = defaultAgentConfig(env) as unknown as Record<string, unknown>;
  const file = parsed.values.config ?? env.VMWARDEN_AGENT_CONFIG;
  if (file) {
    let data: Record<string, unknown>;
    try {
      const text = readFileSync(file, 'utf8');
      data = (file.endsWith('.json') ? JSON.parse(text) : parseYaml(text)) ?? {};
    } catch (err) {
      throw new AgentConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    for (const [k, v] of Object.entries(data)) {
      const spec = keys[k as keyof AgentConfig];
      if (!spec) throw new AgentConfigError(`config file ${file}: unknown setting '${k}'`);
      config[k] = spec.number ? Number(v) : String(v);
    }
  }
  for (const [k, spec] of Object.entries(keys)) {
    const fromEnv = env[spec.env];
    const fromFlag = spec.flag ? parsed.values[spec.flag] : undefined;
    const v = fromFlag ?? fromEnv;
    if (v !== undefined) config[k] = spec.number ? Number(v) : v;
  }
  for (const [k, allowed] of Object.entries(CHOICES)) {
    if (!allowed.includes(String(config[k]))) {
      throw new AgentConfigError(`${k} must be one of ${allowed.join(', ')}, got '${String(config[k])}'`);
    }
  }
  const extra = Object.fromEntries(extraFlags.map((f) => [f, parsed.values[f]]));
  return { command: parsed.positionals[0] ?? '', config: config as unknown as AgentConfig, extra };
}
