// Hole detection through `qemu-img map -f raw --output=json FILE` (SEEK_DATA/SEEK_HOLE underneath;
// Node has no lseek). Entries with "data": false are holes; "zero": true also reads as zeros. Any
// failure (qemu-img missing, odd output) yields null and the caller treats the file as dense.
import { execFile } from 'node:child_process';
/** Byte ranges that read as zeros, merged and sorted, or null when they cannot be determined. */
export function zeroExtents(path, qemuImg = 'qemu-img', timeoutMs = 30_000) {
    return new Promise((resolve) => {
        execFile(qemuImg, ['map', '-f', 'raw', '--output=json', path], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout) => {
            if (err)
                return resolve(null);
            try {
                resolve(parseZeroExtents(JSON.parse(stdout)));
            }
            catch {
                resolve(null);
            }
        });
    });
}
export function parseZeroExtents(entries) {
    if (!Array.isArray(entries))
        return null;
    const out = [];
    for (const e of entries) {
        if (typeof e?.start !== 'number' || typeof e.length !== 'number')
            return null;
        if (!(e.data === false || e.zero === true))
            continue;
        const last = out[out.length - 1];
        if (last && last.start + last.length === e.start)
            last.length += e.length;
        else
            out.push({ start: e.start, length: e.length });
    }
    return out;
}
/** Marks (1) the chunks lying entirely inside zero extents. Extents must be sorted and merged. */
export function holeChunkMask(extents, size, chunkSize) {
    const n = Math.ceil(size / chunkSize);
    const mask = new Uint8Array(n);
    for (const { start, length } of extents) {
        const end = Math.min(start + length, size);
        for (let i = Math.ceil(start / chunkSize); i < n; i++) {
            const chunkEnd = Math.min((i + 1) * chunkSize, size);
            if (chunkEnd > end)
                break;
            mask[i] = 1;
        }
    }
    return mask;
}
//# sourceMappingURL=extents.js.map