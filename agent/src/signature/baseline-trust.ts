// Is a stored baseline the one this node signed? The Ed25519 signature of a baseline is checked once
// per distinct (node key, manifest, signature): the result is kept under the SHA-256 of the three, so
// an unchanged baseline costs one hash of its small canonical JSON at every check, and any change
// (re-sign, seal, an edited manifest or signature in agent.db, another node key) is verified again.
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, type Manifest } from './manifest.js';

/** Distinct baselines remembered (about two per instance: before and after a seal). */
const MAX_REMEMBERED = 4096;

export class BaselineTrust {
  private readonly key: KeyObject;
  private readonly results = new Map<string, boolean>();
  /** Ed25519 verifications done (each distinct baseline once): the agent's metrics and tests read it. */
  verifications = 0;

  constructor(private readonly publicKeyPem: string) {
    this.key = createPublicKey(publicKeyPem);
  }

  /** True when `signature` is this node key's signature of `manifest`. */
  verifies(manifest: Manifest, signature: string): boolean {
    const body = canonicalJson(manifest);
    const id = createHash('sha256')
      .update(this.publicKeyPem)
      .update('\0')
      .update(body)
      .update('\0')
      .update(signature)
      .digest('hex');
    const known = this.results.get(id);
    if (known !== undefined) return known;
    this.verifications++;
    const sig = Buffer.from(signature, 'base64');
    let ok = false;
    try {
      ok = sig.length === 64 && verify(null, Buffer.from(body, 'utf8'), this.key, sig);
    } catch {
      ok = false;
    }
    if (this.results.size >= MAX_REMEMBERED) this.results.clear();
    this.results.set(id, ok);
    return ok;
  }
}
