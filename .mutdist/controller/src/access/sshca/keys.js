/**
 * CA keys (generate, save 0600, load with a permission check) and user public keys (parse + policy).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import sshpk from 'sshpk';
import { SshReader, SshWireError, SshWriter } from './wire.js';
export const MIN_CA_RSA_BITS = 3072;
export const MIN_USER_RSA_BITS = 2048;
const DEFAULT_COMMENT = 'vmwarden-ca';
const b64u = (s) => Buffer.from(s ?? '', 'base64url');
/** SHA256 fingerprint of an SSH wire public key, formatted like ssh-keygen -l. */
export function sshFingerprint(blob) {
    return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}
const CURVES = {
    nistp256: { jwk: 'P-256', size: 32, hash: 'sha256' },
    nistp384: { jwk: 'P-384', size: 48, hash: 'sha384' },
    nistp521: { jwk: 'P-521', size: 66, hash: 'sha512' },
};
/** SSH wire public key of a node KeyObject (Ed25519, ECDSA P-256/384/521, RSA). */
export function sshPublicBlob(key) {
    const jwk = key.export({ format: 'jwk' });
    const w = new SshWriter(600);
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
        w.string('ssh-ed25519').string(b64u(jwk.x));
        return { sshType: 'ssh-ed25519', blob: Buffer.from(w.finish()) };
    }
    if (jwk.kty === 'EC') {
        const curve = Object.keys(CURVES).find((c) => CURVES[c].jwk === jwk.crv);
        if (!curve)
            throw new Error(`unsupported EC curve ${jwk.crv}`);
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
export function publicKeyFromBlob(blob) {
    const r = new SshReader(blob);
    const sshType = r.text();
    let jwk;
    if (sshType === 'ssh-ed25519') {
        jwk = { kty: 'OKP', crv: 'Ed25519', x: r.string().toString('base64url') };
    }
    else if (sshType.startsWith('ecdsa-sha2-')) {
        const curve = CURVES[r.text()];
        const point = r.string();
        if (!curve || sshType !== `ecdsa-sha2-${Object.keys(CURVES).find((c) => CURVES[c] === curve)}`) {
            throw new SshWireError(`bad ECDSA key ${sshType}`);
        }
        if (point.length !== 1 + 2 * curve.size || point[0] !== 4)
            throw new SshWireError('bad ECDSA point');
        const x = point.subarray(1, 1 + curve.size).toString('base64url');
        const y = point.subarray(1 + curve.size).toString('base64url');
        jwk = { kty: 'EC', crv: curve.jwk, x, y };
    }
    else if (sshType === 'ssh-rsa') {
        const e = r.mpint().toString('base64url');
        jwk = { kty: 'RSA', e, n: r.mpint().toString('base64url') };
    }
    else {
        throw new SshWireError(`unsupported key type ${sshType}`);
    }
    r.end();
    return { sshType, key: createPublicKey({ key: jwk, format: 'jwk' }) };
}
function leftPad(b, size) {
    return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}
/** Wraps a private KeyObject as a CA key, checking it is a type and size we sign with. */
export function caKeyFromPrivateKey(privateKey, comment = DEFAULT_COMMENT) {
    if (privateKey.type !== 'private')
        throw new Error('a CA key must be a private key');
    const kind = privateKey.asymmetricKeyType;
    let type;
    let bits;
    if (kind === 'ed25519') {
        type = 'ed25519';
        bits = 256;
    }
    else if (kind === 'ec' && privateKey.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
        type = 'ecdsa-p256';
        bits = 256;
    }
    else if (kind === 'rsa') {
        type = 'rsa';
        bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
        if (bits < MIN_CA_RSA_BITS)
            throw new Error(`RSA CA key is ${bits} bits; at least ${MIN_CA_RSA_BITS} required`);
    }
    else {
        const curve = privateKey.asymmetricKeyDetails?.namedCurve;
        throw new Error(`unsupported CA key type ${kind}${curve ? ` (${curve})` : ''}; use ed25519, ecdsa-p256 or rsa`);
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
export function generateCaKey(type, rsaBits = MIN_CA_RSA_BITS, comment = DEFAULT_COMMENT) {
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
export async function saveCaKey(key, path) {
    const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' });
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    const fh = await open(tmp, 'wx', 0o600);
    try {
        await fh.writeFile(pem);
        await fh.sync();
    }
    catch (err) {
        await fh.close();
        await unlink(tmp).catch(() => { });
        throw err;
    }
    await fh.close();
    try {
        await rename(tmp, path);
    }
    catch (err) {
        await unlink(tmp).catch(() => { });
        throw err;
    }
}
/** Loads a PKCS#8 (or PKCS#1/SEC1) PEM CA key, refusing files accessible by group or others. */
export async function loadCaKey(path, comment = DEFAULT_COMMENT) {
    const fh = await open(path, 'r');
    let pem;
    try {
        const st = await fh.stat();
        if (!st.isFile())
            throw new Error(`CA key ${path} is not a regular file`);
        if ((st.mode & 0o077) !== 0) {
            const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
            throw new Error(`refusing to load CA key ${path}: its mode is ${mode}, it must not be accessible by group or others (chmod 600 ${path})`);
        }
        pem = await fh.readFile();
    }
    finally {
        await fh.close();
    }
    return caKeyFromPrivateKey(createPrivateKey(pem), comment);
}
/** A user key that cannot be used; `reason` is a sentence fit for a 400 response. */
export class KeyRejectedError extends Error {
    code;
    reason;
    constructor(code, reason) {
        super(reason);
        this.code = code;
        this.reason = reason;
        this.name = 'KeyRejectedError';
    }
}
const ACCEPTED_USER_TYPES = new Set([
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'ssh-rsa',
]);
const KEY_TYPE_LIKE = /^(ssh-|ecdsa-sha2-|sk-)|@openssh\.com$/;
const KEY_RE = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/;
/** Splits `type base64 comment`, skipping authorized_keys options (quoted values may hold spaces). */
function splitKeyLine(line) {
    const direct = KEY_RE.exec(line);
    if (direct && (blobTypeIs(direct[2], direct[1]) || KEY_TYPE_LIKE.test(direct[1])))
        return { type: direct[1], b64: direct[2], comment: direct[3] ?? '' };
    let i = 0;
    let quoted = false;
    for (; i < line.length; i++) {
        const c = line[i];
        if (quoted && c === '\\')
            i++;
        else if (c === '"')
            quoted = !quoted;
        else if (!quoted && (c === ' ' || c === '\t'))
            break;
    }
    const m = KEY_RE.exec(line.slice(i).trimStart());
    return m ? { type: m[1], b64: m[2], comment: m[3] ?? '' } : undefined;
}
function blobTypeIs(b64, type) {
    try {
        return new SshReader(Buffer.from(b64, 'base64')).text() === type;
    }
    catch {
        return false;
    }
}
/** Checks the blob's fields are exactly those of its type (no trailing data). */
function checkBlobShape(blob, type) {
    const r = new SshReader(blob);
    r.text();
    if (type === 'ssh-ed25519') {
        if (r.string().length !== 32)
            throw new SshWireError('bad ed25519 key length');
    }
    else if (type.startsWith('ecdsa-sha2-')) {
        if (`ecdsa-sha2-${r.text()}` !== type)
            throw new SshWireError('ECDSA curve does not match key type');
        r.string();
    }
    else {
        r.mpint();
        r.mpint();
    }
    r.end();
}
/**
 * Parses an OpenSSH public key line (optionally an authorized_keys line with options) and applies the
 * key policy: Ed25519, ECDSA P-256/384/521 and RSA ≥ 2048 bits are accepted.
 */
export function parseUserPublicKey(text) {
    const notOpenssh = () => new KeyRejectedError('not_openssh', 'not an OpenSSH public key (expected e.g. "ssh-ed25519 AAAA… comment")');
    if (typeof text !== 'string' || text.trim() === '')
        throw new KeyRejectedError('empty', 'no public key given');
    if (/PRIVATE KEY-----|PuTTY-User-Key-File-/.test(text)) {
        throw new KeyRejectedError('private_key', 'this is a private key; send the public key (the .pub file) instead');
    }
    const line = text.trim();
    if (/[\r\n]/.test(line))
        throw new KeyRejectedError('not_openssh', 'expected exactly one public key line');
    const parts = splitKeyLine(line);
    if (!parts)
        throw notOpenssh();
    const { type, b64 } = parts;
    if (type.endsWith('-cert-v01@openssh.com')) {
        throw new KeyRejectedError('certificate', 'this is an SSH certificate; send the plain public key');
    }
    if (!blobTypeIs(b64, type))
        throw notOpenssh();
    if (type === 'ssh-dss') {
        throw new KeyRejectedError('dsa_insecure', 'DSA keys are insecure and no longer supported by OpenSSH; use an Ed25519 key (ssh-keygen -t ed25519)');
    }
    if (!ACCEPTED_USER_TYPES.has(type)) {
        throw new KeyRejectedError('unsupported_type', `unsupported key type ${type}; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (at least ${MIN_USER_RSA_BITS} bits)`);
    }
    const blob = Buffer.from(b64, 'base64');
    let key;
    try {
        checkBlobShape(blob, type);
        key = sshpk.parseKey(`${type} ${b64}`, 'ssh');
    }
    catch {
        throw notOpenssh();
    }
    const bits = key.size;
    if (type === 'ssh-rsa' && bits < MIN_USER_RSA_BITS) {
        throw new KeyRejectedError('rsa_too_small', `RSA key is ${bits} bits; at least ${MIN_USER_RSA_BITS} bits are required (or use ssh-keygen -t ed25519)`);
    }
    const comment = parts.comment.trim();
    const canonical = `${type} ${blob.toString('base64')}`;
    return {
        type,
        blob,
        bits,
        comment,
        fingerprint: key.fingerprint('sha256').toString(),
        openssh: comment ? `${canonical} ${comment}` : canonical,
    };
}
//# sourceMappingURL=keys.js.map