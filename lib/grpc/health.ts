import * as grpc from '@grpc/grpc-js';
import { loadDefinition } from '../../proto/load.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
type Status = ServingStatus | 'SERVICE_UNKNOWN';
type Watch = grpc.ServerWritableStream<{ service?: string }, { status: Status }>;

export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * grpc.health.v1.Health as the protocol specifies it (grpc/grpc doc/health-checking.md): a status per
 * service name, '' for the server as a whole. `Check` of a name not registered → NOT_FOUND. `Watch`
 * sends the current status at once (SERVICE_UNKNOWN for an unregistered name, which may become known
 * later) and then every change. `shutdown()` turns everything NOT_SERVING, tells the watchers, and
 * ends their streams so that a graceful server shutdown does not wait for them.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<Watch>>();

  constructor(services: string[]) {
    this.statuses.set('', 'SERVING');
    for (const s of services) this.statuses.set(s, 'SERVING');
  }

  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const w of this.watchers.get(service) ?? []) w.write({ status });
  }

  shutdown(): void {
    for (const s of this.statuses.keys()) this.set(s, 'NOT_SERVING');
    for (const set of this.watchers.values()) for (const w of set) w.end();
    this.watchers.clear();
  }

  addTo(server: grpc.Server): void {
    const definition = loadDefinition(['grpc/health/v1/health.proto']);
    const service = (grpc.loadPackageDefinition(definition) as any).grpc.health.v1.Health.service;
    server.addService(service, {
      check: (
        call: grpc.ServerUnaryCall<{ service?: string }, { status: Status }>,
        cb: grpc.sendUnaryData<{ status: Status }>,
      ) => {
        const status = this.statuses.get(call.request.service ?? '');
        if (status) cb(null, { status });
        else
          cb({
            code: grpc.status.NOT_FOUND,
            details: `unknown service '${String(call.request.service).slice(0, 200)}'`,
          });
      },
      watch: (call: Watch) => {
        const name = call.request.service ?? '';
        let set = this.watchers.get(name);
        if (!set) this.watchers.set(name, (set = new Set()));
        set.add(call);
        const forget = () => {
          set.delete(call);
          if (set.size === 0 && this.watchers.get(name) === set) this.watchers.delete(name);
        };
        call.on('cancelled', forget);
        call.on('close', forget);
        call.write({ status: this.statuses.get(name) ?? 'SERVICE_UNKNOWN' });
      },
    });
  }
}
