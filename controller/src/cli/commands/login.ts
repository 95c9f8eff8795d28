import { Client, CliError } from '../client.js';
import { loadConfig, sameController, saveConfig } from '../config.js';
import { fetchPinnedCa, parseFingerprint, readCaFile } from '../trust.js';
import { emit, noMoreArgs, session, usage, type Ctx } from '../context.js';
import { keyValues } from '../output.js';

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

export async function login(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 1);
  const previous = loadConfig();
  if (ctx.args[0] && ctx.values.url && !sameController(ctx.args[0], ctx.values.url))
    throw usage(`two different URLs: ${ctx.args[0]} and --url ${ctx.values.url}`);
  const url = ctx.args[0] ?? ctx.values.url ?? previous?.url;
  if (!url) throw usage('login needs the controller URL: vmwarden login https://HOST:PORT');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`'${url}' is not a URL`);
  }
  const { fingerprint } = ctx.values;
  const caFile = ctx.values['ca-file'];
  if (parsed.protocol !== 'https:' && (fingerprint || caFile))
    throw usage('--fingerprint and --ca-file pin the CA of an https:// URL');
  if (fingerprint && caFile) throw usage('--fingerprint or --ca-file, not both');
  const username = ctx.values.username;
  if (!username) throw usage('login needs --username NAME');
  // The CA is settled before anything is sent: the fingerprint check is a TLS handshake and no more.
  const caPem = fingerprint
    ? await fetchPinnedCa(url, parseFingerprint(fingerprint))
    : caFile
      ? readCaFile(caFile)
      : previous && sameController(previous.url, url)
        ? previous.caPem
        : undefined;
  const client = new Client(url, undefined, caPem);
  const password = ctx.values.password ?? (await readPassword(`password for ${username}: `));
  const r = await client.call('POST', '/authenticate?method=password', { username, password });
  const data = r.body.data;
  const file = saveConfig({
    url,
    token: data.token,
    ...(caPem ? { caPem } : {}),
    username: data.identity?.name ?? username,
    identityId: data.identityId,
  });
  emit(
    ctx,
    { url, identity: data.identity, expiresAt: data.expiresAt, config: file, caPinned: !!caPem },
    () =>
      `logged in to ${url} as ${data.identity?.name ?? username} (session expires after ${data.expirationSeconds}s idle)` +
      `${caPem ? `; controller CA pinned in ${file}` : ''}\n`,
  );
}

export async function logout(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  await session(ctx).call('DELETE', '/current-api-session');
  const c = loadConfig()!;
  saveConfig({ url: c.url, token: '', ...(c.caPem ? { caPem: c.caPem } : {}) });
  emit(ctx, { loggedOut: true }, () => 'logged out\n');
}

export async function whoami(ctx: Ctx): Promise<void> {
  noMoreArgs(ctx, 0);
  const client = session(ctx);
  const d = (await client.call('GET', '/current-identity')).body.data;
  const view = { id: d.id, name: d.name, role: d.role, controller: client.url };
  emit(ctx, view, () => keyValues(view));
}
