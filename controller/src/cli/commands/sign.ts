import { arg, emit, noMoreArgs, pageQuery, session, usage, type Ctx } from '../context.js';
import { Names } from '../names.js';
import { keyValues, table } from '../output.js';

/** A sign object; an "unknown" verdict is followed by the parts that were not inspected. */
function signText(s: Record<string, unknown>): string {
  const { uninspected, ...rest } = s;
  const gaps = Array.isArray(uninspected) ? (uninspected as string[]) : [];
  if (!gaps.length) return keyValues(rest);
  return `${keyValues(rest)}not inspected (why is_valid is ${String(s.is_valid)}):\n${gaps.map((g) => `  - ${g}\n`).join('')}`;
}

export async function sign(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|get|create|update|manifest)');
  const names = new Names(client);
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const list = (await client.call('GET', `/v1/sign${pageQuery(ctx)}`)).body.signs as any[];
    if (ctx.format !== 'table' || !list.length) return emit(ctx, list, () => 'no signatures\n');
    const rows = await names.labelled(list, { node: ['node', 'node_id'] });
    const cols = ['instance_name', 'server_id', 'node', 'is_valid', 'created_at', 'updated_at'];
    return emit(ctx, list, () => table(rows, cols));
  }
  const id = await names.resolve('instance', arg(ctx, 1, 'INSTANCE'));
  noMoreArgs(ctx, 2);
  const path = `/v1/sign/${encodeURIComponent(id)}`;
  if (sub === 'get') {
    const s = (await client.call('GET', path)).body.sign;
    return emit(ctx, s, () => signText(s));
  }
  if (sub === 'create' || sub === 'update') {
    const s = (await client.call(sub === 'create' ? 'POST' : 'PUT', '/v1/sign', { server_id: id })).body.sign;
    return emit(ctx, s, () => signText(s));
  }
  if (sub === 'manifest') {
    const m = (await client.call('GET', `${path}/manifest`)).body;
    return emit(ctx, m, () => `${JSON.stringify(m, null, 2)}\n`);
  }
  throw usage(`unknown sign subcommand '${sub}'`);
}
