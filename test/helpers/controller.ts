/**
 * Starts a real controller in-process on ephemeral loopback ports with a temp data dir, and talks to
 * it over real HTTP(S). Every REST test builds on this.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type ControllerConfig } from '../../controller/src/config.js';
import { startController, type Controller } from '../../controller/src/server.js';
import type { Clock } from '../../lib/platform/clock.js';
import { sharedCluster } from './postgres.js';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: any;
  text: string;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as-is (string/Buffer) instead of JSON.stringify(body). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export interface TlsClient {
  cert?: string;
  key?: string;
}

export class TestController {
  controller!: Controller;
  adminPassword = '';
  private adminTokenCache?: string;

  constructor(
    readonly dataDir: string,
    readonly config: ControllerConfig,
    readonly clock?: Clock,
  ) {}

  get httpBase() {
    return `http://${this.controller.endpoints.http}`;
  }
  get httpsBase() {
    return `https://${this.controller.endpoints.https}`;
  }
  get caPem() {
    return readFileSync(join(this.dataDir, 'pki', 'ca.crt'), 'utf8');
  }

  async start() {
    this.controller = await startController(this.config, { clock: this.clock });
    // A second controller on a shared database finds the admin already made by the first.
    const passwordFile = join(this.dataDir, 'admin-password');
    if (existsSync(passwordFile)) this.adminPassword = readFileSync(passwordFile, 'utf8').trim();
    this.adminTokenCache = undefined;
    return this;
  }

  async stop() {
    await this.controller?.stop();
  }

  /** Stops and starts again on the same data dir (new ports). */
  async restart() {
    await this.stop();
    return this.start();
  }

  async destroy() {
    await this.stop().catch(() => undefined);
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** HTTP request to the plain listener. */
  async call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers['zt-session'] = opts.token;
    let body: string | Buffer | undefined = opts.raw;
    if (body === undefined && opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.httpBase + path, { method, headers, body: body as BodyInit | undefined });
    return toReply(
      res.status,
      Object.fromEntries(res.headers.entries()),
      Buffer.from(await res.arrayBuffer()),
    );
  }

  /** HTTPS request, optionally presenting a client certificate. */
  callTls(method: string, path: string, opts: CallOptions & TlsClient = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers['zt-session'] = opts.token;
    const body = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
    if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        this.httpsBase + path,
        { method, headers, ca: this.caPem, cert: opts.cert, key: opts.key, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve(
              toReply(res.statusCode ?? 0, res.headers as Record<string, string>, Buffer.concat(chunks)),
            ),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async login(username: string, password: string): Promise<string> {
    const r = await this.call('POST', '/authenticate?method=password', { body: { username, password } });
    if (r.status !== 200) throw new Error(`login ${username} failed: ${r.status} ${r.text}`);
    return r.body.data.token;
  }

  async adminToken(): Promise<string> {
    return (this.adminTokenCache ??= await this.login('admin', this.adminPassword));
  }

  /** Creates an identity with a password and returns its id and a fresh session token. */
  async createUser(name: string, role: 'admin' | 'user' | 'agent' = 'user', password = 'secret-password') {
    const r = await this.call('POST', '/identities', {
      token: await this.adminToken(),
      body: { name, role, password },
    });
    if (r.status !== 201) throw new Error(`create ${name} failed: ${r.status} ${r.text}`);
    return { id: r.body.data.id as string, token: await this.login(name, password), password };
  }
}

function toReply(status: number, headers: Record<string, string>, buf: Buffer): Reply {
  const text = buf.toString('utf8');
  let body: unknown = text;
  if ((headers['content-type'] ?? '').includes('json') && text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status, headers, body, text };
}

/** A controller on ephemeral loopback ports, quiet logs, and login limits high enough for tests. */
export async function startTestController(
  overrides: Partial<ControllerConfig> = {},
  clock?: Clock,
): Promise<TestController> {
  const dataDir = mkdtempSync(join(tmpdir(), 'vmwarden-test-'));
  const config: ControllerConfig = {
    ...defaultConfig({}),
    dataDir,
    listenHttp: '127.0.0.1:0',
    listenHttps: '127.0.0.1:0',
    listenGrpc: '127.0.0.1:0',
    logLevel: 'silent',
    loginMaxFailuresPerUsername: 1000,
    loginMaxFailuresPerAddress: 1000,
    loginMaxFailuresPerUsernameAnyAddress: 1000,
    ...overrides,
  };
  // The runner's PostgreSQL pass: every controller gets a fresh database in the pass's cluster.
  const cluster = sharedCluster();
  if (cluster && !config.database) config.database = await cluster.createDatabase();
  return new TestController(dataDir, config, clock).start();
}
