import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { mkdirSync, chmodSync, rmSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ReflectionService } from '@grpc/reflection';
import { vmwardenServices } from '../../proto/load.js';
import { serverTls } from '../../proto/grpc-tls.js';
import { parseHostPort } from '../../controller/src/config.js';
import { connectHypervisor, pickDefaultUri } from './libvirt/hypervisor.js';
import { SignatureService } from './signature/service.js';
import { loadCredentials } from './credentials.js';
import { ControllerLink } from './controller-link.js';
import { agentService, instancesOf } from './grpc/agent-service.js';
export const AGENT_VERSION = '0.1.0';
function bind(server, address, creds) {
    return new Promise((res, rej) => server.bindAsync(address, creds, (err, port) => (err ? rej(err) : res(port))));
}
/**
 * Runs an enrolled agent: libvirt, the signature service, the Agent gRPC service on TCP (mTLS) and on
 * the local unix socket, and periodic inventory reports. `hypervisor` may be handed in (tests share
 * one test:///default connection, whose state is private to that connection).
 */
export async function startAgent(config, opts = {}) {
    const dataDir = resolve(config.dataDir);
    const creds = loadCredentials(dataDir);
    const uri = config.libvirtUri || (await pickDefaultUri());
    const hypervisor = opts.hypervisor ?? (await connectHypervisor(uri));
    const signatures = await SignatureService.open({ dataDir, hypervisor, node: creds.enrollment.nodeName });
    const events = new EventEmitter();
    const link = new ControllerLink(creds);
    const info = async () => {
        const v = await signatures.validation();
        return {
            name: creds.enrollment.nodeName,
            hostname: hostname(),
            libvirtUri: hypervisor.uri,
            version: AGENT_VERSION,
            validationActive: v.active,
            validationSince: v.since ?? '',
            publicKeyPem: signatures.publicKeyPem,
        };
    };
    const { Agent, Health, definition } = vmwardenServices();
    const health = {
        check: (_c, cb) => cb(null, { status: 'SERVING' }),
    };
    const tcp = new grpc.Server();
    tcp.addService(Agent.service, agentService({ signatures, hypervisor, events, info, caPem: creds.ca }));
    tcp.addService(Health.service, health);
    new ReflectionService(definition).addToServer(tcp);
    const { host, port } = parseHostPort(config.listenGrpc);
    const boundPort = await bind(tcp, `${host}:${port}`, serverTls(creds, true));
    const grpcAddress = `${host}:${boundPort}`;
    const local = new grpc.Server();
    local.addService(Agent.service, agentService({ signatures, hypervisor, events, info, caPem: null }));
    local.addService(Health.service, health);
    const socket = resolve(config.socket);
    mkdirSync(dirname(socket), { recursive: true, mode: 0o750 });
    if (existsSync(socket))
        rmSync(socket);
    await bind(local, `unix://${socket}`, grpc.ServerCredentials.createInsecure());
    chmodSync(socket, 0o660);
    const advertise = config.advertiseAddress || (host === '0.0.0.0' ? `${hostname()}:${boundPort}` : grpcAddress);
    const report = async () => {
        const instances = await instancesOf(signatures, hypervisor);
        const v = await signatures.validation();
        await link.reportInventory({ instances, agentAddress: advertise, validationActive: v.active, libvirtUri: hypervisor.uri });
    };
    const forward = (e) => void link.reportEvent(e).catch(() => undefined);
    events.on('event', forward);
    await report().catch(() => undefined); // the controller may be down: we keep working and retry
    const timer = setInterval(() => void report().catch(() => undefined), config.reportIntervalSeconds * 1000);
    timer.unref();
    const shutdown = (s) => new Promise((res) => s.tryShutdown(() => res()));
    return {
        endpoints: { grpc: grpcAddress, socket },
        signatures,
        hypervisor,
        events,
        report,
        stop: async () => {
            clearInterval(timer);
            events.off('event', forward);
            await Promise.race([
                Promise.all([shutdown(tcp), shutdown(local)]),
                new Promise((r) => setTimeout(r, 5000)),
            ]);
            tcp.forceShutdown();
            local.forceShutdown();
            link.close();
            await signatures.close();
            if (!opts.hypervisor)
                await hypervisor.close();
            rmSync(socket, { force: true });
        },
    };
}
//# sourceMappingURL=daemon.js.map