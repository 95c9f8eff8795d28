import { emit, noMoreArgs, pageQuery, session, type Ctx } from '../context.js';
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
  return emit(ctx, r, () =>
    r.entries.length
      ? table(
          r.entries.map((e: any) => ({ ...e, actor: e.actorName ?? e.actorId })),
          ['time', 'actor', 'action', 'object', 'outcome', 'status', 'detail'],
        )
      : 'no audit entries\n',
  );
}
