// The CLI's commands, one entry each: what runs them, their arguments, subcommands and options.
// program.ts turns this table into commander's command tree; --help, per-command help, the shell
// completions and the checks on what is typed all come from that tree, so they cannot drift.
//
// Adding a command: write commands/NAME.ts exporting `async function NAME(ctx: Ctx)` (ctx.args holds
// the subcommand, if any, then the positional arguments; ctx.values the options), then add one entry
// below. A new option goes into OPTIONS in context.ts first.
import type { Ctx, OptionName } from '../context.js';
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

export interface Action {
  summary: string;
  /** Positional arguments in commander's syntax: `<required>`, `[optional]`, `[rest...]`. */
  args?: string;
  /** Options besides the global ones (-o, --json, --url). */
  options?: OptionName[];
}

export interface Command extends Action {
  /** A number is the process's exit code (`vmwarden ssh` returns ssh's). */
  run: (ctx: Ctx) => Promise<void | number>;
  /** Not listed in help or completions (the ProxyCommand that config-ssh writes). */
  hidden?: true;
  /** The command prints no data: it takes no -o/--json (ssh's -o is an ssh option). */
  noOutput?: true;
  /** When set, the command takes one of these as its first word (e.g. `identities list`). */
  subcommands?: Record<string, Action>;
}

const PAGE: OptionName[] = ['limit', 'offset'];

export const COMMANDS: Record<string, Command> = {
  login: {
    run: login,
    summary: 'log in; pins the controller CA on https (prompts for the password when omitted)',
    args: '[url]',
    options: ['username', 'password', 'fingerprint', 'ca-file'],
  },
  logout: { run: logout, summary: 'end the API session' },
  whoami: { run: whoami, summary: 'the logged-in identity' },
  identities: {
    run: identities,
    summary: 'identities (admin)',
    subcommands: {
      list: { summary: 'list identities', options: PAGE },
      create: { summary: 'create an identity', args: '<name>', options: ['role', 'password'] },
      delete: { summary: 'delete an identity', args: '<identity>' },
    },
  },
  nodes: {
    run: nodes,
    summary: 'compute nodes',
    subcommands: {
      list: { summary: 'list nodes' },
      add: { summary: 'add a node and print its enrollment token', args: '<name>' },
    },
  },
  node: {
    run: node,
    summary: 'toggle validation on a node; follows the task to its end',
    subcommands: {
      activate: { summary: 'validate signatures on the node', args: '<node>', options: ['no-wait'] },
      deactivate: { summary: 'stop validating on the node', args: '<node>', options: ['no-wait'] },
    },
  },
  sign: {
    run: sign,
    summary: 'instance signatures (admin)',
    subcommands: {
      list: { summary: 'list signatures', options: PAGE },
      get: { summary: "an instance's signature", args: '<instance>' },
      create: { summary: 'sign an instance', args: '<instance>' },
      update: { summary: "re-sign an instance's current state", args: '<instance>' },
      manifest: { summary: 'what the signature covers', args: '<instance>' },
    },
  },
  access: {
    run: access,
    summary: 'SSH certificates (written as <key>-cert.pub) and sessions',
    subcommands: {
      request: { summary: 'get a certificate for an instance', args: '<instance>', options: ['key', 'ttl'] },
      certs: { summary: 'list certificates', options: ['status', 'instance', ...PAGE] },
      revoke: { summary: 'revoke a certificate (again: exit 0)', args: '<certificate>', options: ['reason'] },
      sessions: { summary: 'list SSH sessions', options: ['instance', ...PAGE] },
    },
  },
  keys: {
    run: keys,
    summary: 'your SSH keys in the registry',
    subcommands: {
      list: { summary: 'list your keys' },
      add: { summary: 'add a public key', args: '<file>', options: ['comment'] },
      rm: { summary: 'remove a key', args: '<id>' },
    },
  },
  grants: {
    run: grants,
    summary: 'who may reach an instance (admin)',
    subcommands: {
      list: { summary: "an instance's grants", args: '<instance>' },
      add: { summary: 'let an identity reach an instance', args: '<instance> <identity>' },
      rm: { summary: 'remove a grant', args: '<instance> <identity>' },
    },
  },
  audit: {
    run: audit,
    summary: 'the audit log, newest first (admin)',
    options: ['since', 'action', 'actor', ...PAGE],
  },
  ssh: {
    run: ssh,
    summary: "log in to an instance (name or UUID) with a fresh certificate; exits with ssh's code",
    args: '<target> [command...]',
    options: ['identity', 'ttl', 'ssh-option'],
    noOutput: true,
  },
  ls: { run: ls, summary: 'the instances you may reach (admins: all): state, address, node, signature' },
  'config-ssh': {
    run: configSsh,
    summary: "an ssh_config block so that plain 'ssh NAME.vmw' (scp, rsync) logs in",
    options: ['domain', 'write', 'print'],
  },
  'ssh-proxy': {
    run: sshProxy,
    summary: 'connect stdio to an instance after ensuring its certificate (used by config-ssh)',
    args: '<host> [port]',
    options: ['domain', 'ensure'],
    hidden: true,
    noOutput: true,
  },
};
