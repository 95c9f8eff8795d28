import * as grpc from '@grpc/grpc-js';
import { grpcError, issuedBy, peerCertificate } from '../../../proto/grpc-tls.js';
import { CONTROLLER_URI } from '../../../controller/src/pki/internal-ca.js';
import { AlreadySignedError, ArtifactError, DomainStateError, NotFoundError, NotSignedError, } from '../signature/errors.js';
import { canonicalJson } from '../signature/manifest.js';
function toGrpc(err) {
    const message = err.message ?? String(err);
    if (err instanceof NotFoundError || err instanceof NotSignedError)
        return grpcError(grpc.status.NOT_FOUND, message);
    if (err instanceof AlreadySignedError)
        return grpcError(grpc.status.ALREADY_EXISTS, message);
    if (err instanceof DomainStateError || err instanceof ArtifactError) {
        return grpcError(grpc.status.FAILED_PRECONDITION, message);
    }
    if (typeof err.code === 'number')
        return err;
    return grpcError(grpc.status.INTERNAL, message);
}
export function signatureMsg(r) {
    return {
        serverId: r.serverId,
        instanceName: r.instanceName,
        manifestJson: canonicalJson(r.manifest),
        signature: r.signature,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt ?? '',
        isValid: r.lastVerdict,
    };
}
export function verdictMsg(v) {
    return {
        serverId: v.serverId,
        isValid: v.isValid,
        checkedAt: v.checkedAt,
        differences: v.differences.map((d) => ({
            component: d.component,
            role: d.role ?? '',
            target: d.target ?? '',
            path: d.path ?? '',
            expected: d.expected ?? '',
            actual: d.actual ?? '',
            chunks: d.chunks ?? [],
            reason: d.reason ?? '',
        })),
    };
}
/** Every domain on this host with its signature status: ListInstances and the inventory report. */
export async function instancesOf(signatures, hypervisor) {
    const signed = new Map((await signatures.list()).map((r) => [r.serverId, r]));
    const instances = [];
    for (const dom of await hypervisor.listDomains()) {
        const sig = signed.get(dom.uuid);
        instances.push({
            serverId: dom.uuid,
            name: dom.name,
            state: dom.state,
            ipAddresses: dom.state === 'running' ? await hypervisor.addresses(dom.uuid).catch(() => []) : [],
            signed: Boolean(sig),
            isValid: sig?.lastVerdict ?? 'unknown',
        });
    }
    return instances;
}
/** vmwarden.agent.v1.Agent. On TCP only the controller (mTLS, SAN urn:vmwarden:controller) may call. */
export function agentService(d) {
    const authorize = (call) => {
        if (d.caPem === null)
            return; // unix socket: guarded by its file mode
        const cert = peerCertificate(call);
        const san = cert?.subjectAltName ?? '';
        if (!cert || !issuedBy(cert, d.caPem) || !san.split(', ').includes(`URI:${CONTROLLER_URI}`)) {
            throw grpcError(grpc.status.PERMISSION_DENIED, 'only the controller may call this agent');
        }
    };
    const unary = (fn) => (call, cb) => {
        Promise.resolve()
            .then(() => authorize(call))
            .then(() => fn(call.request))
            .then((r) => cb(null, r), (e) => cb(toGrpc(e)));
    };
    return {
        getNodeInfo: unary(() => d.info()),
        listInstances: unary(async () => ({ instances: await instancesOf(d.signatures, d.hypervisor) })),
        getSignature: unary(async ({ serverId }) => {
            const r = await d.signatures.get(serverId);
            if (!r)
                throw new NotSignedError(serverId);
            return signatureMsg(r);
        }),
        signInstance: unary(async ({ serverId, replace }) => signatureMsg(await d.signatures.sign(serverId, { replace }))),
        verifyInstance: unary(async ({ serverId }) => {
            const verdict = verdictMsg(await d.signatures.verify(serverId));
            const event = {
                time: verdict.checkedAt,
                kind: 'verdict',
                serverId,
                instanceName: '',
                detail: verdict.isValid,
                verdict,
                state: '',
            };
            d.events.emit('event', event);
            return verdict;
        }),
        setValidation: (call) => {
            (async () => {
                authorize(call);
                const active = call.request.active;
                if (active) {
                    await d.signatures.signUnsigned((done, total) => call.write({ done, total, finished: false, active: false }));
                }
                await d.signatures.setValidation(active);
                d.events.emit('event', {
                    time: new Date().toISOString(),
                    kind: 'validation',
                    serverId: '',
                    instanceName: '',
                    detail: active ? 'activated' : 'deactivated',
                    verdict: null,
                    state: '',
                });
                call.write({ done: 0, total: 0, finished: true, active });
                call.end();
            })().catch((err) => call.destroy(toGrpc(err)));
        },
        watchEvents: (call) => {
            try {
                authorize(call);
            }
            catch (err) {
                call.destroy(toGrpc(err));
                return;
            }
            const forward = (e) => call.write(e);
            d.events.on('event', forward);
            call.on('cancelled', () => d.events.off('event', forward));
            call.on('close', () => d.events.off('event', forward));
        },
    };
}
//# sourceMappingURL=agent-service.js.map