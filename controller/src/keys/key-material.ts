/**
 * Parsing and validation of SSH public key material, stricter than COmanage (which stores whatever
 * it is given). Accepts the bare base64 body, a whole OpenSSH / authorized_keys line, or an RFC 4716
 * ("---- BEGIN SSH2 PUBLIC KEY ----") block; refuses private keys, insecure and unknown types,
 * and bodies that are not really a key of the declared type. The key itself must then pass the
 * controller's one user-key policy (checkUserKeyBlob in access/sshca/keys.ts), which
 * POST /v1/access/request applies too.
 */
import {
  ACCEPTED_USER_KEY_TYPES,
  checkUserKeyBlob,
  KeyRejectedError,
  MAX_USER_RSA_BITS,
  MIN_USER_RSA_BITS,
} from '../access/sshca/keys.js';

/** The key types of the COmanage SshKey schema. */
export const SSH_KEY_TYPES = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'ssh-dss',
  'ssh-rsa1',
] as const;
export type SshKeyType = (typeof SSH_KEY_TYPES)[number];

/** Listed by COmanage, refused here. */
export const INSECURE_TYPES: ReadonlySet<string> = new Set(['ssh-dss', 'ssh-rsa1']);

// What is accepted is decided by the one user-key policy, access/sshca/keys.ts (checkUserKeyBlob);
// this module only reads the COmanage Skey/Type forms and names the field at fault.
export const MIN_RSA_BITS = MIN_USER_RSA_BITS;
export const MAX_RSA_BITS = MAX_USER_RSA_BITS;
export const MAX_SKEY_CHARS = 16 * 1024;

/** A validation problem with the field it belongs to (Type or Skey), for COmanage InvalidFields. */
export class KeyMaterialError extends Error {
  constructor(
    readonly field: 'Type' | 'Skey',
    message: string,
  ) {
    super(message);
  }
}

export interface ParsedKey {
  type: SshKeyType;
  /** Canonical base64 of the RFC 4253 public key blob. */
  skey: string;
  /** OpenSSH SHA256 fingerprint, e.g. "SHA256:4Drd…". */
  fingerprint: string;
  bits: number;
  /** Comment carried by an OpenSSH line or an RFC 4716 block, if any. */
  comment?: string;
}

const insecure = (type: string) =>
  new KeyMaterialError(
    'Type',
    `${type} keys are refused as insecure (${type === 'ssh-dss' ? 'DSA is limited to 1024 bits and SHA-1' : 'SSH protocol 1 is obsolete'}); use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least ${MIN_RSA_BITS} bits`,
  );

const isKnownType = (t: string): t is SshKeyType => (SSH_KEY_TYPES as readonly string[]).includes(t);

const unknownType = (t: string) =>
  new KeyMaterialError(
    'Type',
    `Unknown key type '${t.slice(0, 64)}'; expected one of ${SSH_KEY_TYPES.join(', ')}`,
  );

const PRIVATE_MARKERS = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/,
  /PuTTY-User-Key-File-/,
  /^SSH PRIVATE KEY FILE FORMAT/,
];
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;
const RFC4716_BEGIN = '---- BEGIN SSH2 PUBLIC KEY ----';
const RFC4716_END = '---- END SSH2 PUBLIC KEY ----';

/**
 * Parses the Skey field. `declaredType` is the request's Type (may be absent when the Skey carries
 * its own type, as an OpenSSH line or RFC 4716 block does).
 */
export function parseKeyMaterial(skeyInput: string, declaredType: string | undefined): ParsedKey {
  if (declaredType !== undefined) {
    if (!isKnownType(declaredType)) throw unknownType(declaredType);
    if (INSECURE_TYPES.has(declaredType)) throw insecure(declaredType);
  }
  const text = skeyInput.trim();
  if (!text) throw new KeyMaterialError('Skey', 'Skey is empty');
  if (text.length > MAX_SKEY_CHARS)
    throw new KeyMaterialError('Skey', `Skey is longer than ${MAX_SKEY_CHARS} characters`);
  if (PRIVATE_MARKERS.some((re) => re.test(text)))
    throw new KeyMaterialError(
      'Skey',
      'This is a private key: never send it anywhere; send the public key (the .pub file) instead',
    );

  let body: string;
  let lineType: string | undefined;
  let comment: string | undefined;
  if (text.startsWith(RFC4716_BEGIN)) {
    ({ body, comment } = parseRfc4716(text));
  } else if (/\s/.test(text)) {
    ({ body, type: lineType, comment } = parseOpenSshLine(text));
  } else {
    body = text;
  }

  const blob = decodeBase64(body);
  if (blob.subarray(0, 15).toString('latin1') === 'openssh-key-v1\0')
    throw new KeyMaterialError(
      'Skey',
      'This is a private key: never send it anywhere; send the public key (the .pub file) instead',
    );
  const wireType = blobType(blob);
  if (wireType === undefined) throw new KeyMaterialError('Skey', 'Skey is not an SSH public key');
  if (!isKnownType(wireType)) {
    throw new KeyMaterialError(
      'Skey',
      `Skey holds a key of type '${wireType.slice(0, 64)}', which is not supported; expected one of ${ACCEPTED_USER_KEY_TYPES.join(', ')}`,
    );
  }
  if (INSECURE_TYPES.has(wireType)) throw insecure(wireType);
  if (lineType !== undefined && lineType !== wireType)
    throw new KeyMaterialError('Skey', `the line says ${lineType} but the key inside is ${wireType}`);
  if (declaredType !== undefined && declaredType !== wireType)
    throw new KeyMaterialError('Type', `Type is ${declaredType} but Skey holds an ${wireType} key`);

  // The one user-key policy (shared with POST /v1/access/request), rendered as an Skey error.
  let checked: { bits: number; fingerprint: string };
  try {
    checked = checkUserKeyBlob(blob);
  } catch (err) {
    if (!(err instanceof KeyRejectedError)) throw err;
    if (err.code === 'rsa_too_small')
      throw new KeyMaterialError(
        'Skey',
        `RSA keys must have at least ${MIN_RSA_BITS} bits; this one has ${err.bits}`,
      );
    if (err.code === 'rsa_too_large')
      throw new KeyMaterialError(
        'Skey',
        `RSA keys may have at most ${MAX_RSA_BITS} bits; this one has ${err.bits}`,
      );
    const reason = err.reason.startsWith('not ') ? `Skey is ${err.reason}` : err.reason;
    throw new KeyMaterialError('Skey', reason.charAt(0).toUpperCase() + reason.slice(1));
  }
  return {
    type: wireType,
    skey: blob.toString('base64'),
    fingerprint: checked.fingerprint,
    bits: checked.bits,
    ...(comment ? { comment } : {}),
  };
}

