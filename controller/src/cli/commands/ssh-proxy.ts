// The ProxyCommand (and Match exec, with --ensure) that `vmwarden config-ssh` writes. stdout is the
// SSH stream: nothing else may be printed there.
import { arg, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { ensureCertificate } from '../ssh/cached-certificate.js';
import { pipeStdio } from '../ssh/pipe.js';

export async function sshProxy(ctx: Ctx): Promise<number> {
  const domain = ctx.values.domain;
  if (!domain) throw usage('ssh-proxy needs --domain');
  const host = arg(ctx, 0, 'HOST');
  // ssh's %p may follow: the instance's own port is used.
  noMoreArgs(ctx, 2);
  const target = await ensureCertificate(session(ctx), host, domain);
  if (!ctx.values.ensure) await pipeStdio(target.address, target.port);
  return 0;
}
