import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { EnrollmentError } from '../nodes/service.js';
import { ApiError } from '../platform/errors.js';
import { grpcError, issuedBy, peerCertificate } from '../../../proto/grpc-tls.js';
/** Adapts an async handler to grpc-js, mapping our errors to gRPC status codes. */
function unary(fn) {
    return (call, callback) => {
        fn(call).then((res) => callback(null, res), (err) => callback(toGrpc(err)));
    };
}
function toGrpc(err) {
    if (err.code !== undefined && typeof err.code === 'number') {
        return err;
    }
    if (err instanceof EnrollmentError)
        return grpcError(grpc.status.UNAUTHENTICATED, err.message);
    if (err instanceof ApiError) {
        const code = err.status === 401
            ? grpc.status.UNAUTHENTICATED
            : err.status === 403
                ? grpc.status.PERMISSION_DENIED
                : err.status === 404
                    ? grpc.status.NOT_FOUND
                    : err.status === 409
                        ? grpc.status.ALREADY_EXISTS
                        : err.status < 500
                            ? grpc.status.INVALID_ARGUMENT
                            : grpc.status.UNAVAILABLE;
        return grpcError(code, err.message);
    }
    return grpcError(grpc.status.INTERNAL, 'internal error');
}
/** vmwarden.controller.v1.Controller: agent enrollment and reports, and the fleet view. */
export function controllerService(s, restUrl) {
    /** The node behind an agent's mTLS certificate, or UNAUTHENTICATED. */
    const agentNode = async (call) => {
        const cert = peerCertificate(call);
        if (!cert || !issuedBy(cert, s.ca.certPem, s.clock.now())) {
            throw grpcError(grpc.status.UNAUTHENTICATED, 'this call needs the agent certificate issued at enrollment');
        }
        const fingerprint = createHash('sha256').update(cert.raw).digest('hex');
        const authenticator = await s.identityStore.findCertByFingerprint(fingerprint);
        const identity = authenticator && (await s.identityStore.getIdentity(authenticator.identityId));
        const node = identity && identity.role === 'agent' && !identity.disabled && (await s.nodes.forIdentity(identity.id));
        if (!node)
            throw grpcError(grpc.status.PERMISSION_DENIED, 'the certificate does not belong to an enrolled agent');
        return node;
    };
    /** Fleet view callers send an admin API session token as `authorization: Bearer …`. */
    const admin = async (call) => {
        const header = String(call.metadata.get('authorization')[0] ?? '');
        const token = header.replace(/^bearer\s+/i, '');
        const principal = token ? await s.sessions.resolve(token) : null;
        if (!principal)
            throw grpcError(grpc.status.UNAUTHENTICATED, 'send an API session token as authorization: Bearer');
        if (principal.identity.role !== 'admin')
            throw grpcError(grpc.status.PERMISSION_DENIED, 'admin role required');
    };
    return {
        enroll: unary(async (call) => {
            const { node, certPem, identityId } = await s.nodes.enroll(call.request);
            return {
                nodeId: node.id,
                nodeName: node.name,
                clientCertPem: certPem,
                caPem: s.ca.certPem,
                identityId,
                restUrl: restUrl(),
            };
        }),
        reportInventory: unary(async (call) => {
            const node = await agentNode(call);
            await s.nodes.reportInventory(node, call.request);
            return { nodeId: node.id };
        }),
        reportEvent: unary(async (call) => {
            const node = await agentNode(call);
            await s.sign.recordEvent(node, call.request);
            return { nodeId: node.id };
        }),
        listInstances: unary(async (call) => {
            await admin(call);
            const { nodeId, limit, offset } = call.request;
            const all = nodeId ? (await s.inventory.listForNode(nodeId)).rows : (await s.inventory.listAll()).rows;
            const page = all.slice(offset, offset + (limit || 100));
            const verdicts = new Map((await s.sign.list(0, 100000)).map((r) => [r.serverId, r.isValid]));
            return {
                instances: page.map((i) => ({
                    serverId: i.serverId,
                    instanceName: i.instanceName,
                    nodeId: i.nodeId ?? 0,
                    state: i.state,
                    ipAddresses: i.ipAddress ? [i.ipAddress] : [],
                    isValid: verdicts.get(i.serverId) ?? 'unknown',
                })),
                total: all.length,
            };
        }),
        listSignatures: unary(async (call) => {
            await admin(call);
            const { nodeId, limit, offset } = call.request;
            const rows = (await s.sign.list(0, 100000)).filter((r) => !nodeId || r.nodeId === nodeId);
            return {
                signatures: rows.slice(offset, offset + (limit || 100)).map(fleetSignature),
                total: rows.length,
            };
        }),
        getSignature: unary(async (call) => {
            await admin(call);
            return fleetSignature(await s.sign.get(call.request.serverId));
        }),
    };
}
function fleetSignature(r) {
    return {
        id: r.id,
        serverId: r.serverId,
        instanceName: r.instanceName,
        nodeId: r.nodeId,
        isValid: r.isValid,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt ?? '',
        manifestJson: r.manifest,
        signature: r.signature,
    };
}
//# sourceMappingURL=controller-service.js.map