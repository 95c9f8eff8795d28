import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { mkdirSync, chmodSync, rmSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { vmwardenServices } from '../../proto/load.js';
import { CertificateSource, grpcServerOptions, serverTls } from '../../proto/grpc-tls.js';
import cron from 'node-cron';
import { needsRotation, rotateCertificate } from './rotation.js';
import type { NodeInfo, TrustBundleMsg } from '../../proto/messages.js';
import { isDigestAlgorithm } from './signature/hashing/digest.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import { listenOn } from '../../lib/platform/listen-error.js';
import { dropGrpcBindFailureLine } from '../../lib/grpc/bind-log.js';
import type { AgentConfig } from './config.js';
import { connectHypervisor, pickDefaultUri, type Hypervisor } from './libvirt/hypervisor.js';
import { SignatureService } from './signature/service.js';
import { loadCredentials } from './credentials.js';
import { ControllerLink, controllerAddresses } from './controller-link.js';
import { agentService, eventMsg, instancesOf } from './grpc/agent-service.js';
import type { AgentEvent } from './events.js';
import { ChangeWatcher } from './watch.js';
import { Enforcer } from './enforce/enforcer.js';
import { StartGuard } from './enforce/start-guard.js';
import { startHookEndpoint } from './enforce/hook-endpoint.js';
import { AgentMetrics, serveMetrics } from './metrics.js';
import { instrumentGrpc } from '../../lib/metrics/grpc.js';
import { HealthService } from '../../lib/grpc/health.js';
import { addReflection } from '../../lib/grpc/reflection.js';
import { hookSocketPath } from './enforce/state-file.js';
import { GuestTrustManager } from './guest/manager.js';
import { HostKeyPins } from './guest/host-keys.js';
import type { SshTarget } from './guest/ssh-channel.js';

export interface RunningAgent {
  /** socket: the gRPC unix socket; hook: the HTTP/1.1 unix socket the libvirt hook asks. */
  endpoints: { grpc: string; socket: string; hook: string; metrics?: string };
  metrics: AgentMetrics;
  signatures: SignatureService;
  hypervisor: Hypervisor;
  events: EventEmitter;
  watcher: ChangeWatcher;
  /** SSH trust and sessions inside guests (qemu guest agent); absent for non-QEMU URIs. */
  guests?: GuestTrustManager;
  /** Sends the inventory to the controller now (also runs on a timer). */
  report(): Promise<void>;
  /** Rotates the agent certificate now (also runs when a third of its lifetime is left). */
  rotate(): Promise<void>;
  stop(): Promise<void>;
}

export const AGENT_VERSION = '0.1.0';

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  dropGrpcBindFailureLine();
  return new Promise((res, rej) =>
    server.bindAsync(address, creds, (err, port) => (err ? rej(err) : res(port))),
  );
}

export interface GuestTrustOptions {
  pollMs?: number;
  /** How often a guest reached over SSH is asked whether its guest agent is back. */
  agentProbeMs?: number;
  only?: (uuid: string) => boolean;
  /** Overrides config.sshProvisioning (tests). */
  sshTarget?: (uuid: string, name: string) => SshTarget | undefined;
  /** Overrides the agent's log for guest trust (tests). */
  log?: (msg: string, err?: unknown) => void;
}

/**
 * Runs an enrolled agent: libvirt, the signature service, the Agent gRPC service on TCP (mTLS) and on
 * the local unix socket, and periodic inventory reports. `hypervisor` may be handed in (tests share
 * one test:///default connection, whose state is private to that connection).
 */
