// Size of a block device (LVM volume, /dev/sdX, loop device). fstat reports 0 for those and Node
// has no lseek(SEEK_END): the kernel's /sys/dev/block/MAJ:MIN/size (512-byte sectors, also for
// partitions) is read, with `blockdev --getsize64` as the fallback.
import { execFile } from 'node:child_process';
import type { BigIntStats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** glibc's major()/minor() of a dev_t. */
export function deviceNumbers(rdev: bigint): { major: bigint; minor: bigint } {
  return {
    major: ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn),
    minor: (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn),
  };
}

export async function blockDeviceSize(path: string, st: BigIntStats): Promise<number> {
  const { major, minor } = deviceNumbers(st.rdev);
  try {
    const sectors = (await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim();
    if (/^\d+$/.test(sectors)) return Number(sectors) * 512;
  } catch {
    /* no sysfs here: ask blockdev */
  }
  const { stdout } = await execFileP('blockdev', ['--getsize64', path], { timeout: 10_000 });
  const size = stdout.trim();
  if (!/^\d+$/.test(size)) throw new Error(`blockdev --getsize64 ${path}: unexpected output`);
  return Number(size);
}
