/**
 * CA keys (generate, DER for sealing, save 0600, load with a permission check) and user public keys (parse + policy).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SshReader, SshWireError, SshWriter } from './wire.js';
import { sshFingerprint } from '../../../../lib/ssh/fingerprint.js';

export type CaKeyType = 'ed25519' | 'ecdsa-p256' | 'rsa';

export interface CaKey {
  readonly type: CaKeyType;
  /** SSH key type name: ssh-ed25519, ecdsa-sha2-nistp256 or ssh-rsa. */
  readonly sshType: string;
  readonly bits: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public key in SSH wire format (what certificates carry as "signature key"). */
  readonly publicBlob: Buffer;
  /** One-line OpenSSH public key, e.g. for TrustedUserCAKeys. */
  readonly openssh: string;
  /** SHA256:… as printed by ssh-keygen -l. */
  readonly fingerprint: string;
}

export const MIN_CA_RSA_BITS = 3072;
export const MIN_USER_RSA_BITS = 2048;
const DEFAULT_COMMENT = 'vmwarden-ca';

const b64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');

const CURVES: Record<string, { jwk: string; size: number; hash: string }> = {
  nistp256: { jwk: 'P-256', size: 32, hash: 'sha256' },
  nistp384: { jwk: 'P-384', size: 48, hash: 'sha384' },
  nistp521: { jwk: 'P-521', size: 66, hash: 'sha512' },
};

/** SSH wire public key of a node KeyObject (Ed25519, ECDSA P-256/384/521, RSA). */
export function sshPublicBlob(key: KeyObject): { sshType: string; blob: Buffer } {
  const jwk = key.export({ format: 'jwk' }) as JsonWebKey;
  const w = new SshWriter(600);
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    w.string('ssh-ed25519').string(b64u(jwk.x));
    return { sshType: 'ssh-ed25519', blob: Buffer.from(w.finish()) };
  }
  if (jwk.kty === 'EC') {
    const curve = Object.keys(CURVES).find((c) => CURVES[c].jwk === jwk.crv);
    if (!curve) throw new Error(`unsupported EC curve ${jwk.crv}`);
    const size = CURVES[curve].size;
    const point = Buffer.concat([Buffer.from([4]), leftPad(b64u(jwk.x), size), leftPad(b64u(jwk.y), size)]);
    const sshType = `ecdsa-sha2-${curve}`;
    w.string(sshType).string(curve).string(point);
    return { sshType, blob: Buffer.from(w.finish()) };
  }
  if (jwk.kty === 'RSA') {
    w.string('ssh-rsa').mpint(b64u(jwk.e)).mpint(b64u(jwk.n));
    return { sshType: 'ssh-rsa', blob: Buffer.from(w.finish()) };
  }
  throw new Error(`unsupported key type ${key.asymmetricKeyType}`);
}

/** Node public KeyObject from an SSH wire public key (for verifying signatures). */
export function publicKeyFromBlob(blob: Buffer): { sshType: string; key: KeyObject } {
  const r = new SshReader(blob);
  const sshType = r.text();
  let jwk: JsonWebKey;
  if (sshType === 'ssh-ed25519') {
    jwk = { kty: 'OKP', crv: 'Ed25519', x: r.string().toString('base64url') };
  } else if (sshType.startsWith('ecdsa-sha2-')) {
    const curve = CURVES[r.text()];
    const point = r.string();
    if (!curve || sshType !== `ecdsa-sha2-${Object.keys(CURVES).find((c) => CURVES[c] === curve)}`) {
      throw new SshWireError(`bad ECDSA key ${sshType}`);
    }
    if (point.length !== 1 + 2 * curve.size || point[0] !== 4) throw new SshWireError('bad ECDSA point');
    const x = point.subarray(1, 1 + curve.size).toString('base64url');
    const y = point.subarray(1 + curve.size).toString('base64url');
    jwk = { kty: 'EC', crv: curve.jwk, x, y };
  } else if (sshType === 'ssh-rsa') {
    const e = r.mpint().toString('base64url');
    jwk = { kty: 'RSA', e, n: r.mpint().toString('base64url') };
  } else {
    throw new SshWireError(`unsupported key type ${sshType}`);
  }
  r.end();
  return { sshType, key: createPublicKey({ key: jwk, format: 'jwk' }) };
}

function leftPad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