export async function startAgent(
  config: AgentConfig,
  opts: {
    hypervisor?: Hypervisor;
    /** Background failures worth a log line (guest trust, pushes). */
    log?: (msg: string, err?: unknown) => void;
    /** Trust inside guests: false turns it off; `only` limits it to some domains (tests). */
    guests?: false | GuestTrustOptions;
  } = {},
): Promise<RunningAgent> {
  const dataDir = resolve(config.dataDir);
  const creds = loadCredentials(dataDir);
  const uri = config.libvirtUri || (await pickDefaultUri());
  const hypervisor = opts.hypervisor ?? (await connectHypervisor(uri));
  const guard = new StartGuard(hypervisor);
  const metrics = new AgentMetrics([
    {
      name: 'vmwarden_agent_signed_instances',
      help: 'Instances with a baseline.',
      collect: async () => [{ labels: {}, value: (await signatures.list()).length }],
    },
    {
      name: 'vmwarden_agent_uninspected_parts',
      help: 'Parts of signed instances no signature covers (network disks, ...): their verdicts are unknown.',
      collect: async () => [
        {
          labels: {},
          value: (await signatures.list()).reduce((n, r) => n + (r.manifest.unsupported?.length ?? 0), 0),
        },
      ],
    },
    {
      name: 'vmwarden_agent_validation_active',
      help: '1 while node validation is on.',
      collect: async () => [{ labels: {}, value: (await signatures.validation()).active ? 1 : 0 }],
    },
  ]);
  const signatures = await SignatureService.open({
    dataDir,
    hypervisor: guard,
    node: creds.enrollment.nodeName,
    onHashed: (d) => metrics.onHashed(d),
    onGuestSealed: (_path, d) => metrics.onGuestSealed(d),
    digestAlgorithm: config.signatureDigest,
  });
  const events = new EventEmitter();
  events.on('event', (e: AgentEvent) => metrics.onEvent(e));
  const controllers = controllerAddresses(config.controller, creds.enrollment);
  const linkLog = (msg: string) => opts.log?.(msg);
  let link = new ControllerLink(creds, { addresses: controllers, log: linkLog });
  const certs = new CertificateSource(Buffer.from(creds.ca), Buffer.from(creds.cert), Buffer.from(creds.key));
  const watcher = new ChangeWatcher(signatures, hypervisor, events, {
    xmlDir: config.libvirtXmlDir,
    rehashSchedule: config.rehashSchedule,
  });
  const socket = resolve(config.socket);
  const enforcer = new Enforcer({ signatures, guard, hypervisor, events, config, dataDir, socket });
  // Guests are reached through the qemu guest agent: only QEMU URIs have one.
  const guests =
    opts.guests !== false &&
    /^qemu(\+\w+)?:/.test(hypervisor.uri) &&
    process.env.VMWARDEN_AGENT_GUEST_TRUST !== '0'
      ? new GuestTrustManager(hypervisor, () => link, {
          sshTarget: (uuid, name) => config.sshProvisioning[uuid] ?? config.sshProvisioning[name],
          hostKeyPins: new HostKeyPins(join(dataDir, 'ssh-host-keys.json')),
          hostCertificates: process.env.VMWARDEN_AGENT_HOST_CERTIFICATES !== '0',
          log: opts.log,
          ...(opts.guests || {}),
        })
      : undefined;
  // The fleet's digest for new signatures comes with the trust bundle (pulled until the controller
  // answered once, then with every push); the agent's own setting holds until then.
  let fleetSettingsKnown = false;
  const onTrustBundle = (b: TrustBundleMsg) => {
    fleetSettingsKnown = true;
    if (isDigestAlgorithm(b.signatureDigest)) signatures.setDigestAlgorithm(b.signatureDigest);
  };
  const onSigned = (serverId: string) => {
    enforcer.signed(serverId);
    void watcher.refresh();
  };

  const info = async (): Promise<NodeInfo> => {
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

  const { Agent } = vmwardenServices();
  // Both listeners serve the Agent service only; health and reflection say so.
  const served = { files: ['vmwarden/agent/v1/agent.proto'], services: ['vmwarden.agent.v1.Agent'] };
  const health = new HealthService(served.services);
  const tcp = new grpc.Server(grpcServerOptions);
  tcp.addService(
    Agent.service,
    instrumentGrpc(
      agentService({
        signatures,
        hypervisor,
        events,
        info,
        caPem: creds.ca,
        onSigned,
        onTrustBundle,
        enforcer,
        guests,
      }),
      metrics,
    ) as never,
  );
  health.addTo(tcp);
  addReflection(tcp, served.files, served.services);
  const { host, port } = parseHostPort(config.listenGrpc);
  const boundPort = await listenOn('listenGrpc', config.listenGrpc, () =>
    bind(tcp, `${host}:${port}`, serverTls(certs, true)),
  );
  const grpcAddress = `${host}:${boundPort}`;

  const local = new grpc.Server(grpcServerOptions);
  local.addService(
    Agent.service,
    instrumentGrpc(
      agentService({ signatures, hypervisor, events, info, caPem: null, onSigned, enforcer, guests }),
      metrics,
    ) as never,
  );
  health.addTo(local);
  addReflection(local, served.files, served.services);
  mkdirSync(dirname(socket), { recursive: true, mode: 0o750 });
  if (existsSync(socket)) rmSync(socket);
  await listenOn('socket', socket, () =>
    bind(local, `unix://${socket}`, grpc.ServerCredentials.createInsecure()),
  );
  chmodSync(socket, 0o660);
  // the libvirt hook (sh + curl) asks here: the decision CheckStart gives, as `allow` / `refuse <reason>`
  const metricsServer = config.listenMetrics
    ? await listenOn('listenMetrics', config.listenMetrics, () => serveMetrics(config.listenMetrics, metrics))
    : undefined;
  const hook = await startHookEndpoint(hookSocketPath(socket), (serverId, domain) =>
    enforcer.checkStart(serverId, domain).then((r) => {
      metrics.hookDecisions.inc({ decision: r.allowed ? 'allow' : 'refuse' });
      return r;
    }),
  );

  const advertise =
    config.advertiseAddress || (host === '0.0.0.0' ? `${hostname()}:${boundPort}` : grpcAddress);
  const report = async () => {
    if (!fleetSettingsKnown) await link.getTrustBundle().then(onTrustBundle, () => undefined);
    const instances = await instancesOf(signatures, hypervisor);
    const v = await signatures.validation();
    await link.reportInventory({
      instances,
      agentAddress: advertise,
      validationActive: v.active,
      libvirtUri: hypervisor.uri,
    });
  };
  const forward = (e: AgentEvent) => void link.reportEvent(eventMsg(e)).catch(() => undefined);
  events.on('event', forward);
  await report().catch(() => undefined); // the controller may be down: we keep working and retry
  await watcher.start();
  await enforcer.start();
  await guests?.start();
  events.on('event', (e: AgentEvent) => {
    if (e.kind !== 'validation') return;
    void watcher.refresh();
    void enforcer.writeState().catch(() => undefined);
  });
  const timer = setInterval(() => void report().catch(() => undefined), config.reportIntervalSeconds * 1000);
  timer.unref();

  /** Rotates the agent certificate through the identity API and switches to it without a restart. */
  const rotate = async () => {
    const next = await rotateCertificate(dataDir);
    certs.update(next);
    const old = link;
    link = new ControllerLink(next, { addresses: controllers, prefer: old.controller, log: linkLog });
    old.close();
  };
  const rotation = cron.schedule('17 * * * *', () => {
    if (needsRotation(loadCredentials(dataDir).cert)) void rotate().catch(() => undefined);
  });

  const shutdown = (s: grpc.Server) => new Promise<void>((res) => s.tryShutdown(() => res()));
  return {
    endpoints: { grpc: grpcAddress, socket, hook: hook.path, metrics: metricsServer?.address },
    metrics,
    signatures,
    hypervisor,
    events,
    watcher,
    guests,
    report,
    rotate,
    stop: async () => {
      clearInterval(timer);
      await rotation.stop();
      await watcher.stop();
      await enforcer.stop();
      await guests?.stop();
      events.off('event', forward);
      health.shutdown();
      await Promise.race([
        Promise.all([shutdown(tcp), shutdown(local), hook.close(), metricsServer?.close()]),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
      tcp.forceShutdown();
      local.forceShutdown();
      link.close();
      await signatures.close();
      if (!opts.hypervisor) await hypervisor.close();
      rmSync(socket, { force: true });
    },
  };
}
