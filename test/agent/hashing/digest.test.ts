import { execFileSync } from 'node:child_process';
import { openSync, writeSync, closeSync, truncateSync, writeFileSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HashEngine, diffChunks } from '../../../agent/src/signature/hashing/index.js';
import { holeChunkMask, parseZeroExtents } from '../../../agent/src/signature/hashing/extents.js';
import { MiB, randomBytes, reference, tempDir, writeRandom } from './helpers.js';
import { sleep } from '../../helpers/wait.js';

const tmp = tempDir();
const engine = new HashEngine();
test.after(async () => {
  await engine.close();
  tmp.remove();
});

function writeAt(path: string, offset: number, data: Buffer): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, data, 0, data.length, offset);
  closeSync(fd);
}

for (const [name, size] of [
  ['empty', 0],
  ['1 byte', 1],
  ['exactly 1 MiB', MiB],
  ['1 MiB + 1', MiB + 1],
  ['~10 MiB random', 10 * MiB + 12345],
] as const) {
  test(`digest of ${name} file equals the straightforward computation`, async () => {
    const path = tmp.file(`f-${size}`);
    writeRandom(path, size);
    const ref = reference(path);
    const r = await engine.hashFile(path);
    assert.is(r.digest, ref.digest);
    assert.equal(r.chunks, ref.chunks);
    assert.is(r.size, size);
    assert.is(r.chunks.length, Math.ceil(size / MiB));
    assert.is(r.stats.bytesRead, size);
    assert.is(r.reused, false);
    const probed = await engine.hashFile(path, { sparse: 'always' });
    assert.is(probed.digest, ref.digest);
  });
}

test('empty file has zero chunks and digests only its size', async () => {
  const path = tmp.file('empty2');
  writeFileSync(path, '');
  const r = await engine.hashFile(path);
  assert.equal(r.chunks, []);
  assert.is(r.digest, 'af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc'); // sha256(8 zero bytes)
});

test('all-zero data chunks are recognised without hashing and still digest correctly', async () => {
  const path = tmp.file('zeros');
  const data = randomBytes(5 * MiB + 10);
  data.fill(0, MiB, 3 * MiB); // chunks 1 and 2
  data.fill(0, 5 * MiB); // last partial chunk
  writeFileSync(path, data);
  const r = await engine.hashFile(path, { sparse: 'never' });
  assert.is(r.digest, reference(path).digest);
  assert.is(r.stats.zeroChunks, 3);
});

test('a custom chunk size follows the same layout', async () => {
  const e = new HashEngine({ chunkSize: 64 * 1024, workers: 3 });
  try {
    const path = tmp.file('custom');
    writeRandom(path, 3 * MiB + 5);
    const r = await e.hashFile(path);
    assert.is(r.digest, reference(path, 64 * 1024).digest);
    assert.is(r.chunks.length, 49);
  } finally {
    await e.close();
  }
});

test('sparse file: same digest as its dense copy, holes never read', async () => {
  const sparse = tmp.file('sparse.img');
  writeFileSync(sparse, '');
  truncateSync(sparse, 256 * MiB);
  writeAt(sparse, 3 * MiB + 100, Buffer.from('hello, sparse world'));
  writeAt(sparse, 100 * MiB - 4096, randomBytes(2 * MiB + 8192)); // spans chunks 99..102
  writeAt(sparse, 256 * MiB - 10, Buffer.from('tail-bytes'));
  const dense = tmp.file('dense.img');
  execFileSync('cp', ['--sparse=never', sparse, dense]);
  const ref = reference(dense);
  const s = await engine.hashFile(sparse);
  const d = await engine.hashFile(dense, { sparse: 'never' });
  assert.is(d.digest, ref.digest);
  assert.is(s.digest, ref.digest);
  assert.equal(s.chunks, ref.chunks);
  assert.is(s.stats.holeChunks, 256 - 6);
  assert.ok(s.stats.bytesRead <= 6 * MiB, `bytesRead ${s.stats.bytesRead}`);
  // The dense copy reports its zero chunks as data (no holes), recognised by memcmp.
  const d2 = await engine.hashFile(dense);
  assert.is(d2.digest, ref.digest);
  assert.is(d2.stats.holeChunks, 0);
  assert.is(d2.stats.zeroChunks, 250);
});

test('sparse file with a partial last chunk inside a hole', async () => {
  const path = tmp.file('sparse-partial.img');
  writeFileSync(path, '');
  truncateSync(path, 70 * MiB + 12345);
  writeAt(path, 5 * MiB, randomBytes(1000));
  const r = await engine.hashFile(path);
  assert.is(r.digest, reference(path).digest);
  assert.is(r.stats.holeChunks, 70);
});

test('changing one byte at offset X changes exactly chunk floor(X / 1 MiB)', async () => {
  const path = tmp.file('diff');
  writeRandom(path, 10 * MiB + 500);
  const a = await engine.hashFile(path);
  for (const x of [0, MiB - 1, MiB, 5 * MiB + 777, 10 * MiB + 499]) {
    const orig = readFileSync(path).subarray(x, x + 1);
    writeAt(path, x, Buffer.from([orig[0]! ^ 0xff]));
    const b = await engine.hashFile(path);
    assert.equal(diffChunks(a, b), [Math.floor(x / MiB)], `offset ${x}`);
    writeAt(path, x, orig);
  }
  const again = await engine.hashFile(path);
  assert.equal(diffChunks(a, again), []);
  writeAt(path, 10 * MiB + 500, randomBytes(2 * MiB)); // grows: last chunk changes, two are added
  const grown = await engine.hashFile(path);
  assert.equal(diffChunks(a, grown), [10, 11, 12]);
  assert.equal(diffChunks(grown, a), [10, 11, 12]);
});

test('one byte changed in a sparse file is found in its chunk', async () => {
  const path = tmp.file('sparse-diff.img');
  writeFileSync(path, '');
  truncateSync(path, 128 * MiB);
  writeAt(path, 64 * MiB, randomBytes(MiB));
  await sleep(5);
  const a = await engine.hashFile(path);
  writeAt(path, 90 * MiB + 3, Buffer.from([1]));
  const b = await engine.hashFile(path);
  assert.equal(diffChunks(a, b), [90]);
  assert.is(b.stats.holeChunks, 126);
});

test('parseZeroExtents and holeChunkMask', () => {
  const ext = parseZeroExtents([
    { start: 0, length: 1000, data: false, zero: true },
    { start: 1000, length: 4000, data: false, zero: true },
    { start: 5000, length: 100, data: true, zero: false },
    { start: 5100, length: 3092, data: true, zero: true },
    { start: 8192, length: 8192, data: false, zero: true },
  ]);
  assert.equal(ext, [
    { start: 0, length: 5000 },
    { start: 5100, length: 11284 },
  ]);
  assert.equal([...holeChunkMask(ext!, 16384, 4096)], [1, 0, 1, 1]);
  assert.equal([...holeChunkMask(ext!, 16000, 4096)], [1, 0, 1, 1]);
  assert.is(parseZeroExtents({}), null);
  assert.is(parseZeroExtents([{ start: 'x' }]), null);
});

test('several files hashed concurrently on one pool', async () => {
  const paths = [0, 1, 2, 3, 4, 5].map((i) => {
    const p = tmp.file(`conc-${i}`);
    writeRandom(p, i * 3 * MiB + i);
    return p;
  });
  const rs = await Promise.all(paths.map((p) => engine.hashFile(p)));
  rs.forEach((r, i) => assert.is(r.digest, reference(paths[i]!).digest));
});

test.run();
