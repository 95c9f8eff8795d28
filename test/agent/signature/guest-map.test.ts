// Full guest-content passes of qcow2 images read from the image file through `qemu-img map` (the
// engine's workers and scatter lists) against the same pass through qemu-nbd and against the engine
// over a raw copy (`qemu-img convert -O raw`): same chunk digests, same composed digest, SHA-256 and
// BLAKE3. Real images made by qemu-img and qemu-io; images the map cannot describe plainly (backing
// file, compressed clusters) fall back to qemu-nbd with the same result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashGuestDisk } from '../../../agent/src/signature/guest-disk/hasher.js';
import { parseQcow2Map } from '../../../agent/src/signature/guest-disk/image-map.js';
import { imageInfo, resetBitmap } from '../../../agent/src/signature/guest-disk/qemu.js';
import { SEAL_BITMAP } from '../../../agent/src/signature/guest-disk/seal-trust.js';
import { HashEngine } from '../../../agent/src/signature/hashing/engine.js';
import { DIGEST_ALGORITHMS } from '../../../agent/src/signature/hashing/digest.js';
import { compactChunks, scatterList } from '../../../agent/src/signature/hashing/scatter.js';

const MiB = 1024 * 1024;
const KiB = 1024;

let dir: string;
let engine: HashEngine;
/** Small batches and reads that straddle 64 KiB clusters: pieces cross scatter-list entries. */
let oddEngine: HashEngine;

const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { encoding: 'utf8' });
const qemuIo = (path: string, ...cmds: string[]) =>
  execFileSync('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), path], { stdio: 'pipe' });
const hostMap = (path: string): Array<{ start: number; data: boolean; offset?: number }> =>
  JSON.parse(qemuImg('map', '--output=json', '-f', 'qcow2', path));

/**
 * Hashes `img` every way, both algorithms: the mapped (default) pass with two engines, the qemu-nbd
 * pass and the engine over a raw copy must agree chunk by chunk.
 */
async function assertSameEveryWay(img: string, reader: 'image-map' | 'nbd', fallback?: RegExp) {
  const raw = `${img}.raw`;
  qemuImg('convert', '-f', 'qcow2', '-O', 'raw', img, raw);
  try {
    for (const algorithm of DIGEST_ALGORITHMS) {
      const mapped = await hashGuestDisk(img, { format: 'qcow2', algorithm, engine });
      const odd = await hashGuestDisk(img, { format: 'qcow2', algorithm, engine: oddEngine });
      const nbd = await hashGuestDisk(img, { format: 'qcow2', algorithm, reader: 'nbd' });
      const file = await engine.hashFile(raw, { algorithm, sparse: 'never' });
      assert.is(mapped.pass.reader, reader, `${algorithm}: ${mapped.pass.mapFallback}`);
      assert.is(mapped.pass.mode, 'full');
      if (fallback) assert.match(mapped.pass.mapFallback ?? '', fallback);
      assert.is(nbd.pass.reader, 'nbd');
      assert.is(mapped.size, file.size);
      assert.equal(mapped.chunks, nbd.chunks, `${algorithm}: chunks differ from the qemu-nbd pass`);
      assert.equal(mapped.chunks, file.chunks, `${algorithm}: chunks differ from the raw copy's`);
      assert.equal(odd.chunks, file.chunks, `${algorithm}: chunks differ with small batches`);
      assert.is(mapped.digest, nbd.digest);
      assert.is(mapped.digest, file.digest);
      assert.is(odd.digest, file.digest);
      assert.is(mapped.algorithm, algorithm);
    }
  } finally {
    rmSync(raw, { force: true });
  }
}

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmwarden-guestmap-'));
  engine = new HashEngine({ workers: 2 });
  oddEngine = new HashEngine({ workers: 2, batchChunks: 3, readBytes: 40 * KiB });
});

