// `vmwarden ls`: the instances the caller may reach, with node names and signature status when the
// caller may read them (the node and signature APIs are admin-only).
import type { Client } from '../client.js';
import { emit, noMoreArgs, session, type Ctx } from '../context.js';
import { table } from '../output.js';
import { listInstances } from '../ssh/instances.js';

async function adminOnly<T>(client: Client, path: string, pick: (body: any) => T): Promise<T | undefined> {
  const r = await client.call('GET', path, undefined, [403]);
  return r.status === 200 ? pick(r.body) : undefined;
}

async function signatures(client: Client): Promise<Map<string, string> | undefined> {
  const status = new Map<string, string>();
  for (let offset = 0; ; offset += 1000) {
    const page = await adminOnly(client, `/v1/sign?limit=1000&offset=${offset}`, (b) => b.signs as any[]);
    if (!page) return undefined;
    for (const s of page) status.set(s.server_id, s.is_valid);
    if (page.length < 1000) return status;
  }
}

export async function ls(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  const client = session(ctx);
  const instances = await listInstances(client);
  const nodes = await adminOnly(
    client,
    '/v1/nodes',
    (b) => new Map<number, string>((b.nodes as any[]).map((n) => [n.id, n.name])),
  );
  const signs = instances.length ? await signatures(client) : undefined;
  const rows = instances
    .map((i) => ({
      name: i.instance_name,
      server_id: i.server_id,
      state: i.state,
      address: i.ip_address || null,
      port: i.ssh_port,
      login_user: i.login_user,
      node_id: i.node_id,
      node: i.node_id === null ? null : (nodes?.get(i.node_id) ?? null),
      signature: signs ? (signs.get(i.server_id) ?? 'none') : null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  emit(ctx, { instances: rows }, () =>
    rows.length
      ? table(
          rows.map((r) => ({
            ...r,
            address: r.address && `${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}`,
            node: r.node ?? r.node_id,
          })),
          ['name', 'state', 'address', 'node', 'signature'],
        )
      : 'no instances you may reach\n',
  );
}
