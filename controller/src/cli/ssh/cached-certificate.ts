// Certificates kept per host name for `config-ssh` (ssh reads them as <dir>/certs/%n-cert.pub):
// reused while they stay valid for more than a minute, else requested again.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, type Client } from '../client.js';
import { configDir } from '../config.js';
import { requestCertificate, writePrivate } from './certificate.js';
import { assertReachable, findInstance } from './instances.js';
import { userKey } from './key.js';

const MIN_REMAINING_MS = 60_000;

export const certsDir = () => join(configDir(), 'certs');

/** What the ProxyCommand needs beside the certificate file. */
export interface Target {
  server_id: string;
  instance_name: string;
  address: string;
  port: number;
  login_user: string;
  valid_until: string;
  public_key: string;
}

const HOST = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `web-1.vmw` → `web-1` (a name or a UUID). */
export function instanceOf(host: string, domain: string): string {
  const suffix = `.${domain}`;
  if (!HOST.test(host) || !host.toLowerCase().endsWith(suffix.toLowerCase()) || host.length <= suffix.length)
    throw new CliError(`'${host}' is not INSTANCE.${domain}`, 2);
  return host.slice(0, -suffix.length);
}

export async function ensureCertificate(client: Client, host: string, domain: string): Promise<Target> {
  const name = instanceOf(host, domain);
  const key = await userKey();
  const certFile = join(certsDir(), `${host}-cert.pub`);
  const metaFile = join(certsDir(), `${host}.json`);
  const cached = readTarget(metaFile);
  if (
    cached &&
    cached.public_key === key.publicKey &&
    Date.parse(cached.valid_until) - Date.now() > MIN_REMAINING_MS &&
    existsSync(certFile)
  )
    return cached;

  const instance = await findInstance(client, name);
  if (instance) assertReachable(instance);
  const issued = await requestCertificate(client, instance?.server_id ?? name, name, key.publicKey);
  if (!issued.vm_ip_address) throw new CliError(`instance ${name} has no known address`);
  const target: Target = {
    server_id: instance?.server_id ?? name,
    instance_name: instance?.instance_name ?? name,
    address: issued.vm_ip_address,
    port: issued.ssh_port,
    login_user: issued.username,
    valid_until: issued.valid_until,
    public_key: key.publicKey,
  };
  writePrivate(certFile, `${issued.certificate.trim()}\n`);
  writePrivate(metaFile, `${JSON.stringify(target, null, 2)}\n`);
  return target;
}

function readTarget(file: string): Target | undefined {
  try {
    const t = JSON.parse(readFileSync(file, 'utf8')) as Target;
    return typeof t.address === 'string' && typeof t.port === 'number' ? t : undefined;
  } catch {
    return undefined;
  }
}
