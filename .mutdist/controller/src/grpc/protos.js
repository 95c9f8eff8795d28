import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
/** proto/ at the package root, whether running from dist/ or from the source tree. */
export const protoRoot = fileURLToPath(new URL('../../../../proto/', import.meta.url));
export function loadProto(file) {
    const definition = protoLoader.loadSync(file, {
        includeDirs: [protoRoot],
        keepCase: false,
        longs: String,
        enums: String,
        defaults: true,
        oneofs: true,
    });
    return grpc.loadPackageDefinition(definition);
}
//# sourceMappingURL=protos.js.map