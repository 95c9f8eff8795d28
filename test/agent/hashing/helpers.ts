// Shared fixtures for the hashing tests: temp files and an independent reference digest
// (whole file in memory, SHA-256 per 1 MiB, then SHA-256 over the digests and the 8-byte BE size).
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MiB = 1024 * 1024;

export function tempDir(): { dir: string; file: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'vmwarden-hash-test-'));
  return {
    dir,
    file: (name) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function randomBytes(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let o = 0; o < n; o += 64 * MiB) randomFillSync(b, o, Math.min(64 * MiB, n - o));
  return b;
}

export function writeRandom(path: string, size: number): Buffer {
  const b = randomBytes(size);
  writeFileSync(path, b);
  return b;
}

export function reference(path: string, chunkSize = MiB): { digest: string; chunks: string[] } {
  const data = readFileSync(path);
  const chunks: string[] = [];
  const all = createHash('sha256');
  for (let o = 0; o < data.length; o += chunkSize) {
    const d = createHash('sha256')
      .update(data.subarray(o, o + chunkSize))
      .digest();
    chunks.push(d.toString('hex'));
    all.update(d);
  }
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(data.length));
  all.update(size);
  return { digest: all.digest('hex'), chunks };
}
