/**
 * prom-client, loaded through require with the few types vmwarden uses. (It is a CommonJS package;
 * this keeps the build independent of whether its type declarations are installed yet.)
 */
import { createRequire } from 'node:module';

export type Labels = Record<string, string>;

export interface PromRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface PromCounter {
  inc(labels: Labels, value: number): void;
}

export interface PromHistogram {
  observe(labels: Labels, value: number): void;
}

export interface PromGauge {
  set(labels: Labels, value: number): void;
  reset(): void;
  remove(labels: Labels): void;
}

interface MetricOptions<M> {
  name: string;
  help: string;
  labelNames: string[];
  registers: PromRegistry[];
  collect?: (this: M) => Promise<void>;
}

export interface PromClient {
  Registry: new () => PromRegistry;
  Counter: new (o: MetricOptions<PromCounter>) => PromCounter;
  Histogram: new (o: MetricOptions<PromHistogram> & { buckets: number[] }) => PromHistogram;
  Gauge: new (o: MetricOptions<PromGauge>) => PromGauge;
  collectDefaultMetrics(o: { register: PromRegistry }): void;
}

export const prom = createRequire(import.meta.url)('prom-client') as PromClient;
