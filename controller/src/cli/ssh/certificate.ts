// A certificate for one instance (POST /v1/access/request), its API refusals as one line each.
import { chmodSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { CliError, type Client } from '../client.js';

export interface Issued {
  certificate_id: string;
  certificate: string;
  vm_ip_address: string;
  ssh_port: number;
  username: string;
  valid_until: string;
  ttl_seconds: number;
}

/** `sandbox` is the server_id or name sent; `label` what the user typed (for the messages). */
export async function requestCertificate(
  client: Client,
  sandbox: string,
  label: string,
  publicKey: string,
  ttlMinutes?: number,
): Promise<Issued> {
  const body: Record<string, unknown> = { sandbox_id: sandbox, public_key: publicKey };
  if (ttlMinutes !== undefined) body.ttl_minutes = ttlMinutes;
  const r = await client.call('POST', '/v1/access/request', body, [403, 404, 409]);
  const why = typeof r.body?.error === 'string' ? r.body.error : `HTTP ${r.status}`;
  if (r.status === 404) throw new CliError(`unknown instance ${label}`);
  if (r.status === 403) throw new CliError(`no access to instance ${label}: ${why}`);
  if (r.status === 409) throw new CliError(why);
  return r.body as Issued;
}

/** Written through a temp file and a rename, mode 0600. */
export function writePrivate(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
