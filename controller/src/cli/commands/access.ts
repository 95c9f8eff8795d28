import { writeFileSync } from 'node:fs';
import { CliError } from '../client.js';
import { arg, emit, intOption, noMoreArgs, pageQuery, session, usage, type Ctx } from '../context.js';
import { keyPaths, readPublicKey } from '../key-files.js';
import { table } from '../output.js';

export async function access(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (request|certs|revoke|sessions)');
  if (sub === 'request') {
    const sandbox = arg(ctx, 1, 'SANDBOX');
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
      () => `certificate ${r.certificate_id} written to ${certFile} (valid until ${r.valid_until})\n${ssh}\n`,
    );
  }
  if (sub === 'certs') {
    noMoreArgs(ctx, 1);
    const r = (await client.call('GET', `/v1/access/certificates${pageQuery(ctx)}`)).body;
    return emit(ctx, r, () =>
      r.certificates.length
        ? table(r.certificates, ['id', 'sandbox_id', 'vm_id', 'user_id', 'status', 'valid_before'])
        : 'no certificates\n',
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
    const r = (await client.call('GET', `/v1/access/sessions${pageQuery(ctx)}`)).body;
    return emit(ctx, r, () =>
      r.sessions.length
        ? table(r.sessions, [
            'id',
            'sandbox_id',
            'vm_id',
            'user_id',
            'source_ip',
            'status',
            'started_at',
            'duration_seconds',
          ])
        : 'no sessions\n',
    );
  }
  throw usage(`unknown access subcommand '${sub}'`);
}
