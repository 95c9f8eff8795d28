// Host verification without trust on first use: a known_hosts file holding the controller's host CA.
import { join } from 'node:path';
import type { Client } from '../client.js';
import { configDir } from '../config.js';
import { writePrivate } from './certificate.js';

export const knownHostsFile = () => join(configDir(), 'known_hosts');

/**
 * Writes the `@cert-authority` line(s) of GET /v1/access/host-ca-pubkeys to the CLI's known_hosts and
 * returns its path; undefined when the controller has no host CA (404): ssh then checks host keys
 * against the user's own known_hosts, as it always does.
 */
export async function hostCaKnownHosts(client: Client): Promise<string | undefined> {
  const r = await client.call('GET', '/v1/access/host-ca-pubkeys', undefined, [404]);
  const text = r.status === 200 ? r.body?.known_hosts : undefined;
  if (typeof text !== 'string' || !text.includes('@cert-authority')) return undefined;
  const file = knownHostsFile();
  writePrivate(file, text.endsWith('\n') ? text : `${text}\n`);
  return file;
}

/** Still reachable: a controller older than the host CA answers its route with 404. */
export const NO_HOST_CA_WARNING =
  'vmwarden: warning: this controller publishes no host CA (an older controller?): ' +
  'host keys are checked against your own known_hosts\n';
