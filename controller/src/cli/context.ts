// What every command gets: the parsed options and arguments, the output, and the shared ways to
// read arguments, open the logged-in session and print a result (table, json or yaml).
import { stringify as toYaml } from 'yaml';
import { Client, CliError } from './client.js';
import { configFile, loadConfig, sameController } from './config.js';

export interface OptionSpec {
  /** Commander's flags string: short, long and the value placeholder. */
  flags: string;
  description: string;
  choices?: readonly string[];
  /** Repeatable: the value is the list of every occurrence. */
  multiple?: true;
}

/**
 * Every option the CLI knows, by name (the long flag). A command lists the names it takes in
 * commands/table.ts; `ctx.values[name]` carries the value.
 */
export const OPTIONS = {
  url: { flags: '--url <url>', description: 'controller URL (a stored token goes only to its controller)' },
  output: {
    flags: '-o, --output <format>',
    description: 'output format',
    choices: ['table', 'json', 'yaml'],
  },
  json: { flags: '--json', description: 'same as -o json' },
  username: { flags: '-u, --username <name>', description: 'identity name' },
  password: { flags: '-p, --password <pw>', description: 'password (prompted for when omitted)' },
  fingerprint: {
    flags: '--fingerprint <sha256>',
    description: "the controller CA's SHA-256 fingerprint: pin that CA (first login over https)",
  },
  'ca-file': { flags: '--ca-file <file>', description: "the controller's CA certificate (PEM) to pin" },
  key: { flags: '-k, --key <file>', description: 'your SSH public key (or its private key next to it)' },
  role: { flags: '--role <role>', description: 'the identity role', choices: ['admin', 'user', 'agent'] },
  ttl: { flags: '--ttl <minutes>', description: 'certificate lifetime in minutes' },
  reason: { flags: '--reason <text>', description: 'why (kept in the audit log)' },
  comment: { flags: '--comment <text>', description: 'a note kept with the key' },
  status: {
    flags: '--status <status>',
    description: 'only certificates in this status',
    choices: ['ACTIVE', 'EXPIRED', 'REVOKED'],
  },
  instance: { flags: '--instance <instance>', description: 'only this instance (name or UUID)' },
  limit: { flags: '--limit <n>', description: 'at most N rows' },
  offset: { flags: '--offset <n>', description: 'skip N rows' },
  since: { flags: '--since <iso>', description: 'entries at or after this ISO time' },
  action: { flags: '--action <action>', description: 'action, or its prefix (grant matches grant.add)' },
  actor: { flags: '--actor <name>', description: 'identity name of the actor' },
  'no-wait': { flags: '--no-wait', description: 'print the task id and return at once' },
  identity: {
    flags: '-i, --identity <file>',
    description: 'your SSH private key (default: one generated once)',
  },
  'ssh-option': {
    flags: '-o, --ssh-option <opt=value>',
    description: "an ssh option, as ssh's -o (repeatable; yours win)",
    multiple: true,
  },
  domain: {
    flags: '--domain <domain>',
    description: 'the DNS suffix of instances in ssh_config (default vmw)',
  },
  write: { flags: '--write', description: 'write the block to the CLI config dir (default)' },
  print: { flags: '--print', description: 'print the block instead of writing it' },
  ensure: { flags: '--ensure', description: 'only make sure a valid certificate is in place' },
} satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;
/** Options every command takes. */
export const GLOBAL_OPTIONS: OptionName[] = ['output', 'json', 'url'];

type Flag = 'json' | 'no-wait' | 'write' | 'print' | 'ensure';
export type Values = {
  [K in OptionName]?: K extends Flag ? boolean : K extends 'ssh-option' ? string[] : string;
};
export type Format = 'table' | 'json' | 'yaml';

export const usage = (message: string) => new CliError(`${message} (see 'vmwarden --help')`, 2);

export interface Ctx {
  values: Values;
  /** The subcommand (when the command has any) followed by the positional arguments. */
  args: string[];
  out: (text: string) => void;
  format: Format;
  /** True for json and yaml: machine output, no progress lines. */
  json: boolean;
}

export function emit(ctx: Ctx, data: unknown, human: () => string): void {
  if (ctx.format === 'json') ctx.out(`${JSON.stringify(data, null, 2)}\n`);
  else if (ctx.format === 'yaml') ctx.out(toYaml(data ?? null));
  else ctx.out(human());
}

/**
 * The logged-in session for the controller at --url (or the stored one). The token goes only to the
 * controller it was issued by: another URL gets no token, and the pinned CA goes with it.
 */
export function session(ctx: Ctx): Client {
  const c = loadConfig();
  const url = ctx.values.url ?? c?.url;
  if (!c?.token || !url)
    throw new CliError(
      `not logged in: run 'vmwarden login URL --username NAME' (${c ? 'logged out' : `no ${configFile()}`})`,
    );
  if (!sameController(url, c.url))
    throw new CliError(
      `not logged in to ${url} (the stored session is for ${c.url}): run 'vmwarden login ${url}'`,
    );
  return new Client(c.url, c.token, c.caPem);
}

export function arg(ctx: Ctx, index: number, name: string): string {
  const v = ctx.args[index];
  if (!v) throw usage(`missing ${name}`);
  return v;
}

export function noMoreArgs(ctx: Ctx, count: number): void {
  if (ctx.args.length > count) throw usage(`unexpected argument '${ctx.args[count]}'`);
}

export function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usage(`--${name} must be a non-negative integer, got '${v}'`);
  return Number(v);
}

export function pageQuery(ctx: Ctx, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(extra);
  const limit = intOption(ctx.values.limit, 'limit');
  const offset = intOption(ctx.values.offset, 'offset');
  if (limit !== undefined) q.set('limit', String(limit));
  if (offset !== undefined) q.set('offset', String(offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}