/** Wraps a private KeyObject as a CA key, checking it is a type and size we sign with. */
export function caKeyFromPrivateKey(privateKey: KeyObject, comment = DEFAULT_COMMENT): CaKey {
  if (privateKey.type !== 'private') throw new Error('a CA key must be a private key');
  const kind = privateKey.asymmetricKeyType;
  let type: CaKeyType;
  let bits: number;
  if (kind === 'ed25519') {
    type = 'ed25519';
    bits = 256;
  } else if (kind === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    type = 'ecdsa-p256';
    bits = 256;
  } else if (kind === 'rsa') {
    type = 'rsa';
    bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_CA_RSA_BITS)
      throw new Error(`RSA CA key is ${bits} bits; at least ${MIN_CA_RSA_BITS} required`);
  } else {
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    throw new Error(
      `unsupported CA key type ${kind}${curve ? ` (${curve})` : ''}; use ed25519, ecdsa-p256 or rsa`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  const { sshType, blob } = sshPublicBlob(publicKey);
  return {
    type,
    sshType,
    bits,
    privateKey,
    publicKey,
    publicBlob: blob,
    openssh: `${sshType} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`,
    fingerprint: sshFingerprint(blob),
  };
}

export function generateCaKey(type: CaKeyType, rsaBits = MIN_CA_RSA_BITS, comment = DEFAULT_COMMENT): CaKey {
  switch (type) {
    case 'ed25519':
      return caKeyFromPrivateKey(generateKeyPairSync('ed25519').privateKey, comment);
    case 'ecdsa-p256':
      return caKeyFromPrivateKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, comment);
    case 'rsa':
      if (!Number.isInteger(rsaBits) || rsaBits < MIN_CA_RSA_BITS) {
        throw new Error(`RSA CA keys must have at least ${MIN_CA_RSA_BITS} bits (asked for ${rsaBits})`);
      }
      return caKeyFromPrivateKey(generateKeyPairSync('rsa', { modulusLength: rsaBits }).privateKey, comment);
    default:
      throw new Error(`unknown CA key type ${String(type)}`);
  }
}

/**
 * Writes the private key as PKCS#8 PEM. The file is created 0600 under a temporary name and renamed
 * into place, so the key is never readable by others and never seen half-written.
 */
export async function saveCaKey(key: CaKey, path: string): Promise<void> {
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(pem);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** The private key as PKCS#8 DER: what is sealed into the database (pki/kek.ts). */
export function caKeyToDer(key: CaKey): Buffer {
  return key.privateKey.export({ format: 'der', type: 'pkcs8' });
}

export function caKeyFromDer(der: Buffer, comment = DEFAULT_COMMENT): CaKey {
  return caKeyFromPrivateKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }), comment);
}

