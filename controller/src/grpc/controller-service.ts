import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import type { ControllerServices } from '../services.js';
import { EnrollmentError } from '../nodes/service.js';
import type { Node } from '../nodes/model.js';
import { ApiError } from '../platform/errors.js';
import { grpcError, issuedBy, peerCertificate } from '../../../proto/grpc-tls.js';
import type {
  EnrollRequestMsg,
  EventMsg,
  GuestTrustStatusMsg,
  InventoryReportMsg,
  SessionReportMsg,
} from '../../../proto/messages.js';

type Call<T> = grpc.ServerUnaryCall<T, unknown>;
type Handler<T> = (call: Call<T>) => Promise<unknown>;

/** Adapts an async handler to grpc-js, mapping our errors to gRPC status codes. */
function unary<T>(fn: Handler<T>) {
  return (call: Call<T>, callback: grpc.sendUnaryData<unknown>) => {
    fn(call).then(
      (res) => callback(null, res),
      (err) => callback(toGrpc(err)),
    );
  };
}

function toGrpc(err: unknown): grpc.ServiceError {
  if ((err as grpc.ServiceError).code !== undefined && typeof (err as grpc.ServiceError).code === 'number') {
    return err as grpc.ServiceError;
  }
  if (err instanceof EnrollmentError) return grpcError(grpc.status.UNAUTHENTICATED, err.message);
  if (err instanceof ApiError) {
    const code =
      err.status === 401
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
export function controllerService(s: ControllerServices, restUrl: () => string) {
  /** The node behind an agent's mTLS certificate, or UNAUTHENTICATED. */
  const agentNode = async (call: Call<unknown>): Promise<Node> => {
    const cert = peerCertificate(call as never);
    if (!cert || !issuedBy(cert, s.ca.certPem, s.clock.now())) {
      throw grpcError(
        grpc.status.UNAUTHENTICATED,
        'this call needs the agent certificate issued at enrollment',
      );
    }
    const fingerprint = createHash('sha256').update(cert.raw).digest('hex');
    const authenticator = await s.identityStore.findCertByFingerprint(fingerprint);
    const identity = authenticator && (await s.identityStore.getIdentity(authenticator.identityId));
    const node =
      identity && identity.role === 'agent' && !identity.disabled && (await s.nodes.forIdentity(identity.id));
    if (!node)
      throw grpcError(grpc.status.PERMISSION_DENIED, 'the certificate does not belong to an enrolled agent');
    return node;
  };

  /** Fleet view callers send an admin API session token as `authorization: Bearer …`. */
  const admin = async (call: Call<unknown>) => {
    const header = String(call.metadata.get('authorization')[0] ?? '');
    const token = header.replace(/^bearer\s+/i, '');
    const principal = token ? await s.sessions.resolve(token) : null;
    if (!principal)
      throw grpcError(grpc.status.UNAUTHENTICATED, 'send an API session token as authorization: Bearer');
    if (principal.identity.role !== 'admin')
      throw grpcError(grpc.status.PERMISSION_DENIED, 'admin role required');
  };

  return {
    enroll: unary<EnrollRequestMsg>(async (call) => {
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
    reportInventory: unary<InventoryReportMsg>(async (call) => {
      const node = await agentNode(call);
      await s.nodes.reportInventory(node, call.request);
      s.guestTrust.remember(node);
      return { nodeId: node.id };
    }),
    reportEvent: unary<EventMsg>(async (call) => {
      const node = await agentNode(call);
      await s.sign.recordEvent(node, call.request);
      return { nodeId: node.id };
    }),
    getTrustBundle: unary<unknown>(async (call) => {
      const node = await agentNode(call);
      s.guestTrust.remember(node);
      return s.guestTrust.bundle();
    }),
    reportTrust: unary<{ guests: GuestTrustStatusMsg[] }>(async (call) => {
      const node = await agentNode(call);
      s.guestTrust.report(node, call.request.guests);
      return { nodeId: node.id };
    }),
    reportSession: unary<SessionReportMsg>(async (call) => {
      const node = await agentNode(call);
      return { sessionId: await s.guestTrust.session(node, call.request) };
    }),
    listInstances: unary<{ nodeId: number; limit: number; offset: number }>(async (call) => {
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
    listSignatures: unary<{ nodeId: number; limit: number; offset: number }>(async (call) => {
      await admin(call);
      const { nodeId, limit, offset } = call.request;
      const rows = (await s.sign.list(0, 100000)).filter((r) => !nodeId || r.nodeId === nodeId);
      return {
        signatures: rows.slice(offset, offset + (limit || 100)).map(fleetSignature),
        total: rows.length,
      };
    }),
    getSignature: unary<{ serverId: string }>(async (call) => {
      await admin(call);
      return fleetSignature(await s.sign.get(call.request.serverId));
    }),
  };
}

function fleetSignature(r: Awaited<ReturnType<ControllerServices['sign']['get']>>) {
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
