/**
 * SSH wire encoding (RFC 4251 §5): byte, uint32, uint64, string, mpint, name-list.
 */
const U64_MAX = 0xffffffffffffffffn;
export class SshWireError extends Error {
}
/** Appends SSH wire values to a growable buffer. */
export class SshWriter {
    buf;
    len = 0;
    constructor(initialSize = 512) {
        this.buf = Buffer.allocUnsafe(initialSize);
    }
    reserve(n) {
        if (this.len + n <= this.buf.length)
            return;
        const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
        this.buf.copy(next, 0, 0, this.len);
        this.buf = next;
    }
    byte(value) {
        this.reserve(1);
        this.buf[this.len++] = value;
        return this;
    }
    uint32(value) {
        this.reserve(4);
        this.len = this.buf.writeUInt32BE(value, this.len);
        return this;
    }
    uint64(value) {
        if (value < 0n || value > U64_MAX)
            throw new SshWireError(`uint64 out of range: ${value}`);
        this.reserve(8);
        this.len = this.buf.writeBigUInt64BE(value, this.len);
        return this;
    }
    /** Bytes as-is, without a length prefix. */
    raw(data) {
        this.reserve(data.length);
        this.buf.set(data, this.len);
        this.len += data.length;
        return this;
    }
    /** A length-prefixed string; text is encoded as UTF-8. */
    string(data) {
        if (typeof data === 'string') {
            const n = Buffer.byteLength(data);
            this.reserve(4 + n);
            this.len = this.buf.writeUInt32BE(n, this.len);
            this.len += this.buf.write(data, this.len);
            return this;
        }
        this.uint32(data.length);
        return this.raw(data);
    }
    /** A non-negative mpint from big-endian unsigned magnitude bytes (or a bigint). */
    mpint(value) {
        let bytes;
        if (typeof value === 'bigint') {
            if (value < 0n)
                throw new SshWireError('negative mpint not supported');
            const hex = value === 0n ? '' : value.toString(16);
            bytes = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
        }
        else {
            let start = 0;
            while (start < value.length && value[start] === 0)
                start++;
            bytes = value.subarray(start);
        }
        const pad = bytes.length > 0 && (bytes[0] & 0x80) !== 0 ? 1 : 0;
        this.uint32(bytes.length + pad);
        if (pad)
            this.byte(0);
        return this.raw(bytes);
    }
    /** A string whose content is written by `fill` (length patched afterwards, no temporary buffer). */
    nested(fill) {
        this.reserve(4);
        const at = this.len;
        this.len += 4;
        fill(this);
        this.buf.writeUInt32BE(this.len - at - 4, at);
        return this;
    }
    nameList(names) {
        for (const n of names) {
            if (n.length === 0 || n.includes(','))
                throw new SshWireError(`invalid name in name-list: "${n}"`);
        }
        return this.string(names.join(','));
    }
    get length() {
        return this.len;
    }
    /** The written bytes (a view on the internal buffer; do not keep writing after taking it). */
    finish() {
        return this.buf.subarray(0, this.len);
    }
}
/** Reads SSH wire values; every read checks bounds and throws SshWireError on truncation. */
export class SshReader {
    buf;
    pos = 0;
    constructor(buf) {
        this.buf = buf;
    }
    need(n) {
        if (this.pos + n > this.buf.length) {
            throw new SshWireError(`truncated SSH data: need ${n} bytes at offset ${this.pos}`);
        }
    }
    byte() {
        this.need(1);
        return this.buf[this.pos++];
    }
    uint32() {
        this.need(4);
        const v = this.buf.readUInt32BE(this.pos);
        this.pos += 4;
        return v;
    }
    uint64() {
        this.need(8);
        const v = this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v;
    }
    raw(n) {
        this.need(n);
        const v = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        return v;
    }
    /** A length-prefixed string as bytes (a view, not a copy). */
    string() {
        return this.raw(this.uint32());
    }
    text() {
        return this.string().toString('utf8');
    }
    /** A non-negative mpint as big-endian magnitude bytes without leading zeros. */
    mpint() {
        const b = this.string();
        if (b.length > 0 && (b[0] & 0x80) !== 0)
            throw new SshWireError('negative mpint');
        let start = 0;
        while (start < b.length && b[start] === 0)
            start++;
        return b.subarray(start);
    }
    nameList() {
        const s = this.text();
        return s === '' ? [] : s.split(',');
    }
    /** Everything not read yet. */
    rest() {
        return this.raw(this.buf.length - this.pos);
    }
    get offset() {
        return this.pos;
    }
    get remaining() {
        return this.buf.length - this.pos;
    }
    end() {
        if (this.remaining !== 0)
            throw new SshWireError(`${this.remaining} unexpected trailing bytes`);
    }
}
/** Encodes one length-prefixed string. */
export function sshString(data) {
    return new SshWriter(8 + (typeof data === 'string' ? Buffer.byteLength(data) : data.length))
        .string(data)
        .finish();
}
//# sourceMappingURL=wire.js.map