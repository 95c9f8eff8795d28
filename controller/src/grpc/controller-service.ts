import { isInvalidText, isStoreUnavailable } from '../../../lib/store/errors.js';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import type { ControllerServices } from '../services.js';
import { EnrollmentError } from '../nodes/service.js';
import type { Node } from '../nodes/model.js';
import { ApiError } from '../platform/errors.js';
import { cutText, grpcError, issuedBy, peerCertificate } from '../../../proto/grpc-tls.js';
import { grpcHandlers } from '../../../lib/grpc/unary.js';
import type {
  EnrollRequestMsg,
  EventMsg,
  GuestTrustStatusMsg,
  InventoryReportMsg,
  ReportAckMsg,
  SessionReportMsg,
  SignHostKeysRequestMsg,
} from '../../../proto/messages.js';
import {
  uuid,
  validEnroll,
  validEvent,
  validFleetList,
  validInventoryReport,
  validSessionReport,
  validSignHostKeys,
  validTrustReport,
} from './validate.js';
import { createLogger, type LogFormat } from '../../../lib/platform/logger.js';

type Call<T> = grpc.ServerUnaryCall<T, unknown>;

/** The controller's errors in gRPC terms; anything unexpected is answered without its message. */
const { unary, toGrpc } = grpcHandlers({
  statusOf: (err) => {
    if (err instanceof EnrollmentError) return grpc.status.UNAUTHENTICATED;
    if (isStoreUnavailable(err)) return grpc.status.UNAVAILABLE;
    if (isInvalidText(err)) return grpc.status.INVALID_ARGUMENT;
    if (!(err instanceof ApiError)) return undefined;
    if (err.status === 401) return grpc.status.UNAUTHENTICATED;
    if (err.status === 403) return grpc.status.PERMISSION_DENIED;
    if (err.status === 404) return grpc.status.NOT_FOUND;
    if (err.status === 409) return grpc.status.ALREADY_EXISTS;
    return err.status < 500 ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE;
  },
  internalMessage: () => 'internal error',
});

/** The HTTP status an audit row records for a refused gRPC call (the REST rows' convention). */
const AUDIT_STATUS: Partial<Record<grpc.status, number>> = {
  [grpc.status.INVALID_ARGUMENT]: 400,
  [grpc.status.UNAUTHENTICATED]: 401,
  [grpc.status.PERMISSION_DENIED]: 403,
  [grpc.status.NOT_FOUND]: 404,
  [grpc.status.ALREADY_EXISTS]: 409,
  [grpc.status.FAILED_PRECONDITION]: 409,
};

const REFUSAL_AUDIT_INTERVAL_MS = 3600_000;

