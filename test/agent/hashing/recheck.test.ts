import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  openSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HashEngine, sameIdentity, type FileDigest } from '../../../agent/src/signature/hashing/index.js';
import { settle } from '../../../agent/src/signature/hashing/identity.js';
import { MiB, randomBytes, reference, tempDir, writeRandom } from './helpers.js';
import { sleep } from '../../helpers/wait.js';

const tmp = tempDir();
const engine = new HashEngine();
test.after(async () => {
  await engine.close();
  tmp.remove();
});

async function settled(path: string, size: number): Promise<FileDigest> {
  writeRandom(path, size);
  await sleep(80); // past the racy window: the identity can be trusted for the re-check
  const r = await engine.hashFile(path);
  assert.ok(r.stable);
  return r;
}

test('unchanged file: previous result reused without reading', async () => {
  const path = tmp.file('same');
  const a = await settled(path, 3 * MiB + 3);
  const b = await engine.hashFile(path, { previous: a });
  assert.is(b.reused, true);
  assert.is(b.stats.bytesRead, 0);
  assert.is(b.digest, a.digest);
  assert.equal(b.chunks, a.chunks);
  assert.ok(sameIdentity(a, b));
});

test('touch (mtime change) forces a full re-hash', async () => {
  const path = tmp.file('touched');
  const a = await settled(path, 2 * MiB);
  const later = new Date(Date.now() + 5000);
  utimesSync(path, later, later);
  const b = await engine.hashFile(path, { previous: a });
  assert.is(b.reused, false);
  assert.is(b.stats.bytesRead, 2 * MiB);
  assert.is(b.digest, a.digest);
  assert.not.ok(sameIdentity(a, b));
});

test('content change with the mtime put back is still seen (ctime)', async () => {
  const path = tmp.file('sneaky');
  const a = await settled(path, 2 * MiB);
  const st = statSync(path);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('X'), 0, 1, 1234);
  closeSync(fd);
  utimesSync(path, st.atime, st.mtime);
  await sleep(5);
  const b = await engine.hashFile(path, { previous: a });
  assert.is(b.reused, false);
  assert.is(b.digest, reference(path).digest);
  assert.is.not(b.digest, a.digest);
});

test('a same-size rewrite into a new inode is re-hashed', async () => {
  const path = tmp.file('replaced');
  const a = await settled(path, MiB + 7);
  rmSync(path);
  writeRandom(path, MiB + 7);
  const b = await engine.hashFile(path, { previous: a });
  assert.is(b.reused, false);
  assert.is(b.digest, reference(path).digest);
});

test('a file modified just before hashing is not trusted for the next re-check', async () => {
  const path = tmp.file('racy');
  writeRandom(path, MiB);
  const a = await engine.hashFile(path);
  assert.is(a.stable, false);
  const b = await engine.hashFile(path, { previous: a });
  assert.is(b.reused, false);
  assert.is(b.digest, a.digest);
});

test('settle() waits out the racy window of files just changed (a seal right after a stop)', async () => {
  const path = tmp.file('settle');
  const other = tmp.file('settle-old');
  writeRandom(other, 1024);
  utimesSync(other, new Date(2020, 0, 1), new Date(2020, 0, 1));
  writeRandom(path, MiB);
  await settle([path, other, tmp.file('missing')]);
  const a = await engine.hashFile(path);
  assert.ok(a.stable, 'hashed after settle(): the identity is trusted');
  const b = await engine.hashFile(path, { previous: a });
  assert.ok(b.reused);
});

test('holes without the native module: qemu-img; the probe disabled or failing: dense', async () => {
  const path = tmp.file('sparse.img');
  writeFileSync(path, '');
  truncateSync(path, 96 * MiB);
  const fd = openSync(path, 'r+');
  writeSync(fd, randomBytes(MiB), 0, MiB, 40 * MiB);
  closeSync(fd);
  const ref = reference(path);
  for (const qemuImg of [false, '/nonexistent/qemu-img', 'false'] as const) {
    const e = new HashEngine({ qemuImg, native: false });
    try {
      const r = await e.hashFile(path);
      assert.is(r.digest, ref.digest, String(qemuImg));
      assert.is(r.stats.holeChunks, 0);
      assert.is(r.stats.bytesRead, 96 * MiB);
      assert.is(r.stats.zeroChunks, 95);
    } finally {
      await e.close();
    }
  }
  const probed = await engine.hashFile(path);
  assert.is(probed.digest, ref.digest);
  assert.is(probed.stats.holeChunks, 95);
  for (const native of [true, false]) {
    const e = new HashEngine({ native }); // SEEK_DATA through the native module, or qemu-img map
    try {
      const r = await e.hashFile(path);
      assert.is(r.digest, ref.digest);
      assert.is(r.stats.holeChunks, 95, `native ${native}`);
      assert.is(r.stats.bytesRead, MiB);
    } finally {
      await e.close();
    }
  }
});

