// The native module (agent/native/mapped-sha256.c, built by `npm run build`): dense SHA-256 through
// mmap gives the same digests and zero-chunk counts as read() in JavaScript, odd chunk sizes are
// left to read(), holes by SEEK_DATA equal qemu-img's, and a file that shrinks under a mapping fails the batch with EFILECHANGED (SIGBUS
// caught in the worker thread) instead of killing the process; any other SIGBUS keeps its default.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HashEngine } from '../../../agent/src/signature/hashing/engine.js';
import { holeExtents, zeroExtents } from '../../../agent/src/signature/hashing/extents.js';
import { MiB, reference, tempDir, writeRandom } from './helpers.js';

const modulePath = fileURLToPath(new URL('../../../agent/native/mapped-sha256.node', import.meta.url));
const t = tempDir();
const mapped = new HashEngine({ workers: 2, qemuImg: false });
const read = new HashEngine({ workers: 2, qemuImg: false, native: false });

test.after(async () => {
  await mapped.close();
  await read.close();
  t.remove();
});

test('the native reader is built (npm run build) and loads', () => {
  const m = createRequire(import.meta.url)(modulePath) as { sha256Chunks?: unknown };
  assert.type(m.sha256Chunks, 'function');
});

test('same digests and zero chunks as read(): partial last chunk, zero chunks and pieces, tiny files', async () => {
  const mixed = t.file('mixed.bin');
  const data = Buffer.concat([
    writeRandom(t.file('a'), 3 * MiB),
    Buffer.alloc(2 * MiB), // two zero chunks
    writeRandom(t.file('b'), 512 * 1024),
    Buffer.alloc(512 * 1024), // a chunk half zeros
    writeRandom(t.file('c'), 700_001), // a partial last chunk
  ]);
  writeFileSync(mixed, data);
  writeFileSync(t.file('one'), 'x');
  writeFileSync(t.file('empty'), '');
  for (const name of ['mixed.bin', 'one', 'empty']) {
    const a = await mapped.hashFile(t.file(name));
    const b = await read.hashFile(t.file(name));
    assert.is(a.digest, b.digest, name);
    assert.equal(a.chunks, b.chunks, name);
    assert.is(a.stats.zeroChunks, b.stats.zeroChunks, name);
    assert.is(a.stats.bytesRead, b.stats.bytesRead, name);
  }
  const ref = reference(mixed);
  assert.is((await mapped.hashFile(mixed)).digest, ref.digest);
  assert.is((await mapped.hashFile(mixed)).stats.zeroChunks, 2);
});

test('chunk sizes: a page (mapped) and one that does not divide the mapping window (read())', async () => {
  const file = t.file('pages.bin');
  writeRandom(file, 5 * MiB + 12345);
  for (const chunkSize of [4096, 3 * 4096]) {
    const m = new HashEngine({ workers: 2, qemuImg: false, chunkSize });
    try {
      assert.is((await m.hashFile(file)).digest, reference(file, chunkSize).digest, `chunk ${chunkSize}`);
    } finally {
      await m.close();
    }
  }
});

test('holes by SEEK_DATA/SEEK_HOLE equal what qemu-img map says', async () => {
  const file = t.file('holes.bin');
  writeFileSync(file, '');
  truncateSync(file, 40 * MiB + 4096);
  const fd = openSync(file, 'r+');
  try {
    for (const [at, n] of [
      [0, 8192],
      [3 * MiB, MiB],
      [3 * MiB + MiB + 4096, 4096],
      [20 * MiB + 12288, 65536],
      [40 * MiB, 4096],
    ] as const)
      writeSync(fd, Buffer.alloc(n, 7), 0, n, at);
    const size = fstatSync(fd).size;
    const native = holeExtents(fd, size);
    assert.ok(native);
    assert.equal(native, await zeroExtents(file));
    assert.equal(holeExtents(fd, 3 * MiB), [{ start: 8192, length: 3 * MiB - 8192 }], 'up to a size');
  } finally {
    closeSync(fd);
  }
});

test('a range past the end of the file in a worker thread: EFILECHANGED, the process lives on', async () => {
  const file = t.file('short.bin');
  writeRandom(file, MiB);
  const fd = openSync(file, 'r');
  try {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const m = require(workerData.modulePath);
      const n = 4;
      try {
        m.sha256Chunks(workerData.fd, 0, n * ${MiB}, ${MiB}, new Uint8Array(n * 32), new Uint8Array(n));
        parentPort.postMessage('no error');
      } catch (e) {
        const again = new Uint8Array(32);
        m.sha256Chunks(workerData.fd, 0, ${MiB}, ${MiB}, again, new Uint8Array(1));
        parentPort.postMessage(e.code + ' ' + Buffer.from(again).toString('hex'));
      }`;
    const w = new Worker(code, { eval: true, workerData: { modulePath, fd } });
    const msg = await new Promise<string>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    assert.is(msg, `EFILECHANGED ${reference(file).chunks[0]}`);
  } finally {
    closeSync(fd);
  }
});

test('a file cut short while the engine hashes it: an error or the new content, never a crash', async () => {
  const file = t.file('cut.bin');
  writeRandom(file, 256 * MiB);
  const cut = setTimeout(() => truncateSync(file, 3 * MiB + 5), 15);
  const r = await mapped.hashFile(file).then(
    (d) => d.digest,
    (e: NodeJS.ErrnoException) => e.code,
  );
  clearTimeout(cut);
  truncateSync(file, 3 * MiB + 5);
  assert.ok(r === 'EFILECHANGED' || r === reference(file).digest, String(r));
});

test('any other SIGBUS keeps its default action (the process ends by it)', () => {
  const file = t.file('x.bin');
  writeRandom(file, MiB);
  const script = `
    const m = require(${JSON.stringify(modulePath)});
    const fd = require('node:fs').openSync(${JSON.stringify(file)}, 'r');
    m.sha256Chunks(fd, 0, ${MiB}, ${MiB}, new Uint8Array(32), new Uint8Array(1)); // handler installed
    process.kill(process.pid, 'SIGBUS');
    setTimeout(() => console.log('survived'), 200);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.is(r.signal, 'SIGBUS', r.stdout + r.stderr);
  assert.not.match(r.stdout, /survived/);
});

test.run();
