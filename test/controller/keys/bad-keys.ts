/**
 * Public keys that parse as SSH wire data but must never be signed or registered, made from real
 * ssh-keygen keys: an ECDSA point moved off its curve, RSA keys with a bad public exponent.
 */

function str(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function mpint(n: bigint): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return str(b);
}

/** Fields of an SSH wire blob (uint32-length-prefixed strings). */
function fields(blob: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    const n = blob.readUInt32BE(at);
    out.push(blob.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

const blobOf = (line: string) => Buffer.from(line.trim().split(/\s+/)[1]!, 'base64');
const lineOf = (type: string, blob: Buffer) => `${type} ${blob.toString('base64')} bad@test`;

/** The same ECDSA key with its point's Y coordinate changed: a well-formed point off the curve. */
export function offCurveEcdsa(line: string): string {
  const [type, curve, point] = fields(blobOf(line));
  const moved = Buffer.from(point!);
  moved[moved.length - 1]! ^= 0x01;
  return lineOf(type!.toString(), Buffer.concat([str(type!), str(curve!), str(moved)]));
}

/** The same RSA modulus with public exponent `e` (e.g. 1, 3, 65536). */
export function rsaWithExponent(line: string, e: bigint): string {
  const [type, , n] = fields(blobOf(line));
  const modulus = BigInt('0x' + n!.toString('hex'));
  return lineOf('ssh-rsa', Buffer.concat([str(type!), mpint(e), mpint(modulus)]));
}

/** The base64 body of a line (the registry's Skey). */
export const bodyOf = (line: string) => line.trim().split(/\s+/)[1]!;
