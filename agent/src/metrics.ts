import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CONTENT_TYPE, MetricsRegistry, type CollectedGauge } from '../../lib/metrics/prometheus.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import type { AgentEvent } from './events.js';
import type { GuestDigest } from './signature/guest-disk/hasher.js';
import type { FileDigest } from './signature/hashing/index.js';

/** The agent's Prometheus metrics, served on its own loopback listener. */
export class AgentMetrics {
  private readonly registry = new MetricsRegistry();
  readonly verdicts = this.registry.counter(
    'vmwarden_agent_verdicts_total',
    'Signature verdicts, by is_valid.',
    ['is_valid'],
  );
  readonly hookDecisions = this.registry.counter(
    'vmwarden_agent_hook_decisions_total',
    'Start checks asked by the libvirt hook, by decision (allow|refuse).',
    ['decision'],
  );
  readonly hashedBytes = this.registry.counter(
    'vmwarden_agent_hashed_bytes_total',
    'Bytes read by the hashing engine (rate over vmwarden_agent_hash_seconds_total = hashing bytes/s).',
  );
  readonly hashSeconds = this.registry.counter(
    'vmwarden_agent_hash_seconds_total',
    'Time spent hashing files, seconds.',
  );
  readonly reusedFiles = this.registry.counter(
    'vmwarden_agent_recheck_reused_total',
    'Files re-checked from their unchanged identity, without reading.',
  );
  readonly guestSeals = this.registry.counter(
    'vmwarden_agent_guest_seals_total',
    'qcow2 disks sealed over their guest content, by pass (incremental: from the dirty bitmap; full).',
    ['pass'],
  );
  readonly guestSealChunks = this.registry.counter(
    'vmwarden_agent_guest_seal_chunks_hashed_total',
    '1 MiB chunks of guest content hashed by seals, by pass.',
    ['pass'],
  );
  readonly grpcCalls = this.registry.counter(
    'vmwarden_agent_grpc_calls_total',
    'gRPC calls answered by the agent, by method and code.',
    ['method', 'code'],
  );
  readonly grpcInFlight = this.registry.counter(
    'vmwarden_agent_grpc_calls_started_total',
    'gRPC calls started, by method.',
    ['method'],
  );

  /** `gauges` are read at scrape time. */
  constructor(gauges: CollectedGauge[] = []) {
    for (const g of gauges) this.registry.gauge(g);
  }

  onEvent(e: AgentEvent): void {
    if (e.kind === 'verdict' && e.verdict) this.verdicts.inc({ is_valid: String(e.verdict.isValid) });
  }

  onHashed(d: FileDigest): void {
    if (d.reused) this.reusedFiles.inc();
    this.hashedBytes.inc({}, d.stats.bytesRead);
    this.hashSeconds.inc({}, d.stats.ms / 1000);
  }

  onGuestSealed(d: GuestDigest): void {
    this.guestSeals.inc({ pass: d.pass.mode });
    this.guestSealChunks.inc({ pass: d.pass.mode }, d.pass.chunksHashed);
  }

  render(): Promise<string> {
    return this.registry.render();
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
      (text) => res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(text),
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
