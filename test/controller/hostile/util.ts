/**
 * Raw HTTP(S) for hostile requests (any header, any body bytes, a connection the server may cut)
 * and the checks every answer must pass: no 5xx, never fastify's own error body, errors in the
 * route group's format.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Each group's error body: the OpenZiti envelope, access `{error, code}`, COmanage, Sign `{error}`. */
export const FORMATS = {
  identity: (b: any) => typeof b?.error?.code === 'string' && typeof b?.meta === 'object',
  access: (b: any) => typeof b?.error === 'string' && typeof b?.code === 'number',
  comanage: (b: any) => b?.ResponseType === 'ErrorResponse' && typeof b?.Error === 'string',
  sign: (b: any) => typeof b?.error === 'string' && Object.keys(b).length === 1,
};
export type Group = keyof typeof FORMATS;

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
  /** The server closed the connection before (or instead of) answering. */
  reset?: string;
}

export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  ca?: string;
  agent?: HttpAgent | false;
  timeoutMs?: number;
}

export function rawRequest(base: string, r: RawRequest): Promise<RawReply> {
  const url = new URL(base);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...(r.headers ?? {}) };
    if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
    const req = send(
      {
        host: url.hostname,
        port: url.port,
        method: r.method,
        path: r.path,
        headers,
        agent: r.agent ?? false,
        ...(r.ca ? { ca: r.ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) =>
          resolve({ status: 0, headers: {}, text: '', body: undefined, reset: err.message }),
        );
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: any = text;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.setTimeout(r.timeoutMs ?? 30_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (
        ['ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(err.code ?? '') ||
        err.message === 'socket hang up'
      )
        resolve({ status: 0, headers: {}, text: '', body: undefined, reset: err.code ?? err.message });
      else reject(err);
    });
    req.end(r.body);
  });
}

/** Required top-level keys of each group's error body (components.schemas of /openapi.json). */
export function errorFormats(doc: any): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, schema] of Object.entries<any>(doc.components.schemas)) out[name] = schema.required ?? [];
  return out;
}

/** The error schema a route's errors must follow (its operation's `default` response). */
export function errorSchemaOf(doc: any, route: string, method: string): string {
  const ref: string =
    doc.paths[route][method.toLowerCase()].responses.default.content['application/json'].schema.$ref;
  return ref.split('/').pop()!;
}

/** What is wrong with an answer, or undefined. */
export function problemWith(
  reply: RawReply,
  expected: { schema: string; required: string[]; tag: string; route: string },
) {
  if (reply.reset) return undefined; // refused by closing the connection: no 5xx, nothing leaked
  const body = reply.body;
  if (body && typeof body === 'object' && !Array.isArray(body) && 'statusCode' in body)
    return `fastify-shaped body: ${reply.text.slice(0, 200)}`;
  if (reply.status >= 500) {
    // An agent that cannot be reached is an honest 503 (the corpus's nodes have no agent).
    const agentDown =
      reply.status === 503 &&
      expected.tag === 'signatures' &&
      /agent|unreachable|node/i.test(String(body?.error));
    if (!agentDown) return `${reply.status}: ${reply.text.slice(0, 200)}`;
  }
  if (reply.status >= 400) {
    if (!body || typeof body !== 'object') return `error body is not JSON: ${reply.text.slice(0, 200)}`;
    const has = (keys: string[]) => keys.every((k) => k in body);
    if (has(expected.required)) return undefined;
    // Requests the HTTP parser refuses before routing (408/431/400 with Connection: close) and the
    // operations routes other than /v1/audit answer in the default (OpenZiti) envelope.
    const ziti = ['meta', 'error'];
    const parserLevel =
      String(reply.headers.connection).toLowerCase() === 'close' && [400, 408, 431].includes(reply.status);
    const opsDefault = expected.tag === 'operations' && !expected.route.startsWith('/v1/audit');
    if ((parserLevel || opsDefault) && has(ziti)) return undefined;
    return `error body not in the ${expected.schema} format: ${reply.text.slice(0, 200)}`;
  }
  return undefined;
}
