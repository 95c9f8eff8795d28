#!/usr/bin/env node
/**
 * `vmwarden`: the operator's and user's command line for a vmwarden controller.
 * Human tables by default, `--json` for scripts; errors are one line on stderr and a non-zero exit
 * (1: the action failed, 2: the command line is wrong).
 */
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, CliError } from './client.js';
import { configFile, loadConfig, saveConfig } from './config.js';
import { keyValues, progressBar, table } from './output.js';

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

options: --json (machine output), --url URL (override the stored controller), --help
config: $XDG_CONFIG_HOME/vmwarden/config.json (or ~/.config/vmwarden), mode 0600
`;

const OPTIONS = {
  url: { type: 'string' },
  username: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'p' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  key: { type: 'string', short: 'k' },
  role: { type: 'string' },
  ttl: { type: 'string' },
  reason: { type: 'string' },
  comment: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  'no-wait': { type: 'boolean' },
} as const;

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

const usage = (message: string) => new CliError(`${message} (see 'vmwarden --help')`, 2);

interface Ctx {
  values: Values;
  args: string[];
  out: (text: string) => void;
  json: boolean;
}

function emit(ctx: Ctx, data: unknown, human: () => string): void {
  ctx.out(ctx.json ? `${JSON.stringify(data, null, 2)}\n` : human());
}

function session(ctx: Ctx): Client {
  const c = loadConfig();
  if (!c?.token)
    throw new CliError(
      `not logged in: run 'vmwarden login --url URL --username NAME' (${c ? 'logged out' : `no ${configFile()}`})`,
    );
  return new Client(ctx.values.url ?? c.url, c.token);
}

function arg(ctx: Ctx, index: number, name: string): string {
  const v = ctx.args[index];
  if (!v) throw usage(`missing ${name}`);
  return v;
}

function noMoreArgs(ctx: Ctx, count: number): void {
  if (ctx.args.length > count) throw usage(`unexpected argument '${ctx.args[count]}'`);
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw usage(`--${name} must be a non-negative integer, got '${v}'`);
  return Number(v);
}

function pageQuery(ctx: Ctx, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams(extra);
  const limit = intOption(ctx.values.limit, 'limit');
  const offset = intOption(ctx.values.offset, 'offset');
  if (limit !== undefined) q.set('limit', String(limit));
  if (offset !== undefined) q.set('offset', String(offset));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Reads a password without echo on a terminal, or the first line of stdin otherwise. */
async function readPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) {
      chunks.push(chunk as Buffer);
      if (Buffer.concat(chunks).includes(10)) break;
    }
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
    if (!line) throw new CliError('no password: pass --password or write it on stdin');
    return line;
  }
  // Raw mode (no echo) before the prompt shows, so nothing typed after it is echoed.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('interrupted', 130));
        if (ch === '\u0004') return done(value ? undefined : new CliError('no password given'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function login(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  const previous = loadConfig();
  const url = ctx.values.url ?? previous?.url;
  if (!url) throw usage('login needs --url URL');
  try {
    new URL(url);
  } catch {
    throw usage(`--url '${url}' is not a URL`);
  }
  const username = ctx.values.username;
  if (!username) throw usage('login needs --username NAME');
  const password = ctx.values.password ?? (await readPassword(`password for ${username}: `));
  const r = await new Client(url).call('POST', '/authenticate?method=password', { username, password });
  const data = r.body.data;
  const file = saveConfig({
    url,
    token: data.token,
    username: data.identity?.name ?? username,
    identityId: data.identityId,
  });
  emit(
    ctx,
    { url, identity: data.identity, expiresAt: data.expiresAt, config: file },
    () =>
      `logged in to ${url} as ${data.identity?.name ?? username} (session expires after ${data.expirationSeconds}s idle)\n`,
  );
}

async function logout(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  await session(ctx).call('DELETE', '/current-api-session');
  const c = loadConfig()!;
  saveConfig({ url: c.url, token: '' });
  emit(ctx, { loggedOut: true }, () => 'logged out\n');
}

async function whoami(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  const client = session(ctx);
  const d = (await client.call('GET', '/current-identity')).body.data;
  const view = { id: d.id, name: d.name, role: d.role, controller: client.url };
  emit(ctx, view, () => keyValues(view));
}

async function identities(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|create|delete)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const r = await client.call(
      'GET',
      `/identities${pageQuery(ctx, ctx.values.limit ? {} : { limit: '500' })}`,
    );
    const rows = (r.body.data as any[]).map((i) => ({
      id: i.id,
      name: i.name,
      role: i.role,
      createdAt: i.createdAt,
    }));
    return emit(ctx, r.body.data, () => table(rows, ['id', 'name', 'role', 'createdAt']));
  }
  if (sub === 'create') {
    const name = arg(ctx, 1, 'NAME');
    noMoreArgs(ctx, 2);
    const body: Record<string, unknown> = { name, role: ctx.values.role ?? 'user' };
    if (ctx.values.password !== undefined) body.password = ctx.values.password;
    const r = await client.call('POST', '/identities', body);
    return emit(ctx, r.body.data, () => `created identity ${name}: ${r.body.data.id}\n`);
  }
  if (sub === 'delete') {
    const id = arg(ctx, 1, 'ID');
    noMoreArgs(ctx, 2);
    await client.call('DELETE', `/identities/${encodeURIComponent(id)}`);
    return emit(ctx, { id, deleted: true }, () => `deleted identity ${id}\n`);
  }
  throw usage(`unknown identities subcommand '${sub}'`);
}

async function nodes(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|add)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const list = (await client.call('GET', '/v1/nodes')).body.nodes as any[];
    return emit(ctx, list, () =>
      table(list, [
        'id',
        'name',
        'hostname',
        'enrolled',
        'validation_active',
        'agent_address',
        'last_seen_at',
      ]),
    );
  }
  if (sub === 'add') {
    const name = arg(ctx, 1, 'NAME');
    noMoreArgs(ctx, 2);
    const r = (await client.call('POST', '/v1/nodes', { name })).body;
    return emit(
      ctx,
      r,
      () =>
        keyValues(r) +
        `enroll the agent with: vmwarden-agent enroll --controller HOST:PORT --token ${r.enrollment_token}\n`,
    );
  }
  throw usage(`unknown nodes subcommand '${sub}'`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows GET /v1/tasks/{id} until SUCCESS or FAILURE; a progress bar on a terminal. */
async function followTask(ctx: Ctx, client: Client, taskId: string): Promise<any> {
  const tty = process.stderr.isTTY && !ctx.json;
  let last = '';
  for (;;) {
    const t = (await client.call('GET', `/v1/tasks/${encodeURIComponent(taskId)}`)).body;
    const line = `${t.action} node ${t.node_id} ${progressBar(t.state === 'SUCCESS' ? 100 : (t.progress ?? 0))} ${t.state}`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (line !== last && !ctx.json) process.stderr.write(`${line}\n`);
    last = line;
    if (t.state === 'SUCCESS' || t.state === 'FAILURE') {
      if (tty) process.stderr.write('\n');
      return t;
    }
    await sleep(250);
  }
}

async function node(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const action = arg(ctx, 0, 'action (activate|deactivate)');
  if (action !== 'activate' && action !== 'deactivate') throw usage(`unknown node action '${action}'`);
  const nodeId = arg(ctx, 1, 'NODE');
  noMoreArgs(ctx, 2);
  const r = (await client.call('POST', `/v1/sign/node/${encodeURIComponent(nodeId)}/action`, { action }))
    .body;
  if (ctx.values['no-wait'])
    return emit(ctx, r, () => `task ${r.task_id} started (${action} node ${nodeId})\n`);
  const t = await followTask(ctx, client, r.task_id);
  emit(ctx, t, () => (t.state === 'SUCCESS' ? `${action} node ${nodeId}: done (task ${t.task_id})\n` : ''));
  if (t.state !== 'SUCCESS')
    throw new CliError(`${action} node ${nodeId} failed: ${t.error ?? t.state} (task ${t.task_id})`);
}

async function sign(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|get|create|update|manifest)');
  const cols = ['server_id', 'instance_name', 'node_id', 'is_valid', 'created_at', 'updated_at'];
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const list = (await client.call('GET', `/v1/sign${pageQuery(ctx)}`)).body.signs as any[];
    return emit(ctx, list, () => (list.length ? table(list, cols) : 'no signatures\n'));
  }
  const id = arg(ctx, 1, 'SERVER_ID');
  noMoreArgs(ctx, 2);
  const path = `/v1/sign/${encodeURIComponent(id)}`;
  if (sub === 'get') {
    const s = (await client.call('GET', path)).body.sign;
    return emit(ctx, s, () => keyValues(s));
  }
  if (sub === 'create' || sub === 'update') {
    const s = (await client.call(sub === 'create' ? 'POST' : 'PUT', '/v1/sign', { server_id: id })).body.sign;
    return emit(ctx, s, () => keyValues(s));
  }
  if (sub === 'manifest') {
    const m = (await client.call('GET', `${path}/manifest`)).body;
    return emit(ctx, m, () => `${JSON.stringify(m, null, 2)}\n`);
  }
  throw usage(`unknown sign subcommand '${sub}'`);
}

/** The public key and the certificate path for --key: accepts the private key or its .pub. */
function keyPaths(file: string): { pubFile: string; privFile: string; certFile: string } {
  const privFile = file.endsWith('.pub') ? file.slice(0, -4) : file;
  const pubFile = file.endsWith('.pub') ? file : `${file}.pub`;
  return { pubFile, privFile, certFile: join(dirname(privFile), `${basename(privFile)}-cert.pub`) };
}

function readPublicKey(file: string): string {
  const { pubFile } = keyPaths(file);
  if (!existsSync(pubFile)) throw new CliError(`no public key at ${pubFile}`);
  const text = readFileSync(pubFile, 'utf8').trim();
  if (/PRIVATE KEY/.test(text)) throw new CliError(`${pubFile} is a private key: give the public key`);
  return text;
}

async function access(ctx: Ctx): Promise<void> {
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
    const r = (
      await client.call('DELETE', `/v1/access/certificate/${encodeURIComponent(id)}`, {
        reason: ctx.values.reason ?? 'revoked with the vmwarden CLI',
      })
    ).body;
    return emit(ctx, r, () => `revoked certificate ${id}\n`);
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

const KEYS = '/ssh_key_authenticator';

async function myIdentityId(client: Client): Promise<string> {
  return (await client.call('GET', '/current-identity')).body.data.id;
}

async function keys(ctx: Ctx): Promise<void> {
  const client = session(ctx);
  const sub = arg(ctx, 0, 'subcommand (list|add|rm)');
  if (sub === 'list') {
    noMoreArgs(ctx, 1);
    const me = await myIdentityId(client);
    const r = await client.call('GET', `${KEYS}/ssh_keys.json?copersonid=${encodeURIComponent(me)}`);
    const list = r.status === 204 ? [] : (r.body.SshKeys as any[]);
    return emit(ctx, list, () =>
      list.length ? table(list, ['Id', 'Type', 'Comment', 'Fingerprint', 'Created']) : 'no keys\n',
    );
  }
  if (sub === 'add') {
    const file = arg(ctx, 1, 'FILE');
    noMoreArgs(ctx, 2);
    const line = readPublicKey(file);
    const me = await myIdentityId(client);
    const auth = await client.call('GET', `${KEYS}/authenticators.json?copersonid=${encodeURIComponent(me)}`);
    const authenticatorId = auth.body?.SshKeyAuthenticators?.[0]?.Id;
    if (!authenticatorId) throw new CliError('the registry has no SSH key authenticator for you');
    const item: Record<string, unknown> = {
      Version: '1.0',
      Person: { Type: 'CO', Id: me },
      SshKeyAuthenticatorId: authenticatorId,
      Skey: line,
    };
    if (ctx.values.comment !== undefined) item.Comment = ctx.values.comment;
    const r = await client.call('POST', `${KEYS}/ssh_keys.json`, {
      RequestType: 'SshKeys',
      Version: '1.0',
      SshKeys: [item],
    });
    return emit(ctx, r.body, () => `added key ${r.body.Id}\n`);
  }
  if (sub === 'rm') {
    const id = arg(ctx, 1, 'ID');
    noMoreArgs(ctx, 2);
    if (!/^\d+$/.test(id)) throw usage(`key id must be a number, got '${id}'`);
    await client.call('DELETE', `${KEYS}/ssh_keys/${id}.json`);
    return emit(ctx, { id, deleted: true }, () => `removed key ${id}\n`);
  }
  throw usage(`unknown keys subcommand '${sub}'`);
}

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