/** Warnings of the gRPC service on stderr (the REST side logs through fastify). */
function grpcLog(config: { logLevel: string; logFormat: LogFormat }) {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, name: 'grpc', fd: 2 });
  return (msg: string, fields: Record<string, unknown>) => logger.warn(fields, msg);
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

  const warn = grpcLog(s.config);
  /** When each (node, action, object, reason) refusal was last audited. */
  const recentRefusals = new Map<string, number>();

  /**
   * One audit row (and a warning) for what an enrolled agent was refused: a whole call (`code`) or
   * one entry of a report. Best effort: the refusal stands even if the audit write fails.
   */
  const audit = async (
    node: Node,
    call: Call<unknown>,
    entry: { action: string; object: unknown; code: grpc.status; detail: string },
  ) => {
    const object = entry.object ? cutText(String(entry.object), 200) : null;
    const detail = cutText(`${grpc.status[entry.code]}: ${entry.detail}`, 500);
    // A node that keeps reporting the same refused entry (a domain defined on two hosts, reported
    // every 30 s) gets one row per hour for it, not one per report.
    const key = `${node.id}\n${entry.action}\n${object}\n${detail}`;
    const now = Date.now();
    if ((recentRefusals.get(key) ?? -Infinity) > now - REFUSAL_AUDIT_INTERVAL_MS) return;
    recentRefusals.delete(key);
    if (recentRefusals.size >= 10_000) recentRefusals.delete(recentRefusals.keys().next().value!);
    recentRefusals.set(key, now);
    warn('agent report refused', { node: node.id, action: entry.action, object, detail });
    await s.audit
      .record({
        actorId: node.identityId,
        actorName: `node-${node.name}`.slice(0, 100),
        sourceAddress: call.getPeer(),
        action: entry.action,
        object,
        outcome: 'failure',
        status: AUDIT_STATUS[entry.code] ?? 500,
        detail,
      })
      .catch((err) => warn('audit write failed', { error: String((err as Error).message ?? err) }));
  };

  /**
   * An agent RPC: the caller's node from its certificate, then `fn`. Whatever `fn` refuses
   * (validation, ownership, unknown ids) is audited as `action` on the request's server_id.
   */
  const agentCall =
    <T>(action: string, fn: (node: Node, call: Call<T>) => Promise<unknown>) =>
    async (call: Call<T>) => {
      const node = await agentNode(call);
      try {
        return await fn(node, call);
      } catch (err) {
        const e = toGrpc(err);
        const request = call.request as { serverId?: unknown; instanceUuid?: unknown } | undefined;
        const object = request?.serverId ?? request?.instanceUuid;
        await audit(node, call, { action, object, code: e.code, detail: e.details });
        throw e;
      }
    };

  /** Entries of a report refused one by one: each audited, all returned in the ack. */
  const refusedEntries = async (
    node: Node,
    call: Call<unknown>,
    action: string,
    refused: Array<{ serverId: string; reason: string }>,
  ): Promise<ReportAckMsg> => {
    for (const r of refused)
      await audit(node, call, {
        action,
        object: r.serverId,
        code: grpc.status.PERMISSION_DENIED,
        detail: r.reason,
      });
    return { nodeId: node.id, refused: refused.map((r) => ({ serverId: r.serverId, reason: r.reason })) };
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
      const { node, certPem, identityId } = await s.nodes.enroll(validEnroll(call.request));
      return {
        nodeId: node.id,
        nodeName: node.name,
        clientCertPem: certPem,
        caPem: s.ca.certPem,
        identityId,
        restUrl: restUrl(),
      };
    }),
    reportInventory: unary<InventoryReportMsg>(
      agentCall<InventoryReportMsg>('agent.inventory', async (node, call) => {
        const sync = await s.nodes.reportInventory(node, validInventoryReport(call.request));
        s.guestTrust.remember(node);
        for (const [action, ids] of [
          ['instance.adopt', sync.adopted],
          ['instance.release', sync.released],
        ] as const) {
          for (const id of ids)
            await s.audit
              .record({
                actorId: node.identityId,
                actorName: `node-${node.name}`.slice(0, 100),
                sourceAddress: call.getPeer(),
                action,
                object: id,
                outcome: 'success',
                detail: `${action === 'instance.adopt' ? 'now hosted by' : 'no longer hosted by'} node ${node.id}`,
              })
              .catch((err) => warn('audit write failed', { error: String((err as Error).message ?? err) }));
        }
        return refusedEntries(node, call, 'agent.inventory', sync.refused);
      }),
    ),
    reportEvent: unary<EventMsg>(
      agentCall<EventMsg>('agent.event', async (node, call) => {
        await s.sign.recordEvent(node, validEvent(call.request));
        return { nodeId: node.id, refused: [] };
      }),
    ),
    getTrustBundle: unary<unknown>(async (call) => {
      const node = await agentNode(call);
      s.guestTrust.remember(node);
      return s.guestTrust.bundle();
    }),
    reportTrust: unary<{ guests: GuestTrustStatusMsg[] }>(
      agentCall<{ guests: GuestTrustStatusMsg[] }>('agent.trust', async (node, call) => {
        const refused = await s.guestTrust.report(node, validTrustReport(call.request));
        return refusedEntries(node, call, 'agent.trust', refused);
      }),
    ),
    reportSession: unary<SessionReportMsg>(
      agentCall<SessionReportMsg>('agent.session', async (node, call) => ({
        sessionId: await s.guestTrust.session(node, validSessionReport(call.request)),
      })),
    ),
    signHostKeys: unary<SignHostKeysRequestMsg>(
      agentCall<SignHostKeysRequestMsg>('agent.host-keys', async (node, call) => {
        const r = validSignHostKeys(call.request);
        return s.hostCa.signForInstance(node, r.instanceUuid, r.publicKeys);
      }),
    ),
    listInstances: unary<{ nodeId: number; limit: number; offset: number }>(async (call) => {
      await admin(call);
      const { nodeId, limit, offset } = validFleetList(call.request);
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
      const { nodeId, limit, offset } = validFleetList(call.request);
      const rows = (await s.sign.list(0, 100000)).filter((r) => !nodeId || r.nodeId === nodeId);
      return {
        signatures: rows.slice(offset, offset + (limit || 100)).map(fleetSignature),
        total: rows.length,
      };
    }),
    getSignature: unary<{ serverId: string }>(async (call) => {
      await admin(call);
      return fleetSignature(await s.sign.get(uuid('server_id', call.request.serverId)));
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
