import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
const scryptAsync = promisify(scrypt);
/** 256-bit bearer token, URL-safe. Only its SHA-256 is ever stored. */
export function newToken() {
    return randomBytes(32).toString('base64url');
}
export function hashToken(token) {
    return createHash('sha256').update(token).digest('hex');
}
export const defaultScryptCost = { N: 1 << 15, r: 8, p: 1 };
/** Encoded as `scrypt$N$r$p$salt$hash` so the cost can be raised later without breaking old hashes. */
export async function hashPassword(password, cost = defaultScryptCost) {
    const salt = randomBytes(16);
    const hash = await derive(password, salt, cost);
    return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64'), hash.toString('base64')].join('$');
}
export async function verifyPassword(password, encoded) {
    const [scheme, n, r, p, salt, hash] = encoded.split('$');
    if (scheme !== 'scrypt' || !salt || !hash)
        return false;
    const expected = Buffer.from(hash, 'base64');
    const actual = await derive(password, Buffer.from(salt, 'base64'), {
        N: Number(n),
        r: Number(r),
        p: Number(p),
    });
    return actual.length === expected.length && timingSafeEqual(actual, expected);
}
function derive(password, salt, cost) {
    return scryptAsync(password.normalize('NFC'), salt, 32, { ...cost, maxmem: 256 * cost.N * cost.r });
}
/** A password that satisfies any sane policy: 24 chars from a URL-safe alphabet (≈ 144 bits). */
export function newPassword() {
    return randomBytes(18).toString('base64url');
}
//# sourceMappingURL=secrets.js.map