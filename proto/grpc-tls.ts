import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';

type CaListener = (u: { caCertificate: Buffer } | null) => void;
type IdListener = (u: { certificate: Buffer; privateKey: Buffer } | null) => void;

/** Fixed CA + identity for grpc-js's certificate-provider credentials. */
class StaticCertificates {
  constructor(
    private readonly ca: Buffer,
    private readonly cert: Buffer,
    private readonly key: Buffer,
  ) {}
  // grpc-js registers its watcher only after adding these listeners: answer on the next tick.
  addCaCertificateListener(l: CaListener) {
    setImmediate(() => l({ caCertificate: this.ca }));
  }
  removeCaCertificateListener() {}
  addIdentityCertificateListener(l: IdListener) {
    setImmediate(() => l({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener() {}
}

/**
 * Server TLS that ASKS for a client certificate without requiring it (createSsl can only require or
 * not ask). Handlers that need one read it with peerCertificate() and check it themselves.
 */
export function serverTls(pem: { ca: string; cert: string; key: string }, requireClientCert: boolean) {
  const p = new StaticCertificates(Buffer.from(pem.ca), Buffer.from(pem.cert), Buffer.from(pem.key));
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

export function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), {
    code,
    details,
    metadata: new grpc.Metadata(),
  }) as grpc.ServiceError;
}
