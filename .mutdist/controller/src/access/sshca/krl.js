/**
 * OpenSSH key revocation list writer (PROTOCOL.krl): certificate sections by serial and key id.
 */
import { SshWriter } from './wire.js';
const KRL_MAGIC = Buffer.from('SSHKRL\n\0', 'latin1');
const KRL_FORMAT_VERSION = 1;
const KRL_SECTION_CERTIFICATES = 0x01;
const KRL_SECTION_CERT_SERIAL_LIST = 0x20;
const KRL_SECTION_CERT_SERIAL_RANGE = 0x21;
const KRL_SECTION_CERT_KEY_ID = 0x23;
const U64_MAX = 0xffffffffffffffffn;
/** A range subsection (type + length + 2×uint64 = 21 bytes) beats list entries (8 bytes each) from 3 serials on. */
const MIN_RANGE_RUN = 3n;
function sortedSerials(serials) {
    const unique = [...new Set(serials)];
    for (const s of unique) {
        // sshd refuses a KRL holding serial 0 (and certificates with serial 0 cannot be revoked by serial).
        if (s <= 0n || s > U64_MAX)
            throw new RangeError(`KRL serial out of range: ${s}`);
    }
    return unique.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
/** Splits sorted serials into lone serials (list) and runs worth encoding as ranges. */
function planSerials(sorted) {
    const list = [];
    const ranges = [];
    for (let i = 0; i < sorted.length;) {
        let j = i;
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1n)
            j++;
        const [lo, hi] = [sorted[i], sorted[j]];
        if (hi - lo + 1n >= MIN_RANGE_RUN)
            ranges.push([lo, hi]);
        else
            list.push(...sorted.slice(i, j + 1));
        i = j + 1;
    }
    return { list, ranges };
}
/** Encodes a KRL. With no sections it is a valid empty KRL (nothing revoked). */
export function buildKrl(input) {
    // One section per CA: merge duplicates so callers may pass revocations in any grouping.
    const byCa = new Map();
    for (const s of input.sections) {
        const k = s.caPublicBlob.toString('base64');
        let e = byCa.get(k);
        if (!e)
            byCa.set(k, (e = { ca: s.caPublicBlob, serials: new Set(), keyIds: new Set() }));
        for (const serial of s.serials ?? [])
            e.serials.add(serial);
        for (const id of s.keyIds ?? [])
            e.keyIds.add(id);
    }
    const w = new SshWriter(1024);
    w.raw(KRL_MAGIC).uint32(KRL_FORMAT_VERSION).uint64(input.version);
    w.uint64(BigInt(Math.floor(input.generatedAt.getTime() / 1000)));
    w.uint64(0n)
        .string('')
        .string(input.comment ?? '');
    for (const { ca, serials, keyIds } of byCa.values()) {
        if (serials.size === 0 && keyIds.size === 0)
            continue;
        const { list, ranges } = planSerials(sortedSerials(serials));
        w.byte(KRL_SECTION_CERTIFICATES).nested(() => {
            w.string(ca).string('');
            if (list.length) {
                w.byte(KRL_SECTION_CERT_SERIAL_LIST).nested(() => list.forEach((s) => w.uint64(s)));
            }
            for (const [lo, hi] of ranges) {
                w.byte(KRL_SECTION_CERT_SERIAL_RANGE).nested(() => w.uint64(lo).uint64(hi));
            }
            if (keyIds.size) {
                const ids = [...keyIds].sort();
                w.byte(KRL_SECTION_CERT_KEY_ID).nested(() => ids.forEach((id) => w.string(id)));
            }
        });
    }
    return Buffer.from(w.finish());
}
//# sourceMappingURL=krl.js.map