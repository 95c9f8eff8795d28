/**
 * Shared helpers for the /v1/access and /v1/instances tests: instances and grants made through the
 * API, user keys made by the real ssh-keygen, `ssh-keygen -L` read-back, access-API error checks.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { startTestController, type Reply, type TestController } from '../../helpers/controller.js';
import type { ControllerConfig } from '../../../controller/src/config.js';
import type { Clock } from '../../../lib/platform/clock.js';
import { ACCESS, assertContract } from '../../helpers/contract.js';
import { run } from '../../helpers/sshd.js';
import { makeUserKey, type UserKeyFiles } from './sshca/fixtures.js';

export { makeUserKey, type UserKeyFiles, run };

const S = 'virsh-sandbox_internal_rest.';
export const schema = (name: string) => S + name;

export async function tempDir(prefix = 'vmwarden-access-test-') {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface TestInstance {
  serverId: string;
  name: string;
  principal: string;
}

let instanceCounter = 0;

/** Registers an instance through POST /v1/instances (admin). */
export async function createInstance(
  c: TestController,
  fields: Partial<{ state: string; instance_name: string; ip_address: string; ssh_port: number }> = {},
): Promise<TestInstance> {
  const serverId = randomUUID();
  const name = fields.instance_name ?? `vm-test-${++instanceCounter}-${serverId.slice(0, 4)}`;
  const r = await c.call('POST', '/v1/instances', {
    token: await c.adminToken(),
    body: {
      server_id: serverId,
      instance_name: name,
      ip_address: '192.0.2.10',
      ssh_port: 22,
      login_user: 'debian',
      state: 'running',
      ...fields,
    },
  });
  assert.is(r.status, 201, r.text);
  return { serverId, name, principal: `vm-${serverId}` };
}

export async function grant(c: TestController, serverId: string, identityId: string): Promise<void> {
  const r = await c.call('POST', `/v1/instances/${serverId}/grants`, {
    token: await c.adminToken(),
    body: { identity_id: identityId },
  });
  assert.is(r.status, 201, r.text);
}

/** POST /v1/access/request. */
export function requestAccess(c: TestController, token: string, body: Record<string, unknown>) {
  return c.call('POST', '/v1/access/request', { token, body });
}

/** Issues a certificate (200 expected) and returns the response plus the record's exact serial. */
export async function issue(
  c: TestController,
  token: string,
  body: Record<string, unknown>,
): Promise<{ id: string; certificate: string; serial: string; reply: Reply; record: Reply }> {
  const reply = await requestAccess(c, token, body);
  assert.is(reply.status, 200, reply.text);
  assertContract(ACCESS, schema('requestAccessResponse'), reply.body);
  const record = await c.call('GET', `/v1/access/certificate/${reply.body.certificate_id}`, {
    token: await c.adminToken(),
  });
  assert.is(record.status, 200, record.text);
  return {
    id: reply.body.certificate_id,
    certificate: reply.body.certificate,
    serial: rawSerial(record.text),
    reply,
    record,
  };
}

/** The serial_number exactly as written in the JSON text (JSON.parse loses precision above 2^53). */
export function rawSerial(text: string): string {
  const m = /"serial_number":(\d+)[,}]/.exec(text);
  if (!m) throw new Error(`no serial_number in ${text}`);
  return m[1]!;
}

/** Every serial_number in a JSON text, in order. */
export function rawSerials(text: string): string[] {
  return [...text.matchAll(/"serial_number":(\d+)[,}]/g)].map((m) => m[1]!);
}

/** `ssh-keygen -L -f` of a certificate line (TZ=UTC). */
export async function keygenList(dir: string, certificate: string): Promise<string> {
  const file = join(dir, `c-${randomUUID()}-cert.pub`);
  await writeFile(file, certificate + '\n');
  const r = await run('ssh-keygen', ['-L', '-f', file], { env: { ...process.env, TZ: 'UTC' } });
  assert.is(r.code, 0, r.stderr);
  return r.stdout;
}

/** The format ssh-keygen -L uses for validity bounds (UTC). */
export const keygenDate = (d: Date | string) => new Date(d).toISOString().slice(0, 19);

/**
 * A 4xx in the access API's error format `{error, code, details?}`, code = HTTP status, JSON, valid
 * per the contract; optionally the message matches.
 */
export function assertAccessError(r: Reply, status: number, message?: RegExp): void {
  assert.is(r.status, status, `expected ${status}, got ${r.status}: ${r.text}`);
  assert.ok((r.headers['content-type'] ?? '').includes('application/json'), r.headers['content-type']);
  assert.type(r.body, 'object', r.text);
  assert.type(r.body.error, 'string', r.text);
  assert.ok(r.body.error.length > 0);
  assert.is(r.body.code, status, r.text);
  assertContract(ACCESS, schema('accessErrorResponse'), r.body);
  if (message) assert.match(r.body.error, message, r.text);
}

export function assertOk(r: Reply, contract?: string): void {
  assert.is(r.status, 200, r.text);
  if (contract) assertContract(ACCESS, schema(contract), r.body);
}

export interface AccessFixture {
  c: TestController;
  dir: string;
  admin: string;
  user: { id: string; token: string };
  vm: TestInstance;
  key: UserKeyFiles;
  /** Stops the controller and removes the temp dir. */
  destroy(): Promise<void>;
}

/**
 * What most access tests start from: a controller (admin token), one user, one running instance
 * (granted to the user when `grant` is set) and an ed25519 key in a temp dir.
 */
export async function accessFixture(
  userName: string,
  opts: { grant?: boolean; config?: Partial<ControllerConfig>; clock?: Clock } = {},
): Promise<AccessFixture> {
  const { dir, cleanup } = await tempDir();
  const key = await makeUserKey(dir, 'id_ed', 'ed25519');
  const c = await startTestController(opts.config, opts.clock);
  const admin = await c.adminToken();
  const user = await c.createUser(userName);
  const vm = await createInstance(c);
  if (opts.grant) await grant(c, vm.serverId, user.id);
  return {
    c,
    dir,
    admin,
    user,
    vm,
    key,
    destroy: async () => {
      await c.destroy();
      await cleanup();
    },
  };
}
