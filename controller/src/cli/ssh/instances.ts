// The instances the caller may reach, as /v1/instances lists them, and resolving a name or UUID.
import { CliError, type Client } from '../client.js';

export interface InstanceRow {
  server_id: string;
  instance_name: string;
  node_id: number | null;
  ip_address: string;
  ssh_port: number;
  login_user: string;
  state: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PAGE = 1000;

/** Every instance the caller may reach: admins see all, others those they hold a grant for. */
export async function listInstances(client: Client): Promise<InstanceRow[]> {
  const all: InstanceRow[] = [];
  for (let offset = 0; ; offset += PAGE) {
    const r = (await client.call('GET', `/v1/instances?limit=${PAGE}&offset=${offset}`)).body;
    all.push(...(r.instances as InstanceRow[]));
    if (offset + PAGE >= r.total || r.instances.length === 0) return all;
  }
}

/**
 * The instance a name or UUID designates among those the caller may reach; undefined when it is not
 * among them (unknown, or not granted: the access request then says which).
 */
export async function findInstance(client: Client, ref: string): Promise<InstanceRow | undefined> {
  if (UUID.test(ref)) {
    const r = await client.call('GET', `/v1/instances/${ref.toLowerCase()}`, undefined, [403, 404]);
    return r.status === 200 ? (r.body as InstanceRow) : undefined;
  }
  const named = (await listInstances(client)).filter((i) => i.instance_name === ref);
  if (named.length > 1) throw new CliError(`more than one instance is named ${ref}: use its UUID`);
  return named[0];
}

/** Refuses, in one line, an instance nobody can log into right now. */
export function assertReachable(i: InstanceRow): void {
  if (i.state !== 'running') throw new CliError(`instance ${i.instance_name} is ${i.state}, not running`);
  if (!i.ip_address) throw new CliError(`instance ${i.instance_name} has no known address`);
}
