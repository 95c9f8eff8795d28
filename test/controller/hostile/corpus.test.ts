/**
 * The hostile corpus, generated from GET /openapi.json of a running controller: every route ×
 * every class of bad input (see corpus.ts), as admin and unauthenticated. Every answer: no 5xx,
 * never fastify's default error body, errors in the route group's own format; /healthz answers
 * after every batch. CI runs a seeded sample per route and class; VMWARDEN_HOSTILE_FULL=1 runs all.
 */
import { Agent } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { buildCorpus, CLASSES, operations, type HostileCase } from './corpus.js';
import { errorFormats, errorSchemaOf, problemWith, rawRequest } from './util.js';
import { watchdog } from '../../helpers/wait.js';

const FULL = process.env.VMWARDEN_HOSTILE_FULL === '1';
const SEED = Number(process.env.VMWARDEN_HOSTILE_SEED ?? 12);
const PER_CLASS = Number(process.env.VMWARDEN_HOSTILE_PER_CLASS ?? 2);
const BATCH = 50;

watchdog(FULL ? 3600 : 240);

let c: TestController;
let doc: any;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

test.before(async () => {
  c = await startTestController({ loginMaxFailuresPerUsername: 1e9, loginMaxFailuresPerAddress: 1e9 });
  doc = (await c.call('GET', '/openapi.json')).body;
});
test.after(async () => {
  agent.destroy();
  await c.destroy();
});

/** Real objects for path parameters, so the corpus reaches past "not found" too. */
async function knownIds(): Promise<Record<string, string>> {
  const admin = await c.adminToken();
  const user = await c.createUser('hostile-target', 'user');
  const serverId = '5d2c4b3a-1f0e-4d9c-8b7a-6e5f4d3c2b1a';
  const inst = await c.call('POST', '/v1/instances', {
    token: admin,
    body: { server_id: serverId, instance_name: 'hostile-vm', login_user: 'vmwarden', state: 'running' },
  });
  assert.is(inst.status, 201, inst.text);
  const node = await c.call('POST', '/v1/nodes', { token: admin, body: { name: 'hostile-node' } });
  assert.is(node.status, 201, node.text);
  const auths = await c.call('GET', '/current-identity/authenticators', { token: admin });
  const ids: Record<string, string> = {
    server_id: serverId,
    node_id: String(node.body.node_id),
    '/identities/{id}': user.id,
    '/edge/management/v1/identities/{id}': user.id,
    '/current-identity/authenticators/{id}': auths.body.data[0].id,
    '/edge/management/v1/current-identity/authenticators/{id}': auths.body.data[0].id,
  };
  return ids;
}

test(`hostile corpus (${FULL ? 'full' : `sample of ${PER_CLASS} per route and class, seed ${SEED}`})`, async () => {
  const started = Date.now();
  const ops = operations(doc);
  assert.ok(ops.length >= 80, `only ${ops.length} operations in /openapi.json`);
  const formats = errorFormats(doc);
  const ids = await knownIds();
  const corpus = buildCorpus(ops, ids, { full: FULL, perClass: PER_CLASS, seed: SEED }).filter(
    // Logging the corpus's own admin session out would turn the rest into 401s.
    (k) => !(k.route.endsWith('/current-api-session') && k.method === 'DELETE' && k.auth === 'admin'),
  );

  let token = await c.adminToken();
  const failures: string[] = [];
  const perClass = new Map<string, Map<number, number>>();
  const record = (k: HostileCase, status: number) => {
    const m = perClass.get(k.cls) ?? new Map<number, number>();
    m.set(status, (m.get(status) ?? 0) + 1);
    perClass.set(k.cls, m);
  };

  for (let i = 0; i < corpus.length; i++) {
    const k = corpus[i]!;
    const headers = { ...k.headers };
    if (k.auth === 'admin') headers['zt-session'] = token;
    const reply = await rawRequest(c.httpBase, {
      method: k.method,
      path: k.path,
      headers,
      body: k.body,
      agent: k.mayReset ? false : agent,
    });
    record(k, reply.reset ? 0 : reply.status);
    const schema = errorSchemaOf(doc, k.route, k.method);
    const problem = problemWith(reply, { schema, required: formats[schema]!, tag: k.tag, route: k.route });
    if (reply.reset && !k.mayReset)
      failures.push(`${k.method} ${k.route} [${k.cls}: ${k.label}] connection reset: ${reply.reset}`);
    if (problem) failures.push(`${k.method} ${k.route} [${k.cls}: ${k.label}, ${k.auth}] → ${problem}`);

    if ((i + 1) % BATCH === 0 || i === corpus.length - 1) {
      const health = await rawRequest(c.httpBase, { method: 'GET', path: '/healthz', agent });
      assert.is(health.status, 200, `after case ${i + 1}: /healthz ${health.status} ${health.text}`);
      // A corpus case may have ended or invalidated the admin session (a password change, a
      // rename): log in again so the rest still runs authenticated.
      const me = await rawRequest(c.httpBase, {
        method: 'GET',
        path: '/current-api-session',
        headers: { 'zt-session': token },
        agent,
      });
      if (me.status !== 200) token = await c.login('admin', c.adminPassword);
    }
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = CLASSES.map((cls) => {
    const m = perClass.get(cls) ?? new Map();
    const statuses = [...m.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s || 'reset'}×${n}`);
    return `  ${cls.padEnd(17)} ${statuses.join(' ')}`;
  });
  console.log(
    `\nhostile corpus: ${corpus.length} requests over ${ops.length} operations in ${seconds}s\n${summary.join('\n')}`,
  );
  if (failures.length) console.log(`\n${failures.length} failures:\n${failures.slice(0, 40).join('\n')}`);
  assert.is(
    failures.length,
    0,
    `${failures.length} hostile requests got a bad answer (first: ${failures[0]})`,
  );
});

test.run();
