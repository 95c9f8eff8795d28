// `vmwarden ssh [user@]INSTANCE [-- COMMAND...]`: a fresh certificate for that instance, then the system ssh.
import { CliError } from '../client.js';
import { arg, intOption, session, type Ctx } from '../context.js';
import { addToAgent } from '../ssh/agent.js';
import { requestCertificate, writePrivate } from '../ssh/certificate.js';
import { hostCaKnownHosts, NO_HOST_CA_WARNING } from '../ssh/host-trust.js';
import { assertReachable, findInstance } from '../ssh/instances.js';
import { userKey } from '../ssh/key.js';
import { runSsh } from '../ssh/run-ssh.js';

export async function ssh(ctx: Ctx): Promise<number> {
  const client = session(ctx);
  const target = arg(ctx, 0, '[user@]INSTANCE');
  const command = ctx.args.slice(1);
  const at = target.lastIndexOf('@');
  const user = at > 0 ? target.slice(0, at) : undefined;
  const ref = at >= 0 ? target.slice(at + 1) : target;
  if (!ref) throw new CliError(`missing instance in '${target}'`, 2);
  const ttl = intOption(ctx.values.ttl, 'ttl');

  // Refuse before issuing a certificate nobody can use; an instance outside the caller's list is
  // left to the access request, which says whether it is unknown or not granted.
  const instance = await findInstance(client, ref);
  if (instance) assertReachable(instance);
  const key = await userKey(ctx.values.identity);
  const issued = await requestCertificate(client, instance?.server_id ?? ref, ref, key.publicKey, ttl);
  if (!issued.vm_ip_address) throw new CliError(`instance ${ref} has no known address`);
  writePrivate(key.certFile, `${issued.certificate.trim()}\n`);
  if (addToAgent(key.privFile, issued.ttl_seconds) === 'failed')
    process.stderr.write(`vmwarden: warning: ssh-add did not take ${key.privFile}\n`);

  const knownHosts = await hostCaKnownHosts(client);
  if (!knownHosts) process.stderr.write(NO_HOST_CA_WARNING);
  // ssh keeps the first value of each option: the user's -o come first and win.
  const args = [
    ...(ctx.values['ssh-option'] ?? []).flatMap((o) => ['-o', o]),
    '-i',
    key.privFile,
    '-o',
    `CertificateFile=${key.certFile}`,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    `HostKeyAlias=${instance?.instance_name ?? ref}`,
    ...(knownHosts ? ['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes'] : []),
    '-p',
    String(issued.ssh_port),
    '-l',
    user ?? issued.username,
    '--',
    issued.vm_ip_address,
    ...command,
  ];
  return runSsh(args);
}
