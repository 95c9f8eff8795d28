import * as grpc from '@grpc/grpc-js';
import { loadProto } from './protos.js';

type Health = { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };

export interface GrpcTls {
  key: string;
  cert: string;
  ca: string;
}

/**
 * The controller's gRPC server over TLS with the internal CA's server certificate. Client
 * certificates are optional at the TLS layer (an agent enrolls before it has one); services that
 * need one check it per call. Serves the standard health service; other services register on it.
 */
export async function startGrpcServer(
  host: string,
  port: number,
  tls: GrpcTls,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  const health = (loadProto('grpc/health/v1/health.proto') as unknown as Health).grpc.health.v1.Health;
  server.addService(health.service, {
    check: (_call: unknown, callback: grpc.sendUnaryData<{ status: string }>) =>
      callback(null, { status: 'SERVING' }),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      grpc.ServerCredentials.createSsl(
        Buffer.from(tls.ca),
        [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }],
        false,
      ),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return { server, port: bound };
}

export function stopGrpcServer(server: grpc.Server, deadlineMs: number): Promise<void> {
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
