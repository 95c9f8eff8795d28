#!/usr/bin/env node
/**
 * `vmwarden`: the operator's and user's command line for a vmwarden controller.
 * Human tables by default, `--json` for scripts; errors are one line on stderr and a non-zero exit
 * (1: the action failed, 2: the command line is wrong).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CliError } from './client.js';
import { OPTIONS, usage, type Ctx, type Values } from './context.js';
import { access } from './commands/access.js';
import { audit } from './commands/audit.js';
import { grants } from './commands/grants.js';
import { identities } from './commands/identities.js';
import { keys } from './commands/keys.js';
import { node, nodes } from './commands/nodes.js';
import { login, logout, whoami } from './commands/login.js';
import { sign } from './commands/sign.js';

const USAGE = `usage: vmwarden <command> [options]

  login --url URL --username NAME [--password PW]   log in (prompts for the password when omitted)
  logout                                            end the API session
  whoami                                            the logged-in identity
  identities list | create NAME [--role R] [--password PW] | delete ID
  nodes list | add NAME                             compute nodes (add prints the enrollment token)
  node activate|deactivate NODE [--no-wait]         toggle validation; follows the task to its end
  sign list | get ID | create ID | update ID | manifest ID
  access request SANDBOX --key FILE [--ttl MIN]     certificate written as <key>-cert.pub
  access certs | revoke ID [--reason R] | sessions
  keys list | add FILE [--comment C] | rm ID        your SSH keys in the registry
  grants list INSTANCE | add INSTANCE IDENTITY | rm INSTANCE IDENTITY   (UUIDs or names)
  audit [--since ISO] [--action A] [--actor NAME] [--limit N]         newest first

options: --json (machine output), --url URL (override the stored controller), --help
config: $XDG_CONFIG_HOME/vmwarden/config.json (or ~/.config/vmwarden), mode 0600
`;

const COMMANDS: Record<string, (ctx: Ctx) => Promise<void>> = {
  login,
  logout,
  whoami,
  identities,
  nodes,
  node,
  sign,
  access,
  keys,
  grants,
  audit,
};

export async function main(
  argv: string[],
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw usage((err as Error).message.split('\n')[0]!);
  }
  const values = parsed.values as Values;
  const [command, ...args] = parsed.positionals;
  if (values.help || !command || command === 'help') {
    out(USAGE);
    return command || values.help ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) throw usage(`unknown command '${command}'`);
  await run({ values, args, out, json: values.json === true });
  return 0;
}

function invokedDirectly(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      const e = err instanceof CliError ? err : new CliError((err as Error)?.message ?? String(err));
      process.stderr.write(`vmwarden: ${e.message.replace(/\s*\n\s*/g, ' ')}\n`);
      process.exitCode = e.exitCode;
    },
  );
}
