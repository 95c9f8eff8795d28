import * as grpc from '@grpc/grpc-js';
import { vmwardenServices } from '../../proto/load.js';
/** The agent's mTLS client to the controller: inventory and event reports. */
export class ControllerLink {
    client;
    constructor(creds) {
        const { Controller } = vmwardenServices();
        this.client = new Controller(creds.enrollment.controller, grpc.credentials.createSsl(Buffer.from(creds.ca), Buffer.from(creds.key), Buffer.from(creds.cert)), { 'grpc.ssl_target_name_override': 'localhost' });
    }
    reportInventory(report) {
        return this.unary('reportInventory', report);
    }
    reportEvent(event) {
        return this.unary('reportEvent', event);
    }
    close() {
        this.client.close();
    }
    unary(method, req) {
        return new Promise((resolve, reject) => this.client[method](req, { deadline: Date.now() + 15_000 }, (err) => err ? reject(err) : resolve()));
    }
}
//# sourceMappingURL=controller-link.js.map