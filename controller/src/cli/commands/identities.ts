import { arg, emit, noMoreArgs, pageQuery, session, usage, type Ctx } from '../context.js';
import { Names } from '../names.js';
import { table } from '../output.js';

export async function identities(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|create|delete)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const r = await client.call(
      'GET',
      `/identities${pageQuery(ctx, ctx.values.limit ? {} : { limit: '500' })}`,
    );
    const rows = (r.body.data as any[]).map((i) => ({
      id: i.id,
      name: i.name,
      role: i.role,
      createdAt: i.createdAt,
    }));
    return emit(ctx, r.body.data, () => table(rows, ['id', 'name', 'role', 'createdAt']));
  }
  if (sub === 'create') {
    const name = arg(ctx, 1, 'NAME');
    noMoreArgs(ctx, 2);
    const body: Record<string, unknown> = { name, role: ctx.values.role ?? 'user' };
    if (ctx.values.password !== undefined) body.password = ctx.values.password;
    const r = await client.call('POST', '/identities', body);
    return emit(ctx, r.body.data, () => `created identity ${name}: ${r.body.data.id}\n`);
  }
  if (sub === 'delete') {
    const ref = arg(ctx, 1, 'IDENTITY');
    noMoreArgs(ctx, 2);
    const id = await new Names(client).resolve('identity', ref);
    await client.call('DELETE', `/identities/${encodeURIComponent(id)}`);
    return emit(ctx, { id, deleted: true }, () => `deleted identity ${ref}${ref === id ? '' : ` (${id})`}\n`);
  }
  throw usage(`unknown identities subcommand '${sub}'`);
}
