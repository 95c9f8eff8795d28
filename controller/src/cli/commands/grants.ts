import { arg, emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { Names } from '../names.js';
import { table } from '../output.js';

/** `vmwarden grants`: instances and identities by name, id or UUID. */
export async function grants(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const names = new Names(client);
  const sub = arg(ctx, 0, 'subcommand (list|add|rm)');
  if (sub === 'list') {
    const id = await names.resolve('instance', arg(ctx, 1, 'INSTANCE'));
    noMoreArgs(ctx, 2);
    const r = (await client.call('GET', `/v1/instances/${id}/grants`)).body;
    if (ctx.format !== 'table' || !r.grants.length) return emit(ctx, r, () => 'no grants\n');
    const rows = await names.labelled(r.grants, {
      instance: ['instance', 'server_id'],
      identity: ['identity', 'identity_id'],
    });
    return emit(ctx, r, () => table(rows, ['instance', 'identity', 'identity_id', 'created_at']));
  }
  if (sub === 'add' || sub === 'rm') {
    const instance = arg(ctx, 1, 'INSTANCE');
    const identity = arg(ctx, 2, 'IDENTITY');
    noMoreArgs(ctx, 3);
    const id = await names.resolve('instance', instance);
    const who = await names.resolve('identity', identity);
    if (sub === 'add') {
      const r = (await client.call('POST', `/v1/instances/${id}/grants`, { identity_id: who })).body;
      return emit(ctx, r, () => `granted ${identity} access to ${instance}\n`);
    }
    const r = (await client.call('DELETE', `/v1/instances/${id}/grants/${who}`)).body;
    return emit(ctx, r, () => `removed ${identity}'s grant on ${instance}\n`);
  }
  throw usage(`unknown grants subcommand '${sub}'`);
}
