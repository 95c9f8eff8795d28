/**
 * OpenSSH user certificates (PROTOCOL.certkeys), signed with node:crypto.
 */
import { sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { pooledRandomBytes } from '../../platform/random.js';
import type { CaKey } from './keys.js';
import { publicKeyFromBlob } from './keys.js';
import { SshReader, SshWireError, SshWriter } from './wire.js';

const SSH_CERT_TYPE_USER = 1;
const SSH_CERT_TYPE_HOST = 2;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Plain key type → certificate type. */
const CERT_TYPES: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
};
const KEY_TYPES: Record<string, string> = Object.fromEntries(
  Object.entries(CERT_TYPES).map(([k, v]) => [v, k]),
);

export interface UserCertificateSpec {
  /** The user's public key in SSH wire format (UserPublicKey.blob). */
  publicKey: Buffer | { blob: Buffer };
  /** Non-zero (zero cannot be revoked by serial in a KRL). */
  serial: bigint;
  keyId: string;
  /** At least one: a certificate without principals would be valid for any principal. */
  principals: readonly string[];
  /** Dates, or raw uint64 seconds (0xffffffffffffffffn = forever). */
  validAfter: Date | bigint;
  validBefore: Date | bigint;
  /** e.g. { 'force-command': 'tmux new -A', 'source-address': '10.0.0.0/8' }. '' = flag option. */
  criticalOptions?: Readonly<Record<string, string>>;
  /** e.g. ['permit-pty'] or { 'permit-pty': '' }. */
  extensions?: readonly string[] | Readonly<Record<string, string>>;
  /** Comment after the base64 in the one-line form. */
  comment?: string;
  /** 32 random bytes by default; fixed only in tests. */
  nonce?: Buffer;
  /** A user certificate (default) or a host certificate (sshd's HostCertificate). */
  kind?: 'user' | 'host';
}

export interface SignedCertificate {
  certType: string;
  /** The certificate in SSH wire format. */
  blob: Buffer;
  /** `<certtype> <base64> <comment>` as written to `*-cert.pub`. */
  line: string;
  serial: bigint;
}

/** Signature algorithm name used for each CA type. RSA is always rsa-sha2-512, never SHA-1. */
export function signatureAlgorithm(ca: CaKey): string {
  return ca.type === 'rsa' ? 'rsa-sha2-512' : ca.sshType;
}

const toSeconds = (t: Date | bigint): bigint => {
  if (typeof t === 'bigint') return t;
  const ms = t.getTime();
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError('invalid validity date');
  return BigInt(Math.floor(ms / 1000));
};

const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

/** Options/extensions: sorted by name; each value is a string wrapped in the data string. */
function writeOptions(w: SshWriter, options: [string, string][]): void {
  w.nested(() => {
    for (const [name, value] of options.sort(byName)) {
      w.string(name);
      if (value === '') w.string('');
      else w.nested(() => w.string(value));
    }
  });
}

function entries(o: readonly string[] | Readonly<Record<string, string>> | undefined): [string, string][] {
  if (!o) return [];
  return Array.isArray(o) ? o.map((n: string) => [n, '']) : Object.entries(o);
}

