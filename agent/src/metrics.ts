import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, labelText, num } from '../../lib/metrics/prometheus.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import type { AgentEvent } from './events.js';
import type { FileDigest } from './signature/hashing/index.js';

type Sample = { labels: Record<string, string>; value: number };

/** The agent's Prometheus metrics (text format 0.0.4), served on its own loopback listener. */
export class AgentMetrics {
  readonly verdicts = new Counter('vmwarden_agent_verdicts_total', 'Signature verdicts, by is_valid.');
  readonly hookDecisions = new Counter(
    'vmwarden_agent_hook_decisions_total',
    'Start checks asked by the libvirt hook, by decision (allow|refuse).',
  );
  readonly hashedBytes = new Counter(
    'vmwarden_agent_hashed_bytes_total',
    'Bytes read by the hashing engine (rate over vmwarden_agent_hash_seconds_total = hashing bytes/s).',
  );
  readonly hashSeconds = new Counter(
    'vmwarden_agent_hash_seconds_total',
    'Time spent hashing files, seconds.',
  );
  readonly reusedFiles = new Counter(
    'vmwarden_agent_recheck_reused_total',
    'Files re-checked from their unchanged identity, without reading.',
  );
  readonly grpcCalls = new Counter(
    'vmwarden_agent_grpc_calls_total',
    'gRPC calls answered by the agent, by method and code.',
  );
  readonly grpcInFlight = new Counter(
    'vmwarden_agent_grpc_calls_started_total',
    'gRPC calls started, by method.',
  );

  constructor(private readonly gauges: () => Promise<Record<string, { help: string; samples: Sample[] }>>) {}

  onEvent(e: AgentEvent): void {
    if (e.kind === 'verdict' && e.verdict) this.verdicts.inc({ is_valid: String(e.verdict.isValid) });
  }

  onHashed(d: FileDigest): void {
    if (d.reused) this.reusedFiles.inc();
    this.hashedBytes.inc({}, d.stats.bytesRead);
    this.hashSeconds.inc({}, d.stats.ms / 1000);
  }

  async render(): Promise<string> {
    const parts = [
      this.verdicts,
      this.hookDecisions,
      this.hashedBytes,
      this.hashSeconds,
      this.reusedFiles,
      this.grpcCalls,
      this.grpcInFlight,
    ].map((c) => c.render());
    for (const [name, g] of Object.entries(await this.gauges().catch(() => ({})))) {
      parts.push(
        [
          `# HELP ${name} ${g.help}`,
          `# TYPE ${name} gauge`,
          ...g.samples.map((s) => `${name}${labelText(s.labels)} ${num(s.value)}`),
        ].join('\n'),
      );
    }
    return `${parts.join('\n')}\n`;
  }
}

/** GET /metrics on HOST:PORT (loopback by default). */
export async function serveMetrics(
  address: string,
  metrics: AgentMetrics,
): Promise<{ address: string; close(): Promise<void> }> {
  const { host, port } = parseHostPort(address);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    address: `${host}:${bound}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
