// Loop devices as real block devices for tests (`losetup`, root only). Every attached device is
// detached by detachAll(), which test files call in test.after.
import { execFileSync } from 'node:child_process';

const attached = new Set<string>();

/** Why loop devices cannot be used here, or undefined when they can. */
export function loopUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'loop devices need root';
  try {
    execFileSync('losetup', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'losetup is not installed';
  }
  return undefined;
}

/** Attaches FILE to a free loop device and returns its path (/dev/loopN). */
export function attachLoop(file: string): string {
  const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
  attached.add(dev);
  return dev;
}

export function detachLoop(dev: string): void {
  try {
    execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
  } finally {
    attached.delete(dev);
  }
}

/** Detaches every device this process attached (errors ignored: cleanup must not fail a run). */
export function detachAll(): void {
  for (const dev of [...attached]) {
    try {
      detachLoop(dev);
    } catch {
      /* already gone */
    }
  }
}
