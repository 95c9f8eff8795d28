export function identityOf(st) {
    return {
        dev: st.dev.toString(),
        ino: st.ino.toString(),
        size: st.size.toString(),
        mtimeNs: st.mtimeNs.toString(),
        ctimeNs: st.ctimeNs.toString(),
    };
}
export function sameIdentity(a, b) {
    const x = 'identity' in a ? a.identity : a;
    const y = 'identity' in b ? b.identity : b;
    return (x.dev === y.dev &&
        x.ino === y.ino &&
        x.size === y.size &&
        x.mtimeNs === y.mtimeNs &&
        x.ctimeNs === y.ctimeNs);
}
/**
 * Timestamps are taken from a coarse kernel clock (one tick, a few ms), so a write landing in the
 * same tick as the last modification before hashing started leaves mtime/ctime unchanged. A file
 * modified less than this long before hashing began is "racy": its digest is correct for what was
 * read, but the identity is not trusted for a later fast re-check (same idea as git's racy-clean).
 */
export const RACY_WINDOW_NS = 50000000n;
export function isRacy(st, hashStartNs) {
    const last = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
    return last + RACY_WINDOW_NS >= hashStartNs;
}
//# sourceMappingURL=identity.js.map