/** Loads a PKCS#8 (or PKCS#1/SEC1) PEM CA key, refusing files accessible by group or others. */
export async function loadCaKey(path: string, comment = DEFAULT_COMMENT): Promise<CaKey> {
  const fh = await open(path, 'r');
  let pem: Buffer;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`CA key ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new Error(
        `refusing to load CA key ${path}: its mode is ${mode}, it must not be accessible by group or others (chmod 600 ${path})`,
      );
    }
    pem = await fh.readFile();
  } finally {
    await fh.close();
  }
  return caKeyFromPrivateKey(createPrivateKey(pem), comment);
}

// ---------------------------------------------------------------------------------------------
// User public keys: THE key policy. Every user key the controller accepts (the SSH key registry,
// POST /v1/access/request with a public_key or a registered ssh_key_id) passes checkUserKeyBlob.

export type KeyRejectCode =
  | 'empty'
  | 'private_key'
  | 'certificate'
  | 'not_openssh'
  | 'dsa_insecure'
  | 'unsupported_type'
  | 'invalid_key'
  | 'rsa_too_small'
  | 'rsa_too_large'
  | 'rsa_exponent';

/** A user key that cannot be used; `reason` is a sentence fit for a 400 response. */
export class KeyRejectedError extends Error {
  constructor(
    readonly code: KeyRejectCode,
    readonly reason: string,
    /** The key's size, for size refusals. */
    readonly bits?: number,
  ) {
    super(reason);
    this.name = 'KeyRejectedError';
  }
}

export interface UserPublicKey {
  /** SSH key type name, e.g. ssh-ed25519. */
  type: string;
  /** SSH wire public key. */
  blob: Buffer;
  bits: number;
  comment: string;
  /** SHA256:… */
  fingerprint: string;
  /** Canonical one-line form: `type base64[ comment]`. */
  openssh: string;
}

/** The user key types accepted (DSA, rsa1, FIDO sk-* and certificates are not). */
export const ACCEPTED_USER_KEY_TYPES: readonly string[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
];
const ACCEPTED_USER_TYPES = new Set(ACCEPTED_USER_KEY_TYPES);
export const MAX_USER_RSA_BITS = 16384;
/**
 * RSA public exponent: odd and at least 65537 (FIPS 186-5 / NIST SP 800-56B: 2^16 < e < 2^256;
 * ssh-keygen has always used 65537 since OpenSSH 5.x). e = 1 makes "signatures" trivial, small
 * exponents (3, 35 of very old ssh-keygen) are refused too.
 */
export const MIN_RSA_EXPONENT = 65537n;
const MAX_RSA_EXPONENT = 1n << 256n;

const KEY_TYPE_LIKE = /^(ssh-|ecdsa-sha2-|sk-)|@openssh\.com$/;
const KEY_RE = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/;

/** Splits `type base64 comment`, skipping authorized_keys options (quoted values may hold spaces). */
function splitKeyLine(line: string): { type: string; b64: string; comment: string } | undefined {
  const direct = KEY_RE.exec(line);
  if (direct && (blobTypeIs(direct[2], direct[1]) || KEY_TYPE_LIKE.test(direct[1])))
    return { type: direct[1], b64: direct[2], comment: direct[3] ?? '' };
  let i = 0;
  let quoted = false;
  for (; i < line.length; i++) {
    const c = line[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === ' ' || c === '\t')) break;
  }
  const m = KEY_RE.exec(line.slice(i).trimStart());
  return m ? { type: m[1], b64: m[2], comment: m[3] ?? '' } : undefined;
}

function blobTypeIs(b64: string, type: string): boolean {
  try {
    return new SshReader(Buffer.from(b64, 'base64')).text() === type;
  } catch {
    return false;
  }
}

const bigFrom = (b: Buffer) => (b.length ? BigInt('0x' + b.toString('hex')) : 0n);

/** The key type named by an RFC 4253 blob, or undefined when it does not start with one. */
export function userKeyBlobType(blob: Buffer): string | undefined {
  try {
    const t = new SshReader(blob).text();
    return /^[\x21-\x7e]{1,64}$/.test(t) ? t : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The user key policy, on an RFC 4253 public key blob: Ed25519 (32 bytes), ECDSA P-256/384/521 (the
 * point must be on its curve: OpenSSL refuses it otherwise), RSA of 2048-16384 bits with an odd
 * modulus and an odd exponent of at least 65537. The blob must be exactly the canonical encoding of
 * the key (no trailing or padded data). DSA, rsa1, sk-* and certificates are refused.
 */
export function checkUserKeyBlob(blob: Buffer): { type: string; bits: number; fingerprint: string } {
  const type = userKeyBlobType(blob);
  // Structure (truncated, trailing data, wrong field sizes) → not_openssh; a well-formed encoding of
  // something that is not a usable key (point off the curve, even modulus) → invalid_key.
  const invalid = (why: string, code: KeyRejectCode = 'invalid_key') =>
    new KeyRejectedError(code, `not a valid ${type} public key (${why})`);
  if (type === undefined) throw new KeyRejectedError('not_openssh', 'not an SSH public key');
  if (type.endsWith('-cert-v01@openssh.com'))
    throw new KeyRejectedError('certificate', 'this is an SSH certificate; send the plain public key');
  if (type === 'ssh-dss')
    throw new KeyRejectedError(
      'dsa_insecure',
      'DSA keys are insecure and no longer supported by OpenSSH; use an Ed25519 key (ssh-keygen -t ed25519)',
    );
  if (!ACCEPTED_USER_TYPES.has(type))
    throw new KeyRejectedError(
      'unsupported_type',
      `unsupported key type ${type}; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (at least ${MIN_USER_RSA_BITS} bits)`,
    );
  let bits: number;
  try {
    const r = new SshReader(blob);
    r.text();
    if (type === 'ssh-ed25519') {
      if (r.string().length !== 32) throw new SshWireError('an Ed25519 key is 32 bytes');
      bits = 256;
    } else if (type.startsWith('ecdsa-sha2-')) {
      const curve = r.text();
      if (`ecdsa-sha2-${curve}` !== type) throw new SshWireError('the curve does not match the key type');
      const point = r.string();
      if (point.length !== 1 + 2 * CURVES[curve].size || point[0] !== 4)
        throw new SshWireError('not an uncompressed point of the curve');
      bits = curve === 'nistp521' ? 521 : CURVES[curve].size * 8;
    } else {
      const e = bigFrom(r.mpint());
      const n = bigFrom(r.mpint());
      if (n === 0n || (n & 1n) === 0n) throw new SshWireError('the modulus is even');
      bits = n.toString(2).length;
      if (e < MIN_RSA_EXPONENT || e >= MAX_RSA_EXPONENT || (e & 1n) === 0n) {
        throw new KeyRejectedError(
          'rsa_exponent',
          `RSA public exponent ${e < 1n << 64n ? e : 'of ' + e.toString(2).length + ' bits'} is refused: it must be odd, at least ${MIN_RSA_EXPONENT} and below 2^256 (ssh-keygen uses 65537)`,
        );
      }
    }
    r.end();
  } catch (err) {
    if (err instanceof KeyRejectedError) throw err;
    if (err instanceof SshWireError && /modulus/.test(err.message)) throw invalid(err.message);
    throw invalid(err instanceof SshWireError ? err.message : 'malformed', 'not_openssh');
  }
  if (type === 'ssh-rsa' && bits < MIN_USER_RSA_BITS)
    throw new KeyRejectedError(
      'rsa_too_small',
      `RSA key is ${bits} bits; at least ${MIN_USER_RSA_BITS} bits are required (or use ssh-keygen -t ed25519)`,
      bits,
    );
  if (type === 'ssh-rsa' && bits > MAX_USER_RSA_BITS)
    throw new KeyRejectedError(
      'rsa_too_large',
      `RSA key is ${bits} bits; at most ${MAX_USER_RSA_BITS} bits are accepted`,
      bits,
    );
  // OpenSSL checks the key itself (an ECDSA point off its curve is refused here), and the key must
  // encode back to exactly the blob given: one key, one encoding, one fingerprint.
  let canonical: Buffer;
  try {
    canonical = sshPublicBlob(publicKeyFromBlob(blob).key).blob;
  } catch {
    throw invalid(type.startsWith('ecdsa-') ? 'the point is not on the curve' : 'the key data is malformed');
  }
  if (!canonical.equals(blob)) throw invalid('not in canonical form');
  return { type, bits, fingerprint: sshFingerprint(blob) };
}

/**
 * Parses an OpenSSH public key line (optionally an authorized_keys line with options) and applies the
 * key policy (checkUserKeyBlob).
 */
export function parseUserPublicKey(text: string): UserPublicKey {
  const notOpenssh = () =>
    new KeyRejectedError(
      'not_openssh',
      'not an OpenSSH public key (expected e.g. "ssh-ed25519 AAAA… comment")',
    );
  if (typeof text !== 'string' || text.trim() === '')
    throw new KeyRejectedError('empty', 'no public key given');
  if (/PRIVATE KEY-----|PuTTY-User-Key-File-/.test(text)) {
    throw new KeyRejectedError(
      'private_key',
      'this is a private key; send the public key (the .pub file) instead',
    );
  }
  const line = text.trim();
  if (/[\r\n]/.test(line)) throw new KeyRejectedError('not_openssh', 'expected exactly one public key line');
  const parts = splitKeyLine(line);
  if (!parts) throw notOpenssh();
  const { type, b64 } = parts;
  if (type.endsWith('-cert-v01@openssh.com')) {
    throw new KeyRejectedError('certificate', 'this is an SSH certificate; send the plain public key');
  }
  if (!blobTypeIs(b64, type)) throw notOpenssh();
  const blob = Buffer.from(b64, 'base64');
  let checked: { bits: number; fingerprint: string };
  try {
    checked = checkUserKeyBlob(blob);
  } catch (err) {
    if (err instanceof KeyRejectedError && err.code === 'not_openssh') throw notOpenssh();
    throw err;
  }
  const comment = parts.comment.trim();
  const canonical = `${type} ${blob.toString('base64')}`;
  return {
    type,
    blob,
    bits: checked.bits,
    comment,
    fingerprint: checked.fingerprint,
    openssh: comment ? `${canonical} ${comment}` : canonical,
  };
}
