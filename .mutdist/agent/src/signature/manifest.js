export const FILE_DIGEST_PREFIX = 'sha256-1m:';
export function isSealed(d) {
    return !('state' in d);
}
export const fileDigest = (hex) => FILE_DIGEST_PREFIX + hex;
/** JSON with object keys sorted at every level and no insignificant whitespace. */
export function canonicalJson(value) {
    return JSON.stringify(sortKeys(value));
}
function sortKeys(v) {
    if (Array.isArray(v))
        return v.map((x) => (x === undefined ? null : sortKeys(x)));
    if (v && typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v).sort()) {
            const x = v[k];
            if (x !== undefined)
                out[k] = sortKeys(x);
        }
        return out;
    }
    return v;
}
//# sourceMappingURL=manifest.js.map