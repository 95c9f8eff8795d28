/** A thin HTTP(S) client for the controller's REST groups; every failure becomes one CliError line. */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface Response {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** The error message each group's format carries (OpenZiti, access API, COmanage, Sign API). */
function errorMessage(body: any, status: number): string {
  if (body && typeof body === 'object') {
    if (typeof body.error === 'object' && body.error?.message) return String(body.error.message);
    if (typeof body.error === 'string') return body.error;
    if (typeof body.Error === 'string') return body.Error;
    if (typeof body.message === 'string') return body.message;
  }
  if (typeof body === 'string' && body.trim()) return body.trim().split('\n')[0]!.slice(0, 300);
  return `HTTP ${status}`;
}

/** TLS failures a user can act on, in words. */
const TLS_HINTS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'not signed by a trusted CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'signed by an untrusted CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'signed by an untrusted CA',
  ERR_TLS_CERT_ALTNAME_INVALID: 'issued for another host name',
  CERT_HAS_EXPIRED: 'expired',
};

export function reachError(url: string, err: unknown, pinned: boolean): CliError {
  const e = err as { code?: string; message?: string };
  const code = e.code ?? '';
  if (TLS_HINTS[code]) {
    const hint = pinned
      ? "it does not match the CA pinned at login: run 'vmwarden login' again if the controller's CA changed"
      : "run 'vmwarden login URL --fingerprint SHA256:…' (the fingerprint is in the controller's start log) or --ca-file";
    return new CliError(
      `cannot trust the controller at ${url}: its certificate is ${TLS_HINTS[code]} (${code}); ${hint}`,
    );
  }
  return new CliError(`cannot reach the controller at ${url}: ${code || e.message}`);
}

export class Client {
  constructor(
    readonly url: string,
    readonly token?: string,
    /** The pinned CA: the only one trusted for https (the system store when unset). */
    readonly caPem?: string,
  ) {}

  async call(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers['zt-session'] = this.token;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const target = new URL(path.replace(/^\//, ''), this.url.endsWith('/') ? this.url : `${this.url}/`);
    let res: { status: number; headers: IncomingMessage['headers']; text: string };
    try {
      res = await send(target, method, headers, payload, this.caPem);
    } catch (err) {
      throw reachError(this.url, err, !!this.caPem);
    }
    let parsed: unknown = res.text;
    if (res.text && String(res.headers['content-type'] ?? '').includes('json')) {
      try {
        parsed = JSON.parse(res.text);
      } catch {
        parsed = res.text;
      }
    }
    if (res.status >= 400 && !okStatuses.includes(res.status)) {
      const hint = res.status === 401 && this.token ? " (run 'vmwarden login' again)" : '';
      throw new CliError(`${method} ${path}: ${res.status} ${errorMessage(parsed, res.status)}${hint}`);
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | undefined,
  ca: string | undefined,
): Promise<{ status: number; headers: IncomingMessage['headers']; text: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    };
    const opts = { method, headers, timeout: 30_000 };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...opts, ...(ca ? { ca } : {}) }, onResponse)
        : httpRequest(url, opts, onResponse);
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}
