// Shared bits of the Sign API tests.
import * as assert from 'uvu/assert';
import { request as httpRequest } from 'node:http';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { defineTestDomain, startTestAgent, type TestAgent, type TestDomain } from '../../helpers/agent.js';
import { sleep } from '../../helpers/wait.js';

/** `Mon, 03 Jun 2024 10:45:36 GMT` */
export const RFC1123 =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;

export const SIGN_KEYS = [
  'created_at',
  'id',
  'instance_name',
  'is_valid',
  'node_id',
  'server_id',
  'updated_at',
];

/** One `sign` object exactly as the Sign API document shows it. */
export function assertSignShape(s: any): void {
  assert.equal(Object.keys(s).sort(), SIGN_KEYS);
  assert.ok(Number.isInteger(s.id), `id ${s.id}`);
  assert.type(s.instance_name, 'string');
  assert.type(s.server_id, 'string');
  assert.ok(Number.isInteger(s.node_id), `node_id ${s.node_id}`);
  assert.ok(['true', 'false', 'unknown'].includes(s.is_valid), `is_valid ${s.is_valid}`);
  assert.match(s.created_at, RFC1123);
  if (s.updated_at !== null) assert.match(s.updated_at, RFC1123);
}

/** A 4xx answer in the Sign API's error format: exactly `{"error": "<non-empty>"}`. */
export function assertSignError(r: { status: number; body: any; text: string }, status: number): void {
  assert.is(r.status, status, r.text);
  assert.equal(Object.keys(r.body ?? {}), ['error'], r.text);
  assert.type(r.body.error, 'string');
  assert.ok(r.body.error.length > 0);
}

export interface TaskTrace {
  final: any;
  states: string[];
}

/** Polls GET /v1/tasks/{id} until SUCCESS or FAILURE (bounded), recording every state seen. */
export async function waitTask(
  c: TestController,
  token: string,
  id: string,
  timeoutMs = 20_000,
): Promise<TaskTrace> {
  const states: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await c.call('GET', `/v1/tasks/${id}`, { token });
    assert.is(r.status, 200, r.text);
    if (states[states.length - 1] !== r.body.state) states.push(r.body.state);
    if (r.body.state === 'SUCCESS' || r.body.state === 'FAILURE') return { final: r.body, states };
    if (Date.now() > deadline) throw new Error(`task ${id} still ${r.body.state} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Allowed order of task states: PENDING → RUNNING → SUCCESS|FAILURE, never backwards. */
export function assertTaskOrder(states: string[]): void {
  const rank: Record<string, number> = { PENDING: 0, RUNNING: 1, SUCCESS: 2, FAILURE: 2 };
  for (let i = 1; i < states.length; i++) {
    assert.ok(rank[states[i]!]! > rank[states[i - 1]!]!, `task states went ${states.join(' → ')}`);
  }
}

/**
 * A plain HTTP request through node:http, which (unlike fetch) sends a body with GET, as the Sign
 * API document's own `curl -X GET ... -d '{"action": ...}'` example does.
 */
export function httpCall(
  c: TestController,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string } = {},
): Promise<{ status: number; body: any; text: string }> {
  const payload = opts.raw ?? (opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
  const headers: Record<string, string> = {};
  if (opts.token) headers['x-auth-token'] = opts.token;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(c.httpBase + path, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body, text });
      });
    });
    req.setTimeout(20_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface SignNode {
  c: TestController;
  admin: string;
  a: TestAgent;
  /** The domains asked for, defined in the agent's test:///default connection and reported. */
  vms: TestDomain[];
  /** Stops agent and controller, removes the domains' files. */
  destroy(): Promise<void>;
}

/** What the Sign API tests start from: a controller, one agent (node `nodeName`) and its domains. */
export async function signNode(nodeName: string, domainNames: string[]): Promise<SignNode> {
  const c = await startTestController();
  const vms: TestDomain[] = [];
  let a: TestAgent | undefined;
  const destroy = async () => {
    await a?.stop();
    await c.destroy();
    for (const d of vms) d.remove();
  };
  try {
    const admin = await c.adminToken();
    a = await startTestAgent(c, { name: nodeName });
    for (const name of domainNames) vms.push(await defineTestDomain(a.hypervisor, name));
    await a.agent.report();
    return { c, admin, a, vms, destroy };
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }
}
