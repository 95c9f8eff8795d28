import { emit, noMoreArgs, pageQuery, session, type Ctx } from '../context.js';
import { Names } from '../names.js';
import { table } from '../output.js';

/** `vmwarden audit`: the newest audit rows first, filtered as GET /v1/audit filters them. */
export async function audit(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  noMoreArgs(ctx, 0);
  const filters: Record<string, string> = {};
  for (const k of ['since', 'action', 'actor'] as const) {
    const v = ctx.values[k];
    if (v !== undefined) filters[k] = v;
  }
  const r = (await client.call('GET', `/v1/audit${pageQuery(ctx, filters)}`)).body;
  if (ctx.format !== 'table' || !r.entries.length) return emit(ctx, r, () => 'no audit entries\n');
  // Objects are ids; an instance's or identity's shows as its name.
  const names = new Names(client);
  const rows = await Promise.all(
    r.entries.map(async (e: any) => {
      let object = e.object;
      for (const kind of ['instance', 'identity'] as const)
        if (object === e.object) object = await names.label(kind, e.object);
      return { ...e, actor: e.actorName ?? e.actorId, object };
    }),
  );
  return emit(ctx, r, () =>
    table(rows, ['time', 'actor', 'action', 'object', 'outcome', 'status', 'detail']),
  );
}
