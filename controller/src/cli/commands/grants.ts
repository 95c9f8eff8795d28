import { CliError, type Client } from '../client.js';
import { arg, emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { table } from '../output.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An instance's server_id from a UUID or its name (/v1/instances/{id} takes UUIDs only). */
async function instanceId(client: Client, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref.toLowerCase();
  const found: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const r = (await client.call('GET', `/v1/instances?limit=1000&offset=${offset}`)).body;
    for (const i of r.instances as any[]) if (i.instance_name === ref) found.push(i.server_id);
    if (offset + 1000 >= r.total) break;
  }
  if (found.length === 0) throw new CliError(`no instance named ${ref}`);
  if (found.length > 1) throw new CliError(`more than one instance is named ${ref}: use its server_id`);
  return found[0]!;
}

/** An identity's id from its id or its name. */
async function identityId(client: Client, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const filter = encodeURIComponent(`name = "${ref.replace(/["\\]/g, '\\$&')}"`);
  const rows = (await client.call('GET', `/identities?filter=${filter}`)).body.data as any[];
  const hit = rows.find((i) => i.name === ref);
  if (!hit) throw new CliError(`no identity named ${ref}`);
  return hit.id;
}

export async function grants(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|add|rm)');
  if (sub === 'list') {
    const id = await instanceId(client, arg(ctx, 1, 'INSTANCE'));
    noMoreArgs(ctx, 2);
    const r = (await client.call('GET', `/v1/instances/${id}/grants`)).body;
    return emit(ctx, r, () =>
      r.grants.length ? table(r.grants, ['server_id', 'identity_id', 'created_at']) : 'no grants\n',
    );
  }
  if (sub === 'add' || sub === 'rm') {
    const instance = arg(ctx, 1, 'INSTANCE');
    const identity = arg(ctx, 2, 'IDENTITY');
    noMoreArgs(ctx, 3);
    const id = await instanceId(client, instance);
    const who = await identityId(client, identity);
    if (sub === 'add') {
      const r = (await client.call('POST', `/v1/instances/${id}/grants`, { identity_id: who })).body;
      return emit(ctx, r, () => `granted ${identity} access to ${instance}\n`);
    }
    const r = (await client.call('DELETE', `/v1/instances/${id}/grants/${who}`)).body;
    return emit(ctx, r, () => `removed ${identity}'s grant on ${instance}\n`);
  }
  throw usage(`unknown grants subcommand '${sub}'`);
}
