import { createHash, createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { x509 } from '../../../lib/pki/x509.js';
import { readPrivateFile, writePrivateFile } from '../../../lib/platform/private-file.js';
import type { Clock } from '../../../lib/platform/clock.js';
import { CONTROLLER_URI } from '../../../lib/pki/san-uris.js';
import type { Database, Reader } from '../../../lib/store/database.js';
import type { KeyEncryptionKey } from './kek.js';

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface IssuedCert {
  pem: string;
  fingerprint: string;
}

export class CsrError extends Error {}

/**
 * The cluster's internal X.509 CA (ECDSA P-256): the HTTPS server certificates and every client
 * certificate (identities, agents) come from it. Shared by every controller (see openOrCreate).
 */
export class InternalCa {
  private constructor(
    readonly cert: x509.X509Certificate,
    private readonly key: CryptoKey,
    private readonly clock: Clock,
  ) {}

  get certPem(): string {
    return this.cert.toString('pem');
  }

  /** SHA-256 of the CA certificate (hex): what enrollment tokens pin. */
  get fingerprint(): string {
    return fingerprintOf(this.cert.rawData);
  }

  /**
   * The cluster's CA, shared by every controller through the database (certificate and sealed
   * private key, one row). On an empty database the first controller creates it, importing the
   * pki/ca.key + ca.crt of a controller from before sealing if there are any; controllers starting
   * together agree on one (the first insert wins, the others read it). The public certificate is
   * written to `dir`/ca.crt for the CLI and tools; the private key never to a file.
   */
  static async openOrCreate(
    db: Database,
    kek: KeyEncryptionKey,
    dir: string,
    clock: Clock,
  ): Promise<InternalCa> {
    let row = await readCaRow(db);
    if (!row) {
      const candidate = existingFiles(dir) ?? (await newCa(clock));
      const sealed = kek.seal(candidate.keyDer, sealLabel(certFingerprint(candidate.certPem)));
      row = await db.write(async (tx) => {
        await tx.run(
          `INSERT INTO internal_ca (id, cert_pem, private_key_sealed, created_at) VALUES (1, ?, ?, ?)
           ON CONFLICT (id) DO NOTHING`,
          [candidate.certPem, sealed, clock.now().toISOString()],
        );
        return (await readCaRow(tx))!;
      });
    }
    const keyDer = kek.open(row.private_key_sealed, sealLabel(certFingerprint(row.cert_pem)));
    const certPath = join(dir, 'ca.crt');
    if (!existsSync(certPath) || readFileSync(certPath, 'utf8') !== row.cert_pem)
      writeFileSync(certPath, row.cert_pem, { mode: 0o644 });
    return InternalCa.from(row.cert_pem, keyDer, clock);
  }

  /** A new CA kept in memory only (tests: a CA that is not the cluster's). */
  static async generate(clock: Clock): Promise<InternalCa> {
    const { certPem, keyDer } = await newCa(clock);
    return InternalCa.from(certPem, keyDer, clock);
  }

  private static async from(certPem: string, keyDer: Buffer, clock: Clock): Promise<InternalCa> {
    const cert = new x509.X509Certificate(certPem);
    const privateKey = createPrivateKey({ key: keyDer, format: 'der', type: 'pkcs8' });
    const publicDer = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    if (!publicDer.equals(Buffer.from(cert.publicKey.rawData)))
      throw new Error('the internal CA private key does not match its certificate');
    const key = (await webcrypto.subtle.importKey('pkcs8', keyDer, ecdsa, false, ['sign'])) as CryptoKey;
    return new InternalCa(cert, key, clock);
  }

  /** Server certificate for HTTPS, reissued when missing, expiring within 30 days, or for other names. */
  async serverCredentials(dir: string, names: string[]): Promise<{ key: string; cert: string }> {
    const certPath = join(dir, 'server.crt');
    const keyPath = join(dir, 'server.key');
    const wanted = [...new Set(names)].sort().join(',');
    if (existsSync(certPath) && existsSync(keyPath)) {
      const pem = readFileSync(certPath, 'utf8');
      const cert = new x509.X509Certificate(pem);
      const fresh = cert.notAfter.getTime() - this.clock.now().getTime() > 30 * DAY;
      if (fresh && sanNames(cert).sort().join(',') === wanted && (await this.verifyIssued(pem))) {
        return { key: readPrivateFile(keyPath).toString(), cert: readFileSync(certPath, 'utf8') };
      }
    }
    const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
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
  async controllerClientCredentials(dir: string): Promise<{ key: string; cert: string }> {
    const certPath = join(dir, 'controller-client.crt');
    const keyPath = join(dir, 'controller-client.key');
    if (existsSync(certPath) && existsSync(keyPath)) {
      const pem = readFileSync(certPath, 'utf8');
      const cert = new x509.X509Certificate(pem);
      // Issued by this CA (a data dir may hold certificates of a CA from before joining a cluster).
      if (cert.notAfter.getTime() - this.clock.now().getTime() > 30 * DAY && (await this.verifyIssued(pem))) {
        return { key: readPrivateFile(keyPath).toString(), cert: readFileSync(certPath, 'utf8') };
      }
    }
    const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
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
  async issueClientCert(
    csrPem: string,
    opts: { days: number; subject?: string; sans?: x509.JsonGeneralName[]; serverAuth?: boolean },
  ): Promise<IssuedCert> {
    const csr = parseCsr(csrPem);
    if (!(await csr.verify())) throw new CsrError('the CSR signature does not verify');
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
  async verifyIssued(pem: string): Promise<boolean> {
    try {
      const cert = new x509.X509Certificate(pem);
      return await cert.verify({ publicKey: this.cert.publicKey, date: this.clock.now() });
    } catch {
      return false;
    }
  }

  private async sign(opts: {
    subject: string;
    publicKey: CryptoKey;
    days: number;
    usages: string[];
    sans: x509.JsonGeneralName[];
  }): Promise<IssuedCert> {
    const now = this.clock.now();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(opts.usages, false),
      await x509.AuthorityKeyIdentifierExtension.create(this.cert),
    ];
    if (opts.sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(opts.sans, false));
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

export function parseCsr(pem: string): x509.Pkcs10CertificateRequest {
  try {
    return new x509.Pkcs10CertificateRequest(pem.trim());
  } catch {
    throw new CsrError('not a PEM-encoded PKCS#10 certificate request');
  }
}

/** SHA-256 of the DER certificate, lowercase hex: how authenticators are looked up. */
export function fingerprintOf(der: ArrayBuffer | Buffer): string {
  return createHash('sha256')
    .update(Buffer.from(der as ArrayBuffer))
    .digest('hex');
}

export function certFingerprint(pem: string): string {
  return fingerprintOf(new x509.X509Certificate(pem).rawData);
}

/** True when the certificate may also serve TLS (agents' certificates do). */
export function allowsServerAuth(pem: string): boolean {
  const ext = new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension);
  return Boolean(ext?.usages.includes(x509.ExtendedKeyUsage.serverAuth));
}

export function subjectAltNames(pem: string): x509.JsonGeneralName[] {
  const ext = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return ext ? ext.names.toJSON() : [];
}

function sanNames(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return ext ? ext.names.toJSON().map((n) => n.value) : [];
}

function toSan(name: string): x509.JsonGeneralName {
  return /^[\d.]+$|:/.test(name) ? { type: 'ip', value: name } : { type: 'dns', value: name };
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  return bytes.toString('hex');
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n`.replace(
    /\n\n/g,
    '\n',
  );
}

const pemToDer = (pem: string) =>
  Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');

/** What the CA private key is sealed as (pki/kek.ts). */
const sealLabel = (certFingerprint: string) => `vmwarden internal-ca ${certFingerprint}`;

interface CaRow {
  cert_pem: string;
  private_key_sealed: string;
}

const readCaRow = (db: Reader) =>
  db.get<CaRow>('SELECT cert_pem, private_key_sealed FROM internal_ca WHERE id = 1');

/** The CA files of a controller from before the key was sealed into the database. */
function existingFiles(dir: string): { certPem: string; keyDer: Buffer } | undefined {
  const certPath = join(dir, 'ca.crt');
  const keyPath = join(dir, 'ca.key');
  if (!existsSync(certPath) || !existsSync(keyPath)) return undefined;
  return { certPem: readFileSync(certPath, 'utf8'), keyDer: pemToDer(readPrivateFile(keyPath).toString()) };
}

async function newCa(clock: Clock): Promise<{ certPem: string; keyDer: Buffer }> {
  const keys = (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
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
  return {
    certPem: cert.toString('pem'),
    keyDer: Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}
