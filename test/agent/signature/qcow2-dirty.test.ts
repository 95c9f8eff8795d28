// The qcow2 metadata an incremental seal reads itself (qcow2-dirty.ts), against what the qemu tools
// say about the same real images (made by qemu-img, written by qemu-io): the chunks the persistent
// bitmap marks equal those `qemu-nbd` + `nbdinfo --map` give, their extents equal `qemu-img map`'s
// over the same ranges; the bitmap's state (missing, disabled, in use after a crash) as `qemu-img
// info` reports it; images that are not plain are left to the qemu tools, with the same digests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chunksOf, hashGuestDisk } from '../../../agent/src/signature/guest-disk/hasher.js';
import { parseQcow2Map } from '../../../agent/src/signature/guest-disk/image-map.js';
import { NbdExport, resetBitmap } from '../../../agent/src/signature/guest-disk/qemu.js';
import { readQcow2Dirty } from '../../../agent/src/signature/guest-disk/qcow2-dirty.js';
import { SEAL_BITMAP, freshSealBitmap } from '../../../agent/src/signature/guest-disk/seal-trust.js';
import { HashEngine } from '../../../agent/src/signature/hashing/engine.js';
import { identityOf } from '../../../agent/src/signature/hashing/identity.js';
import { scatterList, type MappedExtent } from '../../../agent/src/signature/hashing/scatter.js';
import { sleep } from '../../helpers/wait.js';

const MiB = 1024 * 1024;
let dir: string;
let engine: HashEngine;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmwarden-qcow2-dirty-'));
  engine = new HashEngine({ workers: 2 });
});
test.after(async () => {
  await engine?.close();
  rmSync(dir, { recursive: true, force: true });
});

const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { encoding: 'utf8', stdio: 'pipe' });
const qemuIo = (path: string, ...cmds: string[]) =>
  execFileSync('qemu-io', ['-f', 'qcow2', ...cmds.flatMap((c) => ['-c', c]), path], { stdio: 'pipe' });

async function native(path: string, name = SEAL_BITMAP) {
  const fh = await open(path, 'r');
  try {
    return await readQcow2Dirty(fh, name, MiB);
  } finally {
    await fh.close();
  }
}

/** What the qemu tools say: dirty chunks (nbdinfo) and the map of the whole disk (qemu-img map). */
async function byTools(path: string, size: number) {
  const server = await NbdExport.start(path, 'qcow2', { bitmap: SEAL_BITMAP });
  try {
    const dirty = chunksOf(
      await server.map(`qemu:dirty-bitmap:${SEAL_BITMAP}`),
      (t) => (t & 1) === 1,
      size,
      MiB,
    );
    const map = parseQcow2Map(JSON.parse(qemuImg('map', '--output=json', '-f', 'qcow2', path)), size, 1e15);
    if ('fallback' in map) throw new Error(map.fallback);
    return { dirty, extents: map.extents };
  } finally {
    await server.stop();
  }
}

/** Same bytes of the file for every dirty chunk, whichever extents describe them. */
function sameLayout(a: MappedExtent[], b: MappedExtent[], chunks: number[], size: number) {
  for (const c of chunks) {
    const from = c * MiB;
    const to = Math.min(size, from + MiB);
    assert.equal([...scatterList(a, from, to)], [...scatterList(b, from, to)], `chunk ${c}`);
  }
}

async function assertAgrees(path: string, size: number, expectDirty?: number) {
  const n = await native(path);
  assert.ok('state' in n && n.state === 'ok', JSON.stringify(n));
  if (!('dirty' in n)) return;
  const tools = await byTools(path, size);
  assert.is(n.size, size);
  assert.equal(n.dirty, tools.dirty);
  if (expectDirty !== undefined) assert.is(n.dirty.length, expectDirty);
  sameLayout(n.extents, tools.extents, n.dirty, size);
}

