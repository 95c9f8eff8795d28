// What every command gets: the parsed options and arguments, the output, and the shared ways to
// read arguments, open the logged-in session and print a result (table or --json).
import { Client, CliError } from './client.js';
import { configFile, loadConfig } from './config.js';

export const OPTIONS = {
  url: { type: 'string' },
  username: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'p' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  key: { type: 'string', short: 'k' },
  role: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  comment: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  since: { type: 'string' },
  action: { type: 'string' },
  actor: { type: 'string' },
  'no-wait': { type: 'boolean' },
  identity: { type: 'string', short: 'i' },
  'ssh-option': { type: 'string', short: 'o', multiple: true },
  domain: { type: 'string' },
  write: { type: 'boolean' },
  print: { type: 'boolean' },
  ensure: { type: 'boolean' },
} as const;

export type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof OPTIONS)[K]['type'] extends 'string'
      ? string
      : boolean;
};

export const usage = (message: string) => new CliError(`${message} (see 'vmwarden --help')`, 2);

export interface Ctx {
  values: Values;
  args: string[];
  out: (text: string) => void;
  json: boolean;
}

export function emit(ctx: Ctx, data: unknown, human: () => string): void {
  ctx.out(ctx.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

export function session(ctx: Ctx): Client {
  const c = loadConfig();
  if (!c?.token)
    throw new CliError(
      `not logged in: run 'vmwarden login --url URL --username NAME' (${c ? 'logged out' : `no ${configFile()}`})`,
    );
  return new Client(ctx.values.url ?? c.url, c.token);
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
