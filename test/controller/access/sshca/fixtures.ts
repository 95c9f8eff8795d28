/** Shared helpers for the sshca tests: temp dirs and keys made by the real ssh-keygen. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../helpers/sshd.js';

export { run };

export async function tempDir(
  prefix = 'vmwarden-sshca-',
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface UserKeyFiles {
  keyFile: string;
  pubFile: string;
  certFile: string;
  pub: string;
}

/** `ssh-keygen -t <type> [-b bits] -N '' -f <dir>/<name>`. */
export async function makeUserKey(
  dir: string,
  name: string,
  type: string,
  bits?: number,
): Promise<UserKeyFiles> {
  const keyFile = join(dir, name);
  const args = [
    '-q',
    '-t',
    type,
    ...(bits ? ['-b', String(bits)] : []),
    '-N',
    '',
    '-C',
    `${name}@test`,
    '-f',
    keyFile,
  ];
  const r = await run('ssh-keygen', args);
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr}`);
  return {
    keyFile,
    pubFile: `${keyFile}.pub`,
    certFile: `${keyFile}-cert.pub`,
    pub: await readFile(`${keyFile}.pub`, 'utf8'),
  };
}

/** ssh-keygen run with TZ=UTC so printed dates are predictable. */
export function keygen(args: string[]) {
  return run('ssh-keygen', args, { env: { ...process.env, TZ: 'UTC' } });
}

/** The format ssh-keygen -L uses for validity bounds (UTC here). */
export function keygenDate(d: Date): string {
  return d.toISOString().slice(0, 19);
}
