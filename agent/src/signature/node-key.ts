// The node's Ed25519 signing key. Created at first start in the agent's data directory as a PKCS#8
// PEM file written 0600; a key file that group or others may access is refused.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  createHash,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readPrivateFile, writePrivateFile } from '../../../lib/platform/private-file.js';
import { canonicalJson, type Manifest } from './manifest.js';

export const NODE_KEY_FILE = 'node-key.pem';

export class NodeKey {
  readonly publicKeyPem: string;

  private constructor(
    private readonly privateKey: KeyObject,
    readonly path: string,
  ) {
    this.publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  }

  /** Loads `<dataDir>/node-key.pem`, creating it (0600) when absent. */
  static loadOrCreate(dataDir: string): NodeKey {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, NODE_KEY_FILE);
    if (!existsSync(path)) {
      const { privateKey } = generateKeyPairSync('ed25519');
      writePrivateFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    }
    const key = createPrivateKey(readPrivateFile(path));
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new Error(`${path}: expected an Ed25519 key, found ${key.asymmetricKeyType}`);
    }
    return new NodeKey(key, path);
  }

  /** 'SHA256:<base64>' of the DER public key, for logs and the catalogue. */
  get fingerprint(): string {
    return publicKeyFingerprint(this.publicKeyPem);
  }

  /** Base64 Ed25519 signature over canonicalJson(manifest). */
  sign(manifest: Manifest): string {
    return sign(null, Buffer.from(canonicalJson(manifest), 'utf8'), this.privateKey).toString('base64');
  }
}

export function publicKeyFingerprint(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return 'SHA256:' + createHash('sha256').update(der).digest('base64').replace(/=+$/, '');
}

/** Offline check of a manifest signature with the node's public key; false on any malformed input. */
export function verifyManifest(publicKeyPem: string, manifest: Manifest, signatureB64: string): boolean {
  try {
    const key = createPublicKey(publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') return false;
    const sig = Buffer.from(signatureB64, 'base64');
    if (sig.length !== 64) return false;
    return verify(null, Buffer.from(canonicalJson(manifest), 'utf8'), key, sig);
  } catch {
    return false;
  }
}
