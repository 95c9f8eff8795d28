import * as grpc from '@grpc/grpc-js';
import { vmwardenServices } from '../../../proto/load.js';
import { grpcServerOptions, serverTls } from '../../../proto/grpc-tls.js';
import type { ControllerServices } from '../services.js';
import { controllerService } from './controller-service.js';
import { instrumentGrpc } from '../../../lib/metrics/grpc.js';
import { HealthService } from '../../../lib/grpc/health.js';
import { addReflection } from '../../../lib/grpc/reflection.js';
import { dropGrpcBindFailureLine } from '../../../lib/grpc/bind-log.js';

const CONTROLLER_SERVICE = 'vmwarden.controller.v1.Controller';
const healthOf = new WeakMap<grpc.Server, HealthService>();

export interface GrpcTls {
  key: string;
  cert: string;
  ca: string;
}

/**
 * The controller's gRPC server over TLS with the internal CA's server certificate. Client
 * certificates are requested but optional (an agent enrolls before it has one); agent calls check
 * theirs. Serves vmwarden.controller.v1.Controller, the standard health service, and reflection
 * (which lists only these).
 */
export async function startGrpcServer(
  host: string,
  port: number,
  tls: GrpcTls,
  services: ControllerServices,
  restUrl: () => string,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server(grpcServerOptions);
  const { Controller } = vmwardenServices();
  server.addService(
    Controller.service,
    instrumentGrpc(
      controllerService(services, restUrl),
      services.metrics,
    ) as grpc.UntypedServiceImplementation,
  );
  const health = new HealthService([CONTROLLER_SERVICE]);
  health.addTo(server);
  healthOf.set(server, health);
  addReflection(server, ['vmwarden/controller/v1/controller.proto'], [CONTROLLER_SERVICE]);
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  dropGrpcBindFailureLine();
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      address,
      serverTls({ ...tls, cert: `${tls.cert.trimEnd()}\n${tls.ca}` }, false),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return { server, port: bound };
}

export function stopGrpcServer(server: grpc.Server, deadlineMs: number): Promise<void> {
  // Health watchers hear NOT_SERVING and their streams end: tryShutdown would wait for them.
  healthOf.get(server)?.shutdown();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, deadlineMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
