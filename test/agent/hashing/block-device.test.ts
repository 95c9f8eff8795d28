// Block devices (a loop device standing in for an LVM volume) are hashed like files: the same
// digest as the file behind them, read densely, never reused from their identity.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { HashEngine } from '../../../agent/src/signature/hashing/index.js';
import { blockDeviceSize, deviceNumbers } from '../../../agent/src/signature/hashing/block-device.js';
import { attachLoop, detachAll, loopUnavailable } from '../../helpers/loop.js';
import { MiB, reference, tempDir, writeRandom } from './helpers.js';

const tmp = tempDir();
const engine = new HashEngine({ workers: 2 });
const skip = loopUnavailable();
let dev = '';
const SIZE = 3 * MiB + 4096;

test.before(() => {
  if (skip) return console.log(`# block device tests skipped: ${skip}`);
  writeRandom(tmp.file('vol.img'), SIZE);
  dev = attachLoop(tmp.file('vol.img'));
});
test.after(async () => {
  detachAll();
  await engine.close();
  tmp.remove();
});

test('deviceNumbers decodes dev_t like glibc', () => {
  assert.equal(deviceNumbers(0x0700n), { major: 7n, minor: 0n });
  assert.equal(deviceNumbers(0x10300n), { major: 259n, minor: 0n }); // 259:0 (nvme0n1)
  assert.equal(deviceNumbers(0xfd05n), { major: 253n, minor: 5n }); // 253:5 (a dm/LVM volume)
  assert.equal(deviceNumbers(0x1000fd12n), { major: 253n, minor: 0x10012n });
});

test('a block device: its size from the device, the digest of its content, dense', async () => {
  if (skip) return;
  assert.ok(statSync(dev).isBlockDevice());
  assert.is(await blockDeviceSize(dev, statSync(dev, { bigint: true })), SIZE);
  const r = await engine.hashFile(dev, { sparse: 'always' });
  const ref = reference(tmp.file('vol.img'));
  assert.is(r.size, SIZE);
  assert.is(r.digest, ref.digest);
  assert.equal(r.chunks, ref.chunks);
  assert.is(r.stats.bytesRead, SIZE);
  assert.is(r.stats.holeChunks, 0);
  assert.is(r.stable, false, 'a device node does not change when its content does');
});

test('a block device is read again at every check, and a changed byte names its chunk', async () => {
  if (skip) return;
  const first = await engine.hashFile(dev);
  const again = await engine.hashFile(dev, { previous: { ...first, stable: true } });
  assert.is(again.reused, false);
  assert.is(again.stats.bytesRead, SIZE);
  assert.is(again.digest, first.digest);
  const fd = openSync(dev, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 2 * MiB + 7);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, 2 * MiB + 7);
  closeSync(fd);
  const changed = await engine.hashFile(dev, { previous: { ...first, stable: true } });
  assert.is(changed.reused, false);
  assert.is.not(changed.digest, first.digest);
  assert.equal(
    changed.chunks.map((c, i) => (c === first.chunks[i] ? -1 : i)).filter((i) => i >= 0),
    [2],
  );
});

test.run();
