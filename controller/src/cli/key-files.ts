import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CliError } from './client.js';

/** The public key and the certificate path for --key: accepts the private key or its .pub. */
export function keyPaths(file: string): { pubFile: string; privFile: string; certFile: string } {
  const privFile = file.endsWith('.pub') ? file.slice(0, -4) : file;
  const pubFile = file.endsWith('.pub') ? file : `${file}.pub`;
  return { pubFile, privFile, certFile: join(dirname(privFile), `${basename(privFile)}-cert.pub`) };
}

export function readPublicKey(file: string): string {
  const { pubFile } = keyPaths(file);
  if (!existsSync(pubFile)) throw new CliError(`no public key at ${pubFile}`);
  const text = readFileSync(pubFile, 'utf8').trim();
  if (/PRIVATE KEY/.test(text)) throw new CliError(`${pubFile} is a private key: give the public key`);
  return text;
}
