import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { x509 } from './x509.js';
import { readPrivateFile, writePrivateFile } from '../platform/private-file.js';
const ecdsa = { name: 'ECDSA', namedCurve: 'P-256' };
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' };
const DAY = 86_400_000;
export class CsrError extends Error {
}
/** SAN URIs that name vmwarden parties inside internal-CA certificates. */
export const CONTROLLER_URI = 'urn:vmwarden:controller';
export const nodeUri = (nodeId) => `urn:vmwarden:node:${nodeId}`;
export const identityUri = (identityId) => `urn:vmwarden:identity:${identityId}`;
/**
 * The controller's own X.509 CA (ECDSA P-256): the HTTPS server certificate and every client
 * certificate (identities, agents) come from it. Created at first start in the data dir.
 */
export class InternalCa {
    cert;
    key;
    clock;
    constructor(cert, key, clock) {
        this.cert = cert;
        this.key = key;
        this.clock = clock;
    }
    get certPem() {
        return this.cert.toString('pem');
    }
    /** SHA-256 of the CA certificate (hex): what enrollment tokens pin. */
    get fingerprint() {
        return fingerprintOf(this.cert.rawData);
    }
    static async openOrCreate(dir, clock) {
        const certPath = join(dir, 'ca.crt');
        const keyPath = join(dir, 'ca.key');
        if (existsSync(certPath) && existsSync(keyPath)) {
            const key = await importKey(readPrivateFile(keyPath).toString());
            return new InternalCa(new x509.X509Certificate(readFileSync(certPath, 'utf8')), key, clock);
        }
        const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']));
        const now = clock.now();
        const cert = await x509.X509CertificateGenerator.createSelfSigned({
            serialNumber: serial(),
            name: 'CN=vmwarden internal CA',
            notBefore: new Date(now.getTime() - 60_000),
            notAfter: new Date(now.getTime() + 3650 * DAY),
            signingAlgorithm,
            keys,
            extensions: [
                new x509.BasicConstraintsExtension(true, 0, true),
                new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
                await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
            ],
        });
        writePrivateFile(keyPath, await exportKey(keys.privateKey));
        writeFileSync(certPath, cert.toString('pem'), { mode: 0o644 });
        return new InternalCa(cert, await importKey(await exportKey(keys.privateKey)), clock);
    }
    /** Server certificate for HTTPS, reissued when missing, expiring within 30 days, or for other names. */
    async serverCredentials(dir, names) {
        const certPath = join(dir, 'server.crt');
        const keyPath = join(dir, 'server.key');
        const wanted = [...new Set(names)].sort().join(',');
        if (existsSync(certPath) && existsSync(keyPath)) {
            const cert = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
            const fresh = cert.notAfter.getTime() - this.clock.now().getTime() > 30 * DAY;
            if (fresh && sanNames(cert).sort().join(',') === wanted && cert.issuer === this.cert.subject) {
                return { key: readPrivateFile(keyPath).toString(), cert: readFileSync(certPath, 'utf8') };
            }
        }
        const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']));
        const cert = await this.sign({
            subject: 'CN=vmwarden controller',
            publicKey: keys.publicKey,
            days: 365,
            usages: [x509.ExtendedKeyUsage.serverAuth],
            sans: names.map(toSan),
        });
        const key = await exportKey(keys.privateKey);
        writePrivateFile(keyPath, key);
        writeFileSync(certPath, cert.pem, { mode: 0o644 });
        return { key, cert: cert.pem };
    }
    /**
     * The controller's own client certificate, presented when it calls agents (SAN
     * urn:vmwarden:controller, which agents check). Reissued when missing or expiring within 30 days.
     */
    async controllerClientCredentials(dir) {
        const certPath = join(dir, 'controller-client.crt');
        const keyPath = join(dir, 'controller-client.key');
        if (existsSync(certPath) && existsSync(keyPath)) {
            const cert = new x509.X509Certificate(readFileSync(certPath, 'utf8'));
            if (cert.notAfter.getTime() - this.clock.now().getTime() > 30 * DAY &&
                cert.issuer === this.cert.subject) {
                return { key: readPrivateFile(keyPath).toString(), cert: readFileSync(certPath, 'utf8') };
            }
        }
        const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']));
        const cert = await this.sign({
            subject: 'CN=vmwarden controller client',
            publicKey: keys.publicKey,
            days: 365,
            usages: [x509.ExtendedKeyUsage.clientAuth],
            sans: [{ type: 'url', value: CONTROLLER_URI }],
        });
        const key = await exportKey(keys.privateKey);
        writePrivateFile(keyPath, key);
        writeFileSync(certPath, cert.pem, { mode: 0o644 });
        return { key, cert: cert.pem };
    }
    /** Issues a client certificate for a CSR. Subject from the CSR unless given; SANs as given. */
    async issueClientCert(csrPem, opts) {
        const csr = parseCsr(csrPem);
        if (!(await csr.verify()))
            throw new CsrError('the CSR signature does not verify');
        return this.sign({
            subject: opts.subject ?? csr.subject,
            publicKey: await csr.publicKey.export(),
            days: opts.days,
            usages: [
                x509.ExtendedKeyUsage.clientAuth,
                ...(opts.serverAuth ? [x509.ExtendedKeyUsage.serverAuth] : []),
            ],
            sans: opts.sans ?? [],
        });
    }
    /** True when the PEM certificate was signed by this CA and is inside its validity window. */
    async verifyIssued(pem) {
        try {
            const cert = new x509.X509Certificate(pem);
            return await cert.verify({ publicKey: this.cert.publicKey, date: this.clock.now() });
        }
        catch {
            return false;
        }
    }
    async sign(opts) {
        const now = this.clock.now();
        const extensions = [
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
            new x509.ExtendedKeyUsageExtension(opts.usages, false),
            await x509.AuthorityKeyIdentifierExtension.create(this.cert),
        ];
        if (opts.sans.length)
            extensions.push(new x509.SubjectAlternativeNameExtension(opts.sans, false));
        const cert = await x509.X509CertificateGenerator.create({
            serialNumber: serial(),
            subject: opts.subject,
            issuer: this.cert.subject,
            notBefore: new Date(now.getTime() - 60_000),
            notAfter: new Date(now.getTime() + opts.days * DAY),
            signingAlgorithm,
            publicKey: opts.publicKey,
            signingKey: this.key,
            extensions,
        });
        return { pem: cert.toString('pem'), fingerprint: fingerprintOf(cert.rawData) };
    }
}
export function parseCsr(pem) {
    try {
        return new x509.Pkcs10CertificateRequest(pem.trim());
    }
    catch {
        throw new CsrError('not a PEM-encoded PKCS#10 certificate request');
    }
}
/** SHA-256 of the DER certificate, lowercase hex: how authenticators are looked up. */
export function fingerprintOf(der) {
    return createHash('sha256')
        .update(Buffer.from(der))
        .digest('hex');
}
export function certFingerprint(pem) {
    return fingerprintOf(new x509.X509Certificate(pem).rawData);
}
export function subjectAltNames(pem) {
    const ext = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
    return ext ? ext.names.toJSON() : [];
}
function sanNames(cert) {
    const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
    return ext ? ext.names.toJSON().map((n) => n.value) : [];
}
function toSan(name) {
    return /^[\d.]+$|:/.test(name) ? { type: 'ip', value: name } : { type: 'dns', value: name };
}
function serial() {
    const bytes = randomBytes(16);
    bytes[0] &= 0x7f; // positive
    return bytes.toString('hex');
}
async function exportKey(key) {
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
    return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`.replace(/\n\n/g, '\n');
}
async function importKey(pem) {
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    return webcrypto.subtle.importKey('pkcs8', der, ecdsa, false, ['sign']);
}
//# sourceMappingURL=internal-ca.js.map