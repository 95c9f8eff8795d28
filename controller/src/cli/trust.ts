// Trust on the first https login without trusting blindly: the controller's CA is accepted only when
// its SHA-256 fingerprint is the one the operator gave (as `step ca bootstrap --fingerprint` does),
// then pinned for every later call.
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { CliError, reachError } from './client.js';
import { usage } from './context.js';

/** Accepts `SHA256:<hex>`, plain hex, and colon-separated hex (openssl's form), any case. */
export function parseFingerprint(text: string): string {
  const hex = text
    .trim()
    .replace(/^.*fingerprint=/i, '')
    .replace(/^sha-?256[:=]?/i, '')
    .replace(/:/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw usage(
      `--fingerprint must be a SHA-256 fingerprint (64 hex digits, e.g. SHA256:ab12…), got '${text}'`,
    );
  return hex;
}

export const formatFingerprint = (hex: string) => `SHA256:${hex}`;
const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');
const toPem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----\n`;

/** The chain the server sent, leaf first (node links each certificate to its issuer when it has it). */
function chainOf(leaf: DetailedPeerCertificate): PeerCertificate[] {
  const chain: PeerCertificate[] = [];
  let c: DetailedPeerCertificate | undefined = leaf;
  while (c && c.raw && !chain.some((x) => x.raw.equals(c!.raw))) {
    chain.push(c);
    c = c.issuerCertificate;
  }
  return chain;
}

/**
 * Opens one TLS connection (nothing is sent over it), finds in the server's chain the CA whose
 * fingerprint is `fingerprint`, checks that it really issued the server's certificate for this
 * host, and returns its PEM. Anything else is refused before a password or token leaves.
 */
export async function fetchPinnedCa(url: string, fingerprint: string): Promise<string> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 443);
  const chain = await new Promise<PeerCertificate[]>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      servername: /^[\d.:]+$/.test(host) ? undefined : host,
      rejectUnauthorized: false,
    });
    socket.setTimeout(30_000, () =>
      socket.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })),
    );
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(peer && peer.raw ? chainOf(peer) : []);
    });
    socket.once('error', reject);
  }).catch((err) => {
    throw reachError(url, err, false);
  });
  const ca = chain.find((c) => sha256(c.raw) === fingerprint);
  if (!ca)
    throw new CliError(
      `the controller at ${url} did not present a CA with fingerprint ${formatFingerprint(fingerprint)} ` +
        `(it presented ${chain.map((c) => formatFingerprint(sha256(c.raw))).join(', ') || 'no certificate'}): not logging in`,
    );
  const caCert = new X509Certificate(ca.raw);
  const leaf = new X509Certificate(chain[0]!.raw);
  if (!caCert.ca)
    throw new CliError(`the certificate with fingerprint ${formatFingerprint(fingerprint)} is not a CA`);
  if (ca !== chain[0] && !(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey)))
    throw new CliError(
      `the controller's certificate at ${url} is not issued by the CA ${formatFingerprint(fingerprint)}`,
    );
  if (!(leaf.checkHost(host) || leaf.checkIP(host)))
    throw new CliError(`the controller's certificate is not issued for ${host}`);
  return toPem(ca.raw);
}

/** --ca-file: a PEM CA certificate, checked to be one. */
export function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read --ca-file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    if (!new X509Certificate(pem).ca) throw new Error('not a CA');
  } catch {
    throw new CliError(`--ca-file ${file} is not a PEM CA certificate`);
  }
  return pem;
}
