/** Real SSH keys made with ssh-keygen, for the key registry tests. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestKey {
  /** `type base64 comment` as in the .pub file. */
  line: string;
  type: string;
  body: string;
  comment: string;
  /** The private key file's text. */
  privatePem: string;
  /** RFC 4716 ("---- BEGIN SSH2 PUBLIC KEY ----") export of the public key. */
  rfc4716: string;
  /** ssh-keygen's own SHA256 fingerprint. */
  fingerprint: string;
}

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-keys-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** e.g. makeKey('ed25519'), makeKey('ecdsa', 384), makeKey('rsa', 1024), makeKey('dsa'). */
export function makeKey(
  kind: 'ed25519' | 'ecdsa' | 'rsa' | 'dsa',
  bits?: number,
  comment = `test-${n}@vmwarden`,
): TestKey {
  const file = join(dir, `k${n++}`);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    kind,
    ...(bits ? ['-b', String(bits)] : []),
    '-N',
    '',
    '-C',
    comment,
    '-f',
    file,
  ]);
  const line = readFileSync(`${file}.pub`, 'utf8').trim();
  const [type, body] = line.split(' ');
  const rfc4716 = execFileSync('ssh-keygen', ['-e', '-f', `${file}.pub`], { encoding: 'utf8' });
  const fingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], {
    encoding: 'utf8',
  }).split(' ')[1]!;
  return {
    line,
    type: type!,
    body: body!,
    comment,
    privatePem: readFileSync(file, 'utf8'),
    rfc4716,
    fingerprint,
  };
}
