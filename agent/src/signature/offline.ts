// Offline check of a signed manifest, from its JSON, the node's public key and the files alone (no
// agent store, no libvirt): the signature, then each boot artifact and sealed disk hashed again with
// the algorithm the manifest names (SHA-256 when it names none).
import { HashEngine, algorithmOf } from './hashing/engine.js';
import { hashGuestDisk } from './guest-disk/hasher.js';
import { fileDigest, isSealed, manifestAlgorithm, parseFileDigest, type Manifest } from './manifest.js';
import { verifyManifest } from './node-key.js';

export interface OfflineFileCheck {
  path: string;
  expected: string;
  actual?: string;
  /** Why the file does not match, when it does not. */
  problem?: string;
}

export interface OfflineVerdict {
  signatureValid: boolean;
  algorithm: string;
  files: OfflineFileCheck[];
  /** Signature valid and every file (when checked) as sealed. */
  valid: boolean;
}

export async function verifyManifestOffline(
  publicKeyPem: string,
  manifest: Manifest,
  signatureB64: string,
  opts: { files?: boolean; engine?: HashEngine } = {},
): Promise<OfflineVerdict> {
  const signatureValid = verifyManifest(publicKeyPem, manifest, signatureB64);
  let algorithm: ReturnType<typeof manifestAlgorithm>;
  try {
    algorithm = manifestAlgorithm(manifest);
  } catch {
    return { signatureValid, algorithm: String(manifest.digestAlgorithm), files: [], valid: false };
  }
  const entries = [...manifest.boot, ...manifest.disks.filter(isSealed)];
  const files: OfflineFileCheck[] = [];
  const engine = opts.files === false ? undefined : (opts.engine ?? new HashEngine());
  try {
    for (const e of entries) {
      const check: OfflineFileCheck = { path: e.path, expected: e.digest };
      files.push(check);
      if (parseFileDigest(e.digest)?.algorithm !== algorithm) {
        check.problem = `digest is not a ${algorithm} file digest`;
        continue;
      }
      if (!engine) continue;
      try {
        // A qcow2 disk sealed over its guest content is read the same way (image map or qemu-nbd), in full.
        const r =
          'content' in e && e.content === 'guest'
            ? await hashGuestDisk(e.path, { format: e.format ?? 'qcow2', algorithm, engine })
            : await engine.hashFile(e.path, { algorithm });
        check.actual = fileDigest(r.digest, algorithmOf(r));
        if (check.actual !== e.digest) check.problem = 'content differs';
      } catch (err) {
        check.problem = `unreadable: ${(err as Error).message}`;
      }
    }
  } finally {
    if (engine && !opts.engine) await engine.close();
  }
  return { signatureValid, algorithm, files, valid: signatureValid && files.every((f) => !f.problem) };
}