export function signUserCertificate(ca: CaKey, spec: UserCertificateSpec): SignedCertificate {
  const userBlob = Buffer.isBuffer(spec.publicKey) ? spec.publicKey : spec.publicKey.blob;
  const r = new SshReader(userBlob);
  const keyType = r.text();
  const certType = CERT_TYPES[keyType];
  if (!certType) throw new Error(`cannot certify key type ${keyType}`);
  if (spec.serial <= 0n || spec.serial > U64_MAX) throw new RangeError('serial must be a non-zero uint64');
  if (spec.principals.length === 0 || spec.principals.some((p) => p === '')) {
    throw new Error('a certificate needs at least one non-empty principal');
  }
  const validAfter = toSeconds(spec.validAfter);
  const validBefore = toSeconds(spec.validBefore);
  if (validAfter >= validBefore) throw new RangeError('validAfter must be before validBefore');
  const nonce = spec.nonce ?? pooledRandomBytes(32);

  const w = new SshWriter(1024);
  w.string(certType).string(nonce).raw(r.rest());
  w.uint64(spec.serial)
    .uint32(spec.kind === 'host' ? SSH_CERT_TYPE_HOST : SSH_CERT_TYPE_USER)
    .string(spec.keyId);
  w.nested(() => {
    for (const p of spec.principals) w.string(p);
  });
  w.uint64(validAfter).uint64(validBefore);
  writeOptions(w, entries(spec.criticalOptions));
  writeOptions(w, entries(spec.extensions));
  w.string('').string(ca.publicBlob);
  // The view is consumed synchronously by the signer before anything else is appended.
  const signature = signBlob(ca, w.finish());
  w.nested(() => {
    w.string(signature.algorithm);
    if (signature.ecdsa) w.nested(() => w.mpint(signature.ecdsa!.r).mpint(signature.ecdsa!.s));
    else w.string(signature.bytes);
  });
  const blob = w.finish();
  const comment = spec.comment ?? '';
  return {
    certType,
    blob,
    line: `${certType} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
    serial: spec.serial,
  };
}

function signBlob(
  ca: CaKey,
  data: Buffer,
): { algorithm: string; bytes: Buffer; ecdsa?: { r: Buffer; s: Buffer } } {
  switch (ca.type) {
    case 'ed25519':
      return { algorithm: 'ssh-ed25519', bytes: cryptoSign(null, data, ca.privateKey) };
    case 'ecdsa-p256': {
      const rs = cryptoSign('sha256', data, { key: ca.privateKey, dsaEncoding: 'ieee-p1363' });
      return { algorithm: ca.sshType, bytes: rs, ecdsa: { r: rs.subarray(0, 32), s: rs.subarray(32) } };
    }
    case 'rsa':
      return { algorithm: 'rsa-sha2-512', bytes: cryptoSign('sha512', data, ca.privateKey) };
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface ParsedCertificate {
  certType: string;
  /** The certified plain key type, e.g. ssh-ed25519. */
  keyType: string;
  nonce: Buffer;
  /** The certified public key in SSH wire format. */
  publicKeyBlob: Buffer;
  serial: bigint;
  /** 1 = user, 2 = host. */
  certKind: number;
  keyId: string;
  principals: string[];
  validAfter: bigint;
  validBefore: bigint;
  criticalOptions: Record<string, string>;
  extensions: Record<string, string>;
  /** CA public key in SSH wire format. */
  signatureKey: Buffer;
  signatureAlgorithm: string;
  /** Raw signature: Ed25519/RSA bytes, or r||s (each the curve size) for ECDSA. */
  signature: Buffer;
  /** The bytes the signature covers. */
  signedData: Buffer;
  comment: string;
  blob: Buffer;
}

function readOptions(data: Buffer): Record<string, string> {
  const r = new SshReader(data);
  const out: Record<string, string> = {};
  while (r.remaining > 0) {
    const name = r.text();
    const value = r.string();
    if (value.length === 0) {
      out[name] = '';
    } else {
      const inner = new SshReader(value);
      out[name] = inner.text();
      inner.end();
    }
  }
  return out;
}

const ECDSA_SIZES: Record<string, number> = {
  'ecdsa-sha2-nistp256': 32,
  'ecdsa-sha2-nistp384': 48,
  'ecdsa-sha2-nistp521': 66,
};

/** Decodes a certificate from its one-line text form or its wire blob. Does not verify it. */
export function parseCertificate(input: string | Buffer): ParsedCertificate {
  let blob: Buffer;
  let comment = '';
  let lineType: string | undefined;
  if (typeof input === 'string') {
    const m = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/.exec(input.trim());
    if (!m) throw new SshWireError('not an OpenSSH certificate line');
    [, lineType] = m;
    blob = Buffer.from(m[2], 'base64');
    comment = (m[3] ?? '').trim();
  } else {
    blob = input;
  }
  const r = new SshReader(blob);
  const certType = r.text();
  const keyType = KEY_TYPES[certType];
  if (!keyType) throw new SshWireError(`not a supported certificate type: ${certType}`);
  if (lineType !== undefined && lineType !== certType) throw new SshWireError('certificate type mismatch');
  const nonce = r.string();
  const keyStart = r.offset;
  const fieldCount = keyType === 'ssh-ed25519' ? 1 : 2;
  for (let i = 0; i < fieldCount; i++) r.string();
  const publicKeyBlob = new SshWriter(600).string(keyType).raw(blob.subarray(keyStart, r.offset)).finish();
  const serial = r.uint64();
  const certKind = r.uint32();
  const keyId = r.text();
  const principalsReader = new SshReader(r.string());
  const principals: string[] = [];
  while (principalsReader.remaining > 0) principals.push(principalsReader.text());
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  const criticalOptions = readOptions(r.string());
  const extensions = readOptions(r.string());
  r.string(); // reserved
  const signatureKey = r.string();
  const signedData = blob.subarray(0, r.offset);
  const sig = new SshReader(r.string());
  r.end();
  const signatureAlgorithm = sig.text();
  let signature = sig.string();
  sig.end();
  const ecSize = ECDSA_SIZES[signatureAlgorithm];
  if (ecSize) {
    const rs = new SshReader(signature);
    const [rr, ss] = [rs.mpint(), rs.mpint()];
    rs.end();
    if (rr.length > ecSize || ss.length > ecSize) throw new SshWireError('bad ECDSA signature');
    signature = Buffer.alloc(2 * ecSize);
    rr.copy(signature, ecSize - rr.length);
    ss.copy(signature, 2 * ecSize - ss.length);
  }
  return {
    certType,
    keyType,
    nonce,
    publicKeyBlob,
    serial,
    certKind,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signatureAlgorithm,
    signature,
    signedData,
    comment,
    blob,
  };
}

const VERIFY_HASH: Record<string, string | null> = {
  'ssh-ed25519': null,
  'ecdsa-sha2-nistp256': 'sha256',
  'ecdsa-sha2-nistp384': 'sha384',
  'ecdsa-sha2-nistp521': 'sha512',
  'rsa-sha2-256': 'sha256',
  'rsa-sha2-512': 'sha512',
};

/** Verifies the CA signature with node:crypto. SHA-1 RSA (ssh-rsa) signatures are refused. */
export function verifyCertificateSignature(cert: ParsedCertificate): boolean {
  const hash = VERIFY_HASH[cert.signatureAlgorithm];
  if (hash === undefined) return false;
  const { sshType, key } = publicKeyFromBlob(cert.signatureKey);
  const expectedKeyType = cert.signatureAlgorithm.startsWith('rsa-') ? 'ssh-rsa' : cert.signatureAlgorithm;
  if (sshType !== expectedKeyType) return false;
  const keyArg = ECDSA_SIZES[cert.signatureAlgorithm] ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
  return cryptoVerify(hash, cert.signedData, keyArg, cert.signature);
}
