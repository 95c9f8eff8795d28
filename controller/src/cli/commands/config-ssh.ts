// `vmwarden config-ssh [--domain vmw] [--write|--print]`
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, configDir } from '../config.js';
import { emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { certsDir } from '../ssh/cached-certificate.js';
import { writePrivate } from '../ssh/certificate.js';
import { hostCaKnownHosts, NO_HOST_CA_WARNING } from '../ssh/host-trust.js';
import { listInstances } from '../ssh/instances.js';
import { userKey } from '../ssh/key.js';
import { renderSshConfig } from '../ssh/ssh-config.js';

const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;
const CLI_SCRIPT = fileURLToPath(new URL('../main.js', import.meta.url));

export const sshConfigFile = () => join(configDir(), 'ssh_config');

export async function configSsh(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  const domain = ctx.values.domain ?? 'vmw';
  if (!DOMAIN.test(domain)) throw usage(`--domain must be a DNS name such as vmw, got '${domain}'`);
  if (ctx.values.write && ctx.values.print) throw usage('give --write or --print, not both');
  const client = session(ctx);
  const [instances, key, knownHostsFile] = [
    await listInstances(client),
    await userKey(),
    await hostCaKnownHosts(client),
  ];
  if (!knownHostsFile) process.stderr.write(NO_HOST_CA_WARNING);
  const text = renderSshConfig({
    domain,
    controllerUrl: ctx.values.url ?? loadConfig()?.url ?? client.url,
    cli: [process.execPath, CLI_SCRIPT],
    keyFile: key.privFile,
    certsDir: certsDir(),
    knownHostsFile,
    instances,
  });
  if (ctx.values.print) {
    ctx.out(text);
    return;
  }
  const file = sshConfigFile();
  writePrivate(file, text);
  emit(
    ctx,
    { file, domain, instances: instances.length, host_ca: !!knownHostsFile },
    () =>
      `wrote ${file} (${instances.length} instance${instances.length === 1 ? '' : 's'})\n` +
      `add at the top of ~/.ssh/config:  Include ${file}\nthen: ssh NAME.${domain}\n`,
  );
}
