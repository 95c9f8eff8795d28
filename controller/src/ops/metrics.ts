/** The controller's metrics: its counters and histograms, and the gauges its concerns add. */

import { MetricsRegistry, type CollectedGauge } from '../../../lib/metrics/prometheus.js';

export class Metrics {
  private readonly registry = new MetricsRegistry();
  readonly httpRequests = this.registry.counter(
    'vmwarden_http_requests_total',
    'REST requests answered, by route template, method and status code.',
    ['route', 'method', 'status'],
  );
  readonly httpDuration = this.registry.histogram(
    'vmwarden_http_request_duration_seconds',
    'REST request latency in seconds, by route template, method and status code.',
    ['route', 'method', 'status'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly certificatesIssued = this.registry.counter(
    'vmwarden_certificates_issued_total',
    'SSH user certificates issued through the access API.',
  );
  readonly certificatesRevoked = this.registry.counter(
    'vmwarden_certificates_revoked_total',
    'SSH user certificates revoked through the access API.',
  );
  readonly auditWrites = this.registry.counter(
    'vmwarden_audit_writes_total',
    'Audit log writes, by result (ok, error). An error refuses the audited action.',
    ['result'],
  );
  readonly grpcCalls = this.registry.counter(
    'vmwarden_grpc_calls_total',
    'gRPC calls served by the controller, by method and status code.',
    ['method', 'code'],
  );
  readonly grpcInFlight = this.registry.counter(
    'vmwarden_grpc_calls_started_total',
    'gRPC calls started on the controller, by method (in flight = started - finished).',
    ['method'],
  );

  addGauge(g: CollectedGauge): void {
    this.registry.gauge(g);
  }

  render(): Promise<string> {
    return this.registry.render();
  }
}
