import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
/** Fixed CA + identity for grpc-js's certificate-provider credentials. */
class StaticCertificates {
    ca;
    cert;
    key;
    constructor(ca, cert, key) {
        this.ca = ca;
        this.cert = cert;
        this.key = key;
    }
    // grpc-js registers its watcher only after adding these listeners: answer on the next tick.
    addCaCertificateListener(l) {
        setImmediate(() => l({ caCertificate: this.ca }));
    }
    removeCaCertificateListener() { }
    addIdentityCertificateListener(l) {
        setImmediate(() => l({ certificate: this.cert, privateKey: this.key }));
    }
    removeIdentityCertificateListener() { }
}
/**
 * Server TLS that ASKS for a client certificate without requiring it (createSsl can only require or
 * not ask). Handlers that need one read it with peerCertificate() and check it themselves.
 */
export function serverTls(pem, requireClientCert) {
    const p = new StaticCertificates(Buffer.from(pem.ca), Buffer.from(pem.cert), Buffer.from(pem.key));
    return grpc.experimental.createCertificateProviderServerCredentials(p, p, requireClientCert);
}
/** The client certificate on a call's connection, if one was presented. */
export function peerCertificate(call) {
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    return raw ? new X509Certificate(raw) : undefined;
}
/** True when the certificate was issued by `caPem` and is inside its validity window. */
export function issuedBy(cert, caPem, now = new Date()) {
    const ca = new X509Certificate(caPem);
    return (cert.checkIssued(ca) &&
        cert.verify(ca.publicKey) &&
        Date.parse(cert.validFrom) <= now.getTime() &&
        now.getTime() <= Date.parse(cert.validTo));
}
export function grpcError(code, details) {
    return Object.assign(new Error(details), {
        code,
        details,
        metadata: new grpc.Metadata(),
    });
}
//# sourceMappingURL=grpc-tls.js.map