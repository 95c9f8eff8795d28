import { CliError, type Client } from '../client.js';
import { arg, emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { Names } from '../names.js';
import { keyValues, progressBar, table } from '../output.js';

export async function nodes(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|add)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const list = (await client.call('GET', '/v1/nodes')).body.nodes as any[];
    return emit(ctx, list, () =>
      table(list, [
        'id',
        'name',
        'hostname',
        'enrolled',
        'validation_active',
        'agent_address',
        'last_seen_at',
      ]),
    );
  }
  if (sub === 'add') {
    const name = arg(ctx, 1, 'NAME');
    noMoreArgs(ctx, 2);
    const r = (await client.call('POST', '/v1/nodes', { name })).body;
    return emit(
      ctx,
      r,
      () =>
        keyValues(r) +
        `enroll the agent with: vmwarden-agent enroll --controller HOST:PORT --token ${r.enrollment_token}\n`,
    );
  }
  throw usage(`unknown nodes subcommand '${sub}'`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows GET /v1/tasks/{id} until SUCCESS or FAILURE; a progress bar on a terminal. */
async function followTask(ctx: Ctx, client: Client, taskId: string): Promise<any> {
  const tty = process.stderr.isTTY && !ctx.json;
  let last = '';
  for (;;) {
    const t = (await client.call('GET', `/v1/tasks/${encodeURIComponent(taskId)}`)).body;
    const line = `${t.action} node ${t.node_id} ${progressBar(t.state === 'SUCCESS' ? 100 : (t.progress ?? 0))} ${t.state}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (line !== last && !ctx.json) process.stderr.write(`${line}\n`);
    last = line;
    if (t.state === 'SUCCESS' || t.state === 'FAILURE') {
      if (tty) process.stderr.write('\n');
      return t;
    }
    await sleep(250);
  }
}

export async function node(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const action = arg(ctx, 0, 'action (activate|deactivate)');
  if (action !== 'activate' && action !== 'deactivate') throw usage(`unknown node action '${action}'`);
  const ref = arg(ctx, 1, 'NODE');
  noMoreArgs(ctx, 2);
  const nodeId = await new Names(client).resolve('node', ref);
  const r = (await client.call('POST', `/v1/sign/node/${encodeURIComponent(nodeId)}/action`, { action }))
    .body;
  if (ctx.values['no-wait']) return emit(ctx, r, () => `task ${r.task_id} started (${action} node ${ref})\n`);
  const t = await followTask(ctx, client, r.task_id);
  emit(ctx, t, () => (t.state === 'SUCCESS' ? `${action} node ${ref}: done (task ${t.task_id})\n` : ''));
  if (t.state !== 'SUCCESS')
    throw new CliError(`${action} node ${ref} failed: ${t.error ?? t.state} (task ${t.task_id})`);
}
