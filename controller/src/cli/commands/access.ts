import { writeFileSync } from 'node:fs';
import { CliError } from '../client.js';
import { arg, emit, intOption, noMoreArgs, pageQuery, session, usage, type Ctx } from '../context.js';
import { keyPaths, readPublicKey } from '../key-files.js';
import { Names } from '../names.js';
import { localTime, table } from '../output.js';

export async function access(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const names = new Names(client);
  /** --instance as the API's sandbox_id filter. */
  const instanceFilter = async (): Promise<Record<string, string>> =>
    ctx.values.instance ? { sandbox_id: await names.resolve('instance', ctx.values.instance) } : {};
  const sub = arg(ctx, 0, 'subcommand (request|certs|revoke|sessions)');
  if (sub === 'request') {
    const sandbox = await names.resolve('instance', arg(ctx, 1, 'INSTANCE'));
    noMoreArgs(ctx, 2);
    if (!ctx.values.key) throw usage('access request needs --key FILE (your public key)');
    const publicKey = readPublicKey(ctx.values.key);
    const body: Record<string, unknown> = { sandbox_id: sandbox, public_key: publicKey };
    const ttl = intOption(ctx.values.ttl, 'ttl');
    if (ttl !== undefined) body.ttl_minutes = ttl;
    const r = (await client.call('POST', '/v1/access/request', body)).body;
    const { privFile, certFile } = keyPaths(ctx.values.key);
    writeFileSync(certFile, `${String(r.certificate).trim()}\n`, { mode: 0o644 });
    const ssh = `ssh -i ${privFile} -o CertificateFile=${certFile} -p ${r.ssh_port} ${r.username}@${r.vm_ip_address}`;
    return emit(
      ctx,
      { ...r, certificate_file: certFile, ssh_command: ssh },
      () =>
        `certificate ${r.certificate_id} written to ${certFile} (valid until ${localTime(r.valid_until)})\n${ssh}\n`,
    );
  }
  if (sub === 'certs') {
    noMoreArgs(ctx, 1);
    const filters = await instanceFilter();
    if (ctx.values.status) filters.status = ctx.values.status;
    const r = (await client.call('GET', `/v1/access/certificates${pageQuery(ctx, filters)}`)).body;
    if (ctx.format !== 'table' || !r.certificates.length) return emit(ctx, r, () => 'no certificates\n');
    const rows = await names.labelled(r.certificates, {
      instance: ['instance', 'sandbox_id'],
      user: ['identity', 'user_id'],
    });
    return emit(ctx, r, () =>
      table(rows, ['id', 'instance', 'user', 'status', 'valid_after', 'valid_before']),
    );
  }
  if (sub === 'revoke') {
    const id = arg(ctx, 1, 'ID');
    noMoreArgs(ctx, 2);
    const res = await client.call(
      'DELETE',
      `/v1/access/certificate/${encodeURIComponent(id)}`,
      { reason: ctx.values.reason ?? 'revoked with the vmwarden CLI' },
      [400],
    );
    // Revoking twice reaches the state asked for: the API's 400 (details ALREADY_REVOKED) is success here.
    if (res.status === 400 && res.body?.details === 'ALREADY_REVOKED')
      return emit(ctx, { id, already_revoked: true }, () => `certificate ${id} was already revoked\n`);
    if (res.status === 400)
      throw new CliError(`DELETE /v1/access/certificate/${id}: 400 ${res.body?.error ?? ''}`);
    return emit(ctx, res.body, () => `revoked certificate ${id}\n`);
  }
  if (sub === 'sessions') {
    noMoreArgs(ctx, 1);
    const r = (await client.call('GET', `/v1/access/sessions${pageQuery(ctx, await instanceFilter())}`)).body;
    if (ctx.format !== 'table' || !r.sessions.length) return emit(ctx, r, () => 'no sessions\n');
    const rows = await names.labelled(r.sessions, {
      instance: ['instance', 'sandbox_id'],
      user: ['identity', 'user_id'],
    });
    const cols = ['id', 'instance', 'user', 'source_ip', 'status', 'started_at', 'duration_seconds'];
    return emit(ctx, r, () => table(rows, cols));
  }
  throw usage(`unknown access subcommand '${sub}'`);
}
