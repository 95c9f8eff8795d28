/**
 * Parsing and validation of SSH public key material, stricter than COmanage (which stores whatever
 * it is given). Accepts the bare base64 body, a whole OpenSSH / authorized_keys line, or an RFC 4716
 * ("---- BEGIN SSH2 PUBLIC KEY ----") block; refuses private keys, insecure and unknown types,
 * weak RSA, and bodies that are not really a key of the declared type.
 */
import { createPublicKey } from 'node:crypto';
import sshpk from 'sshpk';
/** The key types of the COmanage SshKey schema. */
export const SSH_KEY_TYPES = [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'ssh-rsa',
    'ssh-dss',
    'ssh-rsa1',
];
/** Listed by COmanage, refused here. */
export const INSECURE_TYPES = new Set(['ssh-dss', 'ssh-rsa1']);
export const MIN_RSA_BITS = 2048;
export const MAX_RSA_BITS = 16384;
export const MAX_SKEY_CHARS = 16 * 1024;
/** A validation problem with the field it belongs to (Type or Skey), for COmanage InvalidFields. */
export class KeyMaterialError extends Error {
    field;
    constructor(field, message) {
        super(message);
        this.field = field;
    }
}
const insecure = (type) => new KeyMaterialError('Type', `${type} keys are refused as insecure (${type === 'ssh-dss' ? 'DSA is limited to 1024 bits and SHA-1' : 'SSH protocol 1 is obsolete'}); use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least ${MIN_RSA_BITS} bits`);
const isKnownType = (t) => SSH_KEY_TYPES.includes(t);
const unknownType = (t) => new KeyMaterialError('Type', `Unknown key type '${t.slice(0, 64)}'; expected one of ${SSH_KEY_TYPES.join(', ')}`);
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
export function parseKeyMaterial(skeyInput, declaredType) {
    if (declaredType !== undefined) {
        if (!isKnownType(declaredType))
            throw unknownType(declaredType);
        if (INSECURE_TYPES.has(declaredType))
            throw insecure(declaredType);
    }
    const text = skeyInput.trim();
    if (!text)
        throw new KeyMaterialError('Skey', 'Skey is empty');
    if (text.length > MAX_SKEY_CHARS)
        throw new KeyMaterialError('Skey', `Skey is longer than ${MAX_SKEY_CHARS} characters`);
    if (PRIVATE_MARKERS.some((re) => re.test(text)))
        throw new KeyMaterialError('Skey', 'This is a private key: never send it anywhere; send the public key (the .pub file) instead');
    let body;
    let lineType;
    let comment;
    if (text.startsWith(RFC4716_BEGIN)) {
        ({ body, comment } = parseRfc4716(text));
    }
    else if (/\s/.test(text)) {
        ({ body, type: lineType, comment } = parseOpenSshLine(text));
    }
    else {
        body = text;
    }
    const blob = decodeBase64(body);
    if (blob.subarray(0, 15).toString('latin1') === 'openssh-key-v1\0')
        throw new KeyMaterialError('Skey', 'This is a private key: never send it anywhere; send the public key (the .pub file) instead');
    const wireType = blobType(blob);
    if (wireType === undefined)
        throw new KeyMaterialError('Skey', 'Skey is not an SSH public key');
    if (!isKnownType(wireType)) {
        throw new KeyMaterialError('Skey', `Skey holds a key of type '${wireType.slice(0, 64)}', which is not supported; expected one of ${SSH_KEY_TYPES.filter((t) => !INSECURE_TYPES.has(t)).join(', ')}`);
    }
    if (INSECURE_TYPES.has(wireType))
        throw insecure(wireType);
    if (lineType !== undefined && lineType !== wireType)
        throw new KeyMaterialError('Skey', `the line says ${lineType} but the key inside is ${wireType}`);
    if (declaredType !== undefined && declaredType !== wireType)
        throw new KeyMaterialError('Type', `Type is ${declaredType} but Skey holds an ${wireType} key`);
    let key;
    try {
        key = sshpk.parseKey(blob, 'rfc4253');
    }
    catch {
        throw new KeyMaterialError('Skey', `Skey is not a valid ${wireType} public key`);
    }
    checkKey(key, blob, wireType);
    if (key.type === 'rsa') {
        if (key.size < MIN_RSA_BITS)
            throw new KeyMaterialError('Skey', `RSA keys must have at least ${MIN_RSA_BITS} bits; this one has ${key.size}`);
        if (key.size > MAX_RSA_BITS)
            throw new KeyMaterialError('Skey', `RSA keys may have at most ${MAX_RSA_BITS} bits; this one has ${key.size}`);
    }
    return {
        type: wireType,
        skey: blob.toString('base64'),
        fingerprint: key.fingerprint('sha256').toString(),
        bits: key.size,
        ...(comment ? { comment } : {}),
    };
}
/** The OpenSSH one-line form (`type base64`) of a stored key. */
export function openSshLine(type, skey) {
    return `${type} ${skey}`;
}
/** The first string of an RFC 4253 blob: the key type. */
function blobType(blob) {
    if (blob.length < 4)
        return undefined;
    const len = blob.readUInt32BE(0);
    if (len < 1 || len > 64 || blob.length < 4 + len)
        return undefined;
    const t = blob.subarray(4, 4 + len).toString('latin1');
    return /^[\x21-\x7e]+$/.test(t) ? t : undefined;
}
/** sshpk checks structure; the curve point and RSA/Ed25519 key are checked again by OpenSSL. */
function checkKey(key, blob, wireType) {
    const expected = {
        'ssh-ed25519': ['ed25519'],
        'ecdsa-sha2-nistp256': ['ecdsa', 'nistp256'],
        'ecdsa-sha2-nistp384': ['ecdsa', 'nistp384'],
        'ecdsa-sha2-nistp521': ['ecdsa', 'nistp521'],
        'ssh-rsa': ['rsa'],
    };
    const [kind, curve] = expected[wireType] ?? [];
    if (key.type !== kind || (curve && key.curve !== curve))
        throw new KeyMaterialError('Skey', `Skey is not a valid ${wireType} public key`);
    if (!key.toBuffer('rfc4253').equals(blob))
        throw new KeyMaterialError('Skey', `Skey is not a valid ${wireType} public key (unexpected extra data)`);
    try {
        createPublicKey(key.toString('pkcs8'));
    }
    catch {
        throw new KeyMaterialError('Skey', `Skey is not a valid ${wireType} public key (the key data is malformed)`);
    }
}
function decodeBase64(body) {
    if (!B64.test(body) || body.length % 4 === 1)
        throw new KeyMaterialError('Skey', 'Skey is not valid base64 (expected the base64 body of an SSH public key)');
    const buf = Buffer.from(body, 'base64');
    if (buf.toString('base64').replace(/=+$/, '') !== body.replace(/=+$/, ''))
        throw new KeyMaterialError('Skey', 'Skey is not valid base64 (expected the base64 body of an SSH public key)');
    return buf;
}
/** `[options] type base64 [comment]`: authorized_keys options are refused rather than silently dropped. */
function parseOpenSshLine(text) {
    if (/[\r\n]/.test(text))
        throw new KeyMaterialError('Skey', 'Skey must be one key: a single line, or one RFC 4716 block');
    const tokens = text.split(/[ \t]+/);
    if (/^\d+$/.test(tokens[0]) && tokens.length >= 3 && /^\d+$/.test(tokens[1]))
        throw insecure('ssh-rsa1');
    const first = tokens[0];
    if (!/^(ssh-|ecdsa-|sk-)/.test(first)) {
        // Something else first: authorized_keys options (from=…, command=…) or garbage.
        const typeAt = tokens.findIndex((t) => /^(ssh-|ecdsa-|sk-)/.test(t));
        if (typeAt > 0)
            throw new KeyMaterialError('Skey', 'authorized_keys options (from=, command=, …) are not supported here; send the key line without options');
        throw new KeyMaterialError('Skey', 'Skey is not an SSH public key (expected "type base64 [comment]" or the base64 body)');
    }
    if (!isKnownType(first))
        throw unknownType(first);
    if (INSECURE_TYPES.has(first))
        throw insecure(first);
    if (tokens.length < 2)
        throw new KeyMaterialError('Skey', 'Skey holds a key type but no key data');
    const comment = tokens.slice(2).join(' ').trim();
    return { type: first, body: tokens[1], ...(comment ? { comment } : {}) };
}
/** RFC 4716 §3: header lines (Tag: value, `\` continues a line), base64 body, end marker. */
function parseRfc4716(text) {
    const lines = text.split(/\r?\n/).map((l) => l.trim());
    const end = lines.indexOf(RFC4716_END);
    if (end < 0)
        throw new KeyMaterialError('Skey', `RFC 4716 key without the '${RFC4716_END}' line`);
    if (lines.slice(end + 1).some((l) => l !== ''))
        throw new KeyMaterialError('Skey', 'Skey must hold exactly one key; text follows the RFC 4716 end line');
    const inner = lines.slice(1, end);
    let comment;
    let i = 0;
    while (i < inner.length && /^[\x21-\x39\x3b-\x7e]{1,64}:/.test(inner[i])) {
        let header = inner[i++];
        while (header.endsWith('\\') && i < inner.length)
            header = header.slice(0, -1) + inner[i++];
        const colon = header.indexOf(':');
        const tag = header.slice(0, colon).toLowerCase();
        let value = header.slice(colon + 1).trim();
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
            value = value.slice(1, -1);
        if (tag === 'comment' && value)
            comment = value;
    }
    const body = inner.slice(i).join('');
    if (!body)
        throw new KeyMaterialError('Skey', 'RFC 4716 key without key data');
    return { body, ...(comment ? { comment } : {}) };
}
//# sourceMappingURL=key-material.js.map