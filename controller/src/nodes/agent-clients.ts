import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { vmwardenServices } from '../../../proto/load.js';
import type {
  NodeInfo,
  SignatureMsg,
  TrustBundleMsg,
  ValidationProgressMsg,
  VerdictMsg,
} from '../../../proto/messages.js';
import { nodeUri } from '../../../lib/pki/san-uris.js';
import type { Node } from './model.js';

export class AgentUnavailableError extends Error {}

const DEADLINE_MS = 30_000;

/** A typed face of one agent's gRPC service. */
export interface AgentClient {
  nodeInfo(): Promise<NodeInfo>;
  sign(serverId: string, replace: boolean): Promise<SignatureMsg>;
  getSignature(serverId: string): Promise<SignatureMsg>;
  verify(serverId: string): Promise<VerdictMsg>;
  setValidation(active: boolean, onProgress: (p: ValidationProgressMsg) => void): Promise<void>;
  /** Pushes the SSH trust bundle (CA keys + KRL) into the agent's guests. */
  updateTrust(
    bundle: TrustBundleMsg,
  ): Promise<{ guests: number; sessionsEnded: number; guestRoundTrips: number }>;
}

/**
 * gRPC clients for the agents, over mutual TLS: the controller presents its own client certificate
 * and accepts only the agent certificate issued for that node (SAN urn:vmwarden:node:<id>).
 */
export class AgentClients {
  private readonly clients = new Map<number, { address: string; raw: grpc.Client }>();
  private readonly Agent = vmwardenServices().Agent;

  constructor(private readonly tls: { ca: string; key: string; cert: string }) {}

  for(node: Node): AgentClient {
    if (!node.agentAddress)
      throw new AgentUnavailableError(`node ${node.name} has not enrolled an agent yet`);
    let entry = this.clients.get(node.id);
    if (!entry || entry.address !== node.agentAddress) {
      entry?.raw.close();
      const expected = nodeUri(node.id);
      const credentials = grpc.credentials.createSsl(
        Buffer.from(this.tls.ca),
        Buffer.from(this.tls.key),
        Buffer.from(this.tls.cert),
        {
          checkServerIdentity: (_host, cert) => {
            const san = new X509Certificate(cert.raw).subjectAltName ?? '';
            return san.split(', ').includes(`URI:${expected}`)
              ? undefined
              : new Error(`agent certificate is not the one issued for ${expected}`);
          },
        },
      );
      entry = {
        address: node.agentAddress,
        raw: new this.Agent(node.agentAddress, credentials, {
          // SNI must be a name, not an IP (RFC 6066); identity is checked by SAN URI above.
          'grpc.ssl_target_name_override': `node-${node.id}.vmwarden`,
        }),
      };
      this.clients.set(node.id, entry);
    }
    const raw = entry.raw;
    // A channel whose agent went away sits in reconnect backoff and fails calls fast for up to two
    // minutes after the agent is back; drop it so the next call dials afresh.
    const evict = () => {
      if (this.clients.get(node.id)?.raw !== raw) return;
      this.clients.delete(node.id);
      raw.close();
    };
    return wrap(raw as any, node, evict);
  }

  close(): void {
    for (const { raw } of this.clients.values()) raw.close();
    this.clients.clear();
  }
}

function wrap(raw: any, node: Node, evict: () => void): AgentClient {
  const fail = (err: grpc.ServiceError): Error => {
    const e = translate(err, node);
    if (e instanceof AgentUnavailableError) evict();
    return e;
  };
  const unary = <T>(method: string, req: object): Promise<T> =>
    new Promise((resolve, reject) =>
      raw[method](req, { deadline: Date.now() + DEADLINE_MS }, (err: grpc.ServiceError | null, res: T) =>
        err ? reject(fail(err)) : resolve(res),
      ),
    );
  return {
    nodeInfo: () => unary('getNodeInfo', {}),
    sign: (serverId, replace) => unary('signInstance', { serverId, replace }),
    getSignature: (serverId) => unary('getSignature', { serverId }),
    verify: (serverId) => unary('verifyInstance', { serverId }),
    updateTrust: (bundle) => unary('updateTrust', bundle),
    setValidation: (active, onProgress) =>
      new Promise((resolve, reject) => {
        const stream = raw.setValidation({ active });
        stream.on('data', onProgress);
        stream.on('error', (err: grpc.ServiceError) => reject(fail(err)));
        stream.on('end', () => resolve());
      }),
  };
}

/** Transport failures become AgentUnavailableError; the agent's own answers keep their gRPC code. */
function translate(err: grpc.ServiceError, node: Node): Error {
  if ([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.CANCELLED].includes(err.code)) {
    return new AgentUnavailableError(
      `agent of node ${node.name} is unreachable: ${err.details || err.message}`,
    );
  }
  return err;
}
