import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SshReader,
  SshWireError,
  SshWriter,
  sshString,
} from '../../../../controller/src/access/sshca/wire.js';

const isWireError = (e: unknown) => e instanceof SshWireError;
const hex = (b: Buffer) => b.toString('hex');

test('uint32, uint64 and string', () => {
  const b = new SshWriter(4).uint32(0x29b7f4aa).uint64(0x0102030405060708n).string('testing').finish();
  assert.is(hex(b), '29b7f4aa' + '0102030405060708' + '00000007' + Buffer.from('testing').toString('hex'));
  const r = new SshReader(b);
  assert.is(r.uint32(), 0x29b7f4aa);
  assert.is(r.uint64(), 0x0102030405060708n);
  assert.is(r.text(), 'testing');
  r.end();
});

test('mpint examples from RFC 4251', () => {
  const enc = (v: bigint | Buffer) => hex(new SshWriter().mpint(v).finish());
  assert.is(enc(0n), '00000000');
  assert.is(enc(0x9a378f9b2e332a7n), '0000000809a378f9b2e332a7');
  assert.is(enc(0x80n), '000000020080');
  assert.is(enc(Buffer.from('000080', 'hex')), '000000020080', 'leading zeros are stripped then re-padded');
  assert.is(hex(new SshReader(Buffer.from('000000020080', 'hex')).mpint()), '80');
  assert.throws(() => new SshReader(Buffer.from('00000001ff', 'hex')).mpint(), isWireError);
});

test('name-list', () => {
  assert.is(hex(new SshWriter().nameList([]).finish()), '00000000');
  assert.is(hex(new SshWriter().nameList(['zlib']).finish()), '000000047a6c6962');
  assert.is(hex(new SshWriter().nameList(['zlib', 'none']).finish()), '000000097a6c69622c6e6f6e65');
  assert.equal(new SshReader(Buffer.from('000000097a6c69622c6e6f6e65', 'hex')).nameList(), ['zlib', 'none']);
  assert.throws(() => new SshWriter().nameList(['a,b']), isWireError);
});

test('nested strings grow the buffer and patch lengths', () => {
  const w = new SshWriter(2);
  w.nested(() => w.string('a'.repeat(100)).string('b'));
  const r = new SshReader(w.finish());
  const inner = new SshReader(r.string());
  r.end();
  assert.is(inner.text(), 'a'.repeat(100));
  assert.is(inner.text(), 'b');
  inner.end();
  assert.is(hex(sshString('')), '00000000');
});

test('reader refuses truncated data and trailing bytes', () => {
  assert.throws(() => new SshReader(Buffer.from('000000050102', 'hex')).string(), isWireError);
  assert.throws(() => new SshReader(Buffer.from('0001', 'hex')).uint32(), isWireError);
  const r = new SshReader(Buffer.from('0000000001', 'hex'));
  r.uint32();
  assert.throws(() => r.end(), isWireError);
  assert.throws(() => new SshWriter().uint64(-1n), isWireError);
  assert.throws(() => new SshWriter().uint64(1n << 64n), isWireError);
});

test.run();
