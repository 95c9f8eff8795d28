// The CLI's commands in one table: what runs them, their subcommands and flags. --help, per-command
// help and the shell completions are all derived from it, so they cannot drift from what is accepted.
import type { Ctx } from '../context.js';
import { access } from './access.js';
import { audit } from './audit.js';
import { grants } from './grants.js';
import { identities } from './identities.js';
import { keys } from './keys.js';
import { node, nodes } from './nodes.js';
import { login, logout, whoami } from './login.js';
import { sign } from './sign.js';
import { ssh } from './ssh.js';
import { ls } from './ls.js';
import { configSsh } from './config-ssh.js';
import { sshProxy } from './ssh-proxy.js';

export interface Command {
  /** A number is the process's exit code (`vmwarden ssh` returns ssh's). */
  run: (ctx: Ctx) => Promise<void | number>;
  summary: string;
  /** One usage line per form, without the leading `vmwarden NAME`. */
  forms: string[];
  subcommands: string[];
  /** Command-specific flags (besides the global --json, --url, --help). */
  flags: string[];
}

export const COMMANDS: Record<string, Command> = {
  login: {
    run: login,
    summary: 'log in (prompts for the password when omitted)',
    forms: ['--url URL --username NAME [--password PW]'],
    subcommands: [],
    flags: ['username', 'password'],
  },
  logout: { run: logout, summary: 'end the API session', forms: [''], subcommands: [], flags: [] },
  whoami: { run: whoami, summary: 'the logged-in identity', forms: [''], subcommands: [], flags: [] },
  identities: {
    run: identities,
    summary: 'identities (admin)',
    forms: ['list [--limit N] [--offset N]', 'create NAME [--role R] [--password PW]', 'delete ID'],
    subcommands: ['list', 'create', 'delete'],
    flags: ['role', 'password', 'limit', 'offset'],
  },
  nodes: {
    run: nodes,
    summary: 'compute nodes (add prints the enrollment token)',
    forms: ['list', 'add NAME'],
    subcommands: ['list', 'add'],
    flags: [],
  },
  node: {
    run: node,
    summary: 'toggle validation; follows the task to its end',
    forms: ['activate NODE [--no-wait]', 'deactivate NODE [--no-wait]'],
    subcommands: ['activate', 'deactivate'],
    flags: ['no-wait'],
  },
  sign: {
    run: sign,
    summary: 'instance signatures',
    forms: ['list [--limit N] [--offset N]', 'get ID', 'create ID', 'update ID', 'manifest ID'],
    subcommands: ['list', 'get', 'create', 'update', 'manifest'],
    flags: ['limit', 'offset'],
  },
  access: {
    run: access,
    summary: 'SSH certificates (written as <key>-cert.pub) and sessions',
    forms: [
      'request SANDBOX --key FILE [--ttl MIN]',
      'certs [--limit N] [--offset N]',
      'revoke ID [--reason R]',
      'sessions [--limit N] [--offset N]',
    ],
    subcommands: ['request', 'certs', 'revoke', 'sessions'],
    flags: ['key', 'ttl', 'reason', 'limit', 'offset'],
  },
  keys: {
    run: keys,
    summary: 'your SSH keys in the registry',
    forms: ['list', 'add FILE [--comment C]', 'rm ID'],
    subcommands: ['list', 'add', 'rm'],
    flags: ['comment'],
  },
  grants: {
    run: grants,
    summary: 'who may reach an instance (admin; UUIDs or names)',
    forms: ['list INSTANCE', 'add INSTANCE IDENTITY', 'rm INSTANCE IDENTITY'],
    subcommands: ['list', 'add', 'rm'],
    flags: [],
  },
  audit: {
    run: audit,
    summary: 'the audit log, newest first (admin)',
    forms: ['[--since ISO] [--action A] [--actor NAME] [--limit N] [--offset N]'],
    subcommands: [],
    flags: ['since', 'action', 'actor', 'limit', 'offset'],
  },
  ssh: {
    run: ssh,
    summary: "log in to an instance (name or UUID) with a fresh certificate; exits with ssh's code",
    forms: ['[user@]INSTANCE [--identity FILE] [--ttl MIN] [-o OPT=VALUE]... [-- COMMAND...]'],
    subcommands: [],
    flags: ['identity', 'ttl', 'ssh-option'],
  },
  ls: {
    run: ls,
    summary: 'the instances you may reach (admins: all), with state, address, node, signature',
    forms: [''],
    subcommands: [],
    flags: [],
  },
  'config-ssh': {
    run: configSsh,
    summary: "an ssh_config block so that plain 'ssh NAME.DOMAIN' (scp, rsync) logs in",
    forms: ['[--domain vmw] [--write|--print]'],
    subcommands: [],
    flags: ['domain', 'write', 'print'],
  },
  completion: {
    run: async () => {},
    summary: 'print a shell completion script',
    forms: ['bash|zsh'],
    subcommands: ['bash', 'zsh'],
    flags: [],
  },
};

/** Run by main but listed nowhere: the ProxyCommand and Match exec that `config-ssh` writes. */
export const HIDDEN_COMMANDS: Record<string, Command> = {
  'ssh-proxy': {
    run: sshProxy,
    summary: 'connect stdio to an instance after ensuring its certificate (used by config-ssh)',
    forms: ['--domain D [--ensure] HOST'],
    subcommands: [],
    flags: ['domain', 'ensure'],
  },
};

export const GLOBAL_FLAGS = ['json', 'url', 'help', 'version'];

export function commandHelp(name: string): string {
  const c = COMMANDS[name]!;
  const flags = [...c.flags, ...GLOBAL_FLAGS].map((f) => `--${f}`).join(' ');
  return `${c.forms.map((f, i) => `${i ? '   or' : 'usage'}: vmwarden ${name} ${f}`.trimEnd()).join('\n')}\n\n${c.summary}\nflags: ${flags}\n`;
}
