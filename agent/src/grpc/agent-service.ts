import * as grpc from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import { grpcError, issuedBy, peerCertificate } from '../../../proto/grpc-tls.js';
import type { EventMsg, InstanceMsg, NodeInfo, SignatureMsg, VerdictMsg } from '../../../proto/messages.js';
import { CONTROLLER_URI } from '../../../lib/pki/san-uris.js';
import { grpcHandlers } from '../../../lib/grpc/unary.js';
import {
  AlreadySignedError,
  ArtifactError,
  BaselineSignatureError,
  DomainStateError,
  NotFoundError,
  NotSignedError,
} from '../signature/errors.js';
import type { StoredSignature, SignatureService, Verdict } from '../signature/service.js';
import type { Hypervisor } from '../libvirt/hypervisor.js';
import { canonicalJson } from '../signature/manifest.js';
import { DomainDefinition } from '../signature/domain-definition.js';
import type { Enforcer } from '../enforce/enforcer.js';
import { verdictEvent, type AgentEvent } from '../events.js';
import type { GuestTrustManager } from '../guest/manager.js';
import type { TrustBundleMsg } from '../../../proto/messages.js';

export interface AgentServiceDeps {
  signatures: SignatureService;
  hypervisor: Hypervisor;
  events: EventEmitter;
  info: () => Promise<NodeInfo>;
  /** CA that issued the controller's client certificate; null on the local unix socket. */
  caPem: string | null;
  /** Told after a baseline was created or replaced (the watcher follows new artifacts). */
  onSigned?: (serverId: string) => void;
  /** Fleet settings a pushed trust bundle carries (the signature digest). */
  onTrustBundle?: (bundle: TrustBundleMsg) => void;
  /** Start checks for the libvirt hook (CheckStart); absent: every start is allowed. */
  enforcer?: Enforcer;
  /** SSH trust inside guests (UpdateTrust); absent: the push is acknowledged with no guests. */
  guests?: GuestTrustManager;
}

/** The signature service's errors in gRPC terms; anything unexpected is answered with its message. */
const { unary: unaryCall, toGrpc } = grpcHandlers({
  statusOf: (err) => {
    if (err instanceof NotFoundError || err instanceof NotSignedError) return grpc.status.NOT_FOUND;
    if (err instanceof AlreadySignedError) return grpc.status.ALREADY_EXISTS;
    if (
      err instanceof DomainStateError ||
      err instanceof ArtifactError ||
      err instanceof BaselineSignatureError
    )
      return grpc.status.FAILED_PRECONDITION;
    return undefined;
  },
  internalMessage: (err) => (err as Error).message ?? String(err),
});

export function signatureMsg(r: StoredSignature): SignatureMsg {
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

export function verdictMsg(v: Verdict): VerdictMsg {
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
    uninspected: v.uninspected ?? [],
  };
}

/** The wire form of an event on the agent's bus (WatchEvents, ReportEvent). */
export function eventMsg(e: AgentEvent): EventMsg {
  return { ...e, verdict: e.verdict ? verdictMsg(e.verdict) : null };
}

/** Every domain on this host with its signature status: ListInstances and the inventory report. */
export async function instancesOf(
  signatures: SignatureService,
  hypervisor: Hypervisor,
): Promise<InstanceMsg[]> {
  const signed = new Map((await signatures.list()).map((r) => [r.serverId, r]));
  const instances: InstanceMsg[] = [];
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

/**
 * Ends a server stream with an error status. grpc-js sends the status from the stream's own 'error'
 * listener; destroy() would tear the stream down without ever sending one, leaving the caller hanging.
 */
function failStream(call: { emit(event: string, ...args: unknown[]): boolean }, err: unknown): void {
  call.emit('error', toGrpc(err));
}

/** vmwarden.agent.v1.Agent. On TCP only the controller (mTLS, SAN urn:vmwarden:controller) may call. */
export function agentService(d: AgentServiceDeps) {
  const authorize = (call: { getAuthContext(): any }) => {
    if (d.caPem === null) return; // unix socket: guarded by its file mode
    const cert = peerCertificate(call);
    const san = cert?.subjectAltName ?? '';
    if (!cert || !issuedBy(cert, d.caPem) || !san.split(', ').includes(`URI:${CONTROLLER_URI}`)) {
      throw grpcError(grpc.status.PERMISSION_DENIED, 'only the controller may call this agent');
    }
  };
  const unary = <Req>(fn: (req: Req) => Promise<unknown>) =>
    unaryCall<Req>((call) => {
      authorize(call);
      return fn(call.request);
    });

  return {
    getNodeInfo: unary(() => d.info()),

    listInstances: unary(async () => ({ instances: await instancesOf(d.signatures, d.hypervisor) })),

    getSignature: unary<{ serverId: string }>(async ({ serverId }) => {
      const r = await d.signatures.get(serverId);
      if (!r) throw new NotSignedError(serverId);
      return signatureMsg(r);
    }),

    signInstance: unary<{ serverId: string; replace: boolean }>(async ({ serverId, replace }) => {
      const record = await d.signatures.sign(serverId, { replace });
      d.onSigned?.(serverId);
      return signatureMsg(record);
    }),

    checkStart: unary<{ serverId: string; domainXml: string }>(async ({ serverId, domainXml }) => {
      if (!serverId && !domainXml)
        throw grpcError(grpc.status.INVALID_ARGUMENT, 'server_id or domain_xml is required');
      if (!d.enforcer) return { allowed: true, reason: 'no enforcement on this endpoint' };
      return d.enforcer.checkStart(serverId, new DomainDefinition(domainXml));
    }),

    updateTrust: unary<TrustBundleMsg>(async (bundle) => {
      d.onTrustBundle?.(bundle);
      if (!d.guests) return { guests: 0, sessionsEnded: 0, guestRoundTrips: 0 };
      return d.guests.update(bundle);
    }),

    verifyInstance: unary<{ serverId: string }>(async ({ serverId }) => {
      const verdict = await d.signatures.verify(serverId);
      d.events.emit('event', verdictEvent(verdict));
      return verdictMsg(verdict);
    }),

    setValidation: (call: grpc.ServerWritableStream<{ active: boolean }, unknown>) => {
      (async () => {
        authorize(call);
        const active = call.request.active;
        if (active) {
          await d.signatures.signUnsigned((done, total) =>
            call.write({ done, total, finished: false, active: false }),
          );
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
        } satisfies AgentEvent);
        call.write({ done: 0, total: 0, finished: true, active });
        call.end();
      })().catch((err) => failStream(call, err));
    },

    watchEvents: (call: grpc.ServerWritableStream<unknown, EventMsg>) => {
      try {
        authorize(call);
      } catch (err) {
        failStream(call, err);
        return;
      }
      const forward = (e: AgentEvent) => call.write(eventMsg(e));
      d.events.on('event', forward);
      call.on('cancelled', () => d.events.off('event', forward));
      call.on('close', () => d.events.off('event', forward));
    },
  };
}
