/**
 * OpenSSH user certificates (PROTOCOL.certkeys), signed with node:crypto.
 */
import { randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { publicKeyFromBlob } from './keys.js';
import { SshReader, SshWireError, SshWriter } from './wire.js';
const SSH_CERT_TYPE_USER = 1;
const U64_MAX = 0xffffffffffffffffn;
/** Plain key type → certificate type. */
const CERT_TYPES = {
    'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
    'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
    'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
    'ecdsa-sha2-nistp521': 'ecdsa-sha2-nistp521-cert-v01@openssh.com',
    'ssh-rsa': 'ssh-rsa-cert-v01@openssh.com',
};
const KEY_TYPES = Object.fromEntries(Object.entries(CERT_TYPES).map(([k, v]) => [v, k]));
/** Signature algorithm name used for each CA type. RSA is always rsa-sha2-512, never SHA-1. */
export function signatureAlgorithm(ca) {
    return ca.type === 'rsa' ? 'rsa-sha2-512' : ca.sshType;
}
const toSeconds = (t) => {
    if (typeof t === 'bigint')
        return t;
    const ms = t.getTime();
    if (!Number.isFinite(ms) || ms < 0)
        throw new RangeError('invalid validity date');
    return BigInt(Math.floor(ms / 1000));
};
const byName = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);
/** Options/extensions: sorted by name; each value is a string wrapped in the data string. */
function writeOptions(w, options) {
    w.nested(() => {
        for (const [name, value] of options.sort(byName)) {
            w.string(name);
            if (value === '')
                w.string('');
            else
                w.nested(() => w.string(value));
        }
    });
}
function entries(o) {
    if (!o)
        return [];
    return Array.isArray(o) ? o.map((n) => [n, '']) : Object.entries(o);
}
export function signUserCertificate(ca, spec) {
    const userBlob = Buffer.isBuffer(spec.publicKey) ? spec.publicKey : spec.publicKey.blob;
    const r = new SshReader(userBlob);
    const keyType = r.text();
    const certType = CERT_TYPES[keyType];
    if (!certType)
        throw new Error(`cannot certify key type ${keyType}`);
    if (spec.serial <= 0n || spec.serial > U64_MAX)
        throw new RangeError('serial must be a non-zero uint64');
    if (spec.principals.length === 0 || spec.principals.some((p) => p === '')) {
        throw new Error('a user certificate needs at least one non-empty principal');
    }
    const validAfter = toSeconds(spec.validAfter);
    const validBefore = toSeconds(spec.validBefore);
    if (validAfter >= validBefore)
        throw new RangeError('validAfter must be before validBefore');
    const nonce = spec.nonce ?? randomBytes(32);
    const w = new SshWriter(1024);
    w.string(certType).string(nonce).raw(r.rest());
    w.uint64(spec.serial).uint32(SSH_CERT_TYPE_USER).string(spec.keyId);
    w.nested(() => {
        for (const p of spec.principals)
            w.string(p);
    });
    w.uint64(validAfter).uint64(validBefore);
    writeOptions(w, entries(spec.criticalOptions));
    writeOptions(w, entries(spec.extensions));
    w.string('').string(ca.publicBlob);
    // The view is consumed synchronously by the signer before anything else is appended.
    const signature = signBlob(ca, w.finish());
    w.nested(() => {
        w.string(signature.algorithm);
        if (signature.ecdsa)
            w.nested(() => w.mpint(signature.ecdsa.r).mpint(signature.ecdsa.s));
        else
            w.string(signature.bytes);
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
function signBlob(ca, data) {
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
function readOptions(data) {
    const r = new SshReader(data);
    const out = {};
    while (r.remaining > 0) {
        const name = r.text();
        const value = r.string();
        if (value.length === 0) {
            out[name] = '';
        }
        else {
            const inner = new SshReader(value);
            out[name] = inner.text();
            inner.end();
        }
    }
    return out;
}
const ECDSA_SIZES = {
    'ecdsa-sha2-nistp256': 32,
    'ecdsa-sha2-nistp384': 48,
    'ecdsa-sha2-nistp521': 66,
};
/** Decodes a certificate from its one-line text form or its wire blob. Does not verify it. */
export function parseCertificate(input) {
    let blob;
    let comment = '';
    let lineType;
    if (typeof input === 'string') {
        const m = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+(.*))?$/.exec(input.trim());
        if (!m)
            throw new SshWireError('not an OpenSSH certificate line');
        [, lineType] = m;
        blob = Buffer.from(m[2], 'base64');
        comment = (m[3] ?? '').trim();
    }
    else {
        blob = input;
    }
    const r = new SshReader(blob);
    const certType = r.text();
    const keyType = KEY_TYPES[certType];
    if (!keyType)
        throw new SshWireError(`not a supported certificate type: ${certType}`);
    if (lineType !== undefined && lineType !== certType)
        throw new SshWireError('certificate type mismatch');
    const nonce = r.string();
    const keyStart = r.offset;
    const fieldCount = keyType === 'ssh-ed25519' ? 1 : 2;
    for (let i = 0; i < fieldCount; i++)
        r.string();
    const publicKeyBlob = new SshWriter(600).string(keyType).raw(blob.subarray(keyStart, r.offset)).finish();
    const serial = r.uint64();
    const certKind = r.uint32();
    const keyId = r.text();
    const principalsReader = new SshReader(r.string());
    const principals = [];
    while (principalsReader.remaining > 0)
        principals.push(principalsReader.text());
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
        if (rr.length > ecSize || ss.length > ecSize)
            throw new SshWireError('bad ECDSA signature');
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
const VERIFY_HASH = {
    'ssh-ed25519': null,
    'ecdsa-sha2-nistp256': 'sha256',
    'ecdsa-sha2-nistp384': 'sha384',
    'ecdsa-sha2-nistp521': 'sha512',
    'rsa-sha2-256': 'sha256',
    'rsa-sha2-512': 'sha512',
};
/** Verifies the CA signature with node:crypto. SHA-1 RSA (ssh-rsa) signatures are refused. */
export function verifyCertificateSignature(cert) {
    const hash = VERIFY_HASH[cert.signatureAlgorithm];
    if (hash === undefined)
        return false;
    const { sshType, key } = publicKeyFromBlob(cert.signatureKey);
    const expectedKeyType = cert.signatureAlgorithm.startsWith('rsa-') ? 'ssh-rsa' : cert.signatureAlgorithm;
    if (sshType !== expectedKeyType)
        return false;
    const keyArg = ECDSA_SIZES[cert.signatureAlgorithm] ? { key, dsaEncoding: 'ieee-p1363' } : key;
    return cryptoVerify(hash, cert.signedData, keyArg, cert.signature);
}
//# sourceMappingURL=certificate.js.map