test.after(async () => {
  await engine?.close();
  await oddEngine?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('dense image (random content, virtual size not a whole number of chunks)', async () => {
  const src = join(dir, 'dense.src');
  writeFileSync(src, randomBytes(20 * MiB + 300 * KiB));
  const img = join(dir, 'dense.qcow2');
  qemuImg('convert', '-f', 'raw', '-O', 'qcow2', src, img);
  await assertSameEveryWay(img, 'image-map');
  const g = await hashGuestDisk(img, { format: 'qcow2', engine });
  assert.is(g.pass.chunksHashed, 21);
  assert.is(g.stats.holeChunks, 0);
});

test('sparse image: unallocated chunks are not read, partly written chunks are', async () => {
  const img = join(dir, 'sparse.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '64M');
  qemuIo(img, 'write -P 0x11 3M 1M', 'write -P 0x22 10481664 8k', 'write -P 0x33 41943552 1536');
  await assertSameEveryWay(img, 'image-map');
  const g = await hashGuestDisk(img, { format: 'qcow2', engine });
  assert.is(g.pass.chunksHashed, 4); // chunk 3, chunks 9 and 10, chunk 40
  assert.is(g.stats.holeChunks, 60);
});

test('zero clusters (write -z), allocated and not, whole and partial', async () => {
  const img = join(dir, 'zero.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '16M');
  qemuIo(
    img,
    'write -P 0x41 0 8M',
    'write -z 1M 1M', // a whole chunk of zero clusters that keep their host clusters
    'write -z 2162688 128k', // zero clusters inside a chunk with data
    'write -z 3149824 8k', // less than a cluster: written as zero bytes
    'write -z -u 5M 1M', // unmapped
    'write -z 12M 2M', // over unallocated clusters
  );
  const map = hostMap(img);
  assert.ok(
    map.some((e) => 'offset' in e && !e.data),
    'a zero extent that keeps its host offset',
  );
  await assertSameEveryWay(img, 'image-map');
});

test('fragmented image: host offsets not in guest order', async () => {
  const img = join(dir, 'frag.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '24M');
  const writes: string[] = [];
  for (let c = 24 * 16 - 1; c >= 0; c -= 3) writes.push(`write -P ${(c % 251) + 1} ${c * 64}k 64k`);
  writes.push('write -P 0x5a 7237632 200k', 'write -P 0x6b 17826792 70000');
  qemuIo(img, ...writes);
  const offs = hostMap(img)
    .filter((e) => e.data)
    .map((e) => e.offset!);
  assert.ok(
    offs.some((o, i) => i > 0 && o < offs[i - 1]!),
    'host offsets decrease somewhere along the guest',
  );
  await assertSameEveryWay(img, 'image-map');
});

test('subclusters (extended_l2) and metadata preallocation', async () => {
  const sub = join(dir, 'sub.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on,cluster_size=128k', sub, '8M');
  qemuIo(sub, 'write -P 0x71 4k 4k', 'write -P 0x72 1085440 20k', 'write -P 0x73 6M 1M');
  await assertSameEveryWay(sub, 'image-map');
  const pre = join(dir, 'prealloc.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'preallocation=metadata', pre, '8M');
  qemuIo(pre, 'write -P 0x81 2097664 3M');
  await assertSameEveryWay(pre, 'image-map');
});

test('compressed clusters: no host offset, read through qemu-nbd, same result', async () => {
  const src = join(dir, 'comp.src.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', src, '12M');
  qemuIo(src, 'write -P 0x21 0 5M', 'write -P 0x22 9440256 10k');
  const img = join(dir, 'comp.qcow2');
  qemuImg('convert', '-c', '-f', 'qcow2', '-O', 'qcow2', src, img);
  await assertSameEveryWay(img, 'nbd', /compressed/);
});

test('backing-file overlay: read through qemu-nbd, same result', async () => {
  const base = join(dir, 'base.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', base, '10M');
  qemuIo(base, 'write -P 0x31 0 6M');
  const img = join(dir, 'overlay.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', img);
  qemuIo(img, 'write -P 0x32 1M 64k', 'write -z 2M 1M');
  await assertSameEveryWay(img, 'nbd', /backing file/);
});

test('external data file: the map offsets are in that file, read through qemu-nbd', async () => {
  const img = join(dir, 'ext.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', `data_file=${join(dir, 'ext.data')}`, img, '6M');
  qemuIo(img, 'write -P 0x51 1M 2M', 'write -P 0x52 4M 64k');
  await assertSameEveryWay(img, 'nbd', /external data file/);
});

test('an encrypted image is not read from its map', async () => {
  const img = join(dir, 'enc.qcow2');
  const secret = ['--object', 'secret,id=sec0,data=not-a-real-secret'];
  qemuImg(
    'create',
    '-q',
    '-f',
    'qcow2',
    ...secret,
    '-o',
    'encrypt.format=luks,encrypt.key-secret=sec0',
    img,
    '4M',
  );
  assert.is((await imageInfo(img, 'qcow2')).encrypted, true);
  // qemu-nbd cannot open it without the secret either: the pass fails, it does not read the file
  const err = await hashGuestDisk(img, { format: 'qcow2', engine }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'an encrypted image hashed without its key');
});

test('incremental pass: the dirty chunks read from the image map, equal to qemu-nbd and to a full pass', async () => {
  const img = join(dir, 'inc.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '32M');
  qemuIo(img, 'write -P 0x91 0 20M', 'write -P 0x92 30M 1M');
  for (const algorithm of DIGEST_ALGORITHMS) {
    const first = await hashGuestDisk(img, { format: 'qcow2', algorithm, engine });
    await resetBitmap(img, 'qcow2', SEAL_BITMAP);
    // chunk 2; chunks 5 and 6 (across the boundary); chunk 9 zeroed; chunk 25 (unallocated before)
    qemuIo(
      img,
      `write -P ${algorithm === 'sha256' ? 0xa1 : 0xb1} 2M 4k`,
      'write -P 0xa2 6225920 131072',
      'write -z 9M 1M',
      'write -P 0xa3 25M 64k',
    );
    const opts = { format: 'qcow2', algorithm, previous: first, bitmap: SEAL_BITMAP } as const;
    const inc = await hashGuestDisk(img, { ...opts, engine: oddEngine });
    const incNbd = await hashGuestDisk(img, { ...opts, reader: 'nbd' });
    const full = await hashGuestDisk(img, { format: 'qcow2', algorithm, engine });
    assert.is(inc.pass.mode, 'incremental');
    assert.is(inc.pass.reader, 'qcow2-metadata');
    assert.is(incNbd.pass.reader, 'nbd');
    assert.is(inc.pass.chunksHashed, 5);
    assert.is(incNbd.pass.chunksHashed, 5);
    assert.not.equal(inc.chunks, first.chunks);
    assert.equal(inc.chunks, full.chunks);
    assert.equal(incNbd.chunks, full.chunks);
    assert.is(inc.digest, full.digest);
    assert.is(incNbd.digest, full.digest);
  }
});

test('a map that is not plainly "in this file or zero" is refused', () => {
  const e = (start: number, length: number, more: object) => ({ start, length, depth: 0, ...more });
  const data = (start: number, length: number, offset: number) =>
    e(start, length, { zero: false, data: true, offset });
  const zero = (start: number, length: number) => e(start, length, { zero: true, data: false });
  const ok = parseQcow2Map([data(0, MiB, 4 * MiB), zero(MiB, MiB)], 2 * MiB, 5 * MiB);
  assert.equal(ok, {
    size: 2 * MiB,
    extents: [
      { start: 0, length: MiB, host: 4 * MiB },
      { start: MiB, length: MiB, host: null },
    ],
  });
  const refused = (entries: unknown, size = 2 * MiB) =>
    (parseQcow2Map(entries, size, 5 * MiB) as { fallback?: string }).fallback;
  assert.match(refused([{ ...data(0, MiB, 0), depth: 1 }, zero(MiB, MiB)])!, /backing/);
  assert.match(refused([e(0, MiB, { zero: false, data: true }), zero(MiB, MiB)])!, /offset/);
  assert.match(refused([e(0, 2 * MiB, { zero: false, data: false })])!, /not zero/);
  assert.match(refused([data(0, MiB, 0), zero(2 * MiB, MiB)], 3 * MiB)!, /cover/);
  assert.match(refused([data(0, MiB, 0)])!, /cover/);
  assert.match(refused([data(0, MiB, 4.5 * MiB), zero(MiB, MiB)])!, /past the end/);
  assert.match(refused({})!, /unexpected/);
});

test('scatter lists: clipped to the range, adjacent pieces merged', () => {
  const extents = [
    { start: 0, length: 100, host: 1000 },
    { start: 100, length: 50, host: 1100 }, // continues the previous one in the file
    { start: 150, length: 30, host: null },
    { start: 180, length: 20, host: null },
    { start: 200, length: 100, host: 10 },
  ];
  assert.equal([...scatterList(extents, 0, 300)], [1000, 150, -1, 50, 10, 100]);
  assert.equal([...scatterList(extents, 120, 250)], [1120, 30, -1, 50, 10, 50]);
  assert.equal([...scatterList(extents, 210, 220)], [20, 10]);
});

test('compact chunks: the listed chunks end to end, the short last chunk last, pieces merged', () => {
  // chunks of 100 bytes over a 290-byte disk: chunk 0 in the file at 1000, chunk 1 zeros, chunk 2
  // (90 bytes) at 5000
  const extents = [
    { start: 0, length: 100, host: 1000 },
    { start: 100, length: 100, host: null },
    { start: 200, length: 90, host: 5000 },
  ];
  assert.equal(compactChunks(extents, [0, 2], 290, 100), {
    size: 190,
    extents: [
      { start: 0, length: 100, host: 1000 },
      { start: 100, length: 90, host: 5000 },
    ],
  });
  assert.equal(compactChunks(extents, [1, 2], 290, 100).extents, [
    { start: 0, length: 100, host: null },
    { start: 100, length: 90, host: 5000 },
  ]);
  // extents that cover only the listed chunks are enough (the qcow2 metadata reader's)
  assert.equal(compactChunks([{ start: 200, length: 90, host: 7 }], [2], 290, 100), {
    size: 90,
    extents: [{ start: 0, length: 90, host: 7 }],
  });
  assert.throws(() => compactChunks([{ start: 200, length: 90, host: 7 }], [1], 290, 100), /no mapping/);
});

test.run();