/** The OpenSSH one-line form (`type base64`) of a stored key. */
export function openSshLine(type: string, skey: string): string {
  return `${type} ${skey}`;
}

/** The first string of an RFC 4253 blob: the key type. */
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const len = blob.readUInt32BE(0);
  if (len < 1 || len > 64 || blob.length < 4 + len) return undefined;
  const t = blob.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(t) ? t : undefined;
}

function decodeBase64(body: string): Buffer {
  if (!B64.test(body) || body.length % 4 === 1)
    throw new KeyMaterialError(
      'Skey',
      'Skey is not valid base64 (expected the base64 body of an SSH public key)',
    );
  const buf = Buffer.from(body, 'base64');
  if (buf.toString('base64').replace(/=+$/, '') !== body.replace(/=+$/, ''))
    throw new KeyMaterialError(
      'Skey',
      'Skey is not valid base64 (expected the base64 body of an SSH public key)',
    );
  return buf;
}

/** `[options] type base64 [comment]`: authorized_keys options are refused rather than silently dropped. */
function parseOpenSshLine(text: string): { body: string; type: string; comment?: string } {
  if (/[\r\n]/.test(text))
    throw new KeyMaterialError('Skey', 'Skey must be one key: a single line, or one RFC 4716 block');
  const tokens = text.split(/[ \t]+/);
  if (/^\d+$/.test(tokens[0]!) && tokens.length >= 3 && /^\d+$/.test(tokens[1]!)) throw insecure('ssh-rsa1');
  const first = tokens[0]!;
  if (!/^(ssh-|ecdsa-|sk-)/.test(first)) {
    // Something else first: authorized_keys options (from=…, command=…) or garbage.
    const typeAt = tokens.findIndex((t) => /^(ssh-|ecdsa-|sk-)/.test(t));
    if (typeAt > 0)
      throw new KeyMaterialError(
        'Skey',
        'authorized_keys options (from=, command=, …) are not supported here; send the key line without options',
      );
    throw new KeyMaterialError(
      'Skey',
      'Skey is not an SSH public key (expected "type base64 [comment]" or the base64 body)',
    );
  }
  if (!isKnownType(first)) throw unknownType(first);
  if (INSECURE_TYPES.has(first)) throw insecure(first);
  if (tokens.length < 2) throw new KeyMaterialError('Skey', 'Skey holds a key type but no key data');
  const comment = tokens.slice(2).join(' ').trim();
  return { type: first, body: tokens[1]!, ...(comment ? { comment } : {}) };
}

/** RFC 4716 §3: header lines (Tag: value, `\` continues a line), base64 body, end marker. */
function parseRfc4716(text: string): { body: string; comment?: string } {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const end = lines.indexOf(RFC4716_END);
  if (end < 0) throw new KeyMaterialError('Skey', `RFC 4716 key without the '${RFC4716_END}' line`);
  if (lines.slice(end + 1).some((l) => l !== ''))
    throw new KeyMaterialError('Skey', 'Skey must hold exactly one key; text follows the RFC 4716 end line');
  const inner = lines.slice(1, end);
  let comment: string | undefined;
  let i = 0;
  while (i < inner.length && /^[\x21-\x39\x3b-\x7e]{1,64}:/.test(inner[i]!)) {
    let header = inner[i++]!;
    while (header.endsWith('\\') && i < inner.length) header = header.slice(0, -1) + inner[i++]!;
    const colon = header.indexOf(':');
    const tag = header.slice(0, colon).toLowerCase();
    let value = header.slice(colon + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (tag === 'comment' && value) comment = value;
  }
  const body = inner.slice(i).join('');
  if (!body) throw new KeyMaterialError('Skey', 'RFC 4716 key without key data');
  return { body, ...(comment ? { comment } : {}) };
}
