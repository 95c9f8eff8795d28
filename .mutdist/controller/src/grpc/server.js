import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { vmwardenServices } from '../../../proto/load.js';
import { serverTls } from '../../../proto/grpc-tls.js';
import { controllerService } from './controller-service.js';
/**
 * The controller's gRPC server over TLS with the internal CA's server certificate. Client
 * certificates are requested but optional (an agent enrolls before it has one); agent calls check
 * theirs. Serves vmwarden.controller.v1.Controller, the standard health service, and reflection.
 */
export async function startGrpcServer(host, port, tls, services, restUrl) {
    const server = new grpc.Server();
    const { Controller, Health, definition } = vmwardenServices();
    server.addService(Controller.service, controllerService(services, restUrl));
    server.addService(Health.service, {
        check: (_call, callback) => callback(null, { status: 'SERVING' }),
    });
    new ReflectionService(definition).addToServer(server);
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const bound = await new Promise((resolve, reject) => server.bindAsync(address, serverTls({ ...tls, cert: `${tls.cert.trimEnd()}\n${tls.ca}` }, false), (err, p) => (err ? reject(err) : resolve(p))));
    return { server, port: bound };
}
export function stopGrpcServer(server, deadlineMs) {
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
//# sourceMappingURL=server.js.map