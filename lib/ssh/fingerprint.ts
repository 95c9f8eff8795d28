import { createHash } from 'node:crypto';

/** SHA256 fingerprint of an SSH wire public key, formatted like ssh-keygen -l. */
export function sshFingerprint(blob: Uint8Array): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}
