/**
 * No reply in fastify's default error shape, whatever fails: errors thrown in hooks, in onSend
 * (even an onSend that fails the error reply too), in serialization; 404, 413, 415 and unparsable
 * bodies; URLs the router refuses. Each answer is in the format of the group the path belongs to.
 */
import type { FastifyInstance } from 'fastify';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildHttpApp } from '../../../controller/src/http/app.js';
import { handleErrorsWith } from '../../../controller/src/http/errors.js';
import { renderAccessError } from '../../../controller/src/access/wire.js';
import { renderSignError } from '../../../controller/src/sign/wire.js';
import { renderComanageError } from '../../../controller/src/keys/routes.js';
import { renderZitiError } from '../../../controller/src/identity/routes.js';
import { startTestController, type TestController } from '../../helpers/controller.js';
import { watchdog } from '../../helpers/wait.js';
import { FORMATS, type Group } from './util.js';

watchdog(90);

let c: TestController;
let app: FastifyInstance;

/** Routes that fail on purpose, one set per group, registered the way the groups register theirs. */
function failingRoutes(prefix: string, render: Parameters<typeof handleErrorsWith>[1]) {
  return async (scope: FastifyInstance) => {
    handleErrorsWith(scope, render);
    const pub = { public: true };
    scope.get(
      `${prefix}/__prehandler`,
      { config: pub, preHandler: async () => Promise.reject(new Error('x')) },
      async () => 'unreached',
    );
    scope.get(
      `${prefix}/__onsend`,
      {
        config: pub,
        onSend: async () => {
          throw new Error('onSend fails, every time, the error reply too');
        },
      },
      async () => ({ ok: true }),
    );
    scope.get(`${prefix}/__serialize`, { config: pub }, async () => ({ n: 1n }));
    scope.get(`${prefix}/__stackoverflow`, { config: pub }, async () => {
      const deep = (n: number): number => deep(n + 1) + 1;
      return deep(0);
    });
    scope.get(`${prefix}/__thrown-string`, { config: pub }, async () => {
      throw 'not an Error';
    });
  };
}

const GROUP_PREFIX: Array<[Group, string, Parameters<typeof handleErrorsWith>[1]]> = [
  ['identity', '/identities', renderZitiError],
  ['access', '/v1/access', renderAccessError],
  ['comanage', '/ssh_key_authenticator', renderComanageError],
  ['sign', '/v1/sign', renderSignError],
];

test.before(async () => {
  c = await startTestController();
  app = buildHttpApp(c.controller.services);
  for (const [, prefix, render] of GROUP_PREFIX) app.register(failingRoutes(prefix, render));
  // A route with no group handler of its own: the path decides the format.
  app.get('/v1/instances/__root-thrower', { config: { public: true } }, async () => {
    throw new TypeError('a bug');
  });
  await app.ready();
});
test.after(async () => {
  await app.close();
  await c.destroy();
});

function check(group: Group, r: { statusCode: number; body: string }, what: string, status?: number) {
  let body: any;
  try {
    body = JSON.parse(r.body);
  } catch {
    assert.unreachable(`${what}: not JSON: ${r.body.slice(0, 200)}`);
  }
  assert.not.ok('statusCode' in body, `${what}: fastify-shaped: ${r.body}`);
  assert.ok(FORMATS[group](body), `${what}: not in the ${group} format: ${r.body.slice(0, 300)}`);
  if (status) assert.is(r.statusCode, status, `${what}: ${r.body}`);
  assert.not.match(r.body, /stack|at Object\.|TypeError|RangeError/, `${what}: leaks internals`);
}

test('errors in hooks, onSend and serialization render in the group format', async () => {
  for (const [group, prefix] of GROUP_PREFIX) {
    for (const route of ['__prehandler', '__onsend', '__serialize', '__stackoverflow', '__thrown-string']) {
      const r = await app.inject({ method: 'GET', url: `${prefix}/${route}` });
      check(group, r, `${prefix}/${route}`, 500);
    }
  }
  check(
    'access',
    await app.inject({ method: 'GET', url: '/v1/instances/__root-thrower' }),
    'root route',
    500,
  );
});

test('404, 413, 415, bad JSON, empty JSON and router refusals render in the group format', async () => {
  const paths: Array<[Group, string]> = [
    ['identity', '/identities'],
    ['identity', '/no-such-thing'],
    ['access', '/v1/instances'],
    ['access', '/v1/access/request'],
    ['access', '/v1/audit'],
    ['comanage', '/ssh_key_authenticator/ssh_keys.json'],
    ['sign', '/v1/nodes'],
    ['sign', '/v1/sign'],
  ];
  const token = await c.adminToken();
  const auth = { 'zt-session': token };
  for (const [group, path] of paths) {
    const json = { ...auth, 'content-type': 'application/json' };
    check(
      group,
      await app.inject({ method: 'POST', url: `${path}/nope/nope`, headers: auth }),
      `404 ${path}`,
      404,
    );
    check(
      group,
      await app.inject({ method: 'POST', url: path, headers: json, payload: 'x'.repeat(2 << 20) }),
      `413 ${path}`,
    );
    check(
      group,
      await app.inject({
        method: 'POST',
        url: path,
        headers: { ...auth, 'content-type': 'application/xml' },
        payload: '<a/>',
      }),
      `415 ${path}`,
    );
    check(
      group,
      await app.inject({ method: 'POST', url: path, headers: json, payload: '{"a":' }),
      `bad JSON ${path}`,
    );
    check(
      group,
      await app.inject({ method: 'POST', url: path, headers: json, payload: '' }),
      `empty JSON ${path}`,
    );
    check(
      group,
      await app.inject({ method: 'GET', url: `${path}/%E0%A4%A`, headers: auth }),
      `bad %-escape ${path}`,
    );
  }
  check(
    'sign',
    await app.inject({ method: 'GET', url: `/v1/sign/${'x'.repeat(101)}`, headers: auth }),
    'long param',
    414,
  );
});

test.run();
