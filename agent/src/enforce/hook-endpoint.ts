// The endpoint the shell hook asks: plain HTTP/1.1 on a unix socket (hook.sock, mode 0660), so that a
// hook of `sh` + `curl` adds a few milliseconds to a start instead of a Node start-up.
//   POST /check-start?name=<domain>   body: the domain XML (as libvirt hands it to the hook)
//   → 200 text/plain `allow\n` | `refuse <one-line reason>\n`; a bad request → 4xx `refuse <reason>\n`.
// Every answer has a Content-Length and closes the connection; a decision carries
// `Server-Timing: check;dur=<ms>` (the time CheckStart took, for benchmarks and operators).
// The decision is the one CheckStart gives (Enforcer.checkStart).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CheckStartResponseMsg } from '../../../proto/messages.js';
import { DomainDefinition } from '../signature/domain-definition.js';

/** Larger domain XML is refused (a definition is a few KiB). */
const MAX_BODY = 4 * 1024 * 1024;

export type CheckStartFn = (serverId: string, domain: DomainDefinition) => Promise<CheckStartResponseMsg>;

export interface HookEndpoint {
  path: string;
  close(): Promise<void>;
}

const oneLine = (s: string) => s.replace(/\s*[\r\n]+\s*/g, ' ').trim();

function answer(res: ServerResponse, status: number, text: string, checkMs?: number): void {
  const body = `${oneLine(text)}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
    ...(checkMs !== undefined ? { 'server-timing': `check;dur=${checkMs.toFixed(3)}` } : {}),
  });
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse, check: CheckStartFn): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://vmwarden');
  const name = url.searchParams.get('name') ?? '';
  const refused = (why: string) => `refuse vmwarden: start of '${name}' refused: ${why}`;
  if (url.pathname !== '/check-start') return answer(res, 404, refused(`unknown path ${url.pathname}`));
  if (req.method !== 'POST') return answer(res, 405, refused(`method ${req.method} not allowed`));
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return answer(res, 413, refused(`domain XML larger than ${MAX_BODY} bytes`));
    chunks.push(c);
  }
  const domain = new DomainDefinition(Buffer.concat(chunks).toString('utf8'));
  const uuid = domain.uuid; // parses it: the signature check uses the same parse
  if (!uuid)
    return answer(res, 400, refused('the domain XML on stdin is malformed (no <domain> with a <uuid>)'));
  let r: CheckStartResponseMsg;
  const t0 = performance.now();
  try {
    r = await check(uuid, domain);
  } catch (e) {
    return answer(res, 500, refused(`vmwarden agent failed: ${(e as Error).message}`));
  }
  const ms = performance.now() - t0;
  if (r.allowed) return answer(res, 200, 'allow', ms);
  answer(res, 200, `refuse ${oneLine(r.reason) || `vmwarden: start of '${name}' refused`}`, ms);
}

/** Listens on `path` (replacing a stale socket file), mode 0660. */
export async function startHookEndpoint(path: string, check: CheckStartFn): Promise<HookEndpoint> {
  const server: Server = createServer((req, res) => {
    handle(req, res, check).catch((e: Error) => {
      if (!res.headersSent) answer(res, 500, `refuse vmwarden: hook endpoint error: ${e.message}`);
      else res.destroy();
    });
  });
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  if (existsSync(path)) rmSync(path);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(path, 0o660);
  return {
    path,
    close: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
      server.closeAllConnections();
      rmSync(path, { force: true });
    },
  };
}