test('missing file and directory reject with a clear error', async () => {
  const gone = tmp.file('gone');
  writeRandom(gone, 10);
  const prev = await engine.hashFile(gone);
  rmSync(gone);
  for (const opts of [{}, { previous: prev }]) {
    try {
      await engine.hashFile(gone, opts);
      assert.unreachable('should reject');
    } catch (e) {
      assert.is((e as NodeJS.ErrnoException).code, 'ENOENT');
      assert.match((e as Error).message, `cannot hash ${gone}`);
    }
  }
  try {
    await engine.hashFile(tmp.dir);
    assert.unreachable('should reject');
  } catch (e) {
    assert.match((e as Error).message, 'not a regular file');
  }
});

test('permission denied rejects with EACCES (run as an unprivileged user when root)', async () => {
  const path = tmp.file('secret');
  writeRandom(path, 2 * MiB);
  chmodSync(path, 0o000);
  chmodSync(tmp.dir, 0o755);
  const index = fileURLToPath(new URL('../../../agent/src/signature/hashing/index.js', import.meta.url));
  const script = `
    import { HashEngine } from ${JSON.stringify(index)};
    const e = new HashEngine();
    let code = 'none';
    try { await e.hashFile(${JSON.stringify(path)}); } catch (err) { code = err.code + ' ' + err.message; }
    console.log(code);`;
  const asRoot = process.getuid?.() === 0;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
    ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
  });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^EACCES cannot hash .*secret: EACCES/);
});

test('a worker dying mid-file rejects that file, and the pool keeps working', async () => {
  const path = tmp.file('big');
  writeRandom(path, 128 * MiB);
  const ref = reference(path);
  const p = engine.hashFile(path, { sparse: 'never' });
  const slots = (
    engine as unknown as {
      slots: { worker: { terminate(): Promise<number> }; inflight: Map<number, unknown> }[];
    }
  ).slots;
  for (let i = 0; i < 10_000 && !slots.some((s) => s.inflight.size > 0); i++) await new Promise(setImmediate);
  const busy = slots.find((s) => s.inflight.size > 0);
  assert.ok(busy, 'a worker was busy');
  await busy!.worker.terminate();
  try {
    await p;
    assert.unreachable('should reject');
  } catch (e) {
    assert.match((e as Error).message, /hash worker failed/);
  }
  const again = await engine.hashFile(path);
  assert.is(again.digest, ref.digest);
});

test('a file truncated while being hashed never hangs: error or retried result', async () => {
  const path = tmp.file('shrinking');
  writeRandom(path, 256 * MiB);
  const p = engine.hashFile(path, { sparse: 'never' });
  await sleep(20);
  truncateSync(path, 8 * MiB);
  try {
    const r = await p;
    assert.is(r.digest, reference(path).digest);
  } catch (e) {
    assert.match((e as Error).message, /shrank|changed/);
  }
});

test('an idle engine does not keep the process alive; close() makes it unusable', async () => {
  const path = tmp.file('idle');
  writeRandom(path, 3 * MiB);
  const index = fileURLToPath(new URL('../../../agent/src/signature/hashing/index.js', import.meta.url));
  const script = `
    import { HashEngine } from ${JSON.stringify(index)};
    const r = await new HashEngine().hashFile(${JSON.stringify(path)});
    console.log(r.digest);`;
  const started = Date.now();
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.is(out.trim(), reference(path).digest);
  assert.ok(Date.now() - started < 10_000);
  const e = new HashEngine();
  await e.hashFile(path);
  await e.close();
  try {
    await e.hashFile(path);
    assert.unreachable('should reject');
  } catch (err) {
    assert.match((err as Error).message, 'closed');
  }
});

test.run();