test('dirty chunks and their clusters equal what nbdinfo and qemu-img map say (64 KiB clusters)', async () => {
  const img = join(dir, 'a.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '40M');
  qemuIo(img, 'write -P 0x11 0 8M', 'write -P 0x12 20M 2M');
  await resetBitmap(img, 'qcow2', SEAL_BITMAP);
  await assertAgrees(img, 40 * MiB, 0);
  // reverse order (host offsets out of guest order), a zeroed range with allocation kept and one
  // without, a write across a chunk boundary, a write into an unallocated chunk, the last chunk
  qemuIo(
    img,
    'write -P 0x21 30M 64k',
    'write -P 0x22 28M 4k',
    'write -z 4M 1M',
    'write -z -u 6M 1M',
    'write -P 0x23 10420224 262144',
    'write -P 0x24 1M 512',
    `write -P 0x25 ${40 * MiB - 4096} 4096`,
  );
  await assertAgrees(img, 40 * MiB, 8);
});

test('other cluster sizes and bitmap granularities', async () => {
  for (const [cluster, granularity] of [
    ['4k', 4096],
    ['512k', 65536],
    ['2M', 2 * MiB],
    ['64k', 512],
  ] as const) {
    const img = join(dir, `c-${cluster}-${granularity}.qcow2`);
    qemuImg('create', '-q', '-f', 'qcow2', '-o', `cluster_size=${cluster}`, img, '24M');
    qemuIo(img, 'write -P 0x31 0 24M');
    qemuImg('bitmap', '--add', '--enable', '-g', String(granularity), '-f', 'qcow2', img, SEAL_BITMAP);
    qemuIo(img, 'write -P 0x32 3M 100', 'write -P 0x33 17825792 1048576', 'write -P 0x34 23M 8k');
    await assertAgrees(img, 24 * MiB);
  }
});

test('the bitmap state: missing, disabled, in use after a crash', async () => {
  const img = join(dir, 's.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', img, '8M');
  assert.equal(await native(img), { state: 'missing' });
  await resetBitmap(img, 'qcow2', SEAL_BITMAP);
  assert.equal(await native(img, 'another'), { state: 'missing' });
  qemuImg('bitmap', '--disable', '-f', 'qcow2', img, SEAL_BITMAP);
  assert.equal(await native(img), { state: 'disabled' });
  await resetBitmap(img, 'qcow2', SEAL_BITMAP);
  // qemu-io killed after writing, as a crashed QEMU: the bitmap is never stored
  assert.throws(() => qemuIo(img, 'write -P 0x41 1M 1M', 'sigraise 9'));
  assert.equal(await native(img), { state: 'inconsistent' });
});

test('images that are not plain are left to the qemu tools', async () => {
  const base = join(dir, 'base.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', base, '8M');
  const overlay = join(dir, 'overlay.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', overlay);
  await resetBitmap(overlay, 'qcow2', SEAL_BITMAP);
  assert.equal(await native(overlay), { fallback: 'backing file' });
  const ext = join(dir, 'ext.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', ext, '8M');
  await resetBitmap(ext, 'qcow2', SEAL_BITMAP);
  assert.equal(await native(ext), { fallback: 'incompatible features' });
  const v2 = join(dir, 'v2.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', v2, '8M');
  assert.equal(await native(v2), { fallback: 'qcow2 version 2' });
  const raw = join(dir, 'raw.img');
  qemuImg('create', '-q', '-f', 'raw', raw, '8M');
  assert.equal(await native(raw), { fallback: 'not a qcow2 header' });
  const plain = join(dir, 'resized.qcow2');
  qemuImg('create', '-q', '-f', 'qcow2', plain, '8M');
  await resetBitmap(plain, 'qcow2', SEAL_BITMAP);
  const fh = await open(plain, 'r');
  try {
    // not the size the previous seal had: left to the qemu tools (which then do a full pass)
    assert.equal(await readQcow2Dirty(fh, SEAL_BITMAP, MiB, 4 * MiB), { fallback: 'disk size changed' });
    assert.is(((await readQcow2Dirty(fh, SEAL_BITMAP, MiB, 8 * MiB)) as { state: string }).state, 'ok');
  } finally {
    await fh.close();
  }
});

/** A 16 MiB image with its first 12 MiB written, its full digest, and a fresh seal bitmap. */
async function sealedImage(name: string, pattern: number) {
  const img = join(dir, name);
  qemuImg('create', '-q', '-f', 'qcow2', img, '16M');
  qemuIo(img, `write -P ${pattern} 0 12M`);
  const first = await hashGuestDisk(img, { format: 'qcow2', engine });
  await resetBitmap(img, 'qcow2', SEAL_BITMAP);
  return { img, first };
}

test('incremental seals through the metadata: equal to a full pass; a compressed dirty cluster falls back', async () => {
  const { img, first } = await sealedImage('i.qcow2', 0x51);
  qemuIo(img, 'write -P 0x52 5M 3k', 'write -z 9M 64k', 'write -P 0x53 11M 1M');
  const opts = { format: 'qcow2', previous: first, bitmap: SEAL_BITMAP, engine } as const;
  const inc = await hashGuestDisk(img, opts);
  const full = await hashGuestDisk(img, { format: 'qcow2', engine });
  assert.is(inc.pass.mode, 'incremental');
  assert.is(inc.pass.reader, 'qcow2-metadata');
  assert.is(inc.pass.chunksHashed, 3);
  assert.equal(inc.chunks, full.chunks);
  assert.is(inc.digest, full.digest);
  // a compressed cluster among the dirty ones (qemu-io write -c, into unallocated clusters): the
  // qemu tools read it
  await resetBitmap(img, 'qcow2', SEAL_BITMAP);
  qemuIo(img, 'write -c -P 0x54 14M 64k');
  assert.equal(await native(img), { fallback: 'compressed cluster' });
  const inc2 = await hashGuestDisk(img, { ...opts, previous: inc });
  const full2 = await hashGuestDisk(img, { format: 'qcow2', reader: 'nbd' });
  assert.is(inc2.pass.mode, 'incremental');
  assert.is.not(inc2.pass.reader, 'qcow2-metadata');
  assert.is(inc2.digest, full2.digest);
  assert.equal(inc2.chunks, full2.chunks);
});

test("the seal's bitmap reset runs while the dirty chunks are hashed: fresh bitmap, identity after it", async () => {
  const { img, first } = await sealedImage('r.qcow2', 0x61);
  qemuIo(img, 'write -P 0x62 2M 1M', 'write -P 0x63 7M 4k');
  let calls = 0;
  const resetBitmapNow = () => (calls++, freshSealBitmap(img, 'qcow2'));
  const inc = await hashGuestDisk(img, {
    format: 'qcow2',
    previous: first,
    bitmap: SEAL_BITMAP,
    engine,
    resetBitmap: resetBitmapNow,
  });
  assert.is(calls, 1);
  assert.is(inc.pass.mode, 'incremental');
  assert.is(inc.pass.reader, 'qcow2-metadata');
  assert.is(inc.pass.chunksHashed, 2);
  assert.is(inc.bitmapReset, true);
  assert.equal(
    inc.identity,
    identityOf(statSync(img, { bigint: true })),
    "the image's identity after the reset",
  );
  assert.equal(await native(img), { state: 'ok', size: 16 * MiB, dirty: [], extents: [] }, 'bitmap empty');
  assert.is(inc.digest, (await hashGuestDisk(img, { format: 'qcow2', engine })).digest);

  // a reset that fails: the digest stands, the caller learns the bitmap is not fresh
  qemuIo(img, 'write -P 0x64 3M 1M');
  const failed = await hashGuestDisk(img, {
    format: 'qcow2',
    previous: inc,
    bitmap: SEAL_BITMAP,
    engine,
    resetBitmap: async () => false,
  });
  assert.is(failed.pass.mode, 'incremental');
  assert.is(failed.bitmapReset, false);
  assert.is(failed.digest, (await hashGuestDisk(img, { format: 'qcow2', engine })).digest);
  // no pass without a usable bitmap runs the reset (the caller resets after it)
  calls = 0;
  const full = await hashGuestDisk(img, { format: 'qcow2', engine, resetBitmap: resetBitmapNow });
  assert.is(calls, 0);
  assert.is(full.bitmapReset, undefined);
});

test('the image written after the reset while the chunks are hashed: read again in full, never from the reset bitmap', async () => {
  const { img, first } = await sealedImage('w.qcow2', 0x71);
  qemuIo(img, 'write -P 0x72 4M 1M');
  let resetDone!: () => void;
  const reset = new Promise<void>((r) => (resetDone = r));
  let writes = 0;
  // a writer that is not QEMU under libvirt, once the reset is over and before the hashing ends
  class WrittenMeanwhile extends HashEngine {
    override async hashExtents(...args: Parameters<HashEngine['hashExtents']>) {
      const r = await super.hashExtents(...args);
      if (writes++ === 0) {
        await reset;
        await sleep(50); // the pass has taken the identity after the reset
        qemuIo(img, 'write -P 0x73 9M 64k');
      }
      return r;
    }
  }
  const slow = new WrittenMeanwhile({ workers: 2 });
  let calls = 0;
  try {
    const g = await hashGuestDisk(img, {
      format: 'qcow2',
      previous: first,
      bitmap: SEAL_BITMAP,
      engine: slow,
      resetBitmap: async () => {
        calls++;
        const ok = await freshSealBitmap(img, 'qcow2');
        resetDone();
        return ok;
      },
    });
    assert.is(calls, 1, 'reset once');
    assert.is(g.bitmapReset, true);
    assert.is(g.pass.mode, 'full', 'the reset bitmap no longer covers the writes since the previous digest');
    assert.is(g.digest, (await hashGuestDisk(img, { format: 'qcow2', engine })).digest);
    assert.equal(g.identity, identityOf(statSync(img, { bigint: true })));
  } finally {
    await slow.close();
  }
});

test.run();
