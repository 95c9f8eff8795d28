import { CliError, type Client } from '../client.js';
import { arg, emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { readPublicKey } from '../key-files.js';
import { table } from '../output.js';

const KEYS = '/ssh_key_authenticator';

async function myIdentityId(client: Client): Promise<string> {
  return (await client.call('GET', '/current-identity')).body.data.id;
}

export async function keys(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|add|rm)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const me = await myIdentityId(client);
    const r = await client.call('GET', `${KEYS}/ssh_keys.json?copersonid=${encodeURIComponent(me)}`);
    const list = r.status === 204 ? [] : (r.body.SshKeys as any[]);
    return emit(ctx, list, () =>
      list.length ? table(list, ['Id', 'Type', 'Comment', 'Fingerprint', 'Created']) : 'no keys\n',
    );
  }
  if (sub === 'add') {
    const file = arg(ctx, 1, 'FILE');
    noMoreArgs(ctx, 2);
    const line = readPublicKey(file);
    const me = await myIdentityId(client);
    const auth = await client.call('GET', `${KEYS}/authenticators.json`);
    const authenticatorId = auth.body?.SshKeyAuthenticators?.[0]?.Id;
    if (!authenticatorId) throw new CliError('the registry has no SSH key authenticator');
    const item: Record<string, unknown> = {
      Version: '1.0',
      Person: { Type: 'CO', Id: me },
      SshKeyAuthenticatorId: authenticatorId,
      Skey: line,
    };
    if (ctx.values.comment !== undefined) item.Comment = ctx.values.comment;
    const r = await client.call('POST', `${KEYS}/ssh_keys.json`, {
      RequestType: 'SshKeys',
      Version: '1.0',
      SshKeys: [item],
    });
    return emit(ctx, r.body, () => `added key ${r.body.Id}\n`);
  }
  if (sub === 'rm') {
    const id = arg(ctx, 1, 'ID');
    noMoreArgs(ctx, 2);
    if (!/^\d+$/.test(id)) throw usage(`key id must be a number, got '${id}'`);
    await client.call('DELETE', `${KEYS}/ssh_keys/${id}.json`);
    return emit(ctx, { id, deleted: true }, () => `removed key ${id}\n`);
  }
  throw usage(`unknown keys subcommand '${sub}'`);
}
