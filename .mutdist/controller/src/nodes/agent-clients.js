import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { vmwardenServices } from '../../../proto/load.js';
import { nodeUri } from '../pki/internal-ca.js';
export class AgentUnavailableError extends Error {
}
const DEADLINE_MS = 30_000;
/**
 * gRPC clients for the agents, over mutual TLS: the controller presents its own client certificate
 * and accepts only the agent certificate issued for that node (SAN urn:vmwarden:node:<id>).
 */
export class AgentClients {
    tls;
    clients = new Map();
    Agent = vmwardenServices().Agent;
    constructor(tls) {
        this.tls = tls;
    }
    for(node) {
        if (!node.agentAddress)
            throw new AgentUnavailableError(`node ${node.name} has not enrolled an agent yet`);
        let entry = this.clients.get(node.id);
        if (!entry || entry.address !== node.agentAddress) {
            entry?.raw.close();
            const expected = nodeUri(node.id);
            const credentials = grpc.credentials.createSsl(Buffer.from(this.tls.ca), Buffer.from(this.tls.key), Buffer.from(this.tls.cert), {
                checkServerIdentity: (_host, cert) => {
                    const san = new X509Certificate(cert.raw).subjectAltName ?? '';
                    return san.split(', ').includes(`URI:${expected}`)
                        ? undefined
                        : new Error(`agent certificate is not the one issued for ${expected}`);
                },
            });
            entry = { address: node.agentAddress, raw: new this.Agent(node.agentAddress, credentials) };
            this.clients.set(node.id, entry);
        }
        return wrap(entry.raw, node);
    }
    close() {
        for (const { raw } of this.clients.values())
            raw.close();
        this.clients.clear();
    }
}
function wrap(raw, node) {
    const unary = (method, req) => new Promise((resolve, reject) => raw[method](req, { deadline: Date.now() + DEADLINE_MS }, (err, res) => err ? reject(translate(err, node)) : resolve(res)));
    return {
        nodeInfo: () => unary('getNodeInfo', {}),
        sign: (serverId, replace) => unary('signInstance', { serverId, replace }),
        getSignature: (serverId) => unary('getSignature', { serverId }),
        verify: (serverId) => unary('verifyInstance', { serverId }),
        setValidation: (active, onProgress) => new Promise((resolve, reject) => {
            const stream = raw.setValidation({ active });
            stream.on('data', onProgress);
            stream.on('error', (err) => reject(translate(err, node)));
            stream.on('end', () => resolve());
        }),
    };
}
/** Transport failures become AgentUnavailableError; the agent's own answers keep their gRPC code. */
function translate(err, node) {
    if ([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED].includes(err.code)) {
        return new AgentUnavailableError(`agent of node ${node.name} is unreachable: ${err.details || err.message}`);
    }
    return err;
}
//# sourceMappingURL=agent-clients.js.map