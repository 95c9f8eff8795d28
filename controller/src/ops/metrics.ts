/** The controller's metrics: its counters and histograms, and the gauges its concerns add. */

import { Counter, Histogram, labelText, num, type CollectedGauge } from '../../../lib/metrics/prometheus.js';

export class Metrics {
  readonly httpRequests = new Counter(
    'vmwarden_http_requests_total',
    'REST requests answered, by route template, method and status code.',
  );
  readonly httpDuration = new Histogram(
    'vmwarden_http_request_duration_seconds',
    'REST request latency in seconds, by route template, method and status code.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly certificatesIssued = new Counter(
    'vmwarden_certificates_issued_total',
    'SSH user certificates issued through the access API.',
  );
  readonly certificatesRevoked = new Counter(
    'vmwarden_certificates_revoked_total',
    'SSH user certificates revoked through the access API.',
  );
  readonly auditWrites = new Counter(
    'vmwarden_audit_writes_total',
    'Audit log writes, by result (ok, error). An error refuses the audited action.',
  );
  readonly grpcCalls = new Counter(
    'vmwarden_grpc_calls_total',
    'gRPC calls served by the controller, by method and status code.',
  );
  readonly grpcInFlight = new Counter(
    'vmwarden_grpc_calls_started_total',
    'gRPC calls started on the controller, by method (in flight = started - finished).',
  );
  private readonly gauges: CollectedGauge[] = [];

  addGauge(g: CollectedGauge): void {
    this.gauges.push(g);
  }

  async render(): Promise<string> {
    const parts: string[] = [
      this.httpRequests.render(),
      this.httpDuration.render(),
      this.certificatesIssued.render(),
      this.certificatesRevoked.render(),
      this.auditWrites.render(),
      this.grpcCalls.render(),
      this.grpcInFlight.render(),
    ];
    for (const g of this.gauges) {
      const lines = [`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`];
      try {
        for (const { labels, value } of await g.collect())
          lines.push(`${g.name}${labelText(labels)} ${num(value)}`);
      } catch {
        // A store that cannot answer leaves the gauge without samples; /readyz reports the cause.
      }
      parts.push(lines.join('\n'));
    }
    return `${parts.join('\n')}\n`;
  }
}
