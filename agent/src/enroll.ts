import * as grpc from '@grpc/grpc-js';
import { createHash, X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { hostname } from 'node:os';
import { vmwardenServices } from '../../proto/load.js';
import type { EnrollResponseMsg } from '../../proto/messages.js';
import { newKeyAndCsr } from '../../lib/pki/x509.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import type { AgentCredentials } from './credentials.js';

export class EnrollError extends Error {}

/**
 * Fetches the controller's CA from its TLS chain and accepts it only if its SHA-256 matches the
 * fingerprint carried in the enrollment token (`<secret>.<fingerprint>`): trust comes from the token,
 * not from the network.
 */
export async function fetchPinnedCa(controller: string, fingerprint: string): Promise<string> {
  const { host, port } = parseHostPort(controller);
  const chain = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = connect(
      { host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: 'localhost' },
      () => {
        const peer = socket.getPeerCertificate(true);
        socket.end();
        resolve(peer);
      },
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
    socket.on('error', (err) =>
      reject(new EnrollError(`cannot reach controller ${controller}: ${err.message}`)),
    );
  });
  for (let c: PeerCertificate | undefined = chain; c?.raw;) {
    if (createHash('sha256').update(c.raw).digest('hex') === fingerprint.toLowerCase()) {
      return new X509Certificate(c.raw).toString();
    }
    const next: DetailedPeerCertificate | undefined = (c as DetailedPeerCertificate).issuerCertificate;
    c = next && next !== c ? next : undefined;
  }
  throw new EnrollError('the controller presented no CA certificate matching the enrollment token');
}

/** Exchanges the one-time token for the agent's certificate. */
export async function enroll(opts: {
  controller: string;
  token: string;
  nodeName: string;
  nodePublicKeyPem: string;
  agentAddress: string;
}): Promise<AgentCredentials> {
  const dot = opts.token.lastIndexOf('.');
  if (dot < 0) throw new EnrollError('malformed enrollment token (expected <secret>.<ca fingerprint>)');
  const ca = await fetchPinnedCa(opts.controller, opts.token.slice(dot + 1));
  const { keyPem, csrPem } = await newKeyAndCsr(`CN=vmwarden agent ${opts.nodeName}`);
  const { Controller } = vmwardenServices();
  const client = new Controller(opts.controller, grpc.credentials.createSsl(Buffer.from(ca)), {
    'grpc.ssl_target_name_override': 'localhost',
  }) as any;
  try {
    const res: EnrollResponseMsg = await new Promise((resolve, reject) =>
      client.enroll(
        {
          token: opts.token,
          csrPem,
          nodePublicKeyPem: opts.nodePublicKeyPem,
          agentAddress: opts.agentAddress,
          hostname: hostname(),
        },
        { deadline: Date.now() + 30_000 },
        (err: grpc.ServiceError | null, r: EnrollResponseMsg) =>
          err ? reject(new EnrollError(`enrollment refused: ${err.details || err.message}`)) : resolve(r),
      ),
    );
    return {
      key: keyPem,
      cert: res.clientCertPem,
      ca: res.caPem,
      enrollment: {
        nodeId: res.nodeId,
        nodeName: res.nodeName,
        identityId: res.identityId,
        controller: opts.controller,
        restUrl: res.restUrl,
      },
    };
  } finally {
    client.close();
  }
}
