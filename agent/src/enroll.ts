import * as grpc from '@grpc/grpc-js';
import { createHash, X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { hostname } from 'node:os';
import type { EnrollResponseMsg } from '../../proto/messages.js';
import { newKeyAndCsr } from '../../lib/pki/x509.js';
import { parseHostPort } from '../../lib/platform/host-port.js';
import type { AgentCredentials } from './credentials.js';
import { ControllerConnection } from './controller-connection.js';

export class EnrollError extends Error {}

/** No TLS connection to that address (refused, timed out, name not found): the next one may answer. */
export class ControllerUnreachableError extends EnrollError {}

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
      reject(new ControllerUnreachableError(`cannot reach controller ${controller}: ${err.message}`)),
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

/**
 * The pinned CA from the first of `controllers` that answers (in order); the address that answered
 * is returned with it. A CA that does not match the token stops here: it is not a reachability problem.
 */
async function firstPinnedCa(
  controllers: readonly string[],
  fingerprint: string,
  log?: (msg: string) => void,
): Promise<{ ca: string; address: string }> {
  const failures: string[] = [];
  for (const [i, address] of controllers.entries()) {
    try {
      return { ca: await fetchPinnedCa(address, fingerprint), address };
    } catch (err) {
      if (!(err instanceof ControllerUnreachableError)) throw err;
      if (controllers.length === 1) throw err;
      failures.push(err.message);
      if (i < controllers.length - 1) log?.(`${err.message}; trying ${controllers[i + 1]}`);
    }
  }
  throw new EnrollError(`cannot reach any controller: ${failures.join('; ')}`);
}

/**
 * Exchanges the one-time token for the agent's certificate, through the first of the controllers
 * that answers (every controller of a cluster serves the same CA and enrollment tokens). All the
 * addresses are recorded for the agent's later reports.
 */
export async function enroll(opts: {
  /** One HOST:PORT or several, tried in order. */
  controller: string | readonly string[];
  token: string;
  nodeName: string;
  nodePublicKeyPem: string;
  agentAddress: string;
  /** Failover lines (addresses only). */
  log?: (msg: string) => void;
}): Promise<AgentCredentials> {
  const controllers = typeof opts.controller === 'string' ? [opts.controller] : [...opts.controller];
  if (controllers.length === 0) throw new EnrollError('no controller address to enroll with');
  const dot = opts.token.lastIndexOf('.');
  if (dot < 0) throw new EnrollError('malformed enrollment token (expected <secret>.<ca fingerprint>)');
  const { ca, address } = await firstPinnedCa(controllers, opts.token.slice(dot + 1), opts.log);
  const { keyPem, csrPem } = await newKeyAndCsr(`CN=vmwarden agent ${opts.nodeName}`);
  const conn = new ControllerConnection(controllers, grpc.credentials.createSsl(Buffer.from(ca)), {
    prefer: address,
    log: opts.log,
  });
  try {
    const res = await conn
      .call<EnrollResponseMsg>(
        'enroll',
        {
          token: opts.token,
          csrPem,
          nodePublicKeyPem: opts.nodePublicKeyPem,
          agentAddress: opts.agentAddress,
          hostname: hostname(),
        },
        30_000,
      )
      .catch((err: grpc.ServiceError) => {
        throw new EnrollError(`enrollment refused: ${err.details || err.message}`);
      });
    return {
      key: keyPem,
      cert: res.clientCertPem,
      ca: res.caPem,
      enrollment: {
        nodeId: res.nodeId,
        nodeName: res.nodeName,
        identityId: res.identityId,
        controller: conn.address,
        controllers,
        restUrl: res.restUrl,
      },
    };
  } finally {
    conn.close();
  }
}
