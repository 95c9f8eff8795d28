/** A thin fetch client for the controller's REST groups; every failure becomes one CliError line. */

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
  headers: Headers;
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

export class Client {
  constructor(
    readonly url: string,
    readonly token?: string,
  ) {}

  async call(method: string, path: string, body?: unknown, okStatuses: number[] = []): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers['zt-session'] = this.token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: globalThis.Response;
    try {
      res = await fetch(new URL(path, this.url.endsWith('/') ? this.url : `${this.url}/`), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach the controller at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (res.status >= 400 && !okStatuses.includes(res.status)) {
      const hint = res.status === 401 && this.token ? " (run 'vmwarden login' again)" : '';
      throw new CliError(`${method} ${path}: ${res.status} ${errorMessage(parsed, res.status)}${hint}`);
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }
}
