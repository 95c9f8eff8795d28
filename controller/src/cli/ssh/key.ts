// The user's SSH key: --identity FILE, or one ed25519 key generated once in the CLI config dir.
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CliError } from '../client.js';
import { configDir } from '../config.js';
import { keyPaths, readPublicKey } from '../key-files.js';

const run = promisify(execFile);

export interface UserKey {
  privFile: string;
  publicKey: string;
  /** Where the certificate goes: `<key>-cert.pub`, where ssh and ssh-add look for it. */
  certFile: string;
}

export const defaultKeyFile = () => join(configDir(), 'id_ed25519');

export async function userKey(identity?: string): Promise<UserKey> {
  const file = identity ?? defaultKeyFile();
  const { privFile, certFile } = keyPaths(file);
  if (!existsSync(privFile)) {
    if (identity) throw new CliError(`no private key at ${privFile}`);
    mkdirSync(configDir(), { recursive: true, mode: 0o700 });
    try {
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vmwarden', '-f', privFile]);
    } catch (err) {
      throw new CliError(`ssh-keygen could not create ${privFile}: ${(err as Error).message.split('\n')[0]}`);
    }
    chmodSync(privFile, 0o600);
  }
  return { privFile, certFile, publicKey: readPublicKey(privFile) };
}
