import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { ConfigError } from '../../../lib/platform/layered-config.js';
import { readPrivateFile } from '../../../lib/platform/private-file.js';
import type { Clock } from '../../../lib/platform/clock.js';
import type { Database } from '../../../lib/store/database.js';

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'v1:';
/** Sealed once per database: tells a controller with another KEK apart before it seals anything. */
const CHECK_AAD = 'vmwarden key-encryption-key check';
const CHECK_TEXT = 'vmwarden';

/** The controller cannot use the sealed keys: printed as one line by main.ts, which exits 2. */
export class KeyEncryptionKeyError extends ConfigError {}

/**
 * The cluster's key-encryption key (KEK): 32 random bytes in a 0600 file on every controller, which
 * seals the CA private keys kept in the shared database (AES-256-GCM, a random nonce per seal, the
 * name of what is sealed as associated data so a sealed value cannot be moved to another row).
 * A controller joins a cluster with a copy of this file; the first controller on an empty database
 * creates it.
 */
export class KeyEncryptionKey {
  private constructor(
    private readonly key: Buffer,
    readonly path: string,
  ) {}

  /**
   * Reads the KEK file (refusing one others can read), or creates it when it is absent and the
   * database holds nothing sealed yet, and checks it is the key the database's secrets are sealed with.
   */
  static async open(db: Database, path: string, clock: Clock): Promise<KeyEncryptionKey> {
    let key = readKeyFile(path);
    let created = false;
    if (!key) {
      if (await readCheck(db)) {
        throw new KeyEncryptionKeyError(
          `the database's CA keys are sealed with a key-encryption key and ${path} does not exist: copy cluster.key from a running controller to ${path} (mode 0600)`,
        );
      }
      key = createKeyFile(path);
      created = key !== undefined;
      key ??= readKeyFile(path)!; // created meanwhile by a process sharing this data dir
    }
    const kek = new KeyEncryptionKey(key, path);
    const candidate = kek.seal(CHECK_TEXT, CHECK_AAD);
    const check = await db.write(async (tx) => {
      await tx.run(
        'INSERT INTO sealed_key_check (id, sealed, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING',
        [candidate, clock.now().toISOString()],
      );
      return (await tx.get<{ sealed: string }>('SELECT sealed FROM sealed_key_check WHERE id = 1'))!.sealed;
    });
    if (!kek.opens(check, CHECK_AAD)) {
      // Another controller initialised the database with its own KEK at the same moment: ours is useless.
      if (created) unlinkSync(path);
      throw new KeyEncryptionKeyError(
        `the database's CA keys are sealed with a key-encryption key this controller does not have (${path} holds another one): copy cluster.key from a running controller to ${path} (mode 0600)`,
      );
    }
    return kek;
  }

  /** `v1:` + base64(nonce | tag | ciphertext); `label` names what is sealed and must be given to open it. */
  seal(plaintext: Buffer | string, label: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(label));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return FORMAT + Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString('base64');
  }

  /** The plaintext sealed under `label`; KeyEncryptionKeyError when it does not open with this KEK. */
  open(sealed: string, label: string): Buffer {
    const plaintext = this.tryOpen(sealed, label);
    if (!plaintext) {
      throw new KeyEncryptionKeyError(
        `the sealed ${label} in the database does not open with the key-encryption key ${this.path} (tampered with, or sealed with another key)`,
      );
    }
    return plaintext;
  }

  private opens(sealed: string, label: string): boolean {
    return this.tryOpen(sealed, label) !== undefined;
  }

  private tryOpen(sealed: string, label: string): Buffer | undefined {
    if (!sealed.startsWith(FORMAT)) return undefined;
    const raw = Buffer.from(sealed.slice(FORMAT.length), 'base64');
    if (raw.length < NONCE_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(label));
      decipher.setAuthTag(raw.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]);
    } catch {
      return undefined;
    }
  }
}

function readCheck(db: Database) {
  return db.get<{ sealed: string }>('SELECT sealed FROM sealed_key_check WHERE id = 1');
}

/** The key in the file (base64, or 64 hex digits), or undefined when there is no file. */
function readKeyFile(path: string): Buffer | undefined {
  let text: string;
  try {
    text = readPrivateFile(path).toString('utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES || (!/^[0-9a-f]{64}$/i.test(text) && key.toString('base64') !== text)) {
    throw new KeyEncryptionKeyError(
      `${path} is not a key-encryption key (expected ${KEY_BYTES} bytes as base64 or hex text)`,
    );
  }
  return key;
}

/** Creates the file 0600 with a new key; undefined when it already exists (never overwritten). */
function createKeyFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  const key = randomBytes(KEY_BYTES);
  try {
    writeSync(fd, `${key.toString('base64')}\n`);
  } finally {
    closeSync(fd);
  }
  return key;
}
