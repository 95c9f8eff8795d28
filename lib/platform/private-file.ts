import { chmodSync, openSync, closeSync, renameSync, statSync, writeSync, readFileSync } from 'node:fs';

/** Writes a secret so it is never readable by others, not even for a moment: 0600 temp file + rename. */
export function writePrivateFile(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export class InsecureFileError extends Error {}

/** Reads a secret, refusing it when group or others may read or write it. */
export function readPrivateFile(path: string): Buffer {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new InsecureFileError(
      `refusing private key ${path}: mode ${mode.toString(8).padStart(4, '0')} lets group/others access it; run chmod 600 ${path}`,
    );
  }
  return readFileSync(path);
}
