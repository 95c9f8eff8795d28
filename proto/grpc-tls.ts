import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;

/**
 * CA + identity for grpc-js's certificate-provider credentials. `update()` swaps the identity on a
 * live server (certificate rotation) without rebinding.
 */
export class CertificateSource {
  private caListeners = new Set<CaListener>();
  private idListeners = new Set<IdListener>();

  constructor(
    private ca: Buffer,
    private cert: Buffer,
    private key: Buffer,
  ) {}

  update(pem: { cert: string; key: string }): void {
    this.cert = Buffer.from(pem.cert);
    this.key = Buffer.from(pem.key);
    for (const l of this.idListeners) l({ certificate: this.cert, privateKey: this.key });
  }

  // grpc-js registers its watcher only after adding these listeners: answer on the next tick.
  addCaCertificateListener(l: CaListener) {
    this.caListeners.add(l);
    setImmediate(() => l({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(l: CaListener) {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: IdListener) {
    this.idListeners.add(l);
    setImmediate(() => l({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(l: IdListener) {
    this.idListeners.delete(l);
  }
}

/**
 * Server TLS that ASKS for a client certificate without requiring it (createSsl can only require or
 * not ask). Handlers that need one read it with peerCertificate() and check it themselves.
 */
export function serverTls(
  pem: { ca: string; cert: string; key: string } | CertificateSource,
  requireClientCert: boolean,
) {
  const p =
    pem instanceof CertificateSource
      ? pem
      : new CertificateSource(Buffer.from(pem.ca), Buffer.from(pem.cert), Buffer.from(pem.key));
  return grpc.experimental.createCertificateProviderServerCredentials(
    p as never,
    p as never,
    requireClientCert,
  );
}

/** The client certificate on a call's connection, if one was presented. */
export function peerCertificate(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } }) {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  return raw ? new X509Certificate(raw) : undefined;
}

/** True when the certificate was issued by `caPem` and is inside its validity window. */
export function issuedBy(cert: X509Certificate, caPem: string, now = new Date()): boolean {
  const ca = new X509Certificate(caPem);
  return (
    cert.checkIssued(ca) &&
    cert.verify(ca.publicKey) &&
    Date.parse(cert.validFrom) <= now.getTime() &&
    now.getTime() <= Date.parse(cert.validTo)
  );
}

/**
 * Largest message a vmwarden gRPC server accepts (controller and agent): grpc-js refuses a bigger one
 * with RESOURCE_EXHAUSTED before any handler runs.
 */
export const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Server options of every vmwarden gRPC server. */
export const grpcServerOptions: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
};

/** `text`, or its head with a note of its length when longer than `max` (at most `max` characters). */
export function cutText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 40)}… (${text.length} characters, cut)` : text;
}

/** Longest error message sent back (the status text travels in the `grpc-message` trailer). */
export const MAX_ERROR_DETAILS = 1024;

/**
 * An error status for a gRPC answer. The message is cut to MAX_ERROR_DETAILS: grpc-js sends it in
 * the `grpc-message` trailer, and a message quoting a large input (a 200 KB server_id in "no
 * signature for server …") made trailers bigger than HTTP/2 allows — the client never saw the status
 * and waited for its deadline.
 */
export function grpcError(code: grpc.status, message: string): grpc.ServiceError {
  const details = cutText(message, MAX_ERROR_DETAILS);
  return Object.assign(new Error(details), {
    code,
    details,
    metadata: new grpc.Metadata(),
  }) as grpc.ServiceError;
}
