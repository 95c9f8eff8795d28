/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges computed at scrape
 * time, and histograms. No dependency: the format is a few lines of text per series.
 */

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Labels) => {
  const keys = Object.keys(labels);
  if (!keys.length) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}`;
};
/** Identity of a label set, whatever the order of its keys (called on every request: no JSON). */
const keyOf = (labels: Labels) => {
  const keys = Object.keys(labels);
  if (keys.length > 1) keys.sort();
  let key = '';
  for (const k of keys) key += `${k}\u0000${labels[k]}\u0001`;
  return key;
};
const num = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(labels);
    const cur = this.values.get(k);
    if (cur) cur.value += by;
    else this.values.set(k, { labels, value: by });
  }
  get(labels: Labels = {}): number {
    return this.values.get(keyOf(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values())
      lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

export { labelText, num };

export class Histogram {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}
  observe(labels: Labels, value: number): void {
    const k = keyOf(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => {
      if (value <= b) s!.counts[i]! += 1;
    });
    s.sum += value;
    s.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) =>
        lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(b) })} ${s.counts[i]}`),
      );
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      lines.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

/** A gauge whose samples are read at scrape time (from the store, usually). */
export interface CollectedGauge {
  name: string;
  help: string;
  collect(): Promise<Array<{ labels: Labels; value: number }>>;
}

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

/** grpc-js status code names, for the grpc calls counter. */
const GRPC_CODES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/**
 * Wraps a gRPC service implementation so each unary call (handler(call, callback)) and each stream
 * (handler(call)) is counted. Unary calls are counted with the status they answer; streams as
 * started and with the status of their end ('OK' on finish, the error's code on error).
 */
export function instrumentGrpc<T extends object>(
  impl: T,
  metrics: Pick<Metrics, 'grpcCalls' | 'grpcInFlight'>,
): T {
  const out: Record<string, unknown> = {};
  for (const [method, fn] of Object.entries(impl)) {
    if (typeof fn !== 'function') {
      out[method] = fn;
      continue;
    }
    out[method] = function (this: unknown, call: any, callback?: (err: any, value?: unknown) => void) {
      metrics.grpcInFlight.inc({ method });
      if (typeof callback === 'function') {
        return (fn as Function).call(this, call, (err: any, ...rest: unknown[]) => {
          const code = err ? (GRPC_CODES[err.code ?? 2] ?? 'UNKNOWN') : 'OK';
          metrics.grpcCalls.inc({ method, code });
          return callback(err, ...rest);
        });
      }
      let done = false;
      const finish = (code: string) => {
        if (done) return;
        done = true;
        metrics.grpcCalls.inc({ method, code });
      };
      call?.on?.('finish', () => finish('OK'));
      call?.on?.('error', (err: any) => finish(GRPC_CODES[err?.code ?? 2] ?? 'UNKNOWN'));
      call?.on?.('cancelled', () => finish('CANCELLED'));
      return (fn as Function).call(this, call);
    };
  }
  return out as T;
}
