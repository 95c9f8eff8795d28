import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
/** proto/ at the package root, whether running from dist/ or from the source tree. */
export const protoRoot = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../proto/' : './', import.meta.url));
const options = {
    includeDirs: [protoRoot],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
};
export function loadDefinition(files) {
    return protoLoader.loadSync(files, options);
}
export function loadProto(file) {
    return grpc.loadPackageDefinition(loadDefinition([file]));
}
/** The two vmwarden services (and the standard health service), loaded once. */
export function vmwardenServices() {
    const files = [
        'vmwarden/agent/v1/agent.proto',
        'vmwarden/controller/v1/controller.proto',
        'grpc/health/v1/health.proto',
    ];
    const definition = loadDefinition(files);
    const root = grpc.loadPackageDefinition(definition);
    return {
        Agent: root.vmwarden.agent.v1.Agent,
        Controller: root.vmwarden.controller.v1.Controller,
        Health: root.grpc.health.v1.Health,
        definition,
    };
}
//# sourceMappingURL=load.js.map