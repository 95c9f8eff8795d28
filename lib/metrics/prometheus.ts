/**
 * Prometheus metrics through prom-client. Each program instance has a registry of its own (tests
 * run several controllers and agents in one process, each counting its own work); the standard
 * process_* and nodejs_* metrics describe the process, so they are collected once per process, in
 * a registry every instance exposes after its own metrics.
 */
import * as prom from 'prom-client';

export type Labels = Record<string, string>;

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

let processRegistry: prom.Registry | undefined;

/** The process-wide registry of process_* and nodejs_* (collectDefaultMetrics), created on first use. */
function processMetrics(): prom.Registry {
  if (!processRegistry) {
    processRegistry = new prom.Registry();
    prom.collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export class Counter {
  constructor(private readonly c: prom.Counter<string>) {}
  inc(labels: Labels = {}, by = 1): void {
    this.c.inc(labels, by);
  }
}

export class Histogram {
  constructor(private readonly h: prom.Histogram<string>) {}
  observe(labels: Labels, value: number): void {
    this.h.observe(labels, value);
  }
}

/** A gauge whose samples are read at scrape time (from the store, usually). */
export interface CollectedGauge {
  name: string;
  help: string;
  /** Every label name the samples may carry. */
  labelNames?: string[];
  collect(): Promise<Array<{ labels: Labels; value: number }>>;
}

/** One program instance's metrics. */
export class MetricsRegistry {
  private readonly registry = new prom.Registry();

  counter(name: string, help: string, labelNames: string[] = []): Counter {
    return new Counter(new prom.Counter({ name, help, labelNames, registers: [this.registry] }));
  }

  histogram(name: string, help: string, labelNames: string[], buckets: number[]): Histogram {
    return new Histogram(new prom.Histogram({ name, help, labelNames, buckets, registers: [this.registry] }));
  }

  /** A gauge read at scrape time; a source that fails leaves it without samples for that scrape. */
  gauge(g: CollectedGauge): void {
    new prom.Gauge({
      name: g.name,
      help: g.help,
      labelNames: g.labelNames ?? [],
      registers: [this.registry],
      async collect() {
        this.reset();
        try {
          for (const { labels, value } of await g.collect()) this.set(labels, value);
        } catch {
          if (!g.labelNames?.length) this.remove({});
        }
      },
    });
  }

  /** The text exposition: this instance's metrics, then the process's. */
  async render(): Promise<string> {
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return `${own}\n${proc}`;
  }
}
