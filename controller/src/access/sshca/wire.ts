/**
 * SSH wire encoding (RFC 4251 §5): byte, uint32, uint64, string, mpint, name-list.
 */

const U64_MAX = 0xffff_ffff_ffff_ffffn;

export class SshWireError extends Error {}

/** Appends SSH wire values to a growable buffer. */
export class SshWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initialSize = 512) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  byte(value: number): this {
    this.reserve(1);
    this.buf[this.len++] = value;
    return this;
  }

  uint32(value: number): this {
    this.reserve(4);
    this.len = this.buf.writeUInt32BE(value, this.len);
    return this;
  }

  uint64(value: bigint): this {
    if (value < 0n || value > U64_MAX) throw new SshWireError(`uint64 out of range: ${value}`);
    this.reserve(8);
    this.len = this.buf.writeBigUInt64BE(value, this.len);
    return this;
  }

  /** Bytes as-is, without a length prefix. */
  raw(data: Uint8Array): this {
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
    return this;
  }

  /** A length-prefixed string; text is encoded as UTF-8. */
  string(data: Uint8Array | string): this {
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
  mpint(value: Uint8Array | bigint): this {
    let bytes: Uint8Array;
    if (typeof value === 'bigint') {
      if (value < 0n) throw new SshWireError('negative mpint not supported');
      const hex = value === 0n ? '' : value.toString(16);
      bytes = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
    } else {
      let start = 0;
      while (start < value.length && value[start] === 0) start++;
      bytes = value.subarray(start);
    }
    const pad = bytes.length > 0 && (bytes[0] & 0x80) !== 0 ? 1 : 0;
    this.uint32(bytes.length + pad);
    if (pad) this.byte(0);
    return this.raw(bytes);
  }

  /** A string whose content is written by `fill` (length patched afterwards, no temporary buffer). */
  nested(fill: (w: this) => void): this {
    this.reserve(4);
    const at = this.len;
    this.len += 4;
    fill(this);
    this.buf.writeUInt32BE(this.len - at - 4, at);
    return this;
  }

  nameList(names: readonly string[]): this {
    for (const n of names) {
      if (n.length === 0 || n.includes(',')) throw new SshWireError(`invalid name in name-list: "${n}"`);
    }
    return this.string(names.join(','));
  }

  get length(): number {
    return this.len;
  }

  /** The written bytes (a view on the internal buffer; do not keep writing after taking it). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads SSH wire values; every read checks bounds and throws SshWireError on truncation. */
export class SshReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new SshWireError(`truncated SSH data: need ${n} bytes at offset ${this.pos}`);
    }
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  raw(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A length-prefixed string as bytes (a view, not a copy). */
  string(): Buffer {
    return this.raw(this.uint32());
  }

  text(): string {
    return this.string().toString('utf8');
  }

  /** A non-negative mpint as big-endian magnitude bytes without leading zeros. */
  mpint(): Buffer {
    const b = this.string();
    if (b.length > 0 && (b[0] & 0x80) !== 0) throw new SshWireError('negative mpint');
    let start = 0;
    while (start < b.length && b[start] === 0) start++;
    return b.subarray(start);
  }

  nameList(): string[] {
    const s = this.text();
    return s === '' ? [] : s.split(',');
  }

  /** Everything not read yet. */
  rest(): Buffer {
    return this.raw(this.buf.length - this.pos);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  end(): void {
    if (this.remaining !== 0) throw new SshWireError(`${this.remaining} unexpected trailing bytes`);
  }
}

/** Encodes one length-prefixed string. */
export function sshString(data: Uint8Array | string): Buffer {
  return new SshWriter(8 + (typeof data === 'string' ? Buffer.byteLength(data) : data.length))
    .string(data)
    .finish();
}
